import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as zlib from 'node:zlib';
import { ParallelGzipEncoder, type ParallelGzipOptions, type Sink } from '../../lib/compress';
import { CloudRootfsError, UnsupportedError, UsageError } from '../../lib/errors';
import { requireTool } from '../support/tools';
import { concatPieces, encode, gzippedBytes, mixedPieces, randomBytes, rechunk, textBytes, type Piece } from './fixtures';

const pgzip = (options: ParallelGzipOptions) => (sink: Sink) => new ParallelGzipEncoder(sink, options);
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('ParallelGzipEncoder output format', () => {
  it.each([
    ['random', randomBytes(3_000_000)],
    ['text', textBytes(3_000_000)],
    ['already gzipped', gzippedBytes(1_000_000)],
  ])('round-trips %s data through zlib.gunzipSync as one member', async (_name, input) => {
    const { out, summary } = await encode(pgzip({ blockSize: 256 * 1024 }), [{ data: input }]);
    expect(zlib.gunzipSync(out).equals(input)).toBe(true);
    expect(summary).toEqual({ algorithm: 'gzip', inputSize: input.length, outputSize: out.length, crc32: zlib.crc32(input) });
    // One member: the trailer at the very end holds CRC and ISIZE of the whole input.
    expect(out.readUInt32LE(out.length - 8)).toBe(zlib.crc32(input));
    expect(out.readUInt32LE(out.length - 4)).toBe(input.length);
  });

  it.each([0, 1, 6, 9])('writes a fixed header (MTIME 0, no name, XFL like zlib, OS 3) at level %i', async (level) => {
    const { out } = await encode(pgzip({ level }), [{ data: textBytes(1000) }]);
    const zlibHeader = zlib.gzipSync(Buffer.alloc(0), { level }).subarray(0, 10);
    expect(out.subarray(0, 10).equals(zlibHeader)).toBe(true);
    expect([...out.subarray(0, 10)]).toEqual([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, zlibHeader[8], 3]);
  });

  it.each([1, 6, 9])('equals zlib.gzipSync byte for byte when the input fits one block (level %i)', async (level) => {
    const input = textBytes(100_000);
    const { out } = await encode(pgzip({ level, blockSize: 1 << 20 }), [{ data: input }]);
    expect(out.equals(zlib.gzipSync(input, { level }))).toBe(true);
  });

  it.each([0, 1, 6])('encodes empty input as a valid gzip of nothing, identical to zlib (level %i)', async (level) => {
    const { out, summary } = await encode(pgzip({ level }), []);
    expect(zlib.gunzipSync(out).length).toBe(0);
    expect(out.equals(zlib.gzipSync(Buffer.alloc(0), { level }))).toBe(true);
    expect(summary.inputSize).toBe(0);
    expect(summary.outputSize).toBe(out.length);
  });

  it('ignores zero-length writes', async () => {
    const input = textBytes(50_000);
    const plain = await encode(pgzip({ blockSize: 8192 }), [{ data: input }]);
    const withEmpty = await encode(pgzip({ blockSize: 8192 }), [
      { data: Buffer.alloc(0) },
      { data: input.subarray(0, 8192) },
      { data: Buffer.alloc(0), hint: { store: true } },
      { data: input.subarray(8192) },
    ]);
    expect(withEmpty.out.equals(plain.out)).toBe(true);
  });

  it('gives each block the previous 32 KiB as dictionary', async () => {
    // The second block repeats the last 16 KiB of the first, twice: with the dictionary it costs
    // almost nothing; without it, its first half would cost 16 KiB. (Deflate cannot reach back a
    // full 32 KiB: zlib's longest distance is 32 KiB - 262.)
    const first = randomBytes(64 * 1024, 5);
    const tail = first.subarray(48 * 1024);
    const input = Buffer.concat([first, tail, tail]);
    const { out } = await encode(pgzip({ blockSize: 64 * 1024 }), [{ data: input }]);
    expect(zlib.gunzipSync(out).equals(input)).toBe(true);
    expect(out.length).toBeLessThan(first.length + 2000);
  });

  it('keeps the ratio of a single zlib stream on text despite block cuts', async () => {
    const input = textBytes(4_000_000, 7);
    const { out } = await encode(pgzip({ blockSize: 1 << 20, level: 6 }), [{ data: input }]);
    const single = zlib.gzipSync(input, { level: 6 }).length;
    expect(out.length).toBeLessThan(single * 1.005);
  });

  it('round-trips 1 MiB blocks, level 0 and level 9', async () => {
    const input = concatPieces(mixedPieces());
    for (const level of [0, 9]) {
      const { out } = await encode(pgzip({ level, blockSize: 128 * 1024 }), [{ data: input }]);
      expect(zlib.gunzipSync(out).equals(input)).toBe(true);
      if (level === 0) expect(out.length).toBeGreaterThan(input.length);
    }
  });
});

