/**
 * The build and lint commands, run the way main.ts runs them (parseArgs, then run) until the
 * lead lists them in lib/cli/registry.ts.
 */
import { PassThrough } from 'node:stream';
import { parseArgs } from '../../lib/cli/args';
import type { Command, CommandContext } from '../../lib/cli/command';
import { buildCommand } from '../../lib/cli/commands/build';
import { lintCommand } from '../../lib/cli/commands/lint';
import type { FileSystem } from '../../lib/fs';
import { ImageStore } from '../../lib/store';
import { memfs, writeTree } from './helpers';

async function run(command: Command, argv: string[], fs: FileSystem, env: NodeJS.ProcessEnv = {}) {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (c) => (out += c));
  stderr.on('data', (c) => (err += c));
  const ctx: CommandContext = { args: parseArgs(argv, command.options), stdout, stderr, fs, env, interactive: false };
  const code = (await command.run(ctx)) ?? 0;
  return { code, out, err };
}

describe('cloudrootfs build', () => {
  test('builds, stores under -t, prints the digest and layers; steps go to stderr', async () => {
    const fs = memfs();
    await writeTree(fs, '/ctx', { Kubefile: 'FROM scratch\nARG V=1\nCOPY . .\nLABEL v=$V\n', 'etc/a': 'a' });
    const env = { CLOUDROOTFS_STORE: '/store' };
    const r = await run(buildCommand, ['-t', 'demo:v1', '--build-arg', 'V=2', '--platform', 'linux/amd64', '--label', 'team=ops', '/ctx'], fs, env);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^built demo:v1 sha256:[0-9a-f]{64}\nlinux\/amd64: manifest sha256:[0-9a-f]{64}, config sha256:[0-9a-f]{64}\n {3}1\. new  sha256:[0-9a-f]{64} +\d+(\.\d)? (B|KiB)  COPY \. \.\n$/);
    expect(r.err).toBe('[linux/amd64] STEP 1: COPY . .\n[linux/amd64] STEP 2: LABEL v=2\n');
    const image = await (await ImageStore.open({ fs, root: '/store' })).loadImage('demo:v1');
    expect(image.labels).toMatchObject({ v: '2', team: 'ops' });

    const quiet = await run(buildCommand, ['-q', '--platform', 'linux/amd64,linux/arm64', '-f', '/ctx/Kubefile', '/ctx'], fs, env);
    expect(quiet.out).toMatch(/^sha256:[0-9a-f]{64}\n$/);
    const json = JSON.parse((await run(buildCommand, ['--json', '--platform', 'linux/amd64', '/ctx'], fs, env)).out);
    expect(json).toMatchObject({ stored: false, images: [{ platform: { architecture: 'amd64' } }] });
  });

  test('bad options are usage errors', async () => {
    const fs = memfs();
    await writeTree(fs, '/ctx', { Kubefile: 'FROM scratch\n' });
    await expect(run(buildCommand, ['--copy-mode', 'nested', '/ctx'], fs)).rejects.toMatchObject({ code: 'USAGE' });
    await expect(run(buildCommand, ['--build-arg', 'NOVALUE', '/ctx'], fs)).rejects.toMatchObject({ code: 'USAGE' });
    await expect(run(buildCommand, ['--type', 'x', '/ctx'], fs)).rejects.toMatchObject({ code: 'USAGE' });
    await expect(run(buildCommand, ['--source-date-epoch', 'soon', '/ctx'], fs)).rejects.toMatchObject({ code: 'USAGE' });
    await expect(run(buildCommand, ['--network', 'bridge', '/ctx'], fs)).rejects.toMatchObject({ code: 'USAGE' });
    expect(() => parseArgs(['--nope'], buildCommand.options)).toThrow(/unknown option/);
  });
});

describe('cloudrootfs lint', () => {
  test('a directory: issues with file and field, exit 1 on errors', async () => {
    const fs = memfs();
    await writeTree(fs, '/rootfs', {
      Metadata: '{"version":"v1.19.8"}',
      'etc/kubeadm.yaml': 'kind: ClusterConfiguration\nkubernetesVersion: v1.19.9\n',
      'scripts/init.sh': ['#!/bin/bash\n', 0o644],
      'scripts/clean.sh': ['#!/bin/bash\n', 0o755],
    });
    const r = await run(lintCommand, ['/rootfs'], fs);
    expect(r.code).toBe(1);
    expect(r.out).toContain('error   SCRIPT_NOT_EXECUTABLE  scripts/init.sh /mode: scripts/init.sh is not executable');
    expect(r.out).toContain('error   KUBE_VERSION_MISMATCH  Metadata /version: Metadata version is v1.19.8 but etc/kubeadm.yaml kubernetesVersion is v1.19.9');
    expect(r.out).toMatch(/\/rootfs: \d+ error\(s\), \d+ warning\(s\) \(Kubernetes v1\.19\.9\)\n$/);
    const json = JSON.parse((await run(lintCommand, ['--json', '/rootfs'], fs)).out);
    expect(json.ok).toBe(false);
  });

  test('an image in the store', async () => {
    const fs = memfs();
    await writeTree(fs, '/ctx', { Kubefile: 'FROM scratch\nCOPY . .\n', 'application/apps/web/deploy.yaml': 'kind: Deployment' });
    const env = { CLOUDROOTFS_STORE: '/store' };
    await run(buildCommand, ['-t', 'app:v1', '--platform', 'linux/amd64', '/ctx'], fs, env);
    const r = await run(lintCommand, ['app:v1'], fs, env);
    expect(r.code).toBe(0);
    expect(r.out).toBe('app:v1: 0 error(s), 0 warning(s)\n');
  });
});
