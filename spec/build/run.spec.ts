import * as nodeFs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImageBuilder } from '../../lib/build/builder';
import { contextFromRootfs } from '../../lib/build/context';
import { DigestOnlyTarget } from '../../lib/build/digest-target';
import { RunExecutor, RunRequest, builtinRunExecutor, hostShellExecutor } from '../../lib/build/run';
import { Bubblewrap, SandboxCommand, bubblewrapOptions, systemMounts } from '../../lib/build/sandbox';
import { diskFs } from '../../lib/fs';
import { writeTarget } from '../../lib/image/write';
import { diff } from '../../lib/layer/diff';
import { Rootfs } from '../../lib/rootfs/rootfs';
import { requireTool } from '../support/tools';
import { listing, memfs, tree } from './helpers';

const platform = { os: 'linux', architecture: 'amd64' };
function request(rootfs: Rootfs, command: string, extra: Partial<RunRequest> = {}): RunRequest {
  return { rootfs, command, env: {}, sourceDateEpoch: 0, platform, ...extra };
}

const rootfs = tree({
  'bin/hello': ['#!/bin/sh\necho "hello from the image\'s bin/"\n', 0o755],
  'etc/daemon.json': '{"a":1}',
  'etc/keep.conf': 'keep',
  'statics/audit-policy.yml': 'policy',
  'big/blob': 'x'.repeat(100000),
});

describe('the host shell executor', () => {
  const tmp = nodeFs.mkdtempSync(join(tmpdir(), 'cloudrootfs-run-spec-'));
  afterAll(() => nodeFs.rmSync(tmp, { recursive: true, force: true }));

  test('runs sh -c at the rootfs root with bin/ first on PATH; the diff holds exactly the changes', async () => {
    const exec = hostShellExecutor({ tmpDir: tmp });
    const after = await exec.run(
      request(rootfs, 'rm -f statics/audit-policy.yml && hello > etc/greeting && echo "$GREETING" > etc/env && chmod 600 etc/keep.conf && ln -s daemon.json etc/link', {
        env: { GREETING: 'hi there' },
      }),
    );
    expect(await after.readText('etc/greeting')).toBe("hello from the image's bin/\n");
    expect(await after.readText('etc/env')).toBe('hi there\n');
    const layer = await diff(rootfs, after);
    expect(layer.whiteouts()).toEqual(['statics/audit-policy.yml']);
    expect([...layer.entries()].map((e) => e.path)).toEqual(['etc', 'etc/env', 'etc/greeting', 'etc/keep.conf', 'etc/link', 'statics']);
    expect(after.get('etc/keep.conf')).toMatchObject({ mode: 0o600, uid: 0, gid: 0, mtime: 0 });
    // Untouched files are the very entries they were: nothing to hash, nothing in the layer.
    expect(after.get('big/blob')).toBe(rootfs.get('big/blob'));
    expect(after.get('bin/hello')).toBe(rootfs.get('bin/hello'));
    const dirs = nodeFs.readdirSync(tmp);
    expect(dirs.length).toBe(1);
    await exec.dispose!();
    expect(nodeFs.readdirSync(tmp)).toEqual([]);
  });

  test('a failing command is a BuildError with its exit code and output', async () => {
    const exec = hostShellExecutor({ tmpDir: tmp });
    const failed = exec.run(request(rootfs, 'echo "about to fail" >&2; exit 3'));
    await expect(failed).rejects.toMatchObject({ code: 'BUILD_FAILED', details: { exitCode: 3 } });
    await expect(exec.run(request(rootfs, 'echo oops; false'))).rejects.toThrow(/exited with code 1:\noops/);
    await exec.dispose!();
  });

  test('a failed command\'s temporary tree is removed at once, even where it made directories read-only', async () => {
    const own = nodeFs.mkdtempSync(join(tmp, 'failed-'));
    const exec = hostShellExecutor({ tmpDir: own });
    await expect(exec.run(request(rootfs, 'mkdir -p locked/in && chmod 500 locked/in locked && exit 4'))).rejects.toMatchObject({ details: { exitCode: 4 } });
    expect(nodeFs.readdirSync(own)).toEqual([]);
    // A successful one stays (its files back the result's contents) until dispose().
    await exec.run(request(rootfs, 'mkdir -p locked && chmod 500 locked'));
    expect(nodeFs.readdirSync(own)).toHaveLength(1);
    await exec.dispose!();
    expect(nodeFs.readdirSync(own)).toEqual([]);
  });

  test('JSON form runs argv without a shell; a missing program is a BuildError', async () => {
    const exec = hostShellExecutor({ tmpDir: tmp });
    const after = await exec.run({ ...request(rootfs, ''), command: undefined, argv: ['mkdir', '-p', 'var/log'] });
    expect(after.get('var/log')?.type).toBe('directory');
    await expect(exec.run({ ...request(rootfs, ''), command: undefined, argv: ['/nonexistent/tool'] })).rejects.toMatchObject({ code: 'BUILD_FAILED' });
    await exec.dispose!();
  });

  test('gives the builtin executor\'s digest for the same deletion, as does the default (the sandbox)', async () => {
    if (!requireTool('bwrap')) return;
    const context = contextFromRootfs(rootfs, diskFs);
    for (const epoch of [0, 1700000000]) {
      const make = (runExecutor?: RunExecutor) =>
        ImageBuilder.from('scratch', { context, platform: 'linux/amd64', sourceDateEpoch: epoch, ...(runExecutor ? { runExecutor } : {}) })
          .copy('.', '.')
          .run('rm -f statics/audit-policy.yml');
      const host = hostShellExecutor({ tmpDir: tmp });
      const byDefault = make();
      expect(byDefault.runExecutor()?.name).toBe('sandbox');
      const images = [await byDefault.build(), await make(host).build(), await make(builtinRunExecutor()).build()];
      const digests = await Promise.all(images.map(async (image) => (await writeTarget(image, new DigestOnlyTarget())).digest));
      expect(new Set(digests).size).toBe(1);
      await Promise.all([host.dispose!(), byDefault.runExecutor()!.dispose!()]);
    }
  });
});

