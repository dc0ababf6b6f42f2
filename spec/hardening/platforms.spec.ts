/**
 * Asking for a platform an image does not have is PLATFORM_NOT_FOUND everywhere — a
 * single-platform image included, not just an index — in one wording; a platform that is no
 * platform (`bogus`) is a usage error.
 */
import * as nodeFs from 'node:fs';
import { join } from 'node:path';
import { CloudRootfsError } from '../../lib/errors';
import { readOciImage, writeOciLayout } from '../../lib/formats/layout';
import { writeOciArchive } from '../../lib/formats/oci-archive';
import { diskFs } from '../../lib/fs';
import { Image, ImageIndex, selectImage } from '../../lib/image/image';
import { parsePlatform } from '../../lib/image/platform';
import { canonicalJsonBytes } from '../../lib/image/json';
import { Layer } from '../../lib/layer/layer';
import { pullImage, pullToStore } from '../../lib/registry/pull';
import { Rootfs } from '../../lib/rootfs/rootfs';
import { ImageStore } from '../../lib/store';
import { loadImage } from '../../lib/transports';
import { startFakeRegistry } from '../support/fake-registry';
import { scratchDir } from '../support/umoci';
import { MT, okTar } from './archives';
import { rawLayer, sha256 } from './corpus';
import { cli, expectCode, outcome } from './support';

const ARM64 = { os: 'linux', architecture: 'arm64' };
const amd64Image = () => Image.empty({ os: 'linux', architecture: 'amd64' }).withLayer(Layer.fromRootfs(Rootfs.empty().withFile('etc/arch', 'amd64')));
const WORDING = /^no image for platform linux\/arm64 in .+ \(have: linux\/amd64\)$/;

function expectNotFound(result: unknown, why: string): void {
  expectCode(result, 'PLATFORM_NOT_FOUND', why);
  expect([why, (result as CloudRootfsError).message]).toEqual([why, expect.stringMatching(WORDING)]);
}

describe('a single-platform image asked for another platform', () => {
  let dir: string;
  let storeRoot: string;
  beforeAll(async () => {
    dir = scratchDir('crfs-platform-');
    storeRoot = join(dir, 'store');
    const store = await ImageStore.open({ fs: diskFs, root: storeRoot });
    await store.put(amd64Image(), 'single:v1');
    await writeOciLayout(amd64Image(), join(dir, 'layout'), { fs: diskFs, tag: 'v1' });
    await writeOciArchive(amd64Image(), join(dir, 'a.tar'), { fs: diskFs });
  });
  afterAll(() => nodeFs.rmSync(dir, { recursive: true, force: true }));

  test('store.loadImage, loadImage (store, oci:, oci-archive:), readOciImage, selectImage: PLATFORM_NOT_FOUND', async () => {
    const store = await ImageStore.open({ fs: diskFs, root: storeRoot });
    expectNotFound(await outcome(() => store.loadImage('single:v1', ARM64)), 'store.loadImage');
    const opts = { fs: diskFs, store: { root: storeRoot }, platform: ARM64 };
    for (const ref of ['single:v1', `oci:${join(dir, 'layout')}:v1`, `oci-archive:${join(dir, 'a.tar')}`]) {
      expectNotFound(await outcome(() => loadImage(ref, opts)), `loadImage ${ref}`);
    }
    expectNotFound(await outcome(() => readOciImage(join(dir, 'layout'), { fs: diskFs, platform: ARM64 })), 'readOciImage');
    expectNotFound(await outcome(async () => selectImage(amd64Image(), ARM64, 'the image')), 'selectImage');
    // The platform it has, or none asked for: the image.
    expect((await store.loadImage('single:v1', { os: 'linux', architecture: 'amd64' })).platform.architecture).toBe('amd64');
    expect((await store.loadImage('single:v1')).platform.architecture).toBe('amd64');
  });

  test('an index without the platform: the same words', async () => {
    const index = ImageIndex.of([amd64Image()]);
    expectNotFound(await outcome(async () => index.select(ARM64, 'the index')), 'ImageIndex.select');
    expectNotFound(await outcome(async () => selectImage(index, ARM64, 'the index')), 'selectImage of an index');
  });

  test('the CLI: ls, export, inspect, save with --platform linux/arm64 fail; bogus platforms are usage errors', async () => {
    for (const argv of [
      ['ls', 'single:v1'],
      ['inspect', 'single:v1'],
      ['export', 'single:v1', join(dir, 'out')],
      ['save', 'single:v1', '-o', join(dir, 'out.tar')],
      ['ls', `oci:${join(dir, 'layout')}:v1`],
    ]) {
      const r = await cli([...argv, '--platform', 'linux/arm64', '--store', storeRoot], diskFs);
      expect([argv.join(' '), r.code, r.stderr]).toEqual([argv.join(' '), 1, expect.stringMatching(/no image for platform linux\/arm64 in .* \(have: linux\/amd64\) \[PLATFORM_NOT_FOUND\]\n$/)]);
    }
    expect(nodeFs.existsSync(join(dir, 'out'))).toBe(false);
    for (const bogus of ['bogus', 'linux/bogus', 'beos/amd64', 'linux/amd64/v1/x', '']) {
      for (const argv of [['ls', 'single:v1'], ['export', 'single:v1', join(dir, 'out')], ['build', dir]]) {
        const r = await cli([...argv, '--platform', bogus, '--store', storeRoot], diskFs);
        expect([bogus, argv[0], r.code, r.stderr]).toEqual([bogus, argv[0], 2, expect.stringMatching(/invalid platform.*\[USAGE\]\n$/)]);
      }
    }
    // Aliases are platforms: x86_64 is amd64.
    expect((await cli(['ls', 'single:v1', '--platform', 'linux/x86_64', '--store', storeRoot], diskFs)).code).toBe(0);
    expect(parsePlatform('aarch64')).toEqual(ARM64);
    expect(parsePlatform('linux').os).toBe('linux');
  });
});

