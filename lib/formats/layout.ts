/**
 * The OCI image layout (image-layout.md, oci.md §2): `oci-layout`, `index.json`, `blobs/<alg>/<hex>`.
 * Read (nested indexes, Docker media types, gzip/zstd/plain layers) and write, on any injected fs.
 * Blobs are content-addressed and written atomically; `index.json` is replaced atomically last,
 * so a reader sees the old layout or the new one, never a manifest without its blobs.
 */
import { posix } from 'node:path';
import { Readable } from 'node:stream';
import { Content, fileContent } from '../content';
import { DigestCounter } from '../compress';
import {
  BlobNotFoundError,
  CloudRootfsError,
  DestinationExistsError,
  DigestMismatchError,
  ImageNotFoundError,
  InvalidImageError,
  LimitExceededError,
  SizeMismatchError,
  UnsupportedMediaTypeError,
} from '../errors';
import { errnoCode, FileSystem, FsStats, lstatOrUndefined } from '../fs';
import { Layer } from '../layer/layer';
import { isIndexMediaType, isLayerMediaType, isManifestMediaType, MEDIA_TYPES } from '../media-types';
import { EncodeLayerOptions, encodeLayer } from '../tar/write';
import { buildDirAtomic, ensureDir, isEmptyOrMissing, writeFileAtomic, writeStreamAtomic } from '../util/atomic';
import { Image, ImageIndex, IndexEntry, selectImage } from '../image/image';
import { blobLayer } from '../image/layer';
import type { ReadLayerOptions } from '../tar/read';
import { checkDigest } from '../image/digest';
import { canonicalJsonBytes } from '../image/json';
import { parseOciDocument } from '../image/schema';
import type { Descriptor, ImageConfigDocument, ImageIndexDocument, ImageManifest, Platform } from '../image/types';
import { BlobTarget, WriteImageOptions, writeTarget } from '../image/write';

export const REF_NAME = 'org.opencontainers.image.ref.name';
export const CONTAINERD_NAME = 'io.containerd.image.name';
const LAYOUT_VERSION = '1.0.0';

/** Bounds for reading layer blobs (see ReadLayerOptions for the defaults). */
export type LayerReadLimits = Pick<ReadLayerOptions, 'maxEntries' | 'maxPathBytes' | 'maxUncompressedBytes'>;

export interface LayoutLimits {
  /** Largest manifest, index or config accepted (default 4 MiB, as registries do). */
  maxDocumentBytes?: number;
  /** Deepest index nesting accepted (default 8). */
  maxNesting?: number;
  /**
   * Most manifests reachable through nested indexes, counting an entry each time it is listed
   * (default 10,000): indexes that list each other many times would otherwise fan out
   * exponentially in everything that walks them.
   */
  maxIndexEntries?: number;
  /** Bounds applied when the layers of images read from the layout are read. */
  layerLimits?: LayerReadLimits;
}

const DEFAULT_MAX_DOCUMENT = 4 << 20;
const DEFAULT_MAX_NESTING = 8;
const DEFAULT_MAX_INDEX_ENTRIES = 10_000;

/**
 * Stat `path` (following symlinks, as any reader would) and insist on a regular file: a fifo would
 * block the reader forever, a device would never end. Missing → BlobNotFoundError via `missing`.
 */
async function regularFile(fs: FileSystem, path: string, missing: () => Error, what: string): Promise<FsStats> {
  let st: FsStats;
  try {
    st = await fs.promises.stat(path);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP') throw missing();
    throw err;
  }
  if (!st.isFile()) throw new InvalidImageError(`${what} ${path} is not a regular file`, { path });
  return st;
}

/** Read at most `max` bytes of a file; `onLonger` is thrown as soon as the file proves longer. */
async function readBounded(fs: FileSystem, path: string, max: number, onLonger: (seen: number) => Error): Promise<Buffer> {
  const fh = await fs.promises.open(path, 'r');
  try {
    const buf = Buffer.alloc(Math.min(max + 1, 1 << 20));
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      total += bytesRead;
      if (total > max) throw onLonger(total);
      chunks.push(Buffer.from(buf.subarray(0, bytesRead)));
    }
    return Buffer.concat(chunks);
  } finally {
    await fh.close();
  }
}

