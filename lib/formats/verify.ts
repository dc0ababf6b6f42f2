/**
 * Full verification of an image's stored layers: each blob's size and digest, and the sha256 of
 * its uncompressed tar against the config's diff_id — what `docker load` checks. Used before an
 * archive's images are tagged in the store, so a lying archive never becomes a usable image.
 * Streams every byte once (decompression dominates: ~150 MiB/s for gzip).
 */
import { once } from 'node:events';
import { PassThrough, Readable } from 'node:stream';
import type { Content } from '../content';
import { DigestCounter, decompressStream } from '../compress';
import { DigestMismatchError, SizeMismatchError } from '../errors';
import { IO_CHUNK } from '../fs';
import { Image, ImageIndex } from '../image/image';
import { hashingTransform } from '../compress';

/** Default bound on a layer's uncompressed size when verifying it (as for reading layers). */
export const DEFAULT_MAX_UNCOMPRESSED_BYTES = 2 ** 40;

export interface VerifyProgress {
  phase: 'verify';
  digest: string;
  done: number;
  total: number;
}

export interface VerifyOptions {
  /** Layers verified at once (default 2). */
  concurrency?: number;
  /** Refuse a layer whose tar is bigger than this (default 1 TiB): a decompression bomb. */
  maxUncompressedBytes?: number;
  onProgress?: (event: VerifyProgress) => void;
}

function imagesOf(target: Image | ImageIndex): Image[] {
  return target instanceof ImageIndex ? target.images().map((i) => i.image) : [target];
}

/** Throws DigestMismatchError / SizeMismatchError / CorruptArchiveError on the first bad layer. */
export async function verifyLayers(target: Image | ImageIndex, options: VerifyOptions = {}): Promise<void> {
  const seen = new Set<string>();
  const jobs: { digest: string; size: number; diffId: string; open: () => NodeJS.ReadableStream }[] = [];
  for (const image of imagesOf(target)) {
    for (const layer of image.layers) {
      if (layer.kind !== 'blob' || seen.has(layer.descriptor.digest)) continue;
      seen.add(layer.descriptor.digest);
      jobs.push({ digest: layer.descriptor.digest, size: layer.descriptor.size, diffId: layer.diffId, open: () => layer.blob.open() });
    }
  }
  const total = jobs.length;
  let done = 0;
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const job = jobs[next++];
      const raw = new DigestCounter();
      const tar = new DigestCounter();
      const source = job.open() as import('node:stream').Readable;
      const tapped = source.pipe(hashingTransform(raw));
      source.on('error', (err) => tapped.destroy(err));
      const maxOutputBytes = options.maxUncompressedBytes ?? DEFAULT_MAX_UNCOMPRESSED_BYTES;
      try {
        for await (const chunk of decompressStream(tapped, { maxOutputBytes })) tar.update(chunk as Buffer);
      } finally {
        source.destroy();
      }
      if (raw.size !== job.size) throw new SizeMismatchError(job.size, raw.size, `layer ${job.digest}`);
      if (raw.digest() !== job.digest) throw new DigestMismatchError(job.digest, raw.digest(), 'layer blob');
      if (tar.digest() !== job.diffId) throw new DigestMismatchError(job.diffId, tar.digest(), `layer ${job.digest} diff_id`);
      options.onProgress?.({ phase: 'verify', digest: job.digest, done: ++done, total });
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(options.concurrency ?? 2, jobs.length)) }, worker));
}

/**
 * A layer blob whose reads also check its diff_id: the bytes pass through unchanged while their
 * decompressed form is hashed, and the stream fails *before it ends* when the tar does not hash to
 * `diffId` (or decompresses past `maxUncompressedBytes`). A destination that renames a blob into
 * place only after its stream ended cleanly (layouts, the store) therefore never keeps a layer
 * whose config lies about it, and the check costs no second read.
 */
export function diffIdCheckedContent(content: Content, diffId: string, options: { maxUncompressedBytes?: number } = {}): Content {
  const what = content.source ?? content.digest ?? 'layer';
  const maxOutputBytes = options.maxUncompressedBytes ?? DEFAULT_MAX_UNCOMPRESSED_BYTES;
  async function* checked(): AsyncGenerator<Buffer> {
    const input = new PassThrough({ highWaterMark: IO_CHUNK });
    const tar = new DigestCounter();
    const decoded = decompressStream(input, { maxOutputBytes });
    const drained = (async () => {
      for await (const chunk of decoded) tar.update(chunk as Buffer);
    })();
    drained.catch(() => undefined); // awaited below; a decoder failure must not go unhandled meanwhile
    const source = content.open();
    try {
      for await (const chunk of source) {
        const buf = chunk as Buffer;
        if (!input.write(buf)) await Promise.race([once(input, 'drain'), drained]);
        yield buf;
      }
      input.end();
      await drained;
      if (tar.digest() !== diffId) throw new DigestMismatchError(diffId, tar.digest(), `${what} diff_id`);
    } finally {
      source.destroy();
      input.destroy();
      decoded.destroy();
    }
  }
  return {
    size: content.size,
    ...(content.digest ? { digest: content.digest } : {}),
    ...(content.source ? { source: content.source } : {}),
    open: () => Readable.from(checked(), { objectMode: false, highWaterMark: IO_CHUNK }),
  };
}
