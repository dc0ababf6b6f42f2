/**
 * The RUN sandbox against a hostile base image, for real (bubblewrap, the host's tools, real
 * files on the host). Every property is checked twice: the sandbox keeps the host unchanged, and
 * the same build through the host shell (what RUN did before the sandbox, and still does with
 * `runExecutor: 'host'`) does change it, so each check is known to be able to fail.
 *
 * The suite runs as the user jest runs as; when that is root, one test runs this whole file again
 * as an unprivileged user (uid 65534), where the sandbox needs a user namespace.
 */
import { spawnSync } from 'node:child_process';
import * as nodeFs from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PassThrough } from 'node:stream';
import { buildImage } from '../../lib/build/build-image';
import { ImageBuilder } from '../../lib/build/builder';
import { contextFromRootfs } from '../../lib/build/context';
import { DigestOnlyTarget } from '../../lib/build/digest-target';
import { RunExecutor, hostShellExecutor, sandboxExecutor } from '../../lib/build/run';
import { systemMounts } from '../../lib/build/sandbox';
import { parseArgs } from '../../lib/cli/args';
import { buildCommand } from '../../lib/cli/commands/build';
import { diskFs } from '../../lib/fs';
import { writeTarget } from '../../lib/image/write';
import type { Image } from '../../lib/image/image';
import { Rootfs } from '../../lib/rootfs/rootfs';
import { ImageStore } from '../../lib/store';
import { findTool, requireTool, toolsRequired } from '../support/tools';
import { tree } from './helpers';

const REPO = resolve(__dirname, '..', '..');
const NESTED = process.env.CLOUDROOTFS_SANDBOX_SPEC_NESTED === '1';
const isRoot = process.getuid?.() === 0;
const haveTools = requireTool('bwrap', 'bash');

/**
 * "The host": a directory outside /tmp (which the sandbox replaces with its own), where this
 * process may write. The non-root run gets one from the root run (world-writable).
 */
function hostDir(): string {
  if (process.env.CLOUDROOTFS_SANDBOX_SPEC_HOSTDIR) return nodeFs.mkdtempSync(join(process.env.CLOUDROOTFS_SANDBOX_SPEC_HOSTDIR, 'h-'));
  nodeFs.mkdirSync(join(REPO, '.tmp'), { recursive: true });
  return nodeFs.mkdtempSync(join(REPO, '.tmp', 'sandbox-spec-'));
}

const unique = () => `${process.pid}-${Math.random().toString(36).slice(2)}`;

/** FROM a base (the given tree, copied in) + RUN; the image, its merged tree, and the RUN layer. */
async function buildWith(executor: RunExecutor, base: Rootfs, command: string | string[], options: { network?: 'none' | 'host'; env?: Record<string, string> } = {}) {
  const builder = ImageBuilder.from('scratch', {
    context: contextFromRootfs(base, diskFs),
    platform: 'linux/amd64',
    runExecutor: executor,
    ...(options.network ? { network: options.network } : {}),
  })
    .copy('.', '.')
    .run(command, { env: options.env ?? {} });
  const image = await builder.build();
  const rootfs = await builder.rootfs();
  const layer = await image.layers[1].changeset();
  return { image, rootfs, layer };
}

async function digestOf(image: Image): Promise<string> {
  return (await writeTarget(image, new DigestOnlyTarget())).digest;
}

/** The sandbox and the host shell as this suite uses them (disposed after each test). */
function executors() {
  const made: RunExecutor[] = [];
  const keep = <T extends RunExecutor>(e: T) => (made.push(e), e);
  return {
    sandbox: () => keep(sandboxExecutor()),
    host: () => keep(hostShellExecutor()),
    dispose: () => Promise.all(made.map((e) => e.dispose?.())),
  };
}

const describeSandbox = haveTools ? describe : describe.skip;

