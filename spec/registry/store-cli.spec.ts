/**
 * Pulling into the image store, `resolveBase` for a Kubefile's FROM, and the registry commands
 * (push, pull, login, logout), run against a real registry with htpasswd auth.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from '../../lib/cli/args';
import type { Command } from '../../lib/cli/command';
import { loginCommand } from '../../lib/cli/commands/login';
import { logoutCommand } from '../../lib/cli/commands/logout';
import { pullCommand } from '../../lib/cli/commands/pull';
import { pushCommand } from '../../lib/cli/commands/push';
import { CloudRootfsError } from '../../lib/errors';
import { diskFs } from '../../lib/fs';
import { Image, ImageIndex } from '../../lib/image/image';
import { pullImage, pullToStore, resolveBase } from '../../lib/registry/pull';
import { pushImage } from '../../lib/registry/push';
import { ImageStore } from '../../lib/store';
import { Capture } from '../support/cli';
import { describeWithRegistry, startTestRegistry, uniqueRepo, type TestRegistry } from '../support/registry';
import { contentsOf, randomTag, sampleImage, sampleIndex, tempDir } from './images';

const amd64 = { os: 'linux', architecture: 'amd64' };
const arm64 = { os: 'linux', architecture: 'arm64' };

/** Runs one command as main.ts would (options parsed, positionals checked), returning its output or error. */
async function run(command: Command, argv: string[], env: NodeJS.ProcessEnv): Promise<{ out: string; error?: CloudRootfsError }> {
  const stdout = new Capture();
  const stderr = new Capture();
  try {
    const args = parseArgs(argv, command.options);
    const [min, max] = command.positionals;
    if (args.positionals.length < min || args.positionals.length > max) throw new Error(`bad positionals for ${command.name}`);
    await command.run({ args, stdout, stderr, fs: diskFs, env, interactive: false });
    return { out: stdout.text };
  } catch (err) {
    if (err instanceof CloudRootfsError) return { out: stdout.text, error: err };
    throw err;
  }
}

