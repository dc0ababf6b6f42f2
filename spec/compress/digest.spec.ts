import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { DigestCounter, digestOfBuffer, digestOfStream, hashingTransform, teeSink } from '../../lib/compress';
import { UsageError } from '../../lib/errors';
import { randomBytes, rechunk } from './fixtures';

const reference = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

describe('DigestCounter', () => {
  it('hashes incrementally and counts bytes, whatever the chunking', () => {
    const data = randomBytes(3_000_001, 9);
    const counter = new DigestCounter();
    for (const piece of rechunk([{ data }], 100_000, 1)) counter.update(piece.data);
    expect(counter.size).toBe(data.length);
    expect(counter.digest()).toBe(reference(data));
    expect(counter.hex).toBe(counter.digest().slice(7));
  });

  it('gives the empty digest for no input (the well-known sha256 of nothing)', () => {
    expect(new DigestCounter().digest()).toBe(reference(Buffer.alloc(0)));
    expect(new DigestCounter().digest()).toBe('sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });

  it('returns the same digest twice and refuses updates after it', () => {
    const counter = new DigestCounter().update(Buffer.from('abc'));
    expect(counter.digest()).toBe(counter.digest());
    expect(() => counter.update(Buffer.from('d'))).toThrow(UsageError);
  });
});

describe('digest helpers', () => {
  const data = randomBytes(2_500_000, 10);

  it('digestOfBuffer matches createHash', () => {
    expect(digestOfBuffer(data)).toBe(reference(data));
  });

  it('digestOfStream hashes a whole stream', async () => {
    const result = await digestOfStream(Readable.from(rechunk([{ data }], 64 * 1024, 2).map((p) => p.data)));
    expect(result).toEqual({ digest: reference(data), size: data.length });
  });

  it('digestOfStream passes on the stream error', async () => {
    const failing = new Readable({
      read() {
        this.destroy(new Error('read failed'));
      },
    });
    await expect(digestOfStream(failing)).rejects.toThrow('read failed');
  });

  it('hashingTransform hashes the bytes it passes on unchanged', async () => {
    const counter = new DigestCounter();
    const seen: Buffer[] = [];
    await pipeline(
      Readable.from(rechunk([{ data }], 300_000, 3).map((p) => p.data)),
      hashingTransform(counter),
      new Writable({
        write(chunk: Buffer, _enc, cb) {
          seen.push(chunk);
          cb();
        },
      }),
    );
    expect(Buffer.concat(seen).equals(data)).toBe(true);
    expect(counter.digest()).toBe(reference(data));
    expect(counter.size).toBe(data.length);
  });

  it('teeSink hashes each chunk before delivering it', async () => {
    const counter = new DigestCounter();
    const seen: Buffer[] = [];
    const sink = teeSink(async (chunk) => {
      seen.push(chunk);
    }, counter);
    for (const piece of rechunk([{ data }], 500_000, 4)) await sink(piece.data);
    expect(Buffer.concat(seen).equals(data)).toBe(true);
    expect(counter.digest()).toBe(reference(data));
  });
});