export class OciLayout implements BlobTarget {
  private constructor(
    readonly fs: FileSystem,
    readonly dir: string,
    private readonly limits: LayoutLimits = {},
  ) {}

  /** Open an existing layout. */
  static async open(fs: FileSystem, dir: string, limits?: LayoutLimits): Promise<OciLayout> {
    const file = posix.join(dir, 'oci-layout');
    await regularFile(fs, file, () => new ImageNotFoundError(dir, 'an OCI layout (no oci-layout file)'), 'layout marker');
    const text = (await readBounded(fs, file, 64 << 10, () => new LimitExceededError('maxDocumentBytes', 64 << 10, file))).toString('utf8');
    parseOciDocument('layout', text, { file });
    return new OciLayout(fs, dir, limits);
  }

  /** Open a layout, creating an empty one if `dir` is missing or empty. */
  static async create(fs: FileSystem, dir: string, limits?: LayoutLimits): Promise<OciLayout> {
    if (await lstatOrUndefined(fs, posix.join(dir, 'oci-layout'))) return OciLayout.open(fs, dir, limits);
    if (!(await isEmptyOrMissing(fs, dir))) throw new DestinationExistsError(dir);
    await ensureDir(fs, posix.join(dir, 'blobs', 'sha256'));
    await writeFileAtomic(fs, posix.join(dir, 'index.json'), canonicalJsonBytes({ schemaVersion: 2, mediaType: MEDIA_TYPES.index, manifests: [] }));
    await writeFileAtomic(fs, posix.join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: LAYOUT_VERSION }));
    return new OciLayout(fs, dir, limits);
  }

  // --- blobs ------------------------------------------------------------------------------------

  blobPath(digest: string): string {
    const [alg, hex] = checkDigest(digest);
    return posix.join(this.dir, 'blobs', alg, hex);
  }

  async has(descriptor: Pick<Descriptor, 'digest' | 'size'>): Promise<boolean> {
    const st = await lstatOrUndefined(this.fs, this.blobPath(descriptor.digest));
    return !!st && st.isFile() && (descriptor.size === undefined || st.size === descriptor.size);
  }

  /**
   * Lazy content of a blob (verified by whoever reads it against the descriptor). Opening it first
   * checks that the blob exists and is a regular file, so a missing blob is BLOB_NOT_FOUND and a
   * fifo planted in the layout is refused instead of blocking the reader.
   */
  blob(descriptor: Pick<Descriptor, 'digest' | 'size'>): Content {
    const path = this.blobPath(descriptor.digest);
    const content = fileContent(this.fs, path, descriptor.size, descriptor.digest);
    const check = () => regularFile(this.fs, path, () => new BlobNotFoundError(descriptor.digest, this.dir), 'blob');
    return {
      ...content,
      open: () =>
        Readable.from(
          (async function* () {
            await check();
            yield* content.open();
          })(),
          { objectMode: false },
        ),
    };
  }

  /** Read a small blob whole, verifying size and digest; never reads past the declared size. */
  async readBlob(descriptor: Pick<Descriptor, 'digest' | 'size'>, maxBytes = this.limits.maxDocumentBytes ?? DEFAULT_MAX_DOCUMENT): Promise<Buffer> {
    if (descriptor.size > maxBytes) throw new LimitExceededError('maxDocumentBytes', maxBytes, `blob ${descriptor.digest} (${descriptor.size} bytes)`);
    const path = this.blobPath(descriptor.digest);
    const st = await regularFile(this.fs, path, () => new BlobNotFoundError(descriptor.digest, this.dir), 'blob');
    if (st.size !== descriptor.size) throw new SizeMismatchError(descriptor.size, st.size, `blob ${descriptor.digest}`);
    const bytes = await readBounded(this.fs, path, descriptor.size, (seen) => new SizeMismatchError(descriptor.size, seen, `blob ${descriptor.digest}`));
    if (bytes.length !== descriptor.size) throw new SizeMismatchError(descriptor.size, bytes.length, `blob ${descriptor.digest}`);
    const actual = new DigestCounter().update(bytes).digest();
    if (actual !== descriptor.digest) throw new DigestMismatchError(descriptor.digest, actual, 'blob');
    return bytes;
  }

  async putBytes(bytes: Buffer, descriptor: Descriptor): Promise<void> {
    const actual = new DigestCounter().update(bytes).digest();
    if (actual !== descriptor.digest) throw new DigestMismatchError(descriptor.digest, actual, 'blob');
    if (await this.has(descriptor)) return;
    await ensureDir(this.fs, posix.dirname(this.blobPath(descriptor.digest)));
    await writeFileAtomic(this.fs, this.blobPath(descriptor.digest), bytes);
  }

  async putContent(content: Content, descriptor: Descriptor): Promise<void> {
    if (await this.has(descriptor)) return;
    const path = this.blobPath(descriptor.digest);
    await ensureDir(this.fs, posix.dirname(path));
    const counter = new DigestCounter();
    await writeStreamAtomic(
      this.fs,
      path,
      async (write) => {
        for await (const chunk of content.open()) {
          counter.update(chunk as Buffer);
          await write(chunk as Buffer);
        }
      },
      () => {
        if (counter.size !== descriptor.size) throw new SizeMismatchError(descriptor.size, counter.size, `blob ${descriptor.digest}`);
        if (counter.digest() !== descriptor.digest) throw new DigestMismatchError(descriptor.digest, counter.digest(), 'blob');
        return undefined;
      },
    );
  }

  async putLayer(layer: Layer, options: EncodeLayerOptions): Promise<{ encoded: Awaited<ReturnType<typeof encodeLayer>>; blob: Content }> {
    const staging = posix.join(this.dir, 'blobs', 'sha256', 'layer');
    let encoded!: Awaited<ReturnType<typeof encodeLayer>>;
    await writeStreamAtomic(
      this.fs,
      staging,
      async (write) => {
        encoded = await encodeLayer(layer, write, options);
      },
      async () => {
        const final = this.blobPath(encoded.digest);
        await ensureDir(this.fs, posix.dirname(final));
        return final;
      },
    );
    return { encoded, blob: this.blob(encoded) };
  }

  // --- index.json -------------------------------------------------------------------------------

  async readIndex(): Promise<ImageIndexDocument> {
    const file = posix.join(this.dir, 'index.json');
    const max = this.limits.maxDocumentBytes ?? DEFAULT_MAX_DOCUMENT;
    const st = await regularFile(this.fs, file, () => new InvalidImageError(`${this.dir} is not an OCI layout: index.json is missing`, { file }), 'index');
    if (st.size > max) throw new LimitExceededError('maxDocumentBytes', max, file);
    const bytes = await readBounded(this.fs, file, max, () => new LimitExceededError('maxDocumentBytes', max, file));
    return parseOciDocument<ImageIndexDocument>('index', bytes, { file });
  }

  async writeIndex(doc: ImageIndexDocument): Promise<void> {
    await writeFileAtomic(this.fs, posix.join(this.dir, 'index.json'), canonicalJsonBytes(doc));
  }

  /** The index.json entry for `ref` (exact ref.name, then containerd name), or the only entry. */
  async resolve(ref?: string): Promise<Descriptor> {
    const index = await this.readIndex();
    return resolveInIndex(index.manifests, ref, this.dir);
  }

  /** Point `tag` at `descriptor` in index.json, replacing whatever it named before. */
  async tag(descriptor: Descriptor, tag?: string, extraAnnotations: Record<string, string> = {}): Promise<void> {
    const index = await this.readIndex();
    const entry: Descriptor = {
      mediaType: descriptor.mediaType,
      digest: descriptor.digest,
      size: descriptor.size,
      ...(descriptor.platform && isManifestMediaType(descriptor.mediaType) ? { platform: descriptor.platform } : {}),
      ...(tag || Object.keys(extraAnnotations).length > 0 ? { annotations: { ...extraAnnotations, ...(tag ? { [REF_NAME]: tag } : {}) } } : {}),
    };
    const manifests = index.manifests.filter((m) => (tag ? m.annotations?.[REF_NAME] !== tag : m.digest !== descriptor.digest));
    await this.writeIndex({ ...index, manifests: [...manifests, entry] });
  }

  // --- images -----------------------------------------------------------------------------------

  /** Load what `descriptor` names: an Image for a manifest, an ImageIndex for an index. */
  async load(descriptor: Descriptor, depth = 0): Promise<Image | ImageIndex> {
    return (await this.loadShared(descriptor, depth, new Map())).target;
  }

  /**
   * One load shares its documents: a manifest or index listed many times is read once and is the
   * same object each time. An index also knows how many manifests it reaches counting repeats
   * (what anything walking it visits), and that count is bounded by maxIndexEntries.
   */
  private loadShared(descriptor: Descriptor, depth: number, documents: LoadedDocuments): Promise<Loaded> {
    const maxNesting = this.limits.maxNesting ?? DEFAULT_MAX_NESTING;
    if (depth > maxNesting) throw new LimitExceededError('maxNesting', maxNesting, `index nesting at ${descriptor.digest}`);
    const key = `${descriptor.mediaType} ${descriptor.digest} ${descriptor.size}`;
    let loaded = documents.get(key);
    if (!loaded) {
      if (isManifestMediaType(descriptor.mediaType)) loaded = this.loadImage(descriptor).then((target) => ({ target, reach: 1 }));
      else if (isIndexMediaType(descriptor.mediaType)) loaded = this.loadIndex(descriptor, depth, documents);
      else throw new UnsupportedMediaTypeError(descriptor.mediaType, `${this.dir} (${descriptor.digest})`);
      documents.set(key, loaded);
    }
    return loaded;
  }

  private async loadIndex(descriptor: Descriptor, depth: number, documents: LoadedDocuments): Promise<Loaded> {
    const bytes = await this.readBlob(descriptor);
    const kind = descriptor.mediaType === MEDIA_TYPES.dockerManifestList ? 'docker-manifest-list' : 'index';
    const doc = parseOciDocument<ImageIndexDocument>(kind, bytes, { file: `${this.dir} ${descriptor.digest}` });
    const entries: IndexEntry[] = [];
    const maxEntries = this.limits.maxIndexEntries ?? DEFAULT_MAX_INDEX_ENTRIES;
    let reach = 0;
    let skipped = false;
    for (const m of doc.manifests) {
      // Unknown entries (attestations, artifacts) are not errors; they are left out.
      if (!isManifestMediaType(m.mediaType) && !isIndexMediaType(m.mediaType)) {
        skipped = true;
        continue;
      }
      if (m.platform?.os === 'unknown') {
        skipped = true;
        continue;
      }
      const child = await this.loadShared(m, depth + 1, documents);
      reach += child.reach;
      if (reach > maxEntries) throw new LimitExceededError('maxIndexEntries', maxEntries, `manifests reachable from ${descriptor.digest}`);
      entries.push({ image: child.target, platform: m.platform, annotations: m.annotations });
    }
    const target = new ImageIndex(entries, doc.annotations ?? {}, skipped ? undefined : { index: bytes, descriptor: stripPlatform(descriptor) });
    return { target, reach };
  }

  private async loadImage(descriptor: Descriptor): Promise<Image> {
    const where = `${this.dir} ${descriptor.digest}`;
    const manifestBytes = await this.readBlob(descriptor);
    const kind = descriptor.mediaType === MEDIA_TYPES.dockerManifest ? 'docker-manifest' : 'manifest';
    const manifest = parseOciDocument<ImageManifest>(kind, manifestBytes, { file: `${where} (manifest)` });
    const configBytes = await this.readBlob(manifest.config);
    const config = parseOciDocument<ImageConfigDocument>('config', configBytes, { file: `${where} (config)`, checkHistory: false });
    return imageFromDocuments(manifest, manifestBytes, descriptor, config, configBytes, (d) => this.blob(d), where, this.limits.layerLimits);
  }

  // --- writing ----------------------------------------------------------------------------------

  /** Write every blob of the target, then tag it in index.json. */
  async put(target: Image | ImageIndex, options: WriteImageOptions & { tag?: string; annotations?: Record<string, string> } = {}): Promise<Descriptor> {
    const descriptor = await writeTarget(target, this, options);
    await this.tag(descriptor, options.tag, options.annotations);
    return descriptor;
  }
}

