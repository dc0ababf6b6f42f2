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
import { CloudRootfsError, CorruptArchiveError, DigestMismatchError, LimitExceededError, SizeMismatchError } from '../errors';
import { Image, ImageIndex } from '../image/image';
import { IO_CHUNK } from '../fs';
import { applyLayer } from '../layer/apply';
import type { Layer } from '../layer/layer';
import { Rootfs } from '../rootfs/rootfs';
import { DEFAULT_MAX_ENTRIES, DEFAULT_MAX_METADATA_BYTES, StackBudget, readLayerBlob, type ReadLayerOptions } from '../tar/read';
import type { LayerReadLimits } from './blob-source';

/** Default bound on a layer's uncompressed size when verifying it (as for reading layers). */
export const DEFAULT_MAX_UNCOMPRESSED_BYTES = 2 ** 40;

export interface VerifyProgress {
  phase: 'verify';
  digest: string;
  done: number;
  total: number;
}

/** The layers' tars are bounded as for reading layers (LayerReadLimits). */
export interface VerifyOptions extends LayerReadLimits {
  onProgress?: (event: VerifyProgress) => void;
}

function readOptions(limits: LayerReadLimits): ReadLayerOptions {
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

/** A layer read through every check, with what it holds (for a StackCheck). */
export interface CheckedLayer {
  layer: Layer;
  entries: number;
  /** Bytes of names, link targets, xattrs and sparse maps. */
  metadataBytes: number;
}

/**
 * Read a stored layer blob through every check of the layer reader: size, digest, diff_id, each
 * entry and the limits. The parsed layer keeps the entries' metadata only.
 */
export async function readCheckedLayer(
  blob: Content,
  descriptor: { digest: string; size: number },
  diffId: string,
  limits: LayerReadLimits = {},
  stack?: StackBudget,
): Promise<CheckedLayer> {
  const result = await readLayerBlob(
    { size: descriptor.size, open: () => blob.open(), source: `layer ${descriptor.digest}` },
    { ...readOptions(limits), expectedSize: descriptor.size, expectedDigest: descriptor.digest, expectedDiffId: diffId, ...(stack ? { stack } : {}) },
  ).catch(async (err) => {
    throw (await storedBytesMismatch(blob, descriptor)) ?? err;
  });
  return { layer: result.layer, entries: result.entries, metadataBytes: result.metadataBytes };
}

/**
 * An image's layers applied in order to one merged tree, as a flatten would: what only the layers
 * together can get wrong (a hardlink to a file no layer has, a child under a file) fails here
 * with the flatten's typed error, and the entries of all layers together are bounded by
 * `maxEntries` (a stack of huge layers would otherwise exhaust memory, here or in any later read).
 */
export class StackCheck {
  private rootfs = Rootfs.empty();
  private entries = 0;
  private metadataBytes = 0;

  constructor(
    private readonly maxEntries = DEFAULT_MAX_ENTRIES,
    private readonly maxMetadataBytes = DEFAULT_MAX_METADATA_BYTES,
  ) {}

  add(layer: Layer, entries: number, metadataBytes = 0): void {
    this.entries += entries;
    this.metadataBytes += metadataBytes;
    if (this.entries > this.maxEntries) {
      throw new LimitExceededError('maxEntries', this.maxEntries, `the layers of one image together (${this.entries} entries)`);
    }
    if (this.metadataBytes > this.maxMetadataBytes) {
      throw new LimitExceededError('maxMetadataBytes', this.maxMetadataBytes, `names, link targets and xattrs of the layers of one image together`);
    }
    this.rootfs = applyLayer(this.rootfs, layer);
  }
}

/**
 * Throws a typed error (DigestMismatchError, SizeMismatchError, CorruptArchiveError, the layer
 * reader's errors, LimitExceededError) on the first bad layer.
 *
 * Each image is checked on its own, its layers read in order with one read ahead, applied to the
 * merged tree and dropped: memory holds that tree and at most two parsed layers, never the whole
 * stack, and the entries of all its layers together are bounded by `maxEntries` too (a stack of
 * huge layers would otherwise exhaust memory here, or in any later flatten). A layer two images
 * share is read for each, so each image's own diff_id for it is checked.
 */
export async function verifyLayers(target: Image | ImageIndex, options: VerifyOptions = {}): Promise<void> {
  const images = imagesOf(target);
  const total = images.reduce((n, image) => n + image.layers.filter((l) => l.kind === 'blob').length, 0);
  let done = 0;
  const read = async (layer: Image['layers'][number], budget: StackBudget): Promise<CheckedLayer> => {
    if (layer.kind !== 'blob') return { layer: layer.layer, entries: layer.layer.stats().entries, metadataBytes: 0 };
    // The reads charge the image's budget as they go: a stack too big fails before it is held.
    const checked = await readCheckedLayer(layer.blob, layer.descriptor, layer.diffId, options, budget);
    options.onProgress?.({ phase: 'verify', digest: layer.descriptor.digest, done: ++done, total });
    return checked;
  };
  for (const image of images) {
    const stack = new StackCheck(options.maxEntries, options.maxMetadataBytes);
    const budget = new StackBudget(options.maxEntries, options.maxMetadataBytes);
    let ahead: Promise<CheckedLayer> | undefined = image.layers.length > 0 ? read(image.layers[0], budget) : undefined;
    for (let i = 0; ahead; i++) {
      const current = ahead;
      ahead = i + 1 < image.layers.length ? read(image.layers[i + 1], budget) : undefined;
      ahead?.catch(() => undefined); // awaited in its turn, or settled below before a failure is reported
      try {
        const next = await current;
        stack.add(next.layer, next.entries, next.metadataBytes);
      } catch (err) {
        await ahead?.catch(() => undefined); // no read left running behind a failure
        throw err;
      }
    }
  }
}

/**
 * When a layer fails to parse, bytes that are not the blob the manifest names explain it better
 * than the parse error: hash the stored bytes (this second read happens only on failure).
 */
async function storedBytesMismatch(blob: Content, expected: { digest: string; size: number }): Promise<CloudRootfsError | undefined> {
  const counter = DigestCounter.like(expected.digest);
  try {
    for await (const chunk of blob.open()) {
      counter.update(chunk as Buffer);
      if (counter.size > expected.size) break;
    }
  } catch {
    return undefined; // unreadable: the original error says more
  }
  if (counter.size !== expected.size) return new SizeMismatchError(expected.size, counter.size, `layer ${expected.digest}`);
  const actual = counter.digest();
  return actual === expected.digest ? undefined : new DigestMismatchError(expected.digest, actual, 'layer blob');
}

/**
 * A layer blob whose reads also check it: the bytes pass through unchanged while a layer reader
 * parses them (lib/tar/read.ts: diff_id, every entry, the limits), and the stream fails *before
 * it ends* when the tar does not hash to `diffId`, holds a hostile entry, or breaks a limit. A
 * destination that renames a blob into place only after its stream ended cleanly (layouts, the
 * store) therefore never keeps such a layer, and the check costs no second read.
 */
export function diffIdCheckedContent(
  content: Content,
  diffId: string,
  options: LayerReadLimits & {
    /** The parsed layer, before the stream ends (so a throw here still fails it): for a stack check. */
    onLayer?: (layer: Layer, entries: number, metadataBytes: number) => void;
  } = {},
): Content {
  const what = content.source ?? content.digest ?? 'layer';
  async function* checked(): AsyncGenerator<Buffer> {
    const input = new PassThrough({ highWaterMark: IO_CHUNK });
    const state: { failure?: { error: unknown }; settled?: boolean } = {};
    // The stored bytes are hashed by whoever checks `content` (the registry client): not here too.
    const parsed = readLayerBlob(
      { size: -1, open: () => input, source: what },
      { ...readOptions(options), expectedDiffId: diffId, hashStored: !content.selfVerifying },
    );
    parsed.then(
      () => (state.settled = true),
      (error) => {
        state.settled = true;
        state.failure ??= { error };
      },
    ); // awaited below; reported at the next chunk meanwhile
    const throwIfFailed = () => {
      if (state.failure) throw state.failure.error;
    };
    const source = content.open();
    try {
      for await (const chunk of source) {
        const buf = chunk as Buffer;
        if (state.failure) {
          // A tar that does not parse may be bytes corrupted on the way: a source that checks its
          // own digest (a registry blob) then fails by the end, the more useful report, so the
          // rest still streams (unparsed). Anything else — a hostile entry, a limit — is final.
          if (!(state.failure.error instanceof CorruptArchiveError)) throwIfFailed();
        } else if (!input.write(buf)) await Promise.race([once(input, 'drain'), parsed]).catch(() => undefined);
        yield buf;
      }
      // Before the stream ends cleanly: a failing layer is never named.
      throwIfFailed();
      input.end();
      const result = await parsed;
      options.onLayer?.(result.layer, result.entries, result.metadataBytes);
    } finally {
      source.destroy();
      // A consumer that stopped early: end the parser too, so nothing waits on it.
      if (!state.settled) input.destroy(new Error('layer stream abandoned'));
      else input.destroy();
    }
  }
  return {
    size: content.size,
    ...(content.digest ? { digest: content.digest } : {}),
    ...(content.source ? { source: content.source } : {}),
    // The inner stream's failure ends this one before its end too.
    ...(content.selfVerifying ? { selfVerifying: true } : {}),
    open: () => Readable.from(checked(), { objectMode: false, highWaterMark: IO_CHUNK }),
  };
}
