/**
 * Loading images from anything that serves blobs by digest — an OCI layout directory, an archive
 * read in place, a registry — with one set of rules, so every reader of untrusted documents has
 * the same bounds:
 *
 * - every document (manifest, index, config) is read with a size bound and checked against its
 *   descriptor (size and digest) before it is parsed, and validated as what the descriptor says
 *   it is;
 * - a document listed many times is read once per load (or per archive), and is the same object
 *   each time;
 * - index nesting is bounded (counting the height of a shared subtree wherever it is listed), and
 *   so is the number of manifests an index reaches counting repeats — indexes that list each
 *   other many times would otherwise fan out exponentially in everything that walks them;
 * - entries that are not images (attestations, artifacts, `unknown/unknown`) are left out; an
 *   index that lost entries, or whose child index did, is re-serialized when written (its stored
 *   bytes would name a child that is never written);
 * - layers stay in their blobs and are read lazily, with the caller's layer limits.
 */
import { Content, readContent } from '../content';
import { DigestCounter } from '../compress';
import { DigestMismatchError, InvalidImageError, LimitExceededError, SizeMismatchError, UnsupportedMediaTypeError } from '../errors';
import { Image, ImageIndex, IndexEntry } from '../image/image';
import { blobLayer } from '../image/layer';
import { parseOciDocument } from '../image/schema';
import type { Descriptor, ImageConfigDocument, ImageIndexDocument, ImageManifest, Platform } from '../image/types';
import { isIndexMediaType, isLayerMediaType, isManifestMediaType, MEDIA_TYPES } from '../media-types';
import { StackBudget, type ReadLayerOptions } from '../tar/read';
import { mapLimited } from '../util/concurrency';

/** Bounds for reading layer blobs (see ReadLayerOptions for the defaults). */
export type LayerReadLimits = Pick<ReadLayerOptions, 'maxEntries' | 'maxPathBytes' | 'maxUncompressedBytes' | 'maxMetadataBytes'>;

/** Bounds for reading an image's documents from an untrusted source. */
export interface ImageReadLimits {
  /** Largest manifest, index or config accepted (default 4 MiB, as registries do). */
  maxDocumentBytes?: number;
  /** Deepest index nesting accepted (default 8). */
  maxNesting?: number;
  /**
   * Most index entries (manifests and nested indexes) reachable from one index, counting an entry
   * each time it is listed (default 10,000).
   */
  maxIndexEntries?: number;
  /**
   * Most layers one image may have (default 1,000; Docker runs at most 127). A manifest of more
   * would also be too big to read back once written.
   */
  maxLayers?: number;
  /** Bounds applied when the layers of the images read are read. */
  layerLimits?: LayerReadLimits;
}

export const DEFAULT_MAX_DOCUMENT_BYTES = 4 << 20;
export const DEFAULT_MAX_LAYERS = 1000;
export const DEFAULT_MAX_NESTING = 8;
export const DEFAULT_MAX_INDEX_ENTRIES = 10_000;

export interface BlobSource {
  /** For error messages: the archive, directory or repository. */
  readonly where: string;
  /**
   * Lazy content of a blob (BlobNotFoundError when absent); verified by whoever reads it.
   * `diffId` is given for layers, for sources that check it while the bytes stream.
   */
  blob(descriptor: Pick<Descriptor, 'digest' | 'size'>, diffId?: string): Content;
  /**
   * A document (manifest, index, config) read whole and checked against `descriptor`, never more
   * than `maxBytes`. Default: `readVerifiedBlob` over `blob()`.
   */
  readDocument?(descriptor: Descriptor, maxBytes: number): Promise<Buffer>;
}

/** A small blob read whole and checked against its descriptor. */
export async function readVerifiedBlob(source: BlobSource, d: Pick<Descriptor, 'digest' | 'size'>, max = DEFAULT_MAX_DOCUMENT_BYTES): Promise<Buffer> {
  if (d.size > max) throw new LimitExceededError('maxDocumentBytes', max, `blob ${d.digest} (${d.size} bytes) in ${source.where}`);
  const bytes = await readContent(source.blob(d), max + 1);
  if (bytes.length !== d.size) throw new SizeMismatchError(d.size, bytes.length, `blob ${d.digest}`);
  const actual = DigestCounter.like(d.digest).update(bytes).digest();
  if (actual !== d.digest) throw new DigestMismatchError(d.digest, actual, `blob in ${source.where}`);
  return bytes;
}