interface Loaded {
  target: Image | ImageIndex;
  /** Manifests reachable through it, repeats included (1 for a manifest). */
  reach: number;
}
type LoadedDocuments = Map<string, Promise<Loaded>>;

function stripPlatform(d: Descriptor): Descriptor {
  const { platform: _p, annotations: _a, ...rest } = d;
  void _p;
  void _a;
  return rest;
}

export function resolveInIndex(manifests: readonly Descriptor[], ref: string | undefined, where: string): Descriptor {
  if (ref !== undefined && ref !== '') {
    const byRef = manifests.filter((m) => m.annotations?.[REF_NAME] === ref);
    const found = byRef.length > 0 ? byRef : manifests.filter((m) => m.annotations?.[CONTAINERD_NAME] === ref);
    if (found.length === 0) throw new ImageNotFoundError(ref, where);
    return found[found.length - 1];
  }
  if (manifests.length === 1) return manifests[0];
  if (manifests.length === 0) throw new ImageNotFoundError('(any)', `${where} (the layout holds no image)`);
  const refs = manifests.map((m) => m.annotations?.[REF_NAME] ?? m.digest);
  throw new CloudRootfsError('AMBIGUOUS_IMAGE', `${where} holds ${manifests.length} images; name one of: ${refs.join(', ')}`, {
    refs,
  });
}