describe('the builtin executor', () => {
  const exec = builtinRunExecutor();

  test('rm, mkdir, ln -s, chmod, mv, cp, touch joined by &&; $VAR from the environment', async () => {
    const after = await exec.run(
      request(
        rootfs,
        "rm -rf statics && mkdir -p var/lib/$APP && ln -s daemon.json etc/current && chmod 0600 etc/keep.conf && mv etc/keep.conf etc/kept.conf && cp -r etc etc.bak && touch 'var/new file'",
        { env: { APP: 'kube' } },
      ),
    );
    expect(listing(after)).toEqual([
      'big/', 'big/blob', 'bin/', 'bin/hello',
      // Archive order: `etc.bak/` sorts before `etc/` ('.' < '/').
      'etc.bak/', 'etc.bak/current -> daemon.json', 'etc.bak/daemon.json', 'etc.bak/kept.conf',
      'etc/', 'etc/current -> daemon.json', 'etc/daemon.json', 'etc/kept.conf',
      'var/', 'var/lib/', 'var/lib/kube/', 'var/new file',
    ]);
    expect(after.get('etc/kept.conf')?.mode).toBe(0o600);
  });

  test('anything else is a clear UsageError', async () => {
    await expect(exec.run(request(rootfs, 'apt-get install x'))).rejects.toThrow(/does not know "apt-get"/);
    await expect(exec.run(request(rootfs, 'rm a; rm b'))).rejects.toThrow(/only commands joined by "&&"/);
    await expect(exec.run(request(rootfs, 'rm etc'))).rejects.toThrow(/is a directory/);
    await expect(exec.run(request(rootfs, 'rm ../x'))).rejects.toMatchObject({ code: 'INVALID_PATH' });
    await expect(exec.run(request(rootfs, 'rm missing'))).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(exec.run(request(rootfs, 'mv etc etc/inside'))).rejects.toThrow(/into itself/);
    await expect(exec.run(request(rootfs, 'ln target link'))).rejects.toThrow(/ln -s/);
    await expect(exec.run(request(rootfs, 'chmod u+x bin/hello'))).rejects.toThrow(/OCTAL/);
  });

  test('a RUN on memfs works with it and changes parent mtimes to the epoch', async () => {
    const image = await ImageBuilder.from('scratch', { fs: memfs(), context: contextFromRootfs(rootfs, memfs()), runExecutor: exec, sourceDateEpoch: 500 })
      .copy('.', '.')
      .run('rm statics/audit-policy.yml')
      .build();
    const layer = await image.layers[1].changeset();
    expect(layer.whiteouts()).toEqual(['statics/audit-policy.yml']);
    expect(layer.get('statics')?.mtime).toBe(500);
  });
});

test('node:fs is recognised whatever namespace wrapper it comes in; memfs is not', async () => {
  const { defaultRunExecutor, isNodeFs } = await import('../../lib/build/run');
  // What `import * as fs from 'node:fs'` gives another CommonJS module: a fresh object.
  const wrapper = { ...nodeFs, promises: nodeFs.promises } as unknown as import('../../lib/fs').FileSystem;
  expect(isNodeFs(wrapper)).toBe(true);
  expect(defaultRunExecutor(wrapper)?.name).toBe('sandbox');
  expect(isNodeFs(memfs())).toBe(false);
  expect(defaultRunExecutor(memfs())).toBeUndefined();
});

test('runExecutor names: sandbox and host need node:fs, builtin runs anywhere, anything else is a UsageError', async () => {
  const { resolveRunExecutor } = await import('../../lib/build/run');
  expect(resolveRunExecutor('sandbox', nodeFs as unknown as import('../../lib/fs').FileSystem)?.name).toBe('sandbox');
  expect(resolveRunExecutor('host', nodeFs as unknown as import('../../lib/fs').FileSystem)?.name).toBe('host-shell');
  expect(resolveRunExecutor('builtin', memfs())?.name).toBe('builtin');
  expect(resolveRunExecutor('sandbox', memfs())).toBeUndefined();
  expect(resolveRunExecutor('host', memfs())).toBeUndefined();
  expect(() => resolveRunExecutor('chroot' as 'host', memfs())).toThrow(expect.objectContaining({ code: 'USAGE' }));
  // A named executor on memfs fails at the RUN, saying why.
  const build = ImageBuilder.from('scratch', { fs: memfs(), runExecutor: 'sandbox' }).run('true').build();
  await expect(build).rejects.toMatchObject({ details: { causeCode: 'UNSUPPORTED' } });
  await expect(build).rejects.toThrow(/runExecutor 'sandbox' needs node:fs/);
});