export function plainDescriptor(d: Descriptor): Descriptor {
  const { platform: _p, annotations: _a, ...rest } = d;
  void _p;
  void _a;
  return rest;
}

/** Refuse an image with more layers than `limits.maxLayers`. */
export function checkLayerCount(count: number, limits: Pick<ImageReadLimits, 'maxLayers'>, where: string): void {
  const max = limits.maxLayers ?? DEFAULT_MAX_LAYERS;
  if (count > max) throw new LimitExceededError('maxLayers', max, `${where}: ${count} layers`);
}

/** Build an Image from its parsed documents; layers stay in their blobs. */
export function imageFromDocuments(
  manifest: ImageManifest,
  manifestBytes: Buffer,
  descriptor: Descriptor,
  config: ImageConfigDocument,
  configBytes: Buffer,
  blobOf: (d: Descriptor, diffId: string) => Content,
  where: string,
  limits: Pick<ImageReadLimits, 'maxLayers' | 'layerLimits'> = {},
): Image {
  checkLayerCount(Math.max(manifest.layers.length, config.rootfs.diff_ids.length), limits, where);
  const layerLimits = limits.layerLimits ?? {};
  const diffIds = config.rootfs.diff_ids;
  if (diffIds.length !== manifest.layers.length) {
    throw new InvalidImageError(
      `${where}: the config lists ${diffIds.length} diff_ids for ${manifest.layers.length} layers`,
      { diffIds: diffIds.length, layers: manifest.layers.length },
    );
  }
  // The image's layers share one budget: together they hold what one layer may.
  const stack = new StackBudget(layerLimits.maxEntries, layerLimits.maxMetadataBytes);
  const layers = manifest.layers.map((d, i) => {
    if (!isLayerMediaType(d.mediaType)) throw new UnsupportedMediaTypeError(d.mediaType, `${where} layer ${i}`);
    return blobLayer(d, diffIds[i], blobOf(d, diffIds[i]), { ...layerLimits, stack, source: `layer ${i} (${d.digest})` });
  });
  const { rootfs: _r, ...rest } = config;
  void _r;
  const platform: Platform = { os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) };
  return new Image(
    { layers, config: rest, annotations: manifest.annotations ?? {}, platform },
    { manifest: manifestBytes, manifestDescriptor: plainDescriptor(descriptor), config: configBytes, configDescriptor: manifest.config },
  );
}

export interface DocumentGraphOptions extends ImageReadLimits {
  /**
   * Which index entries to follow (after the rule that leaves out non-images); the others are
   * left out as if they were attestations. Default: all.
   */
  accept?: (entry: Descriptor) => boolean;
  /** Children of an index read at once (default 1; registries use a few). */
  concurrency?: number;
}

interface Loaded {
  target: Image | ImageIndex;
  /** Index entries reachable through it, repeats included (0 for a manifest). */
  reach: number;
  /** Index levels below it (0 for a manifest). */
  height: number;
}

/**
 * The documents of one load (or of every load from one archive): each is read once, and the
 * bounds are checked as the graph is discovered, before anything fans out.
 */
export class DocumentGraph {
  private readonly loaded = new Map<string, Promise<Loaded>>();
  private readonly maxDocumentBytes: number;
  private readonly maxNesting: number;
  private readonly maxIndexEntries: number;

  constructor(
    private readonly source: BlobSource,
    private readonly options: DocumentGraphOptions = {},
  ) {
    this.maxDocumentBytes = options.maxDocumentBytes ?? DEFAULT_MAX_DOCUMENT_BYTES;
    this.maxNesting = options.maxNesting ?? DEFAULT_MAX_NESTING;
    this.maxIndexEntries = options.maxIndexEntries ?? DEFAULT_MAX_INDEX_ENTRIES;
  }

  /** An Image for a manifest, an ImageIndex for an index. */
  async load(descriptor: Descriptor): Promise<Image | ImageIndex> {
    return (await this.node(descriptor, 0)).target;
  }