/** Build an Image from its parsed documents; layers stay in their blobs. */
export function imageFromDocuments(
  manifest: ImageManifest,
  manifestBytes: Buffer,
  descriptor: Descriptor,
  config: ImageConfigDocument,
  configBytes: Buffer,
  blobOf: (d: Descriptor) => Content,
  where: string,
  layerLimits: LayerReadLimits = {},
): Image {
  const diffIds = config.rootfs.diff_ids;
  if (diffIds.length !== manifest.layers.length) {
    throw new InvalidImageError(
      `${where}: the config lists ${diffIds.length} diff_ids for ${manifest.layers.length} layers`,
      { diffIds: diffIds.length, layers: manifest.layers.length },
    );
  }
  const layers = manifest.layers.map((d, i) => {
    if (!isLayerMediaType(d.mediaType)) throw new UnsupportedMediaTypeError(d.mediaType, `${where} layer ${i}`);
    return blobLayer(d, diffIds[i], blobOf(d), { ...layerLimits, source: `layer ${i} (${d.digest})` });
  });
  const { rootfs: _r, ...rest } = config;
  void _r;
  const platform: Platform = { os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) };
  return new Image(
    { layers, config: rest, annotations: manifest.annotations ?? {}, platform },
    { manifest: manifestBytes, manifestDescriptor: stripPlatform(descriptor), config: configBytes, configDescriptor: manifest.config },
  );
}

