/**
 * The metadata an image's layers hold is bounded per layer and for all layers of the image
 * together (`maxEntries`, `maxMetadataBytes`; CLI `entries`, `metadata-bytes`), counting the
 * directories entries imply, in every read: flatten (`ls`, `export`, `diff`), `load`'s
 * verification, and from the command line.
 */
import { Readable } from 'node:stream';
import { writeOciArchive } from '../../lib/formats/oci-archive';
import { openImageArchive } from '../../lib/formats/archive';
import { verifyLayers } from '../../lib/formats/verify';
import type { FileSystem } from '../../lib/fs';
import { Image } from '../../lib/image/image';
import { Layer } from '../../lib/layer/layer';
import { readLayerTar } from '../../lib/tar/read';
import { memfs } from '../formats/archive-support';
import { runCaptured } from '../support/cli';
import { file, pax, symlink, tar } from './corpus';

/** Three layers of 40 symlinks with 100-byte targets: ~4.4 KB of metadata and 40 entries each. */
function threeLayers(): Layer[] {
  return [0, 1, 2].map((i) => {
    let layer = Layer.empty();
    for (let j = 0; j < 40; j++) layer = layer.withSymlink(`l${i}-${j}`, 't'.repeat(100));
    return layer;
  });
}

async function archived(): Promise<FileSystem> {
  const fs = memfs();
  await writeOciArchive(Image.empty().with({ layers: threeLayers() }), '/in/image.tar', { fs, name: 'docker.io/library/meta:v1' });
  return fs;
}

async function loadArchived(fs: FileSystem, layerLimits: { maxEntries?: number; maxMetadataBytes?: number }): Promise<Image> {
  const archive = await openImageArchive('/in/image.tar', { fs, layerLimits });
  return (await archive.find().load()) as Image;
}

describe('the layers of one image together', () => {
  test('flatten: each layer within the metadata bound, all three over it → LIMIT_EXCEEDED', async () => {
    const fs = await archived();
    // One layer is ~4,400 bytes of names and targets; three are ~13,200.
    await expect((await loadArchived(fs, { maxMetadataBytes: 10_000 })).flatten()).rejects.toMatchObject({
      code: 'LIMIT_EXCEEDED',
      details: { limit: 'maxMetadataBytes' },
    });
    await expect((await loadArchived(fs, { maxMetadataBytes: 20_000 })).flatten()).resolves.toBeDefined();
  });

  test('flatten: entries of all layers together → LIMIT_EXCEEDED', async () => {
    const fs = await archived();
    await expect((await loadArchived(fs, { maxEntries: 100 })).flatten()).rejects.toMatchObject({ code: 'LIMIT_EXCEEDED', details: { limit: 'maxEntries' } });
    await expect((await loadArchived(fs, { maxEntries: 130 })).flatten()).resolves.toBeDefined();
  });

  test("load's verification charges the image's budget as it reads", async () => {
    const fs = await archived();
    const image = await loadArchived(fs, {});
    await expect(verifyLayers(image, { maxMetadataBytes: 10_000 })).rejects.toMatchObject({ code: 'LIMIT_EXCEEDED', details: { limit: 'maxMetadataBytes' } });
    await expect(verifyLayers(image, { maxMetadataBytes: 20_000 })).resolves.toBeUndefined();
  });

  test('from the command line: --limit metadata-bytes and entries bound the image, not only a layer', async () => {
    const fs = await archived();
    const env = { CLOUDROOTFS_STORE: '/store', HOME: '/home/u' };
    for (const argv of [['ls'], ['load', '-q']]) {
      const target = argv[0] === 'ls' ? 'oci-archive:/in/image.tar' : '/in/image.tar';
      expect(await runCaptured(fs, [...argv, '--limit', 'metadata-bytes=10000', target], env)).toMatchObject({ code: 1, err: expect.stringContaining('maxMetadataBytes=10000') });
      expect(await runCaptured(fs, [...argv, '--limit', 'entries=100', target], env)).toMatchObject({ code: 1, err: expect.stringContaining('maxEntries=100') });
    }
    expect(await runCaptured(fs, ['ls', '--limit', 'metadata-bytes=20000', 'oci-archive:/in/image.tar'], env)).toMatchObject({ code: 0 });
  });
});

describe('entries count with the directories they imply', () => {
  test('100 entries 2,000 directories deep are 200,000 nodes: refused under the default bound', async () => {
    const records = Array.from({ length: 100 }, (_, i) => [pax({ path: `top${i}/` + 'd/'.repeat(1999) + 'f' }), file('placeholder', '')]).flat();
    await expect(readLayerTar(() => Readable.from([tar(records)]))).rejects.toMatchObject({ code: 'LIMIT_EXCEEDED', details: { limit: 'maxEntries' } });
  });

  test('shared parents count once', async () => {
    const read = await readLayerTar(() => Readable.from([tar([file('a/b/c/1', ''), file('a/b/c/2', ''), symlink('a/b/l', 'x')])]));
    expect([read.entries, read.metadataBytes]).toEqual([3 + 3, 'a/b/c/1'.length * 2 + 'a/b/l'.length + 1]);
  });
});
