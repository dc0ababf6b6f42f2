/**
 * The byte plumbing of blob uploads: measuring what goes out, regrouping it into chunks, and
 * telling a source's own failure apart from the network failure it causes.
 */
import type { Readable } from 'node:stream';
import { SizeMismatchError } from '../errors';
import type { DigestHasher } from '../reference/digest';

/**
 * Counts (and, given a hasher, hashes) the bytes of an upload as they go by; stops at once past
 * a declared size.
 */
export class Meter {
  size = 0;
  constructor(
    readonly hasher: DigestHasher | undefined,
    private readonly declaredSize?: number,
  ) {}

  /** The source's chunks, measured; `atEnd` runs after the last one (and may throw to abort). */
  async *wrap(stream: Readable, atEnd?: () => void): AsyncGenerator<Buffer> {
    for await (const chunk of stream) {
      const buf: Buffer = typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
      if (buf.length === 0) continue;
      if (this.declaredSize !== undefined && this.size + buf.length > this.declaredSize) {
        throw new SizeMismatchError(this.declaredSize, this.size + buf.length, 'blob upload source (at least)');
      }
      this.hasher?.update(buf);
      this.size += buf.length;
      yield buf;
    }
    atEnd?.();
  }
}

/** Regroups a byte stream into chunks of exactly `size` bytes (the last may be shorter). */
export async function* rechunk(source: AsyncIterable<Buffer>, size: number): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let held = 0;
  for await (let buf of source) {
    while (held + buf.length >= size) {
      const take = size - held;
      parts.push(buf.subarray(0, take));
      yield Buffer.concat(parts, size);
      parts = [];
      held = 0;
      buf = buf.subarray(take);
    }
    if (buf.length > 0) {
      parts.push(buf);
      held += buf.length;
    }
  }
  if (held > 0) yield Buffer.concat(parts, held);
}

/**
 * The upload's chunks, remembering whether the source itself failed (a read error, a digest or
 * size check) so that failure is reported as such, not as the network error it causes.
 */
export function trackedBody(source: AsyncGenerator<Buffer>): { chunks: AsyncGenerator<Buffer>; error(): unknown } {
  let failure: unknown;
  async function* chunks(): AsyncGenerator<Buffer> {
    try {
      yield* source;
    } catch (err) {
      failure = err;
      throw err;
    }
  }
  return { chunks: chunks(), error: () => failure };
}

export function blobHeaders(size: number | undefined): Record<string, string> {
  const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
  if (size !== undefined) headers['content-length'] = String(size);
  return headers;
}