// --- the public face ------------------------------------------------------------------------------

export interface ReadLayoutOptions extends LayoutLimits {
  fs: FileSystem;
  /** `org.opencontainers.image.ref.name` to load; optional when the layout holds one image. */
  ref?: string;
}

/** Read an image (or index) from an OCI layout directory. */
export async function readOciLayout(dir: string, options: ReadLayoutOptions): Promise<Image | ImageIndex> {
  const layout = await OciLayout.open(options.fs, dir, options);
  return layout.load(await layout.resolve(options.ref));
}

/** Read one platform's image from an OCI layout directory (default: the host's platform). */
export async function readOciImage(dir: string, options: ReadLayoutOptions & { platform?: Platform }): Promise<Image> {
  return selectImage(await readOciLayout(dir, options), options.platform);
}

export interface WriteLayoutOptions extends WriteImageOptions {
  fs: FileSystem;
  /** The `org.opencontainers.image.ref.name` to give it. */
  tag?: string;
}

/**
 * Write an image (or index) as an OCI layout. A new directory is built under a temporary name and
 * renamed into place, so a failure leaves nothing; an existing layout gains the image.
 */
export async function writeOciLayout(target: Image | ImageIndex, dir: string, options: WriteLayoutOptions): Promise<Descriptor> {
  const { fs } = options;
  if (await lstatOrUndefined(fs, posix.join(dir, 'oci-layout'))) {
    return (await OciLayout.open(fs, dir)).put(target, options);
  }
  if (!(await isEmptyOrMissing(fs, dir))) throw new DestinationExistsError(dir);
  return buildDirAtomic(fs, dir, async (tmp) => (await OciLayout.create(fs, tmp)).put(target, options));
}