describe('pulling a single-platform image for another platform', () => {
  test('pullImage and pullToStore: PLATFORM_NOT_FOUND, nothing stored; without a platform asked, the image', async () => {
    const reg = await startFakeRegistry();
    const dir = scratchDir('crfs-platform-pull-');
    try {
      const layer = rawLayer(okTar(), true);
      const config = canonicalJsonBytes({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layer.diffId] } });
      const manifest = canonicalJsonBytes({
        schemaVersion: 2,
        mediaType: MT.manifest,
        config: { mediaType: MT.config, digest: sha256(config), size: config.length },
        layers: [{ mediaType: MT.layerGzip, digest: sha256(layer.blob), size: layer.blob.length }],
      });
      reg.putBlob(layer.blob);
      reg.putBlob(config);
      reg.putManifest('team/app', 'v1', manifest, MT.manifest);
      const ref = `${reg.host}/team/app:v1`;
      const access = { retries: 1, retryBaseDelayMs: 1, maxRetryDelayMs: 5, authFile: false as const };
      expectNotFound(await outcome(() => pullImage(ref, { ...access, platform: 'linux/arm64' })), 'pullImage');
      const several = await outcome(() => pullImage(ref, { ...access, platforms: ['linux/arm64', 'linux/s390x'] }));
      expectCode(several, 'PLATFORM_NOT_FOUND', 'pullImage, several platforms');
      expect((several as Error).message).toMatch(/^no image for platform linux\/arm64, linux\/s390x in .+ \(have: linux\/amd64\)$/);
      const store = await ImageStore.open({ fs: diskFs, root: join(dir, 'store') });
      expectNotFound(await outcome(() => pullToStore(ref, store, { ...access, platform: ARM64 })), 'pullToStore');
      expect(await store.list()).toEqual([]);
      const pulled = await cli(['pull', `docker://${ref}`, '--platform', 'linux/arm64', '--store', join(dir, 'store')], diskFs);
      expect(pulled.stderr).toMatch(/\[PLATFORM_NOT_FOUND\]\n$/);
      // The platform it is for, or none asked for: the image.
      expect(((await pullImage(ref, { ...access, platform: 'linux/amd64' })) as Image).platform.architecture).toBe('amd64');
      expect(await pullImage(ref, access)).toBeInstanceOf(Image);
    } finally {
      await reg.stop();
      nodeFs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