  private async node(descriptor: Descriptor, depth: number): Promise<Loaded> {
    if (depth > this.maxNesting) throw new LimitExceededError('maxNesting', this.maxNesting, `index nesting at ${descriptor.digest} in ${this.source.where}`);
    const key = `${descriptor.mediaType} ${descriptor.digest} ${descriptor.size}`;
    let loaded = this.loaded.get(key);
    if (!loaded) {
      if (isManifestMediaType(descriptor.mediaType)) loaded = this.image(descriptor).then((target) => ({ target, reach: 0, height: 0 }));
      else if (isIndexMediaType(descriptor.mediaType)) loaded = this.index(descriptor, depth);
      else throw new UnsupportedMediaTypeError(descriptor.mediaType, `${this.source.where} (${descriptor.digest})`);
      this.loaded.set(key, loaded);
    }
    const result = await loaded;
    // A subtree read first where it was shallow may be listed again deeper down.
    if (depth + result.height > this.maxNesting) {
      throw new LimitExceededError('maxNesting', this.maxNesting, `index nesting below ${descriptor.digest} in ${this.source.where}`);
    }
    return result;
  }

  private readDocument(descriptor: Descriptor): Promise<Buffer> {
    const max = this.maxDocumentBytes;
    if (descriptor.size > max) {
      return Promise.reject(new LimitExceededError('maxDocumentBytes', max, `${descriptor.digest} (${descriptor.size} bytes) in ${this.source.where}`));
    }
    return this.source.readDocument ? this.source.readDocument(descriptor, max) : readVerifiedBlob(this.source, descriptor, max);
  }

  private async image(descriptor: Descriptor): Promise<Image> {
    const where = `${this.source.where} ${descriptor.digest}`;
    const manifestBytes = await this.readDocument(descriptor);
    const kind = descriptor.mediaType === MEDIA_TYPES.dockerManifest ? 'docker-manifest' : 'manifest';
    const manifest = parseOciDocument<ImageManifest>(kind, manifestBytes, { file: `${where} (manifest)` });
    const configBytes = await this.readDocument(manifest.config);
    const config = parseOciDocument<ImageConfigDocument>('config', configBytes, { file: `${where} (config)`, checkHistory: false });
    return imageFromDocuments(manifest, manifestBytes, descriptor, config, configBytes, (d, diffId) => this.source.blob(d, diffId), where, this.options);
  }

  private async index(descriptor: Descriptor, depth: number): Promise<Loaded> {
    const where = `${this.source.where} ${descriptor.digest}`;
    const bytes = await this.readDocument(descriptor);
    const kind = descriptor.mediaType === MEDIA_TYPES.dockerManifestList ? 'docker-manifest-list' : 'index';
    const doc = parseOciDocument<ImageIndexDocument>(kind, bytes, { file: where });
    let complete = true;
    const chosen: Descriptor[] = [];
    for (const m of doc.manifests) {
      // Unknown entries (attestations, artifacts) are not errors; they are left out.
      const usable = (isManifestMediaType(m.mediaType) || isIndexMediaType(m.mediaType)) && m.platform?.os !== 'unknown';
      if (usable && (this.options.accept?.(m) ?? true)) chosen.push(m);
      else complete = false;
    }
    const tooMany = () => new LimitExceededError('maxIndexEntries', this.maxIndexEntries, `index entries reachable from ${where}`);
    // A long list fails before any of it is read; nested lists as soon as the running count passes.
    if (chosen.length > this.maxIndexEntries) throw tooMany();
    let reach = 0;
    const children = await mapLimited(chosen, this.options.concurrency ?? 1, async (m) => {
      const child = await this.node(m, depth + 1);
      reach += 1 + child.reach;
      if (reach > this.maxIndexEntries) throw tooMany();
      return child;
    });
    const entries: IndexEntry[] = [];
    let height = 0;
    children.forEach((child, i) => {
      const m = chosen[i];
      height = Math.max(height, child.height + 1);
      if (child.target instanceof ImageIndex && !child.target.stored) {
        // Re-serialized when written (it lost entries): our stored bytes would name the old one.
        complete = false;
        if (child.target.manifests.length === 0) return;
      }
      entries.push({ image: child.target, platform: m.platform, annotations: m.annotations });
    });
    const target = new ImageIndex(entries, doc.annotations ?? {}, complete ? { index: bytes, descriptor: plainDescriptor(descriptor) } : undefined);
    return { target, reach, height };
  }
}

/** Load what `descriptor` names from `source`: an Image for a manifest, an ImageIndex for an index. */
export async function loadFromBlobSource(source: BlobSource, descriptor: Descriptor, limits: DocumentGraphOptions = {}): Promise<Image | ImageIndex> {
  return new DocumentGraph(source, limits).load(descriptor);
}

