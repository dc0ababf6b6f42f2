/**
 * Digest algorithms: OCI registers sha256 and sha512, and content addressed by either is read
 * and verified with that algorithm (never a false DIGEST_MISMATCH "got sha256:…" for a correct
 * sha512 blob). Any other algorithm (sha384, blake3, unknown) is refused as UNSUPPORTED, in the
 * same words whichever command meets it.
 */
import { createHash } from 'node:crypto';
import * as nodeFs from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { CloudRootfsError } from '../../lib/errors';
import { readOciImage } from '../../lib/formats/layout';
import { readOciArchive } from '../../lib/formats/oci-archive';
import { diskFs } from '../../lib/fs';
import type { Image } from '../../lib/image/image';
import { loadArchiveIntoStore } from '../../lib/store/load';
import { ImageStore } from '../../lib/store';
import { scratchDir } from '../support/umoci';
import { MT, okTar } from './archives';
import { makeTar } from '../formats/archive-support';
import { cli, expectCode, outcome, snapshot } from './support';

type Alg = 'sha256' | 'sha384' | 'sha512';
const digestOf = (alg: Alg, bytes: Buffer) => `${alg}:${createHash(alg).update(bytes).digest('hex')}`;

interface Algorithms {
  layer?: Alg;
  diffId?: Alg;
  config?: Alg;
  manifest?: Alg;
  /** Store another (valid) layer's bytes under this layer's digest. */
  corrupt?: boolean;
}

/** The files of an OCI layout (path → bytes) whose blobs are addressed with the given algorithms. */
function layoutFiles(algs: Algorithms): Map<string, Buffer> {
  const tarBytes = okTar('sha\n');
  const blob = gzipSync(tarBytes);
  const files = new Map<string, Buffer>();
  const put = (digest: string, bytes: Buffer) => files.set(`blobs/${digest.replace(':', '/')}`, bytes);
  const layerDigest = digestOf(algs.layer ?? 'sha256', blob);
  const stored = algs.corrupt ? gzipSync(okTar('other\n')) : blob;
  put(layerDigest, stored);
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [digestOf(algs.diffId ?? 'sha256', tarBytes)] } }),
  );
  const configDigest = digestOf(algs.config ?? 'sha256', config);
  put(configDigest, config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MT.manifest,
      config: { mediaType: MT.config, digest: configDigest, size: config.length },
      layers: [{ mediaType: MT.layerGzip, digest: layerDigest, size: stored.length }],
    }),
  );
  const manifestDigest = digestOf(algs.manifest ?? 'sha256', manifest);
  put(manifestDigest, manifest);
  const entry = { mediaType: MT.manifest, digest: manifestDigest, size: manifest.length, annotations: { 'org.opencontainers.image.ref.name': 'v1', 'io.containerd.image.name': 'docker.io/test/sha:v1' } };
  files.set('index.json', Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.index, manifests: [entry] })));
  files.set('oci-layout', Buffer.from('{"imageLayoutVersion":"1.0.0"}'));
  return files;
}

function writeLayout(dir: string, files: Map<string, Buffer>): string {
  for (const [name, bytes] of files) {
    nodeFs.mkdirSync(join(dir, name, '..'), { recursive: true });
    nodeFs.writeFileSync(join(dir, name), bytes);
  }
  return dir;
}

function archiveOf(files: Map<string, Buffer>): Promise<Buffer> {
  // tar-stream writes PAX records for the long `blobs/sha512/…` names.
  return makeTar([...files].map(([name, data]) => ({ name, data })));
}