describe('ParallelGzipEncoder determinism', () => {
  const pieces = [
    { data: textBytes(1_200_000, 20) },
    { data: randomBytes(700_000, 21) },
    { data: gzippedBytes(300_000, 22), hint: { store: true } },
    { data: textBytes(500_000, 23) },
  ] satisfies Piece[];

  it('writes identical bytes for concurrency 1, 2 and 4 and any write chunking', async () => {
    const blockSize = 64 * 1024;
    const reference = await encode(pgzip({ blockSize, concurrency: 1 }), pieces);
    const digests = new Set<string>();
    for (const concurrency of [1, 2, 4]) {
      for (const [maxChunk, seed] of [[1 << 30, 0], [4096, 1], [200_000, 2], [70_000, 3]] as const) {
        const chunked = maxChunk >= 1 << 30 ? pieces : rechunk(pieces, maxChunk, seed);
        const { out } = await encode(pgzip({ blockSize, concurrency }), chunked);
        digests.add(sha256(out));
      }
    }
    expect([...digests]).toEqual([sha256(reference.out)]);
    expect(zlib.gunzipSync(reference.out).equals(concatPieces(pieces))).toBe(true);
  });

  it('gives the same bytes when writes are not awaited one by one', async () => {
    const blockSize = 32 * 1024;
    const reference = await encode(pgzip({ blockSize, concurrency: 2 }), pieces);
    const chunks: Buffer[] = [];
    const encoder = new ParallelGzipEncoder((c) => void chunks.push(c), { blockSize, concurrency: 3 });
    const writes = rechunk(pieces, 50_000, 9).map((p) => encoder.write(p.data, p.hint));
    await Promise.all(writes);
    await encoder.end();
    expect(Buffer.concat(chunks).equals(reference.out)).toBe(true);
  });

  it('depends on the block size (so the block size must be pinned)', async () => {
    const a = await encode(pgzip({ blockSize: 64 * 1024 }), pieces);
    const b = await encode(pgzip({ blockSize: 128 * 1024 }), pieces);
    expect(a.out.equals(b.out)).toBe(false);
    expect(zlib.gunzipSync(b.out).equals(zlib.gunzipSync(a.out))).toBe(true);
  });
});

describe('ParallelGzipEncoder stored ranges', () => {
  it('stores hinted ranges: valid output about the size of the input', async () => {
    const blob = gzippedBytes(2_000_000, 30);
    const blockSize = 1 << 20;
    const { out } = await encode(pgzip({ blockSize }), [{ data: blob, hint: { store: true } }]);
    expect(zlib.gunzipSync(out).equals(blob)).toBe(true);
    // 10 header + 8 trailer; each 1 MiB block becomes stored blocks of at most 65535 bytes + 5.
    const blockLengths: number[] = [];
    for (let at = 0; at < blob.length; at += blockSize) blockLengths.push(Math.min(blockSize, blob.length - at));
    expect(blockLengths.length).toBeGreaterThan(1);
    const expected = 18 + blockLengths.reduce((n, len) => n + len + 5 * Math.ceil(len / 0xffff), 0);
    expect(out.length).toBe(expected);
  });

  it('stores text when told to (the hint is obeyed, not second-guessed)', async () => {
    const text = textBytes(500_000, 31);
    const stored = await encode(pgzip({}), [{ data: text, hint: { store: true } }]);
    const deflated = await encode(pgzip({}), [{ data: text }]);
    expect(stored.out.length).toBeGreaterThan(text.length);
    expect(stored.out.length).toBeLessThan(text.length * 1.001 + 100);
    expect(deflated.out.length).toBeLessThan(text.length / 2);
    expect(zlib.gunzipSync(stored.out).equals(text)).toBe(true);
  });

  it('mixes stored and deflated ranges into one valid member', async () => {
    const pieces = mixedPieces();
    const input = concatPieces(pieces);
    const { out } = await encode(pgzip({ blockSize: 64 * 1024 }), pieces);
    expect(zlib.gunzipSync(out).equals(input)).toBe(true);
    const storedBytes = pieces.filter((p) => p.hint?.store).reduce((n, p) => n + p.data.length, 0);
    expect(out.length).toBeGreaterThan(storedBytes);
    expect(out.length).toBeLessThan(storedBytes * 1.001 + (input.length - storedBytes) / 2);
  });

  it('ends on a stored block when the input ends with a stored range', async () => {
    const pieces: Piece[] = [{ data: textBytes(10_000) }, { data: gzippedBytes(100_000), hint: { store: true } }];
    const { out } = await encode(pgzip({ blockSize: 16 * 1024 }), pieces);
    expect(zlib.gunzipSync(out).equals(concatPieces(pieces))).toBe(true);
  });
});

