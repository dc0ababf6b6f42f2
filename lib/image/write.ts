/**
 * Writing an Image or ImageIndex to any blob destination (layout directory, store, registry): blobs
 * first — layers, then config, then manifests, then indexes — so a destination never holds a
 * manifest whose blobs are missing. Destinations implement BlobTarget; this module owns the order.
 */
import { Content } from '../content';
import { Layer } from '../layer/layer';
import { EncodedLayer, EncodeLayerOptions } from '../tar/write';
import { Image, ImageIndex } from './image';
import { KnownBlob, encodingCacheOf, encodingKey, forgetEncoding, knownEncoding, ociLayerMediaType, rememberEncoding } from './layer';
import { CloudRootfsError } from '../errors';
import { errnoCode } from '../fs';
import { serializeImage, serializeIndex, WrittenLayer } from './serialize';
import type { Descriptor } from './types';
import { mapLimited } from '../util/concurrency';

export interface BlobTarget {
  /** True when the destination already holds this blob. */
  has(descriptor: Descriptor): Promise<boolean>;
  /** Store small bytes (config, manifest, index) under their descriptor. */
  putBytes(bytes: Buffer, descriptor: Descriptor): Promise<void>;
  /** Copy a blob from elsewhere, verifying its digest and size on the way. */
  putContent(content: Content, descriptor: Descriptor): Promise<void>;
  /** Encode a changeset layer into the destination in one pass; returns what was written. */
  putLayer(layer: Layer, options: EncodeLayerOptions): Promise<{ encoded: EncodedLayer; blob?: Content }>;
  /** Called after each manifest/index is stored (registries PUT manifests here). */
  putManifest?(bytes: Buffer, descriptor: Descriptor): Promise<void>;
  /** A blob the destination holds, to read back (layouts and the store). */
  blob?(descriptor: Pick<Descriptor, 'digest' | 'size'>): Content;
}

export interface WriteProgress {
  phase: 'layer' | 'config' | 'manifest' | 'index';
  digest?: string;
  /** Layer bytes written so far / in all, when known. */
  done?: number;
  total?: number;
  skipped?: boolean;
}

export interface WriteImageOptions extends EncodeLayerOptions {
  /** Layers written at once (default 2: each already uses every core for compression). */
  layerConcurrency?: number;
  /**
   * Called once an image's layers are in the destination, before its config and manifest: a
   * check that throws here fails the write with no manifest written (a pull checks the stack of
   * layers it streamed).
   */
  beforeManifest?: (image: Image, target: BlobTarget) => Promise<void>;
  onProgress?: (event: WriteProgress) => void;
}

async function writeLayers(image: Image, target: BlobTarget, options: WriteImageOptions): Promise<WrittenLayer[]> {
  const key = encodingKey(options);
  return mapLimited(image.layers, options.layerConcurrency ?? 2, async (layer): Promise<WrittenLayer> => {
    if (layer.kind === 'blob') {
      // A stored image keeps its descriptors verbatim; a re-serialized one says OCI media types.
      const descriptor = image.stored ? layer.descriptor : { ...layer.descriptor, mediaType: ociLayerMediaType(layer.descriptor.mediaType) };
      const skipped = await target.has(layer.descriptor);
      if (!skipped) await target.putContent(layer.blob, layer.descriptor);
      options.onProgress?.({ phase: 'layer', digest: layer.descriptor.digest, skipped, done: layer.descriptor.size, total: layer.descriptor.size });
      return { descriptor, diffId: layer.diffId };
    }
    const cache = encodingCacheOf(layer.layer);
    // A cache that fails to answer is a miss, never a failed write.
    const known: KnownBlob | undefined = knownEncoding(layer.layer, key) ?? (await cache?.lookup(options).catch(() => undefined));
    if (known) {
      const descriptor: Descriptor = { mediaType: known.encoded.mediaType, digest: known.encoded.digest, size: known.encoded.size };
      try {
        const skipped = await target.has(descriptor);
        if (!skipped) await target.putContent(known.blob, descriptor);
        options.onProgress?.({ phase: 'layer', digest: descriptor.digest, skipped, done: descriptor.size, total: descriptor.size });
        return { descriptor, diffId: known.encoded.diffId };
      } catch (err) {
        // The remembered blob is gone or changed (a store was cleaned): encode again below.
        if (err instanceof CloudRootfsError && err.code !== 'SIZE_MISMATCH' && err.code !== 'DIGEST_MISMATCH' && err.code !== 'BLOB_NOT_FOUND') throw err;
        if (!(err instanceof CloudRootfsError) && errnoCode(err) !== 'ENOENT') throw err;
        forgetEncoding(layer.layer, key);
      }
    }
    const { encoded, blob } = await target.putLayer(layer.layer, options);
    if (blob) rememberEncoding(layer.layer, key, { encoded, blob });
    await cache?.record(options, encoded).catch(() => undefined);
    options.onProgress?.({ phase: 'layer', digest: encoded.digest, done: encoded.size, total: encoded.size });
    return { descriptor: { mediaType: encoded.mediaType, digest: encoded.digest, size: encoded.size }, diffId: encoded.diffId };
  });
}

async function putSmall(target: BlobTarget, bytes: Buffer, descriptor: Descriptor): Promise<void> {
  if (!(await target.has(descriptor))) await target.putBytes(bytes, descriptor);
}

/** Write every blob of `image` and return its manifest descriptor (with platform). */
export async function writeImage(image: Image, target: BlobTarget, options: WriteImageOptions = {}): Promise<Descriptor> {
  const layers = await writeLayers(image, target, options);
  await options.beforeManifest?.(image, target);
  const s = serializeImage(image, layers);
  await putSmall(target, s.config, s.configDescriptor);
  options.onProgress?.({ phase: 'config', digest: s.configDescriptor.digest });
  const { platform: _p, ...plain } = s.manifestDescriptor;
  void _p;
  await putSmall(target, s.manifest, plain);
  await target.putManifest?.(s.manifest, plain);
  options.onProgress?.({ phase: 'manifest', digest: s.manifestDescriptor.digest });
  return s.manifestDescriptor;
}

/** Write an image or a whole index (children first); returns the top descriptor. */
export async function writeTarget(target: Image | ImageIndex, dest: BlobTarget, options: WriteImageOptions = {}): Promise<Descriptor> {
  if (target instanceof Image) return writeImage(target, dest, options);
  const children: Descriptor[] = [];
  for (const m of target.manifests) {
    const d = await writeTarget(m.image, dest, options);
    children.push({
      mediaType: d.mediaType,
      digest: d.digest,
      size: d.size,
      ...(m.platform ? { platform: m.platform } : {}),
      ...(m.annotations && Object.keys(m.annotations).length > 0 ? { annotations: m.annotations } : {}),
    });
  }
  const { bytes, descriptor } = serializeIndex(target, children);
  await putSmall(dest, bytes, descriptor);
  await dest.putManifest?.(bytes, descriptor);
  options.onProgress?.({ phase: 'index', digest: descriptor.digest });
  return descriptor;
}