describe('sha512-addressed content is read and verified with sha512', () => {
  let dir: string;
  beforeEach(() => {
    dir = scratchDir('crfs-sha512-');
  });
  afterEach(() => nodeFs.rmSync(dir, { recursive: true, force: true }));

  for (const [what, algs] of [
    ['the layer', { layer: 'sha512' }],
    ['every blob and the diff_id', { layer: 'sha512', diffId: 'sha512', config: 'sha512', manifest: 'sha512' }],
  ] as [string, Algorithms][]) {
    test(`${what}: ls and export a layout, load an archive, then read, save and load it again`, async () => {
      const files = layoutFiles(algs);
      const layout = writeLayout(join(dir, 'layout'), files);
      const archive = join(dir, 'a.tar');
      nodeFs.writeFileSync(archive, await archiveOf(files));
      const store = join(dir, 'store');

      const ls = await cli(['ls', `oci:${layout}:v1`, '--store', store], diskFs);
      expect(ls.stderr).toBe('');
      expect(ls.stdout).toContain('etc/hostname');
      expect((await cli(['export', `oci:${layout}:v1`, join(dir, 'out'), '--store', store], diskFs)).code).toBe(0);
      expect(nodeFs.readFileSync(join(dir, 'out', 'etc', 'hostname'), 'utf8')).toBe('sha\n');
      expect((await (await readOciImage(layout, { fs: diskFs, ref: 'v1' })).flatten()).get('etc/hostname')).toBeDefined();

      const loaded = await cli(['load', archive, '--store', store], diskFs);
      expect(loaded.stderr).toBe('');
      expect(loaded.code).toBe(0);
      expect(nodeFs.readdirSync(join(store, 'blobs'))).toContain('sha512');
      expect((await cli(['ls', 'test/sha:v1', '--store', store], diskFs)).stdout).toContain('etc/hostname');
      // gc keeps what the store references, whatever its algorithm.
      expect((await (await ImageStore.open({ fs: diskFs, root: store })).gc()).removedBlobs).toBe(0);
      expect((await cli(['save', 'test/sha:v1', '-o', join(dir, 'again.tar'), '--store', store], diskFs)).code).toBe(0);
      expect((await (await readOciArchive(join(dir, 'again.tar'), { fs: diskFs }) as Image).flatten()).get('etc/hostname')).toBeDefined();
      expect((await cli(['load', join(dir, 'again.tar'), '--store', join(dir, 'store2')], diskFs)).code).toBe(0);
    });
  }

  test('a corrupt sha512 blob is a DIGEST_MISMATCH stated in sha512', async () => {
    const files = layoutFiles({ layer: 'sha512', corrupt: true });
    const layout = writeLayout(join(dir, 'layout'), files);
    const ls = await cli(['ls', `oci:${layout}:v1`], diskFs);
    expect(ls.code).toBe(1);
    expect(ls.stderr).toMatch(/expected sha512:[0-9a-f]{128}, got sha512:[0-9a-f]{128}.*\[DIGEST_MISMATCH\]/);
    const archive = join(dir, 'a.tar');
    nodeFs.writeFileSync(archive, await archiveOf(files));
    const store = join(dir, 'store');
    await ImageStore.open({ fs: diskFs, root: store });
    const before = snapshot(store);
    const loaded = await cli(['load', archive, '--store', store], diskFs);
    expect(loaded.stderr).toMatch(/got sha512:[0-9a-f]{128}.*\[DIGEST_MISMATCH\]/);
    expect(snapshot(store)).toEqual(before);
  });
});

describe('other algorithms are UNSUPPORTED, in the same words everywhere', () => {
  let dir: string;
  beforeEach(() => {
    dir = scratchDir('crfs-sha384-');
  });
  afterEach(() => nodeFs.rmSync(dir, { recursive: true, force: true }));

  for (const where of ['layer', 'config', 'manifest', 'diffId'] as const) {
    test(`a sha384 ${where}: ls (layout, archive) and load give the one UNSUPPORTED message`, async () => {
      const files = layoutFiles({ [where]: 'sha384' });
      const layout = writeLayout(join(dir, 'layout'), files);
      const archive = join(dir, 'a.tar');
      nodeFs.writeFileSync(archive, await archiveOf(files));
      const store = join(dir, 'store');
      await ImageStore.open({ fs: diskFs, root: store });
      const before = snapshot(store);
      const errors: CloudRootfsError[] = [];
      const runs: (() => Promise<unknown>)[] = [
        async () => (await readOciImage(layout, { fs: diskFs, ref: 'v1' })).flatten(),
        async () => ((await readOciArchive(archive, { fs: diskFs })) as Image).flatten(),
        async () => loadArchiveIntoStore(await ImageStore.open({ fs: diskFs, root: store }), archive, { fs: diskFs }),
      ];
      for (const run of runs) {
        const result = await outcome(run);
        expectCode(result, 'UNSUPPORTED', `sha384 ${where}`);
        errors.push(result as CloudRootfsError);
      }
      const wording = (e: CloudRootfsError) => e.message.replace(/^.*?(cannot verify)/, '$1');
      expect(new Set(errors.map(wording)).size).toBe(1);
      expect(wording(errors[0])).toMatch(/^cannot verify sha384:[0-9a-f]{96}: the digest algorithm "sha384" is not supported/);
      for (const argv of [['ls', `oci:${layout}:v1`], ['ls', `oci-archive:${archive}`], ['load', archive]]) {
        const r = await cli([...argv, '--store', store], diskFs);
        expect([argv.join(' '), r.code, r.stderr.replace(/^.*?(cannot verify)/, '$1')]).toEqual([argv.join(' '), 1, `${wording(errors[0])} [UNSUPPORTED]\n`]);
      }
      expect(snapshot(store)).toEqual(before);
    });
  }
});