describe('ParallelGzipEncoder flow control and errors', () => {
  it('bounds the blocks in flight when the sink stalls', async () => {
    let release!: () => void;
    const stalled = new Promise<void>((resolve) => (release = resolve));
    let delivered = 0;
    const encoder = new ParallelGzipEncoder(
      async () => {
        delivered++;
        await stalled;
      },
      { blockSize: 1024, concurrency: 2 },
    );
    const block = textBytes(1024);
    let accepted = 0;
    for (let i = 0; i < 20; i++) {
      const done = await Promise.race([
        encoder.write(block).then(() => true),
        new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 200)),
      ]);
      if (!done) break;
      accepted++;
    }
    // Header blocks the sink; then 2 blocks in flight plus the one being filled are all it takes.
    expect(accepted).toBeLessThanOrEqual(4);
    expect(delivered).toBe(1);
    release();
    await encoder.end();
    expect(delivered).toBeGreaterThan(3);
  });

  it('delivers chunks to an async sink strictly in order', async () => {
    const input = textBytes(600_000, 40);
    const chunks: Buffer[] = [];
    let busy = false;
    const encoder = new ParallelGzipEncoder(
      async (chunk) => {
        expect(busy).toBe(false);
        busy = true;
        await new Promise((r) => setTimeout(r, Math.random() * 3));
        chunks.push(chunk);
        busy = false;
      },
      { blockSize: 16 * 1024, concurrency: 4 },
    );
    await encoder.write(input);
    await encoder.end();
    const reference = await encode(pgzip({ blockSize: 16 * 1024, concurrency: 1 }), [{ data: input }]);
    expect(Buffer.concat(chunks).equals(reference.out)).toBe(true);
  });

  it('surfaces a sink failure from write or end', async () => {
    const boom = new Error('disk full');
    let calls = 0;
    const encoder = new ParallelGzipEncoder(
      () => {
        if (++calls === 3) throw boom;
      },
      { blockSize: 1024, concurrency: 2 },
    );
    const run = async () => {
      for (let i = 0; i < 50; i++) await encoder.write(randomBytes(1024, i));
      await encoder.end();
    };
    await expect(run()).rejects.toBe(boom);
  });

  it('rejects writes after end, and end twice gives the same result', async () => {
    const encoder = new ParallelGzipEncoder(() => undefined);
    await encoder.write(Buffer.from('x'));
    const first = encoder.end();
    expect(encoder.end()).toBe(first);
    await expect(encoder.write(Buffer.from('y'))).rejects.toBeInstanceOf(UsageError);
    expect((await first).inputSize).toBe(1);
  });

  it('abort stops the encoder with the given reason', async () => {
    const encoder = new ParallelGzipEncoder(() => undefined, { blockSize: 1024 });
    await encoder.write(textBytes(5000));
    const reason = new Error('caller gave up');
    encoder.abort(reason);
    await expect(encoder.write(textBytes(5000))).rejects.toBe(reason);
    await expect(encoder.end()).rejects.toBe(reason);
  });

  it('explains which Node is needed when zlib.crc32 is missing (Node < 20.15)', () => {
    const zlibModule = require('node:zlib') as { crc32?: unknown };
    const original = zlibModule.crc32;
    zlibModule.crc32 = undefined;
    try {
      expect(() => new ParallelGzipEncoder(() => undefined)).toThrow(UnsupportedError);
      expect(() => new ParallelGzipEncoder(() => undefined)).toThrow(/20\.15/);
    } finally {
      zlibModule.crc32 = original;
    }
    expect(() => new ParallelGzipEncoder(() => undefined)).not.toThrow();
  });

  it.each([
    [{ level: 10 }],
    [{ level: -1 }],
    [{ level: 1.5 }],
    [{ blockSize: 10 }],
    [{ concurrency: 0 }],
  ])('rejects bad options %j with UsageError', (options) => {
    expect(() => new ParallelGzipEncoder(() => undefined, options)).toThrow(UsageError);
    try {
      new ParallelGzipEncoder(() => undefined, options);
    } catch (error) {
      expect((error as CloudRootfsError).code).toBe('USAGE');
    }
  });
});

describe('ParallelGzipEncoder output checked by GNU gzip', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'pgzip-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each([
    ['random', () => [{ data: randomBytes(2_500_000, 50) }]],
    ['text', () => [{ data: textBytes(2_500_000, 51) }]],
    ['already gzipped, stored', () => [{ data: gzippedBytes(1_500_000, 52), hint: { store: true } }]],
    ['mixed', mixedPieces],
    ['empty', () => []],
  ] as Array<[string, () => Piece[]]>)('gzip -t accepts and gunzip -c restores %s data', async (name, make) => {
    if (!requireTool('gzip', 'gunzip')) return;
    const pieces = make();
    const input = concatPieces(pieces);
    const { out } = await encode(pgzip({ blockSize: 256 * 1024 }), pieces);
    const file = join(dir, `${name.replace(/\W+/g, '_')}.gz`);
    writeFileSync(file, out);
    expect(spawnSync('gzip', ['-t', file]).status).toBe(0);
    const restored = execFileSync('gunzip', ['-c', file], { maxBuffer: 64 << 20 });
    expect(sha256(restored)).toBe(sha256(input));
  });
});
