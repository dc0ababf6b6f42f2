/**
 * verifyLayers (load's check before anything is stored) and diffIdCheckedContent (a pull's check
 * while a layer streams): the stack as a whole is bounded, each image checks its own diff_ids,
 * and a hostile entry stops a streaming layer at once.
 */
import { Readable } from 'node:stream';
import * as tarStream from 'tar-stream';
import { bufferContent, readContent } from '../../lib/content';
import { diffIdCheckedContent, verifyLayers } from '../../lib/formats/verify';
import { Image, ImageIndex } from '../../lib/image/image';
import { blobLayer } from '../../lib/image/layer';
import { Layer } from '../../lib/layer/layer';
import { encodeLayer } from '../../lib/tar/write';

const amd64 = { os: 'linux', architecture: 'amd64' };
const arm64 = { os: 'linux', architecture: 'arm64' };

/** A layer as a stored blob (gzip), the way an archive or a registry gives it. */
async function stored(layer: Layer) {
  const parts: Buffer[] = [];
  const encoded = await encodeLayer(layer, (c) => void parts.push(c));
  const blob = bufferContent(Buffer.concat(parts));
  return { descriptor: { mediaType: encoded.mediaType, digest: encoded.digest, size: encoded.size }, diffId: encoded.diffId, blob };
}

const files = (prefix: string, n: number) => {
  let l = Layer.empty();
  for (let i = 0; i < n; i++) l = l.withFile(`${prefix}/f${i}`, `${prefix} ${i}\n`);
  return l;
};

describe('verifyLayers', () => {
  test('the entries of all layers of an image are bounded together, each layer within the bound', async () => {
    const a = await stored(files('a', 3)); // 4 entries with the directory
    const b = await stored(files('b', 3));
    const image = new Image({ platform: amd64, layers: [blobLayer(a.descriptor, a.diffId, a.blob), blobLayer(b.descriptor, b.diffId, b.blob)] });
    await expect(verifyLayers(image, { maxEntries: 8 })).resolves.toBeUndefined();
    await expect(verifyLayers(image, { maxEntries: 5 })).rejects.toMatchObject({ code: 'LIMIT_EXCEEDED' });
  });

  test('a layer two images share is checked against the diff_id each image gives it', async () => {
    const shared = await stored(files('s', 2));
    const good = new Image({ platform: amd64, layers: [blobLayer(shared.descriptor, shared.diffId, shared.blob)] });
    const lying = new Image({ platform: arm64, layers: [blobLayer(shared.descriptor, `sha256:${'0'.repeat(64)}`, shared.blob)] });
    await expect(verifyLayers(ImageIndex.of([good, good.withPlatform(arm64)]))).resolves.toBeUndefined();
    await expect(verifyLayers(ImageIndex.of([good, lying]))).rejects.toMatchObject({ code: 'DIGEST_MISMATCH' });
  });

  test('what only the stack gets wrong: a hardlink to a file no layer has', async () => {
    const l = await stored(Layer.empty().withHardlink('bin/b', 'bin/missing'));
    await expect(verifyLayers(new Image({ platform: amd64, layers: [blobLayer(l.descriptor, l.diffId, l.blob)] }))).rejects.toMatchObject({ code: 'HARDLINK_TARGET' });
  });
});

describe('diffIdCheckedContent', () => {
  /** An uncompressed tar: a character device first, then `filler` bytes of a regular file. */
  async function hostileTar(filler: number): Promise<Buffer> {
    const pack = tarStream.pack();
    pack.entry({ name: 'dev/evil', type: 'character-device', devmajor: 1, devminor: 3 });
    pack.entry({ name: 'big', size: filler }, Buffer.alloc(filler, 1));
    pack.finalize();
    const parts: Buffer[] = [];
    for await (const c of pack) parts.push(c as Buffer);
    return Buffer.concat(parts);
  }

  test('a hostile entry stops the stream at once, long before its end', async () => {
    const bytes = await hostileTar(16 << 20);
    let served = 0;
    const source = {
      size: bytes.length,
      open: () =>
        Readable.from(
          (function* () {
            for (let i = 0; i < bytes.length; i += 64 * 1024) {
              served += Math.min(64 * 1024, bytes.length - i);
              yield bytes.subarray(i, i + 64 * 1024);
            }
          })(),
        ),
    };
    const checked = diffIdCheckedContent(source, `sha256:${'1'.repeat(64)}`);
    await expect(readContent(checked)).rejects.toMatchObject({ code: 'UNSUPPORTED_ENTRY' });
    expect(served).toBeLessThan(bytes.length / 2);
  });

  test('a well-formed layer passes through byte for byte', async () => {
    const s = await stored(files('ok', 5));
    const out = await readContent(diffIdCheckedContent(s.blob, s.diffId));
    expect(out.equals(await readContent(s.blob))).toBe(true);
  });
});
