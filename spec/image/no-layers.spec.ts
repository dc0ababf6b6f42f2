/**
 * Images with no layers (`layers: []`, `rootfs.diff_ids: []`): sealer builds them from a Kubefile
 * of metadata only, e.g. its e2e fixture build_with_imagelist_flag, which is `FROM scratch` alone
 * and must build
 * (https://github.com/sealerio/sealer/blob/v0.11.0/test/suites/build/fixtures/build_with_imagelist_flag/Kubefile#L1,
 * https://github.com/sealerio/sealer/blob/v0.11.0/test/sealer_build_test.go#L152-L162).
 * Every command handles them, and skopeo and umoci read what we write; oci-image-tool, which
 * applies the manifest schema's `minItems: 1`, complains about that and nothing else.
 */
import { execFile } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { diskFs } from '../../lib/fs';
import type { ImageManifest, ImageConfigDocument } from '../../lib/image/types';
import { runCaptured } from '../support/cli';
import { describeWithRegistry, startTestRegistry, uniqueRepo, type TestRegistry } from '../support/registry';
import { requireTool } from '../support/tools';
import { skopeo, tempDir } from '../registry/images';

const execFileAsync = promisify(execFile);

describe('images with no layers', () => {
  let work: string;
  let env: NodeJS.ProcessEnv;
  const cli = (...argv: string[]) => runCaptured(diskFs, argv, env);
  const ok = async (...argv: string[]) => {
    const r = await cli(...argv);
    if (r.code !== 0) throw new Error(`cloudrootfs ${argv.join(' ')} exited ${r.code}: ${r.err}`);
    return r.out;
  };

  beforeAll(async () => {
    work = await tempDir('no-layers');
    env = { HOME: path.join(work, 'home'), CLOUDROOTFS_STORE: path.join(work, 'store'), REGISTRY_AUTH_FILE: path.join(work, 'auth.json') };
    // build_with_imagelist_flag: `FROM scratch` alone.
    await fsp.mkdir(path.join(work, 'scratch-only'));
    await fsp.writeFile(path.join(work, 'scratch-only', 'Kubefile'), 'FROM scratch');
    // Metadata only: a label, a launch command.
    await fsp.mkdir(path.join(work, 'metadata'));
    await fsp.writeFile(path.join(work, 'metadata', 'Kubefile'), 'FROM scratch\nLABEL owner=ops\nCMDS ["kubectl get nodes"]\n');
    // One with a file, to diff against.
    await fsp.mkdir(path.join(work, 'one-file'));
    await fsp.writeFile(path.join(work, 'one-file', 'Kubefile'), 'FROM scratch\nCOPY a.txt etc/\n');
    await fsp.writeFile(path.join(work, 'one-file', 'a.txt'), 'a\n');
  });
  afterAll(async () => {
    if (work) await fsp.rm(work, { recursive: true, force: true });
  });

  test('build: FROM scratch alone, and metadata only, give layers: [] and diff_ids: []', async () => {
    const json = JSON.parse(await ok('build', '--build-mode', 'lite', '-t', 'empty:v1', '--json', path.join(work, 'scratch-only')));
    expect(json.images[0].layers).toEqual([]);
    await ok('build', '--build-mode', 'lite', '-t', 'meta:v1', path.join(work, 'metadata'));
    await ok('build', '--build-mode', 'lite', '-t', 'file:v1', path.join(work, 'one-file'));
    const spec = JSON.parse(await ok('inspect', 'meta:v1'));
    expect(spec.manifestv1.layers).toEqual([]);
    expect(spec.ociv1.rootfs).toEqual({ type: 'layers', diff_ids: [] });
    expect(spec.ociv1.history).toEqual([
      { created: '1970-01-01T00:00:00Z', created_by: 'LABEL owner=ops', empty_layer: true },
      { created: '1970-01-01T00:00:00Z', created_by: 'CMDS ["kubectl get nodes"]', empty_layer: true },
    ]);
    expect(spec.imageExtension.launch).toEqual({ cmds: ['kubectl get nodes'] });
    expect(spec.imageExtension.labels).toMatchObject({ owner: 'ops' });
  });

  test('images, ls, export, diff, save and load', async () => {
    const images = JSON.parse(await ok('images', '--json'));
    expect(images.map((i: { familiar: string }) => i.familiar).sort()).toEqual(['empty:v1', 'file:v1', 'meta:v1']);
    expect(JSON.parse(await ok('ls', 'meta:v1', '--json'))).toEqual([]);
    const out = path.join(work, 'exported');
    expect(await ok('export', 'meta:v1', out)).toBe(`exported 0 entries to ${out}\n`);
    expect(await fsp.readdir(out)).toEqual([]);
    const diff = JSON.parse(await ok('diff', 'meta:v1', 'file:v1', '--json'));
    expect(diff.added.map((a: { path: string }) => a.path)).toEqual(['etc', 'etc/a.txt']);
    expect(JSON.parse(await ok('diff', 'file:v1', 'meta:v1', '--json')).removed.map((a: { path: string }) => a.path)).toEqual(['etc', 'etc/a.txt']);
    for (const format of ['oci-archive', 'docker-archive']) {
      const a = path.join(work, `a.${format}.tar`);
      const b = path.join(work, `b.${format}.tar`);
      await ok('save', 'meta:v1', '-o', a, '--format', format);
      const other = path.join(work, `store-${format}`);
      expect(await ok('load', a, '--store', other)).toBe('Loaded image: docker.io/library/meta:v1\n');
      await ok('save', 'meta:v1', '-o', b, '--format', format, '--store', other);
      expect((await fsp.readFile(b)).equals(await fsp.readFile(a))).toBe(true);
    }
  });

  test('skopeo and umoci read it; oci-image-tool objects only to the empty layers list', async () => {
    if (!requireTool('skopeo', 'umoci', 'oci-image-tool')) return;
    const archive = path.join(work, 'a.oci-archive.tar');
    const inspected = JSON.parse(await skopeo('inspect', `oci-archive:${archive}`));
    expect(inspected.Layers).toEqual([]);
    expect(inspected.Labels).toMatchObject({ owner: 'ops' });
    const docker = JSON.parse(await skopeo('inspect', `docker-archive:${path.join(work, 'a.docker-archive.tar')}`));
    expect(docker.Layers).toEqual([]);
    // skopeo copies it into a layout; umoci reads that layout and unpacks an empty rootfs.
    const layout = path.join(work, 'layout');
    await skopeo('--insecure-policy', 'copy', `oci-archive:${archive}`, `oci:${layout}:t`);
    const manifest = JSON.parse(await skopeo('inspect', '--raw', `oci:${layout}:t`)) as ImageManifest;
    expect(manifest.layers).toEqual([]);
    const config = JSON.parse(await skopeo('inspect', '--config', `oci:${layout}:t`)) as ImageConfigDocument;
    expect(config.rootfs.diff_ids).toEqual([]);
    const stat = (await execFileAsync('umoci', ['stat', '--image', `${layout}:t`])).stdout;
    expect(stat).toContain('CMDS ["kubectl get nodes"]');
    const bundle = path.join(work, 'bundle');
    await execFileAsync('umoci', ['unpack', '--rootless', '--image', `${layout}:t`, bundle]);
    expect(await fsp.readdir(path.join(bundle, 'rootfs'))).toEqual([]);
    // oci-image-tool applies the schema as it is: the empty layers list is its only complaint.
    const validated = await execFileAsync('oci-image-tool', ['validate', '--type', 'image', '--ref', 'name=t', layout]).then(
      () => '',
      (err: { stderr: string }) => err.stderr,
    );
    expect(validated).toMatch(/1 errors detected/);
    expect(validated).toMatch(/layers: Array must have at least 1 items/);
  });

  describeWithRegistry('none', 'through a registry', () => {
    let registry: TestRegistry;
    beforeAll(async () => {
      registry = await startTestRegistry();
    });
    afterAll(async () => registry?.stop());

    test('push and pull keep the manifest byte for byte; skopeo reads it from the registry', async () => {
      const ref = `${registry.host}/${uniqueRepo('no-layers')}:v1`;
      await ok('push', 'meta:v1', `docker://${ref}`);
      const pulled = path.join(work, 'store-pulled');
      await ok('pull', `docker://${ref}`, '--store', pulled);
      const a = JSON.parse(await ok('inspect', 'meta:v1'));
      const b = JSON.parse(await ok('inspect', ref, '--store', pulled));
      expect(b.digest).toBe(a.digest);
      expect(b.manifestv1.layers).toEqual([]);
      if (!requireTool('skopeo')) return;
      const remote = JSON.parse(await skopeo('inspect', '--tls-verify=false', `docker://${ref}`));
      expect(remote.Digest).toBe(a.digest);
      expect(remote.Layers).toEqual([]);
    });
  });
});