describeSandbox(`the RUN sandbox (${isRoot ? 'root' : `uid ${process.getuid?.()}`})`, () => {
  let host: string;
  let ex: ReturnType<typeof executors>;
  beforeEach(() => {
    host = hostDir();
    ex = executors();
  });
  afterEach(async () => {
    await ex.dispose();
    nodeFs.rmSync(host, { recursive: true, force: true });
  });

  test("a base image's bin/rm writing outside the rootfs leaves no marker on the host; the RUN still does its job", async () => {
    const marker = join(host, 'marker-from-bin-rm');
    const tmpMarker = join(tmpdir(), `cloudrootfs-spec-marker-${unique()}`);
    const usrMarker = `/usr/local/cloudrootfs-spec-marker-${unique()}`;
    const base = tree({
      // The image's bin/ comes first on PATH: this runs instead of the host's rm.
      'bin/rm': [`#!/bin/sh\necho pwned > ${marker}\necho pwned > ${tmpMarker}\necho pwned > ${usrMarker}\nexec /bin/rm "$@"\n`, 0o755],
      'statics/audit-policy.yml': 'policy',
      'etc/keep': 'keep',
    });
    try {
      const { layer, rootfs } = await buildWith(ex.sandbox(), base, 'rm -f statics/audit-policy.yml');
      expect(nodeFs.existsSync(marker)).toBe(false);
      expect(nodeFs.existsSync(tmpMarker)).toBe(false);
      expect(nodeFs.existsSync(usrMarker)).toBe(false);
      // The layer holds the deletion and the changed directory, nothing else.
      expect(layer.whiteouts()).toEqual(['statics/audit-policy.yml']);
      expect([...layer.entries()].map((e) => e.path)).toEqual(['statics']);
      expect(await rootfs.readText('etc/keep')).toBe('keep');

      // The host shell runs the image's bin/rm on the host: the very thing the sandbox prevents.
      await buildWith(ex.host(), base, 'rm -f statics/audit-policy.yml');
      expect(nodeFs.readFileSync(marker, 'utf8')).toBe('pwned\n');
    } finally {
      nodeFs.rmSync(tmpMarker, { force: true });
      nodeFs.rmSync(usrMarker, { force: true });
    }
  });

  test('a base whose statics/ is a symlink to a host directory: RUN rm through it leaves the host file alone', async () => {
    const target = join(host, 'statics-target');
    nodeFs.mkdirSync(target);
    nodeFs.writeFileSync(join(target, 'audit-policy.yml'), 'host file');
    const base = tree({ [`statics -> ${target}`]: '', 'etc/keep': 'keep' });

    const { layer } = await buildWith(ex.sandbox(), base, 'rm -f statics/audit-policy.yml && rm -rf statics/');
    expect(nodeFs.readFileSync(join(target, 'audit-policy.yml'), 'utf8')).toBe('host file');
    // Inside, the link leads nowhere: nothing to remove, nothing changed.
    expect([...layer.entries()]).toEqual([]);
    expect(layer.whiteouts()).toEqual([]);

    await buildWith(ex.host(), base, 'rm -f statics/audit-policy.yml');
    expect(nodeFs.existsSync(join(target, 'audit-policy.yml'))).toBe(false);
  });

  test('RUN touch /tmp/x and RUN echo > an absolute host path create nothing on the host', async () => {
    const tmpFile = `/tmp/cloudrootfs-spec-${unique()}`;
    const hostFile = join(host, 'written-by-run');
    const base = tree({ 'etc/keep': 'keep' });
    const command = `touch ${tmpFile} && (echo hi > ${hostFile} || true) && (echo hi > /usr/cloudrootfs-${unique()} || true) && echo done > etc/done`;
    try {
      const { rootfs } = await buildWith(ex.sandbox(), base, command);
      expect(await rootfs.readText('etc/done')).toBe('done\n');
      expect(nodeFs.existsSync(tmpFile)).toBe(false);
      expect(nodeFs.existsSync(hostFile)).toBe(false);

      await buildWith(ex.host(), base, command);
      expect(nodeFs.existsSync(tmpFile)).toBe(true);
      expect(nodeFs.readFileSync(hostFile, 'utf8')).toBe('hi\n');
    } finally {
      nodeFs.rmSync(tmpFile, { force: true });
    }
  });

  describe('network', () => {
    let server: Server;
    let port: number;
    const received: string[] = [];
    beforeAll(async () => {
      server = createServer((socket) => socket.on('data', (d) => received.push(d.toString())));
      await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
      port = (server.address() as { port: number }).port;
    });
    afterAll(() => new Promise<void>((ok) => server.close(() => ok())));

    const connect = () => `if bash -c 'echo hello-${port} > /dev/tcp/127.0.0.1/${port}' 2>/dev/null; then echo connected; else echo refused; fi > net`;

    test('a RUN cannot reach a listener on the host\'s loopback by default', async () => {
      received.length = 0;
      const { rootfs } = await buildWith(ex.sandbox(), tree({ 'etc/keep': 'k' }), connect());
      expect(await rootfs.readText('net')).toBe('refused\n');
      expect(received).toEqual([]);
    });

    test('the CLI: build keeps RUN off the network, --network host opens it, --run-on-host says what it does', async () => {
      const ctx = join(host, 'ctx');
      nodeFs.mkdirSync(ctx);
      nodeFs.writeFileSync(join(ctx, 'Kubefile'), `FROM scratch\nRUN ${connect()}\n`);
      const build = async (...flags: string[]) => {
        const stdout = new PassThrough();
        const stderr = new PassThrough();
        let err = '';
        stderr.on('data', (c) => (err += c));
        stdout.resume();
        const args = parseArgs(['-q', '--store', join(host, 'store'), '-t', 'net:v1', ...flags, ctx], buildCommand.options);
        await buildCommand.run({ args, stdout, stderr, fs: diskFs, env: {}, interactive: false });
        const store = await ImageStore.open({ root: join(host, 'store') });
        return { net: await (await (await store.loadImage('net:v1')).flatten()).readText('net'), err };
      };
      received.length = 0;
      expect((await build()).net).toBe('refused\n');
      expect(received).toEqual([]);
      expect((await build('--network', 'host')).net).toBe('connected\n');
      const onHost = await build('--run-on-host');
      expect(onHost.net).toBe('connected\n');
      expect(onHost.err).toMatch(/^warning: \S*Kubefile:2: RUN executes on this host without a sandbox/m);
    });

    test('with network host it can', async () => {
      received.length = 0;
      const { rootfs } = await buildWith(ex.sandbox(), tree({ 'etc/keep': 'k' }), connect(), { network: 'host' });
      expect(await rootfs.readText('net')).toBe('connected\n');
      for (let i = 0; i < 50 && received.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
      expect(received.join('')).toBe(`hello-${port}\n`);
    });
  });

  test("a base whose bin/rm copies the builder's ~/.docker/config.json into the rootfs finds nothing; the builder's environment stays out", async () => {
    const home = join(host, 'home');
    nodeFs.mkdirSync(join(home, '.docker'), { recursive: true });
    nodeFs.writeFileSync(join(home, '.docker', 'config.json'), '{"auths":{"registry.example":{"auth":"c2VjcmV0"}}}');
    const saved = { HOME: process.env.HOME, TOKEN: process.env.CLOUDROOTFS_SPEC_TOKEN };
    process.env.HOME = home;
    process.env.CLOUDROOTFS_SPEC_TOKEN = 'ci-secret-value';
    const thief = [
      '#!/bin/sh',
      'cp "$HOME/.docker/config.json" stolen-via-home 2>/dev/null',
      `cp ${home}/.docker/config.json stolen-via-path 2>/dev/null`,
      'cp /root/.docker/config.json stolen-from-root 2>/dev/null',
      'env > env-seen',
      'exec /bin/rm "$@"',
      '',
    ].join('\n');
    const base = tree({ 'bin/rm': [thief, 0o755], 'statics/audit-policy.yml': 'policy' });
    try {
      const { rootfs } = await buildWith(ex.sandbox(), base, 'rm -f statics/audit-policy.yml', { env: { DECLARED_ARG: 'arg-value' } });
      for (const stolen of ['stolen-via-home', 'stolen-via-path', 'stolen-from-root']) expect(rootfs.get(stolen)).toBeUndefined();
      const seen = Object.fromEntries(
        (await rootfs.readText('env-seen'))
          .trim()
          .split('\n')
          .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
      );
      // ARG/ENV values, a PATH starting with the image's bin/, and what sh sets itself: nothing else.
      expect(seen.DECLARED_ARG).toBe('arg-value');
      expect(seen.PATH).toMatch(/\/rootfs\/bin:\/usr\/local\/sbin:/);
      expect(Object.keys(seen).filter((k) => !['DECLARED_ARG', 'PATH', 'PWD', 'SHLVL', '_', 'OLDPWD'].includes(k))).toEqual([]);

      const leaky = await buildWith(ex.host(), base, 'rm -f statics/audit-policy.yml');
      expect(leaky.rootfs.get('stolen-via-home')?.type).toBe('file');
      expect(await leaky.rootfs.readText('env-seen')).toContain('CLOUDROOTFS_SPEC_TOKEN=ci-secret-value');
    } finally {
      if (saved.HOME === undefined) delete process.env.HOME;
      else process.env.HOME = saved.HOME;
      if (saved.TOKEN === undefined) delete process.env.CLOUDROOTFS_SPEC_TOKEN;
      else process.env.CLOUDROOTFS_SPEC_TOKEN = saved.TOKEN;
    }
  });

  test('what a RUN sees: system directories read-only, a minimal /etc, uid 0, no way to widen its view', async () => {
    const base = tree({ 'etc/keep': 'keep' });
    const probe = [
      'ls -A / > seen-root',
      'ls -A /etc > seen-etc',
      'id -u > seen-uid',
      'hostname > seen-hostname',
      // Each attempt must fail; a success writes its name.
      'touch /usr/probe 2>/dev/null && echo usr-writable >> escaped',
      'mount -o remount,rw,bind /usr 2>/dev/null && echo remounted >> escaped',
      // A sysctl is global: proc is read-only (the same value is written back, harmless if not).
      'v=$(cat /proc/sys/kernel/core_uses_pid); (echo "$v" > /proc/sys/kernel/core_uses_pid) 2>/dev/null && echo sysctl-written >> escaped',
      'test -e /etc/shadow && echo shadow-visible >> escaped',
      'test -e /root -o -e /home -o -e /var -o -e /run && echo host-dirs-visible >> escaped',
      'true',
    ].join('\n');
    const { rootfs } = await buildWith(ex.sandbox(), base, probe);
    expect(rootfs.get('escaped') ? await rootfs.readText('escaped') : '').toBe('');
    const rootListing = (await rootfs.readText('seen-root')).trim().split('\n').sort();
    const system = systemMounts().map((m) => m.dest.slice(1));
    const rootfsTop = nodeFs.realpathSync(tmpdir()).split('/')[1];
    expect(rootListing).toEqual([...new Set([...system, 'dev', 'etc', 'proc', 'tmp', rootfsTop])].sort());
    const etc = (await rootfs.readText('seen-etc')).trim().split('\n');
    expect(etc).toEqual(expect.arrayContaining(['passwd', 'group']));
    expect(etc.filter((n) => !['passwd', 'group', 'hosts', 'resolv.conf', 'nsswitch.conf', 'host.conf', 'ssl', 'pki', 'ca-certificates.conf', 'ld.so.cache', 'alternatives', 'localtime'].includes(n))).toEqual([]);
    expect(await rootfs.readText('seen-uid')).toBe('0\n');
    expect(await rootfs.readText('seen-hostname')).toBe('cloudrootfs\n');
  });

  test('benign RUNs give the host shell\'s tree, layer and digest (whiteouts, modes, owners from the model, clamped mtimes)', async () => {
    // As root, the host shell is today's RUN; a non-root run compares with the root run's digests.
    const expected = process.env.CLOUDROOTFS_SANDBOX_SPEC_EXPECTED ? (JSON.parse(process.env.CLOUDROOTFS_SANDBOX_SPEC_EXPECTED) as Record<string, string>) : undefined;
    const sandbox = ex.sandbox();
    const reference = expected ?? (await benignDigests(ex.host()));
    const sandboxed = await benignDigests(sandbox);
    expect(Object.keys(sandboxed)).toHaveLength(BENIGN_COMMANDS.length * BENIGN_EPOCHS.length);
    expect(sandboxed).toEqual(reference);
  });

  test('a command that fails is the command\'s BuildError; a sandbox that cannot be made is SANDBOX_UNAVAILABLE, naming the opt-in', async () => {
    const base = tree({ 'etc/keep': 'keep' });
    const exec = ex.sandbox();
    await expect(exec.run({ rootfs: base, command: 'echo about to fail >&2; exit 3', env: {}, sourceDateEpoch: 0, platform: { os: 'linux', architecture: 'amd64' } })).rejects.toMatchObject({
      code: 'BUILD_FAILED',
      details: { exitCode: 3, output: 'about to fail' },
    });
    // A program that does not exist: the command could not start, the sandbox was fine.
    const missing = exec.run({ rootfs: base, argv: ['/nonexistent/tool'], env: {}, sourceDateEpoch: 0, platform: { os: 'linux', architecture: 'amd64' } });
    await expect(missing).rejects.toMatchObject({ code: 'BUILD_FAILED' });
    await expect(missing).rejects.toThrow(/cannot start \/nonexistent\/tool/);

    const noBwrap = sandboxExecutor({ bwrap: join(host, 'no-such-bwrap') });
    const failed = noBwrap.run({ rootfs: base, command: 'true', env: {}, sourceDateEpoch: 0, platform: { os: 'linux', architecture: 'amd64' } });
    await expect(failed).rejects.toMatchObject({ code: 'SANDBOX_UNAVAILABLE', details: { reason: 'bwrap-missing' } });
    await expect(failed).rejects.toThrow(/runExecutor: 'host' \(CLI: --run-on-host\)/);

    // A real bwrap whose setup fails (a mount it cannot make): told apart from any exit code.
    const broken = join(host, 'broken-bwrap');
    const bwrap = findTool('bwrap')!;
    nodeFs.writeFileSync(broken, `#!/bin/sh\n[ "$1" = --version ] && exec ${bwrap} --version\nexec ${bwrap} --ro-bind /nonexistent-${unique()} /x "$@"\n`, { mode: 0o755 });
    const setup = sandboxExecutor({ bwrap: broken }).run({ rootfs: base, command: 'exit 0', env: {}, sourceDateEpoch: 0, platform: { os: 'linux', architecture: 'amd64' } });
    await expect(setup).rejects.toMatchObject({ code: 'SANDBOX_UNAVAILABLE', details: { reason: 'setup-failed' } });
    await expect(setup).rejects.toThrow(/--run-on-host/);
  });

  test('a timeout or an abort ends the command and everything it started', async () => {
    const marker = `31.${process.pid}${Math.floor(Math.random() * 1e6)}`;
    const request = { rootfs: tree({ 'etc/keep': 'k' }), command: `sleep ${marker} & sleep ${marker}`, env: {}, sourceDateEpoch: 0, platform: { os: 'linux', architecture: 'amd64' } };
    const running = () =>
      nodeFs.readdirSync('/proc').filter((pid) => {
        try {
          return /^\d+$/.test(pid) && nodeFs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(marker);
        } catch {
          return false;
        }
      });
    const timed = sandboxExecutor({ timeoutMs: 300 });
    await expect(timed.run(request)).rejects.toMatchObject({ code: 'BUILD_FAILED', details: { signal: 'SIGKILL' } });
    const controller = new AbortController();
    const aborted = ex.sandbox().run({ ...request, signal: controller.signal });
    setTimeout(() => controller.abort(), 300);
    await expect(aborted).rejects.toMatchObject({ code: 'BUILD_FAILED', details: { aborted: true } });
    // The sandbox's pid namespace dies with it: no sleep is left behind.
    for (let i = 0; i < 50 && running().length > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(running()).toEqual([]);
  });

  // Skipped for a non-root builder: it cannot do without a user namespace, so it never retries.
  (isRoot ? test : test.skip)('as root, where a user namespace is refused (a seccomp policy), the sandbox is made without one, and not asked for again', async () => {
    // A bwrap that refuses --unshare-user, as a container runtime's seccomp profile can; every
    // call is logged. The options arrive on fd 3: read them, then hand them on.
    const log = join(host, 'calls');
    const picky = join(host, 'picky-bwrap');
    const bwrap = findTool('bwrap')!;
    nodeFs.writeFileSync(
      picky,
      [
        '#!/bin/bash',
        `[ "$1" = --version ] && exec ${bwrap} --version`,
        'data=$(base64 -w0 <&3)',
        `if base64 -d <<<"$data" | tr '\\0' '\\n' | grep -qx -- --unshare-user; then echo userns >> ${log}; echo "bwrap: Creating new namespace failed: Operation not permitted" >&2; exit 1; fi`,
        `echo plain >> ${log}`,
        'exec 3< <(base64 -d <<<"$data")',
        `exec ${bwrap} "$@"`,
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
    // A fresh copy of the modules: what this process learns here must not leak into other tests.
    let fresh!: typeof import('../../lib/build/run');
    jest.isolateModules(() => {
      fresh = require('../../lib/build/run');
    });
    const exec = fresh.sandboxExecutor({ bwrap: picky });
    try {
      const request = { rootfs: tree({ 'etc/keep': 'k' }), command: 'echo ran > ran', env: {}, sourceDateEpoch: 0, platform: { os: 'linux', architecture: 'amd64' } };
      expect(await (await exec.run(request)).readText('ran')).toBe('ran\n');
      expect(nodeFs.readFileSync(log, 'utf8')).toBe('userns\nplain\n');
      await exec.run(request);
      expect(nodeFs.readFileSync(log, 'utf8')).toBe('userns\nplain\nplain\n');
    } finally {
      await exec.dispose!();
    }
  });

  test('through buildImage the failure is BUILD_FAILED with the cause SANDBOX_UNAVAILABLE; --run-on-host runs it, and says so', async () => {
    const ctx = join(host, 'ctx');
    nodeFs.mkdirSync(join(ctx, 'etc'), { recursive: true });
    nodeFs.writeFileSync(join(ctx, 'etc', 'x'), 'x');
    nodeFs.writeFileSync(join(ctx, 'Kubefile'), 'FROM scratch\nCOPY etc etc\nRUN rm -f etc/x\n');
    const noSandbox = sandboxExecutor({ bwrap: join(host, 'no-such-bwrap') });
    await expect(buildImage({ context: ctx, platforms: ['linux/amd64'], runExecutor: noSandbox })).rejects.toMatchObject({
      code: 'BUILD_FAILED',
      details: { causeCode: 'SANDBOX_UNAVAILABLE' },
    });
    const sandboxed = await buildImage({ context: ctx, platforms: ['linux/amd64'] });
    const onHost = await buildImage({ context: ctx, platforms: ['linux/amd64'], runExecutor: 'host' });
    expect(onHost.digest).toBe(sandboxed.digest);
    expect(sandboxed.warnings.map((w) => w.code)).toEqual([]);
    expect(onHost.warnings.map((w) => w.code)).toEqual(['RUN_ON_HOST']);
    await Promise.all([sandboxed.dispose(), onHost.dispose()]);
  });

  test('on a host without merged /usr, real /bin, /lib… directories are bound read-only', async () => {
    // A system root like a non-merged host's: usr from the host, bin a real directory.
    const sys = join(host, 'sys');
    nodeFs.mkdirSync(join(sys, 'bin'), { recursive: true });
    nodeFs.symlinkSync('/usr', join(sys, 'usr'));
    nodeFs.copyFileSync(nodeFs.realpathSync('/bin/sh'), join(sys, 'bin', 'sh'));
    nodeFs.chmodSync(join(sys, 'bin', 'sh'), 0o755);
    nodeFs.writeFileSync(join(sys, 'bin', 'only-here'), '');
    for (const lib of ['lib', 'lib64']) {
      const st = nodeFs.lstatSync(`/${lib}`, { throwIfNoEntry: false });
      if (st?.isSymbolicLink()) nodeFs.symlinkSync(nodeFs.readlinkSync(`/${lib}`), join(sys, lib));
      else if (st?.isDirectory()) nodeFs.symlinkSync(`/${lib}`, join(sys, lib)); // bound like a real directory
    }
    const mounts = systemMounts(sys);
    expect(mounts).toEqual(expect.arrayContaining([{ kind: 'ro-bind', source: join(sys, 'bin'), dest: '/bin' }]));
    expect(mounts.find((m) => m.dest === '/sbin')).toBeUndefined();

    const exec = sandboxExecutor({ systemRoot: sys });
    try {
      const after = await exec.run({
        rootfs: tree({ 'etc/keep': 'k' }),
        command: 'test -f /bin/only-here && echo found > seen; touch /bin/x 2>/dev/null && echo bin-writable > escaped; true',
        env: {},
        sourceDateEpoch: 0,
        platform: { os: 'linux', architecture: 'amd64' },
      });
      expect(await after.readText('seen')).toBe('found\n');
      expect(after.get('escaped') ? await after.readText('escaped') : '').toBe('');
      expect(nodeFs.existsSync(join(sys, 'bin', 'x'))).toBe(false);
    } finally {
      await exec.dispose!();
    }
  });

  test('the build cache keys a RUN layer by its executor and network', async () => {
    const ctx = join(host, 'ctx');
    nodeFs.mkdirSync(join(ctx, 'a'), { recursive: true });
    nodeFs.mkdirSync(join(ctx, 'b'), { recursive: true });
    nodeFs.writeFileSync(join(ctx, 'a', 'x'), 'x');
    nodeFs.writeFileSync(join(ctx, 'b', 'y'), 'y');
    nodeFs.writeFileSync(join(ctx, 'Kubefile'), 'FROM scratch\nCOPY a a\nRUN rm -f a/x\nCOPY b b\n');
    const store = await ImageStore.open({ root: join(host, 'store') });
    const build = async (options: { runExecutor?: 'sandbox' | 'builtin'; network?: 'host' }) => {
      const r = await buildImage({ context: ctx, store, tag: 'cache:v1', platforms: ['linux/amd64'], ...options });
      await r.dispose();
      return r;
    };
    const first = await build({});
    const again = await build({});
    // COPY a, COPY b by their step keys; the RUN layer by its diff_id.
    expect(again.cacheStats).toMatchObject({ stepHits: 2, blobHits: 1, misses: 0 });
    // The same RUN output made by another executor, or with another network, is another chain:
    // COPY b above it is no longer the same step (its blob is still found by diff_id).
    for (const other of [{ runExecutor: 'builtin' as const }, { network: 'host' as const }]) {
      const r = await build(other);
      expect(r.digest).toBe(first.digest);
      expect(r.cacheStats).toMatchObject({ stepHits: 1, blobHits: 2, misses: 0 });
    }
  });
});

/**
 * Where this process is root: the same suite as an unprivileged user. Skipped, with the reason,
 * where that cannot be arranged (no setpriv, the checkout unreadable to others, or a kernel that
 * gives unprivileged users no user namespace).
 */
function nonRootSkipReason(): string | undefined {
  if (NESTED) return 'this is the non-root run';
  if (!isRoot) return 'jest already runs as a non-root user: the suite above is that run';
  if (!haveTools) return 'bwrap or bash is missing';
  if (!findTool('setpriv')) return 'setpriv (util-linux) is missing';
  const asNobody = (argv: string[]) => spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', ...argv], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
  if (asNobody(['test', '-r', join(REPO, 'package.json')]).status !== 0) return `uid 65534 cannot read ${REPO}`;
  if (asNobody([process.execPath, '--version']).status !== 0) return `uid 65534 cannot run ${process.execPath}`;
  const probe = asNobody([findTool('bwrap')!, '--unshare-user', '--ro-bind', '/usr', '/usr', '--symlink', 'usr/bin', '/bin', '--symlink', 'usr/lib', '/lib', '--symlink', 'usr/lib64', '/lib64', '--', '/usr/bin/true']);
  if (probe.status !== 0) return `unprivileged user namespaces are not available here (${(probe.stderr || '').trim() || `bwrap exited ${probe.status}`})`;
  return undefined;
}

const skipReason = nonRootSkipReason();
const nonRootTitle = `the same suite as uid 65534, through a user namespace${skipReason ? ` (skipped: ${skipReason})` : ''}`;
// Skipped only where an unprivileged sandbox cannot exist here (the title says why).
(skipReason ? test.skip : test)(
  nonRootTitle,
  async () => {
    const work = nodeFs.mkdtempSync(join(tmpdir(), 'cloudrootfs-nonroot-spec-'));
    nodeFs.mkdirSync(join(REPO, '.tmp'), { recursive: true });
    const shared = nodeFs.mkdtempSync(join(REPO, '.tmp', 'sandbox-nonroot-'));
    try {
      nodeFs.chmodSync(work, 0o777);
      nodeFs.chmodSync(shared, 0o777);
      // The reference digests: the host shell as root (today's RUN) for the benign commands.
      const expected = await rootDigests();
      const jest = require.resolve('jest/bin/jest');
      const env: Record<string, string> = {
        PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
        HOME: work,
        TMPDIR: work,
        CLOUDROOTFS_SANDBOX_SPEC_NESTED: '1',
        CLOUDROOTFS_SANDBOX_SPEC_HOSTDIR: shared,
        CLOUDROOTFS_SANDBOX_SPEC_EXPECTED: JSON.stringify(expected),
        ...(toolsRequired() ? { CLOUDROOTFS_REQUIRE_TOOLS: '1' } : {}),
      };
      const result = spawnSync(
        'setpriv',
        ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, jest, '--runInBand', '--ci', '--json', `--outputFile=${join(work, 'result.json')}`, `--cacheDirectory=${join(work, 'jest-cache')}`, '--rootDir', REPO, join(REPO, 'spec', 'build', 'run-sandbox.spec.ts')],
        { cwd: REPO, env, encoding: 'utf8', timeout: 240_000 },
      );
      const report = nodeFs.existsSync(join(work, 'result.json')) ? JSON.parse(nodeFs.readFileSync(join(work, 'result.json'), 'utf8')) : undefined;
      if (result.status !== 0 || !report) throw new Error(`the non-root run failed (${result.status}):\n${result.stderr}\n${result.stdout}`.slice(0, 8000));
      const tests = report.testResults.flatMap((f: { assertionResults: { fullName: string; status: string }[] }) => f.assertionResults);
      const ran = tests.filter((t: { fullName: string }) => t.fullName.startsWith('the RUN sandbox (uid 65534)'));
      expect(ran.length).toBeGreaterThanOrEqual(10);
      // Every test passed there, but the root-only one (skipped for a non-root builder).
      const rootOnly = (t: { title: string }) => t.title.startsWith('as root,');
      expect(ran.filter((t: { title: string; status: string }) => (rootOnly(t) ? t.status !== 'pending' : t.status !== 'passed')).map((t: { title: string }) => t.title)).toEqual([]);
    } finally {
      nodeFs.rmSync(work, { recursive: true, force: true });
      nodeFs.rmSync(shared, { recursive: true, force: true });
    }
  },
  300_000,
);

/** A base with the attributes a RUN must keep: read-only directories, foreign owners, old mtimes. */
const BENIGN_BASE = Rootfs.empty()
  .withDirectory('bin')
  .withFile('bin/tool', '#!/bin/sh\necho tool\n', { mode: 0o755 })
  .withDirectory('etc', { mtime: 100 })
  .withFile('etc/a.conf', 'a', { uid: 1000, gid: 1000, mtime: 50 })
  .withFile('etc/b.conf', 'b', { mode: 0o600 })
  .withSymlink('etc/link', 'a.conf')
  .withDirectory('statics', { mode: 0o555 })
  .withFile('statics/audit-policy.yml', 'policy', { mode: 0o444 })
  .withDirectory('data', { mode: 0o700, uid: 5, gid: 6 })
  .withFile('data/x', 'x'.repeat(70000), { mode: 0o640, uid: 5, gid: 6 });

/** RUNs that touch only the rootfs: deletions, new files, links, modes, appends, ENV, the image's bin/. */
const BENIGN_COMMANDS = [
  'rm -f statics/audit-policy.yml',
  'rm -rf data',
  'mkdir -p new/deep && echo hi > new/deep/f && chmod 640 new/deep/f && ln -s /etc/a.conf etc/abs && ln etc/b.conf etc/hard',
  'chmod 700 etc && touch etc/a.conf && mv etc/b.conf etc/c.conf && echo more >> data/x && chmod 4755 bin/tool',
  'echo "$FOO" > etc/foo && tool > etc/tool.out',
];
const BENIGN_EPOCHS = [0, 1700000000];

/** Each benign command (then a JSON-form RUN) over BENIGN_BASE through `executor`: digest by epoch and command. */
async function benignDigests(executor: RunExecutor): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const epoch of BENIGN_EPOCHS) {
    for (const command of BENIGN_COMMANDS) {
      const image = await ImageBuilder.from('scratch', { context: contextFromRootfs(BENIGN_BASE, diskFs), platform: 'linux/amd64', sourceDateEpoch: epoch, runExecutor: executor })
        .copy('.', '.')
        .env('FOO', 'bar baz')
        .run(command)
        .run(['sh', '-c', 'mkdir -p argv && echo argv > argv/f'])
        .build();
      out[`${epoch} ${command}`] = await digestOf(image);
    }
  }
  return out;
}

/** The benign digests through the host shell as root: what the non-root run must match. */
async function rootDigests(): Promise<Record<string, string>> {
  const host = hostShellExecutor();
  try {
    return await benignDigests(host);
  } finally {
    await host.dispose?.();
  }
}
