/**
 * The layers of an Image. Two kinds, one interface:
 * - BlobLayer: a stored blob (from a layout, archive, store or registry) with known digest and
 *   diff_id. Its entries are read (and verified) only when asked for.
 * - ChangesetLayer: a Layer made in memory (by diff or the builder). Its blob and digests exist
 *   once a writer encodes it; the result is remembered, so writing the same image to a second
 *   destination copies the blob instead of compressing again.
 */
import { Content } from '../content';
import { DEFAULT_GZIP_LEVEL } from '../compress';
import { Layer } from '../layer/layer';
import { MEDIA_TYPES } from '../media-types';
import { EncodedLayer, EncodeLayerOptions } from '../tar/write';
import { readLayerBlob, ReadLayerOptions } from '../tar/read';
import type { Descriptor } from './types';

export interface BlobLayer {
  readonly kind: 'blob';
  readonly descriptor: Descriptor;
  readonly diffId: string;
  /** The stored bytes. */
  readonly blob: Content;
  changeset(): Promise<Layer>;
}

export interface ChangesetLayer {
  readonly kind: 'changeset';
  readonly layer: Layer;
  changeset(): Promise<Layer>;
}

export type ImageLayer = BlobLayer | ChangesetLayer;

const changesets = new WeakMap<Content, Promise<Layer>>();

export function blobLayer(descriptor: Descriptor, diffId: string, blob: Content, readOptions: ReadLayerOptions = {}): BlobLayer {
  const layer: BlobLayer = {
    kind: 'blob',
    descriptor,
    diffId,
    blob,
    changeset() {
      let p = changesets.get(blob);
      if (!p) {
        p = readLayerBlob(blob, {
          ...readOptions,
          expectedDigest: descriptor.digest,
          expectedSize: descriptor.size,
          expectedDiffId: diffId,
          source: readOptions.source ?? `layer ${descriptor.digest}`,
        }).then((r) => r.layer);
        changesets.set(blob, p);
        p.catch(() => changesets.delete(blob));
      }
      return p;
    },
  };
  return Object.freeze(layer);
}

export function changesetLayer(layer: Layer): ChangesetLayer {
  return Object.freeze({ kind: 'changeset', layer, changeset: async () => layer });
}

export function toImageLayer(layer: Layer | ImageLayer): ImageLayer {
  return layer instanceof Layer ? changesetLayer(layer) : layer;
}

// --- what writers learned about changeset layers ----------------------------------------------

export interface KnownBlob {
  encoded: EncodedLayer;
  blob: Content;
}

const encodings = new WeakMap<Layer, Map<string, KnownBlob>>();

/** The options that change a layer's bytes; equal keys mean equal blobs. */
export function encodingKey(options: EncodeLayerOptions): string {
  return JSON.stringify([options.compression ?? 'gzip', options.level ?? DEFAULT_GZIP_LEVEL, options.sourceDateEpoch ?? 0, options.storeCompressed !== false]);
}

export function rememberEncoding(layer: Layer, key: string, known: KnownBlob): void {
  let m = encodings.get(layer);
  if (!m) encodings.set(layer, (m = new Map()));
  m.set(key, known);
}

export function forgetEncoding(layer: Layer, key: string): void {
  encodings.get(layer)?.delete(key);
}

export function knownEncoding(layer: Layer, key: string): KnownBlob | undefined {
  return encodings.get(layer)?.get(key);
}

/**
 * A persistent memory of encodings (the build cache, lib/cache), attached to a changeset layer by
 * whoever made it. Writers ask it before encoding and tell it what they encoded; it decides (and
 * verifies) on its own, so a writer needs no cache option and any destination benefits.
 */
export interface LayerEncodingCache {
  /** A checked blob holding this layer encoded with `options`, or undefined. */
  lookup(options: EncodeLayerOptions): Promise<KnownBlob | undefined>;
  /** The layer was encoded with `options` into a destination; `encoded` is what came out. */
  record(options: EncodeLayerOptions, encoded: EncodedLayer): Promise<void>;
}

const encodingCaches = new WeakMap<Layer, LayerEncodingCache>();

export function attachEncodingCache(layer: Layer, cache: LayerEncodingCache): void {
  encodingCaches.set(layer, cache);
}

export function encodingCacheOf(layer: Layer): LayerEncodingCache | undefined {
  return encodingCaches.get(layer);
}

/** Docker's layer media types mean the same as OCI's; we write OCI names when we re-serialize. */
export function ociLayerMediaType(mediaType: string): string {
  switch (mediaType) {
    case MEDIA_TYPES.dockerLayerGzip:
      return MEDIA_TYPES.layerGzip;
    case MEDIA_TYPES.dockerLayer:
      return MEDIA_TYPES.layer;
    case MEDIA_TYPES.dockerForeignLayerGzip:
      return MEDIA_TYPES.layerNondistributableGzip;
    default:
      return mediaType;
  }
}
