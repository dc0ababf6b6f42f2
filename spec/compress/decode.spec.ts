import { execFileSync } from 'node:child_process';
import { Readable } from 'node:stream';
import * as zlib from 'node:zlib';
import { ParallelGzipEncoder, createDecoder, decompressStream, zstdAvailable } from '../../lib/compress';
import { CorruptArchiveError, LimitExceededError, UnsupportedError } from '../../lib/errors';
import { findTool } from '../support/tools';
import { encode, gzippedBytes, mixedPieces, concatPieces, randomBytes, rechunk, textBytes } from './fixtures';

/** A readable that yields `data` in pieces of pseudo-random size (as a file or socket would). */
function source(data: Buffer, maxChunk = 100_000, seed = 1): Readable {
  return Readable.from(rechunk([{ data }], maxChunk, seed).map((p) => p.data));
}

async function readAll(readable: Readable): Promise<{ data: Buffer; chunks: number[] }> {
  const parts: Buffer[] = [];
  for await (const chunk of readable) parts.push(chunk as Buffer);
  return { data: Buffer.concat(parts), chunks: parts.map((p) => p.length) };
}

describe('decompressStream', () => {
  const input = Buffer.concat([textBytes(2_500_000, 1), randomBytes(500_000, 2)]);

  it('decodes gzip, in chunks of at most 1 MiB', async () => {
    const { data, chunks } = await readAll(decompressStream(source(zlib.gzipSync(input))));
    expect(data.equals(input)).toBe(true);
    expect(Math.max(...chunks)).toBeLessThanOrEqual(1 << 20);
    expect(chunks.length).toBeGreaterThan(1);
  });

  it('decodes the parallel encoder output, stored ranges included', async () => {
    const pieces = mixedPieces();
    const { out } = await encode((sink) => new ParallelGzipEncoder(sink, { blockSize: 64 * 1024 }), pieces);
    expect((await readAll(decompressStream(source(out, 7_000, 2)))).data.equals(concatPieces(pieces))).toBe(true);
  });

  it('decodes every member of a multi-member gzip', async () => {
    const parts = [textBytes(300_000, 3), randomBytes(200_000, 4), Buffer.alloc(0), textBytes(10, 5)];
    const multi = Buffer.concat(parts.map((p) => zlib.gzipSync(p)));
    expect((await readAll(decompressStream(source(multi, 50_000, 3)))).data.equals(Buffer.concat(parts))).toBe(true);
  });

  it('passes a plain tar through unchanged', async () => {
    const tar = Buffer.concat([Buffer.from('etc/hosts'), Buffer.alloc(503), textBytes(2_000_000, 6)]);
    expect((await readAll(decompressStream(source(tar)))).data.equals(tar)).toBe(true);
  });

  it('reads a head split over 1-byte chunks', async () => {
    const gz = zlib.gzipSync(textBytes(10_000, 7));
    const tiny = Readable.from([...gz.subarray(0, 8)].map((b) => Buffer.from([b])).concat([gz.subarray(8)]));
    expect((await readAll(decompressStream(tiny))).data.equals(textBytes(10_000, 7))).toBe(true);
  });

  it('gives nothing for an empty source', async () => {
    expect((await readAll(decompressStream(Readable.from([])))).data.length).toBe(0);
  });

  it.each([
    ['truncated in the middle', (gz: Buffer) => gz.subarray(0, Math.floor(gz.length / 2))],
    ['missing its trailer', (gz: Buffer) => gz.subarray(0, gz.length - 8)],
    ['with a wrong CRC', (gz: Buffer) => Buffer.concat([gz.subarray(0, gz.length - 8), Buffer.from([1, 2, 3, 4]), gz.subarray(gz.length - 4)])],
    [
      'with a flipped byte in the deflate data',
      (gz: Buffer) => {
        const bad = Buffer.from(gz);
        for (let i = 100; i < 140; i++) bad[i] ^= 0x5a;
        return bad;
      },
    ],
    ['that is only a header', (gz: Buffer) => gz.subarray(0, 10)],
  ])('fails with CorruptArchiveError for a gzip %s', async (_name, damage) => {
    const gz = zlib.gzipSync(textBytes(400_000, 8));
    const read = readAll(decompressStream(source(damage(gz))));
    await expect(read).rejects.toBeInstanceOf(CorruptArchiveError);
    await expect(read).rejects.toMatchObject({ code: 'CORRUPT_ARCHIVE' });
  });

  it('passes on errors of the source itself untouched', async () => {
    const boom = new Error('EIO from disk');
    const gz = zlib.gzipSync(textBytes(100_000, 9));
    const failing = Readable.from(
      (async function* () {
        yield gz.subarray(0, 1000);
        throw boom;
      })(),
    );
    await expect(readAll(decompressStream(failing))).rejects.toBe(boom);
  });

  it('releases the source when the reader stops early', async () => {
    const gz = zlib.gzipSync(textBytes(8_000_000, 12));
    const src = source(gz, 64 * 1024, 4);
    const out = decompressStream(src);
    for await (const chunk of out) {
      expect((chunk as Buffer).length).toBeGreaterThan(0);
      break; // leaving the loop destroys `out`
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(out.destroyed).toBe(true);
    expect(src.destroyed).toBe(true);
  });

  it('stops at maxOutputBytes with LimitExceededError', async () => {
    const bomb = zlib.gzipSync(Buffer.alloc(20 << 20));
    await expect(readAll(decompressStream(source(bomb), { maxOutputBytes: 5 << 20 }))).rejects.toBeInstanceOf(LimitExceededError);
    expect((await readAll(decompressStream(source(bomb), { maxOutputBytes: 20 << 20 }))).data.length).toBe(20 << 20);
  });

  it('refuses xz and bzip2 with UnsupportedError', async () => {
    for (const head of [[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 1, 2], [0x42, 0x5a, 0x68, 0x39, 0x31, 0x41, 0x59]]) {
      await expect(readAll(decompressStream(Readable.from([Buffer.from(head)])))).rejects.toBeInstanceOf(UnsupportedError);
    }
  });

  if (zstdAvailable()) {
    it('decodes zstd on this Node', async () => {
      const compress = (zlib as unknown as { zstdCompressSync(b: Buffer): Buffer }).zstdCompressSync;
      expect((await readAll(decompressStream(source(compress(input))))).data.equals(input)).toBe(true);
    });
  } else {
    it('refuses zstd on this Node with UnsupportedError', async () => {
      const zstdHead = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x04, 0x00, 0x00]);
      const read = readAll(decompressStream(Readable.from([zstdHead])));
      await expect(read).rejects.toBeInstanceOf(UnsupportedError);
      await expect(read).rejects.toMatchObject({ code: 'UNSUPPORTED', feature: 'zstd' });
    });
  }

  it('decodes what GNU gzip writes, including concatenated gzip files', async () => {
    if (!findTool('gzip')) return; // optional cross-check: Node-made members are covered above
    const a = execFileSync('gzip', ['-c', '-6'], { input: textBytes(200_000, 10) });
    const b = execFileSync('gzip', ['-c', '-1'], { input: gzippedBytes(50_000, 11) });
    const expected = Buffer.concat([textBytes(200_000, 10), gzippedBytes(50_000, 11)]);
    expect((await readAll(decompressStream(source(Buffer.concat([a, b]))))).data.equals(expected)).toBe(true);
  });
});

describe('createDecoder', () => {
  it('picks gunzip for a gzip head and a pass-through otherwise', async () => {
    const gz = zlib.gzipSync(Buffer.from('hello'));
    const gunzip = createDecoder(gz.subarray(0, 6));
    gunzip.end(gz);
    expect((await readAll(gunzip)).data.toString()).toBe('hello');
    const plain = createDecoder(Buffer.from('plain'));
    plain.end(Buffer.from('plain tar'));
    expect((await readAll(plain)).data.toString()).toBe('plain tar');
  });

  it('throws UnsupportedError for xz', () => {
    expect(() => createDecoder(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))).toThrow(UnsupportedError);
  });
});
