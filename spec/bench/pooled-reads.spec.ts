/**
 * The layer writer reads file contents into reused buffers when it encodes with parallel gzip (a
 * bench-driven change: fewer V8 full GCs). The bytes must be exactly those of the plain streaming
 * path, already-compressed files must still be stored, and a file whose size changed since it
 * was listed must still fail the write.
 */
import { createHash, randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { fileContent, fileRangeContent } from '../../lib/content';
import { fileEntry } from '../../lib/entry';
import { FileSystem } from '../../lib/fs';
import { Layer } from '../../lib/layer/layer';
import { encodeLayer, layerTarStream } from '../../lib/tar/write';
import { memfs } from '../build/helpers';

async function tarDigest(layer: Layer): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of layerTarStream(layer)) hash.update(chunk as Buffer);
  return 'sha256:' + hash.digest('hex');
}

async function setup(): Promise<{ fs: FileSystem; big: Buffer; gz: Buffer }> {
  const fs = memfs();
  await fs.promises.mkdir('/d', { recursive: true });
  // Several MiB (several pooled buffers), half compressible, not a multiple of 1 MiB.
  const big = Buffer.concat([Buffer.alloc(3 << 20, 'cloudrootfs '), randomBytes((2 << 20) + 12345)]);
  const gz = gzipSync(randomBytes(300 << 10));
  await fs.promises.writeFile('/d/big', big);
  await fs.promises.writeFile('/d/blob.gz', gz);
  await fs.promises.writeFile('/d/pair', Buffer.concat([Buffer.from('head-'), big]));
  return { fs, big, gz };
}

describe('encodeLayer with pooled file reads', () => {
  test('gives the bytes of the streaming path, for whole files and windows of files', async () => {
    const { fs, big, gz } = await setup();
    const layer = Layer.empty()
      .with('bin/big', fileEntry(fileContent(fs, '/d/big', big.length)))
      .with('bin/big-again', fileEntry(fileContent(fs, '/d/big', big.length)))
      .with('registry/blob.gz', fileEntry(fileContent(fs, '/d/blob.gz', gz.length)))
      .with('window', fileEntry(fileRangeContent(fs, '/d/pair', 5, big.length)));
    const expected = await tarDigest(layer);
    const gzip = await encodeLayer(layer, () => undefined, { compression: 'gzip', level: 1 });
    expect(gzip.diffId).toBe(expected);
    // The gzip blob of the registry file is stored, not deflated: the output stays above its size.
    expect(gzip.size).toBeGreaterThan(gz.length);
    // Encoding twice (buffers reused across files and runs) gives the same blob.
    expect((await encodeLayer(layer, () => undefined, { compression: 'gzip', level: 1 })).digest).toBe(gzip.digest);
  });

  test('an abort in the middle of a big file ends the write (nothing left waiting)', async () => {
    const { fs, big } = await setup();
    const layer = Layer.empty().with('f', fileEntry(fileContent(fs, '/d/big', big.length)));
    const abort = new AbortController();
    let chunks = 0;
    const sink = () => {
      if (++chunks === 2) abort.abort(new Error('stop'));
    };
    await expect(encodeLayer(layer, sink, { signal: abort.signal, level: 1 })).rejects.toThrow('stop');
  });

  test('a file that shrank or grew since it was listed fails the write', async () => {
    const { fs, big } = await setup();
    const tooLong = Layer.empty().with('f', fileEntry(fileContent(fs, '/d/big', big.length + 10)));
    await expect(encodeLayer(tooLong, () => undefined)).rejects.toMatchObject({ code: 'SIZE_MISMATCH' });
    const tooShort = Layer.empty().with('f', fileEntry(fileContent(fs, '/d/big', big.length - 10)));
    await expect(encodeLayer(tooShort, () => undefined)).rejects.toMatchObject({ code: 'SIZE_MISMATCH' });
  });
});
