/**
 * Digests in OCI form (`sha256:<hex>`, `sha512:<hex>`), computed while bytes stream past, so a
 * blob is never re-read to hash it. Feed 1 MiB chunks: per-chunk overhead dominates below 64 KiB
 * (docs/reference/io-baseline.md#hashing).
 */
import { createHash, type Hash } from 'node:crypto';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { UnsupportedError, UsageError } from '../errors';
import type { Sink } from './types';

export type Sha256Digest = `sha256:${string}`;

/**
 * The algorithms content is verified with: those the OCI image spec registers (descriptor.md,
 * "Registered algorithms") that node:crypto computes. We write sha256; we read both.
 */
export type DigestAlgorithm = 'sha256' | 'sha512';
export type Digest = `${DigestAlgorithm}:${string}`;

const ALGORITHMS: readonly DigestAlgorithm[] = ['sha256', 'sha512'];

/**
 * The algorithm of `digest`, for verifying the bytes it names; any other (sha384, blake3, an
 * unknown one) is UnsupportedError with one wording wherever it is met — never a digest mismatch.
 */
export function digestAlgorithm(digest: string): DigestAlgorithm {
  const algorithm = digest.slice(0, Math.max(0, digest.indexOf(':')));
  if ((ALGORITHMS as readonly string[]).includes(algorithm)) return algorithm as DigestAlgorithm;
  throw new UnsupportedError(
    `cannot verify ${digest.length > 160 ? `${digest.slice(0, 160)}…` : digest}: the digest algorithm ${JSON.stringify(algorithm)} is not supported (content must be addressed by ${ALGORITHMS.join(' or ')})`,
    'digest-algorithm',
    { algorithm, digest },
  );
}

/** Incremental hash plus byte count: the (digest, size) pair of an OCI descriptor (sha256 by default). */
export class DigestCounter {
  private readonly hash: Hash;
  private bytes = 0;
  private result: Digest | undefined;

  constructor(readonly algorithm: DigestAlgorithm = 'sha256') {
    this.hash = createHash(algorithm);
  }

  /** A counter that computes digests of the same algorithm as `expected` (UnsupportedError for others). */
  static like(expected: string): DigestCounter {
    return new DigestCounter(digestAlgorithm(expected));
  }

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
  digest(): Digest {
    this.result ??= `${this.algorithm}:${this.hash.digest('hex')}`;
    return this.result;
  }

  /** The hex part of the digest. */
  get hex(): string {
    return this.digest().slice(this.algorithm.length + 1);
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
  return { digest: counter.digest() as Sha256Digest, size: counter.size };
}
