/**
 * sha256 digests in OCI form (`sha256:<hex>`), computed while bytes stream past, so a blob is
 * never re-read to hash it. Feed 1 MiB chunks: per-chunk overhead dominates below 64 KiB
 * (docs/reference/io-baseline.md#hashing).
 */
import { createHash, type Hash } from 'node:crypto';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { UsageError } from '../errors';
import type { Sink } from './types';

export type Sha256Digest = `sha256:${string}`;

/** Incremental sha256 plus byte count: the (digest, size) pair of an OCI descriptor. */
export class DigestCounter {
  private readonly hash: Hash = createHash('sha256');
  private bytes = 0;
  private result: Sha256Digest | undefined;

  update(data: Uint8Array): this {
    if (this.result) throw new UsageError('DigestCounter.update() called after digest()');
    this.hash.update(data);
    this.bytes += data.length;
    return this;
  }

  /** Bytes seen so far. */
  get size(): number {
    return this.bytes;
  }

  /** Finishes the hash; later calls return the same value, later updates throw. */
  digest(): Sha256Digest {
    this.result ??= `sha256:${this.hash.digest('hex')}`;
    return this.result;
  }

  /** The hex part of the digest. */
  get hex(): string {
    return this.digest().slice('sha256:'.length);
  }
}

/** A pass-through stream that feeds every chunk to `counter`. */
export function hashingTransform(counter: DigestCounter, highWaterMark = 1 << 20): Transform {
  return new Transform({
    highWaterMark,
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      counter.update(chunk);
      callback(null, chunk);
    },
  });
}

/** Wraps a sink so every chunk is hashed (in order) before it is delivered. */
export function teeSink(sink: Sink, counter: DigestCounter): Sink {
  return (chunk) => {
    counter.update(chunk);
    return sink(chunk);
  };
}

export function digestOfBuffer(data: Uint8Array): Sha256Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** Reads `source` to its end; the digest and size of everything it produced. */
export async function digestOfStream(source: Readable): Promise<{ digest: Sha256Digest; size: number }> {
  const counter = new DigestCounter();
  for await (const chunk of source) counter.update(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  return { digest: counter.digest(), size: counter.size };
}