describe('the bubblewrap command line', () => {
  const bwrap = (version: [number, number, number]): Bubblewrap => ({ path: '/usr/bin/bwrap', version });
  const command: SandboxCommand = { root: '/work/tmp/run-1/rootfs', argv: ['/bin/sh', '-c', 'true'], env: { PATH: '/work/tmp/run-1/rootfs/bin:/usr/bin', A: 'b c' }, network: 'none' };
  const system = [
    { kind: 'ro-bind' as const, source: '/usr', dest: '/usr' },
    { kind: 'symlink' as const, target: 'usr/bin', dest: '/bin' },
  ];
  const options = (over: Partial<SandboxCommand> = {}, root = true, userNamespaces = true, version: [number, number, number] = [0, 8, 0]) =>
    bubblewrapOptions({ ...command, ...over }, bwrap(version), { root, userNamespaces }, system);
  const pairs = (o: string[], flag: string) => o.flatMap((a, i) => (a === flag ? [o[i + 1]] : []));

  test('no network unless asked; the environment is exactly what is given; the rootfs last, writable, the working directory', () => {
    const o = options();
    expect(o[0]).toBe('--unshare-all');
    expect(o).not.toContain('--share-net');
    expect(options({ network: 'host' })).toContain('--share-net');
    expect(o).toEqual(expect.arrayContaining(['--die-with-parent', '--new-session', '--clearenv']));
    const env = o.flatMap((a, i) => (a === '--setenv' ? [`${o[i + 1]}=${o[i + 2]}`] : []));
    expect(env).toEqual(['PATH=/work/tmp/run-1/rootfs/bin:/usr/bin', 'A=b c']);
    expect(o.slice(-5)).toEqual(['--bind', command.root, command.root, '--chdir', command.root]);
    // Only the rootfs is bound writable; /proc is remounted read-only after it is made.
    expect(pairs(o, '--bind')).toEqual([command.root]);
    expect(o.indexOf('--remount-ro')).toBeGreaterThan(o.indexOf('--proc'));
    expect(pairs(o, '--ro-bind')).toEqual(['/usr']);
    expect(pairs(o, '--symlink')).toEqual(['usr/bin']);
    expect(pairs(o, '--ro-bind-try').every((p) => p.startsWith('/etc/') && !p.startsWith('/etc/ssl/private') && p !== '/etc/shadow')).toBe(true);
  });

  test('capabilities: all dropped but the file ones; no user namespace for root where the kernel has none; uid 0 inside for others', () => {
    const o = options();
    expect(o.slice(o.indexOf('--cap-drop'), o.indexOf('--cap-drop') + 2)).toEqual(['--cap-drop', 'ALL']);
    expect(pairs(o, '--cap-add')).toEqual(['CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FOWNER', 'CAP_FSETID']);
    expect(o).toEqual(expect.arrayContaining(['--unshare-user', '--disable-userns']));
    expect(options({}, true, false)).not.toContain('--unshare-user');
    const unprivileged = options({}, false, true);
    expect(unprivileged).toEqual(expect.arrayContaining(['--unshare-user', '--disable-userns']));
    expect(pairs(unprivileged, '--uid')).toEqual(['0']);
    expect(pairs(unprivileged, '--gid')).toEqual(['0']);
    // bwrap before 0.8 has no --disable-userns.
    expect(options({}, false, true, [0, 6, 1])).not.toContain('--disable-userns');
  });

  test('system directories: symlinks stay symlinks, real directories are bound read-only, absent ones are left out', () => {
    const sys = nodeFs.mkdtempSync(join(tmpdir(), 'cloudrootfs-sys-'));
    try {
      nodeFs.mkdirSync(join(sys, 'usr'));
      nodeFs.mkdirSync(join(sys, 'bin'));
      nodeFs.symlinkSync('usr/lib', join(sys, 'lib'));
      expect(systemMounts(sys)).toEqual([
        { kind: 'ro-bind', source: join(sys, 'usr'), dest: '/usr' },
        { kind: 'ro-bind', source: join(sys, 'bin'), dest: '/bin' },
        { kind: 'symlink', target: 'usr/lib', dest: '/lib' },
      ]);
      nodeFs.rmdirSync(join(sys, 'usr'));
      expect(() => systemMounts(sys)).toThrow(expect.objectContaining({ code: 'SANDBOX_UNAVAILABLE' }));
    } finally {
      nodeFs.rmSync(sys, { recursive: true, force: true });
    }
  });
});
