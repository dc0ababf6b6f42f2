import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as zlib from 'node:zlib';
import {
  GzipEncoder,
  IdentityEncoder,
  ParallelGzipEncoder,
  ZstdEncoder,
  createEncoder,
  zstdAvailable,
  type Sink,
} from '../../lib/compress';
import { UnsupportedError, UsageError } from '../../lib/errors';
import { requireTool } from '../support/tools';
import { concatPieces, encode, gzippedBytes, mixedPieces, randomBytes, rechunk, textBytes } from './fixtures';

describe('GzipEncoder (one zlib deflate stream)', () => {
  it('round-trips and reports the trailer facts', async () => {
    const input = Buffer.concat([textBytes(1_500_000), randomBytes(300_000)]);
    const { out, summary } = await encode((sink) => new GzipEncoder(sink, { level: 6 }), [{ data: input }]);
    expect(zlib.gunzipSync(out).equals(input)).toBe(true);
    expect(summary).toEqual({ algorithm: 'gzip', inputSize: input.length, outputSize: out.length, crc32: zlib.crc32(input) });
  });

  it('writes the same bytes as zlib.gzipSync without store hints, whatever the chunking', async () => {
    const input = textBytes(2_000_000, 3);
    const reference = zlib.gzipSync(input, { level: 6 });
    for (const [max, seed] of [[1 << 30, 0], [70_000, 1], [5_000, 2]] as const) {
      const pieces = max >= 1 << 30 ? [{ data: input }] : rechunk([{ data: input }], max, seed);
      const { out } = await encode((sink) => new GzipEncoder(sink, { level: 6 }), pieces);
      expect(out.equals(reference)).toBe(true);
    }
  });

  it('stores hinted ranges via params(), deterministically across chunkings', async () => {
    const pieces = mixedPieces();
    const input = concatPieces(pieces);
    const a = await encode((sink) => new GzipEncoder(sink), pieces);
    expect(zlib.gunzipSync(a.out).equals(input)).toBe(true);
    for (const [max, seed] of [[30_000, 4], [1_000, 5], [200_000, 6]] as const) {
      const b = await encode((sink) => new GzipEncoder(sink), rechunk(pieces, max, seed));
      expect(b.out.equals(a.out)).toBe(true);
    }
  });

  it('gives chunking-independent bytes at level 0 too', async () => {
    const input = concatPieces(mixedPieces());
    const a = await encode((sink) => new GzipEncoder(sink, { level: 0 }), [{ data: input }]);
    const b = await encode((sink) => new GzipEncoder(sink, { level: 0 }), rechunk([{ data: input }], 3_000, 7));
    expect(b.out.equals(a.out)).toBe(true);
    expect(zlib.gunzipSync(a.out).equals(input)).toBe(true);
  });

  it('really stores a hinted range (text stays its own size)', async () => {
    const text = textBytes(400_000, 9);
    const stored = await encode((sink) => new GzipEncoder(sink), [
      { data: textBytes(1000, 1) },
      { data: text, hint: { store: true } },
      { data: textBytes(1000, 2) },
    ]);
    const deflated = await encode((sink) => new GzipEncoder(sink), [{ data: text }]);
    expect(stored.out.length).toBeGreaterThan(text.length);
    expect(stored.out.length).toBeLessThan(text.length * 1.001 + 2000);
    expect(deflated.out.length).toBeLessThan(text.length / 2);
  });

  it('is accepted by GNU gzip', async () => {
    if (!requireTool('gzip', 'gunzip')) return;
    const dir = mkdtempSync(join(tmpdir(), 'gzenc-'));
    try {
      const pieces = mixedPieces();
      const { out } = await encode((sink) => new GzipEncoder(sink, { level: 1 }), pieces);
      const file = join(dir, 'x.gz');
      writeFileSync(file, out);
      expect(spawnSync('gzip', ['-t', file]).status).toBe(0);
      expect(execFileSync('gunzip', ['-c', file], { maxBuffer: 64 << 20 }).equals(concatPieces(pieces))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('surfaces a sink failure and rejects writes after end', async () => {
    const boom = new Error('sink broke');
    const encoder = new GzipEncoder(() => {
      throw boom;
    });
    const run = async () => {
      for (let i = 0; i < 40; i++) await encoder.write(randomBytes(256 * 1024, i));
      await encoder.end();
    };
    await expect(run()).rejects.toBe(boom);
    const done = new GzipEncoder(() => undefined);
    await done.end();
    await expect(done.write(Buffer.from('late'))).rejects.toBeInstanceOf(UsageError);
  });

  it('abort fails later calls with the reason', async () => {
    const encoder = new GzipEncoder(() => undefined);
    await encoder.write(textBytes(10_000));
    const reason = new Error('stop');
    encoder.abort(reason);
    await expect(encoder.write(textBytes(10))).rejects.toBe(reason);
    await expect(encoder.end()).rejects.toBe(reason);
  });
});

describe('IdentityEncoder', () => {
  it('passes bytes through unchanged and in order', async () => {
    const pieces = rechunk([{ data: gzippedBytes(100_000) }], 10_000, 5);
    const { out, summary } = await encode((sink) => new IdentityEncoder(sink), pieces);
    expect(out.equals(concatPieces(pieces))).toBe(true);
    expect(summary).toEqual({ algorithm: 'none', inputSize: out.length, outputSize: out.length });
  });
});

describe('createEncoder', () => {
  const input = textBytes(300_000, 8);
  const collect = () => {
    const chunks: Buffer[] = [];
    const sink: Sink = (c) => void chunks.push(c);
    return { sink, bytes: () => Buffer.concat(chunks) };
  };

  it('gives the parallel gzip encoder by default, with the same bytes at any concurrency', async () => {
    const outs: Buffer[] = [];
    for (const concurrency of [1, 3]) {
      const { sink, bytes } = collect();
      const encoder = createEncoder(sink, { algorithm: 'gzip', level: 1, blockSize: 64 * 1024, concurrency });
      expect(encoder).toBeInstanceOf(ParallelGzipEncoder);
      await encoder.write(input);
      await encoder.end();
      outs.push(bytes());
    }
    expect(outs[0]!.equals(outs[1]!)).toBe(true);
    expect(zlib.gunzipSync(outs[0]!).equals(input)).toBe(true);
  });

  it('gives the single-stream gzip encoder on request', async () => {
    const { sink, bytes } = collect();
    const encoder = createEncoder(sink, { algorithm: 'gzip', gzipEngine: 'stream', level: 9 });
    expect(encoder).toBeInstanceOf(GzipEncoder);
    await encoder.write(input);
    await encoder.end();
    expect(bytes().equals(zlib.gzipSync(input, { level: 9 }))).toBe(true);
  });

  it('passes through for algorithm none', async () => {
    const { sink, bytes } = collect();
    const encoder = createEncoder(sink, { algorithm: 'none' });
    await encoder.write(input);
    expect((await encoder.end()).outputSize).toBe(input.length);
    expect(bytes().equals(input)).toBe(true);
  });

  it('rejects an unknown algorithm with UsageError', () => {
    expect(() => createEncoder(() => undefined, { algorithm: 'lz4' as never })).toThrow(UsageError);
  });

  if (zstdAvailable()) {
    it('round-trips zstd on this Node', async () => {
      const { sink, bytes } = collect();
      const encoder = createEncoder(sink, { algorithm: 'zstd', level: 3 });
      expect(encoder).toBeInstanceOf(ZstdEncoder);
      await encoder.write(input);
      await encoder.end();
      const decompress = (zlib as unknown as { zstdDecompressSync(b: Buffer): Buffer }).zstdDecompressSync;
      expect(decompress(bytes()).equals(input)).toBe(true);
    });
  } else {
    it('refuses zstd on this Node with an UnsupportedError naming the Node version needed', () => {
      let caught: unknown;
      try {
        createEncoder(() => undefined, { algorithm: 'zstd' });
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(UnsupportedError);
      expect((caught as UnsupportedError).code).toBe('UNSUPPORTED');
      expect((caught as UnsupportedError).message).toContain('22.15');
      expect((caught as UnsupportedError).feature).toBe('zstd');
    });
  }
});
