/**
 * Full verification of an image's stored layers before anything names them: each blob's size and
 * digest, the sha256 of its uncompressed tar against the config's diff_id (what `docker load`
 * checks), and the tar itself, entry by entry, with the checks and limits every read of a layer
 * applies (lib/tar/read.ts: paths that escape, device nodes, bad whiteouts, lying headers, entry
 * and metadata bounds). Used before an archive's images are tagged in the store and while a pull
 * streams into it, so a hostile or lying image is refused with a typed error and the store keeps
 * nothing of it. Streams every byte once (decompression dominates: ~150 MiB/s for gzip).
 */
import { once } from 'node:events';
import { PassThrough, Readable } from 'node:stream';
import type { Content } from '../content';
import { DigestCounter } from '../compress';
import { CloudRootfsError, DigestMismatchError, SizeMismatchError } from '../errors';
import { Image, ImageIndex } from '../image/image';
import { IO_CHUNK } from '../fs';
import { applyLayer } from '../layer/apply';
import type { Layer } from '../layer/layer';
import { Rootfs } from '../rootfs/rootfs';
import { readLayerBlob, type ReadLayerOptions } from '../tar/read';
import { mapLimited } from '../util/concurrency';
import type { LayerReadLimits } from './blob-source';

/** Default bound on a layer's uncompressed size when verifying it (as for reading layers). */
export const DEFAULT_MAX_UNCOMPRESSED_BYTES = 2 ** 40;

export interface VerifyProgress {
  phase: 'verify';
  digest: string;
  done: number;
  total: number;
}

/** Bounds for the layers' tars: the same as for reading layers. */
type LayerCheckLimits = LayerReadLimits;

export interface VerifyOptions extends LayerCheckLimits {
  /** Layers verified at once (default 2). */
  concurrency?: number;
  onProgress?: (event: VerifyProgress) => void;
}

function readOptions(limits: LayerCheckLimits): ReadLayerOptions {
  return {
    maxUncompressedBytes: limits.maxUncompressedBytes ?? DEFAULT_MAX_UNCOMPRESSED_BYTES,
    ...(limits.maxEntries !== undefined ? { maxEntries: limits.maxEntries } : {}),
    ...(limits.maxPathBytes !== undefined ? { maxPathBytes: limits.maxPathBytes } : {}),
    ...(limits.maxMetadataBytes !== undefined ? { maxMetadataBytes: limits.maxMetadataBytes } : {}),
  };
}

function imagesOf(target: Image | ImageIndex): Image[] {
  return target instanceof ImageIndex ? target.images().map((i) => i.image) : [target];
}

/** Throws DigestMismatchError / SizeMismatchError / CorruptArchiveError on the first bad layer. */
export async function verifyLayers(target: Image | ImageIndex, options: VerifyOptions = {}): Promise<void> {
  const seen = new Set<string>();
  const jobs: { digest: string; size: number; diffId: string; open: () => NodeJS.ReadableStream }[] = [];
  const images = imagesOf(target);
  for (const image of images) {
    for (const layer of image.layers) {
      if (layer.kind !== 'blob' || seen.has(layer.descriptor.digest)) continue;
      seen.add(layer.descriptor.digest);
      jobs.push({ digest: layer.descriptor.digest, size: layer.descriptor.size, diffId: layer.diffId, open: () => layer.blob.open() });
    }
  }
  const parsed = new Map<string, Layer>();
  const total = jobs.length;
  let done = 0;
  await mapLimited(jobs, options.concurrency ?? 2, async (job) => {
    // The reader checks size, digest, diff_id and every entry; it keeps the entries' metadata
    // only (bounded by the limits), for the stacking check below.
    const read = await readLayerBlob(
      { size: job.size, open: () => job.open() as Readable, source: `layer ${job.digest}` },
      { ...readOptions(options), expectedSize: job.size, expectedDigest: job.digest, expectedDiffId: job.diffId },
    ).catch(async (err) => {
      throw (await storedBytesMismatch(job)) ?? err;
    });
    parsed.set(job.digest, read.layer);
    options.onProgress?.({ phase: 'verify', digest: job.digest, done: ++done, total });
  });
  // Stacking: what only the layers together can get wrong (a hardlink to a file no layer has, a
  // child under a file) fails here, as it would in every later flatten or export.
  for (const image of images) {
    let rootfs = Rootfs.empty();
    for (const layer of image.layers) rootfs = applyLayer(rootfs, layer.kind === 'blob' ? parsed.get(layer.descriptor.digest)! : layer.layer);
  }
}

/**
 * When a layer fails to parse, bytes that are not the blob the manifest names explain it better
 * than the parse error: hash the stored bytes (this second read happens only on failure).
 */
async function storedBytesMismatch(job: { digest: string; size: number; open: () => NodeJS.ReadableStream }): Promise<CloudRootfsError | undefined> {
  const counter = new DigestCounter();
  try {
    for await (const chunk of job.open() as Readable) {
      counter.update(chunk as Buffer);
      if (counter.size > job.size) break;
    }
  } catch {
    return undefined; // unreadable: the original error says more
  }
  if (counter.size !== job.size) return new SizeMismatchError(job.size, counter.size, `layer ${job.digest}`);
  const actual = counter.digest();
  return actual === job.digest ? undefined : new DigestMismatchError(job.digest, actual, 'layer blob');
}

/**
 * A layer blob whose reads also check it: the bytes pass through unchanged while a layer reader
 * parses them (lib/tar/read.ts: diff_id, every entry, the limits), and the stream fails *before
 * it ends* when the tar does not hash to `diffId`, holds a hostile entry, or breaks a limit. A
 * destination that renames a blob into place only after its stream ended cleanly (layouts, the
 * store) therefore never keeps such a layer, and the check costs no second read.
 */
export function diffIdCheckedContent(content: Content, diffId: string, options: LayerCheckLimits = {}): Content {
  const what = content.source ?? content.digest ?? 'layer';
  async function* checked(): AsyncGenerator<Buffer> {
    const input = new PassThrough({ highWaterMark: IO_CHUNK });
    const state: { failure?: { error: unknown } } = {};
    const parsed = readLayerBlob({ size: -1, open: () => input, source: what }, { ...readOptions(options), expectedDiffId: diffId });
    parsed.catch((error) => (state.failure ??= { error })); // awaited below; reported at the next chunk meanwhile
    const throwIfFailed = () => {
      if (state.failure) throw state.failure.error;
    };
    const source = content.open();
    try {
      for await (const chunk of source) {
        const buf = chunk as Buffer;
        // After a parse failure the rest still streams (not parsed): a source that checks its own
        // digest (a registry blob) then fails first when its bytes were corrupted on the way,
        // the more useful report; otherwise the parse failure is thrown at the end, before the
        // stream ends cleanly, so the blob is still never kept.
        if (!state.failure && !input.write(buf)) await Promise.race([once(input, 'drain'), parsed]).catch(() => undefined);
        yield buf;
      }
      throwIfFailed();
      input.end();
      await parsed;
    } finally {
      source.destroy();
      input.destroy();
    }
  }
  return {
    size: content.size,
    ...(content.digest ? { digest: content.digest } : {}),
    ...(content.source ? { source: content.source } : {}),
    open: () => Readable.from(checked(), { objectMode: false, highWaterMark: IO_CHUNK }),
  };
}