describeWithRegistry('basic', 'the store and the CLI with a registry', () => {
  let registry: TestRegistry;
  let work: string;
  let env: NodeJS.ProcessEnv;
  const users = { ci: 'secret' };
  const credentials = { username: 'ci', password: users.ci };
  beforeAll(async () => {
    registry = await startTestRegistry({ auth: 'basic', users });
    work = await tempDir('store-cli');
    env = { HOME: path.join(work, 'home'), CLOUDROOTFS_STORE: path.join(work, 'store'), REGISTRY_AUTH_FILE: path.join(work, 'auth.json') };
  });
  afterAll(async () => {
    await registry?.stop();
    if (work) await fsp.rm(work, { recursive: true, force: true });
  });

  it('pullToStore keeps one platform, or the whole index; resolveBase pulls only when missing', async () => {
    const store = await ImageStore.open({ fs: diskFs, root: path.join(work, 'api-store') });
    const index = sampleIndex(randomTag());
    const ref = `docker://${registry.host}/${uniqueRepo('store')}:v1`;
    const pushed = await pushImage(index, ref, { credentials, authFile: false });

    const one = await pullToStore(ref, store, { credentials, authFile: false, platform: arm64, name: 'team/base:arm' });
    expect(one.target).toBeInstanceOf(Image);
    expect(await contentsOf(one.target as Image)).toEqual(await contentsOf(index.select(arm64)));
    const all = await pullToStore(ref, store, { credentials, authFile: false, platforms: 'all' });
    expect(all.name).toBe(ref.slice('docker://'.length));
    expect(all.descriptor.digest).toBe(pushed.digest);
    expect((all.target as ImageIndex).stored?.descriptor.digest).toBe(pushed.digest);

    // FROM: found in the store, no registry needed (wrong credentials would fail otherwise).
    const fromStore = await resolveBase(ref, { store, credentials: { username: 'ci', password: 'wrong' }, authFile: false });
    expect((fromStore as ImageIndex).stored?.descriptor.digest).toBe(pushed.digest);
    // Missing: pulled (host platform by default), then read from the store.
    const other = `docker://${registry.host}/${uniqueRepo('from')}:v2`;
    const otherPushed = await pushImage(sampleImage(amd64, 'from'), other, { credentials, authFile: false });
    await expect(resolveBase(other, { store, pull: 'never', credentials, authFile: false })).rejects.toMatchObject({ code: 'IMAGE_NOT_FOUND' });
    const pulled = (await resolveBase(other, { store, credentials, authFile: false })) as Image;
    expect(pulled.stored?.manifestDescriptor.digest).toBe(otherPushed.digest);
    expect(await store.has(other.slice('docker://'.length))).toBe(true);
    // By digest alone: found by digest in the store; pulled into another store untagged.
    const pinned = `${other.slice('docker://'.length).replace(/:v2$/, '')}@${otherPushed.digest}`;
    expect(((await resolveBase(pinned, { store, pull: 'never' })) as Image).stored?.manifestDescriptor.digest).toBe(otherPushed.digest);
    const fresh = await ImageStore.open({ fs: diskFs, root: path.join(work, 'fresh-store') });
    const byDigest = (await resolveBase(pinned, { store: fresh, credentials, authFile: false })) as Image;
    expect(byDigest.stored?.manifestDescriptor.digest).toBe(otherPushed.digest);
  });

  it('login, push, pull -t, logout: the commands, with the auth file they write', async () => {
    const failed = await run(loginCommand, [registry.host, '-u', 'ci', '-p', 'wrong'], env);
    expect(failed.error?.code).toBe('AUTH_FAILED');
    const login = await run(loginCommand, [registry.host, '-u', 'ci', '-p', users.ci], env);
    expect(login.error).toBeUndefined();
    expect(login.out).toMatch(/login succeeded \(basic auth\)/);
    expect(JSON.parse(await fsp.readFile(env.REGISTRY_AUTH_FILE!, 'utf8')).auths[registry.host]).toBeDefined();

    // Something in the store to push.
    const store = await ImageStore.open({ fs: diskFs, env });
    const image = sampleImage(amd64, 'cli', { seed: randomTag() });
    await store.put(image, 'team/tool:1.0');
    const dest = `docker://${registry.host}/${uniqueRepo('cli')}:1.0`;
    const push = await run(pushCommand, ['team/tool:1.0', dest], env);
    expect(push.error).toBeUndefined();
    const digest = /pushed \S+ (sha256:[0-9a-f]{64})/.exec(push.out)?.[1];
    expect(digest).toBeDefined();
    expect(push.out).toMatch(/blobs: 3 uploaded \(.+\), 0 mounted, 0 already there/);

    const pull = await run(pullCommand, [dest, '-t', 'copies/tool:again'], env);
    expect(pull.error).toBeUndefined();
    expect(pull.out).toContain(`as copies/tool:again ${digest}`);
    const again = (await ImageStore.open({ fs: diskFs, env })).loadImage('copies/tool:again');
    expect(await contentsOf(await again)).toEqual(await contentsOf(image));

    // Registry to registry: everything mounted.
    const copy = await run(pushCommand, [dest, `docker://${registry.host}/${uniqueRepo('cli-copy')}:1.0`], env);
    expect(copy.out).toMatch(/blobs: 0 uploaded \(0B\), 3 mounted/);

    const logout = await run(logoutCommand, [registry.host], env);
    expect(logout.out).toMatch(/removed the credentials/);
    const denied = await run(pullCommand, [dest], env);
    expect(denied.error?.code).toBe('AUTH_FAILED');
    const withCreds = await run(pullCommand, [dest, '--creds', `ci:${users.ci}`, '--platform', 'linux/amd64'], env);
    expect(withCreds.error).toBeUndefined();
    const usage = await run(pullCommand, [dest.replace(':1.0', `@${digest}`)], env);
    expect(usage.error?.code).toBe('USAGE');
    expect((await run(pushCommand, ['team/tool:1.0', 'oci:/tmp/x'], env)).error?.code).toBe('USAGE');
    const pulledBack = await pullImage(dest, { credentials, authFile: false });
    expect((pulledBack as Image).stored?.manifestDescriptor.digest).toBe(digest);
  });
});
