/**
 * The OCI image layout (docs/reference/oci.md#image-layout-and-oci-archive): `oci-layout`, `index.json`, `blobs/<alg>/<hex>`.
 * Read (nested indexes, Docker media types, gzip/zstd/plain layers) and write, on any injected fs.
 * Blobs are content-addressed and written atomically; `index.json` is replaced atomically last,
 * so a reader sees the old layout or the new one, never a manifest without its blobs.
 */
import { posix } from 'node:path';
import { Readable } from 'node:stream';
import { Content, fileContent, verifiesItself } from '../content';
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
} from '../errors';
import { errnoCode, FileSystem, FsStats, lstatOrUndefined } from '../fs';
import { Layer } from '../layer/layer';
import { isIndexMediaType, isManifestMediaType, MEDIA_TYPES } from '../media-types';
import { EncodeLayerOptions, encodeLayer } from '../tar/write';
import { buildDirAtomic, ensureDir, isEmptyOrMissing, writeFileAtomic, writeStreamAtomic } from '../util/atomic';
import { Image, ImageIndex, selectImage } from '../image/image';
import { checkDigest } from '../image/digest';
import { canonicalJsonBytes } from '../image/json';
import { parseOciDocument } from '../image/schema';
import type { Descriptor, ImageIndexDocument, Platform } from '../image/types';
import { BlobTarget, WriteImageOptions, writeTarget } from '../image/write';
import { BlobSource, DEFAULT_MAX_DOCUMENT_BYTES, DocumentGraph, ImageReadLimits, LayerReadLimits } from './blob-source';
import { writeVerifiedFile } from '../util/verified-write';

export { imageFromDocuments } from './blob-source';
export type { LayerReadLimits };

export const REF_NAME = 'org.opencontainers.image.ref.name';
export const CONTAINERD_NAME = 'io.containerd.image.name';
const LAYOUT_VERSION = '1.0.0';

/** Bounds for reading a layout's documents and layers (see ImageReadLimits for the defaults). */
export type LayoutLimits = ImageReadLimits;

const DEFAULT_MAX_DOCUMENT = DEFAULT_MAX_DOCUMENT_BYTES;

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

/**
 * A blob of the layout at `path`: no component below the layout directory (`blobs`,
 * `blobs/<alg>`, the blob) may be a symlink — one would make us read whatever it names outside
 * the layout — and the blob must be a regular file. Missing → `missing()`.
 */
async function layoutBlobFile(fs: FileSystem, dir: string, path: string, missing: () => Error): Promise<FsStats> {
  const parts = posix.relative(dir, path).split('/');
  for (let i = 1; i <= parts.length; i++) {
    const at = posix.join(dir, ...parts.slice(0, i));
    const st = await lstatOrUndefined(fs, at);
    if (!st) throw missing();
    if (st.isSymbolicLink()) throw new InvalidImageError(`${at} is a symlink; the blobs of an OCI layout must be regular files inside it`, { path: at });
  }
  return regularFile(fs, path, missing, 'blob');
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

export class OciLayout implements BlobTarget, BlobSource {
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

  /** For error messages (BlobSource). */
  get where(): string {
    return this.dir;
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
    const check = () => layoutBlobFile(this.fs, this.dir, path, () => new BlobNotFoundError(descriptor.digest, this.dir));
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
    const st = await layoutBlobFile(this.fs, this.dir, path, () => new BlobNotFoundError(descriptor.digest, this.dir));
    if (st.size !== descriptor.size) throw new SizeMismatchError(descriptor.size, st.size, `blob ${descriptor.digest}`);
    const bytes = await readBounded(this.fs, path, descriptor.size, (seen) => new SizeMismatchError(descriptor.size, seen, `blob ${descriptor.digest}`));
    if (bytes.length !== descriptor.size) throw new SizeMismatchError(descriptor.size, bytes.length, `blob ${descriptor.digest}`);
    const actual = DigestCounter.like(descriptor.digest).update(bytes).digest();
    if (actual !== descriptor.digest) throw new DigestMismatchError(descriptor.digest, actual, 'blob');
    return bytes;
  }

  /** BlobSource: a document read whole and verified (see readBlob). */
  readDocument(descriptor: Descriptor, maxBytes: number): Promise<Buffer> {
    return this.readBlob(descriptor, maxBytes);
  }

  async putBytes(bytes: Buffer, descriptor: Descriptor): Promise<void> {
    const actual = DigestCounter.like(descriptor.digest).update(bytes).digest();
    if (actual !== descriptor.digest) throw new DigestMismatchError(descriptor.digest, actual, 'blob');
    if (await this.has(descriptor)) return;
    await ensureDir(this.fs, posix.dirname(this.blobPath(descriptor.digest)));
    await writeFileAtomic(this.fs, this.blobPath(descriptor.digest), bytes);
  }

  async putContent(content: Content, descriptor: Descriptor): Promise<void> {
    if (await this.has(descriptor)) return;
    const path = this.blobPath(descriptor.digest);
    await ensureDir(this.fs, posix.dirname(path));
    await writeVerifiedFile(this.fs, path, content.open(), descriptor, { sourceVerifies: verifiesItself(content, descriptor) });
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

  /**
   * Load what `descriptor` names: an Image for a manifest, an ImageIndex for an index. One load
   * reads each document once, with the layout's limits (blob-source.ts has the rules).
   */
  async load(descriptor: Descriptor): Promise<Image | ImageIndex> {
    return new DocumentGraph(this, this.limits).load(descriptor);
  }

  // --- writing ----------------------------------------------------------------------------------

  /**
   * Write every blob of `target` (through `session`); when that fails, the blobs this write
   * created that index.json does not reach are removed again, so a failed write leaves the layout
   * as it was. `exclusive` runs the removal (the store passes its lock).
   */
  async writeBlobs(
    target: Image | ImageIndex,
    options: WriteImageOptions = {},
    session: BlobWriteSession = new BlobWriteSession(this),
    exclusive: <T>(fn: () => Promise<T>) => Promise<T> = (fn) => fn(),
  ): Promise<Descriptor> {
    try {
      return await writeTarget(target, session, options);
    } catch (err) {
      await session.discard(err, exclusive).catch(() => undefined);
      throw err;
    }
  }

  /** Write every blob of the target, then tag it in index.json. */
  async put(target: Image | ImageIndex, options: WriteImageOptions & { tag?: string; annotations?: Record<string, string> } = {}): Promise<Descriptor> {
    const descriptor = await this.writeBlobs(target, options);
    await this.tag(descriptor, options.tag, options.annotations);
    return descriptor;
  }

  /** Every blob digest index.json reaches; undefined when a referenced document cannot be read. */
  async reachableBlobs(): Promise<Set<string> | undefined> {
    return reachableBlobs(this, (await this.readIndex()).manifests);
  }

  /** Remove those of `digests` that index.json does not reach (nothing when reachability is unknown). */
  async removeUnreferenced(digests: Iterable<string>): Promise<number> {
    const reached = await this.reachableBlobs();
    if (!reached) return 0;
    let removed = 0;
    for (const digest of digests) {
      if (reached.has(digest)) continue;
      try {
        await this.fs.promises.unlink(this.blobPath(digest));
        removed++;
      } catch (err) {
        if (errnoCode(err) !== 'ENOENT') throw err;
      }
    }
    return removed;
  }
}

/**
 * A BlobTarget over a layout that records every blob an image needs and the ones this write
 * created. `discard` undoes a failed write: it refuses further writes (a failed `writeTarget`
 * does not stop the layer writes already started), waits for those in flight, then removes what
 * it created and nothing references.
 */
export class BlobWriteSession implements BlobTarget {
  /** Every blob the image needs, by digest (for a re-check before it is named). */
  readonly needed = new Map<string, Descriptor>();
  /** Blobs this session wrote (they may have existed already; only unreferenced ones are removed). */
  readonly created = new Set<string>();
  private readonly inFlight = new Set<Promise<unknown>>();
  private abandoned: { reason: unknown } | undefined;

  constructor(readonly layout: OciLayout) {}

  blob(d: Pick<Descriptor, 'digest' | 'size'>): Content {
    return this.layout.blob(d);
  }

  private note(d: Descriptor): void {
    this.needed.set(d.digest, { mediaType: d.mediaType, digest: d.digest, size: d.size });
  }

  private async track<T>(write: () => Promise<T>, digestOf: (result: T) => string | undefined): Promise<T> {
    if (this.abandoned) throw this.abandoned.reason;
    const p = write();
    this.inFlight.add(p);
    try {
      const result = await p;
      const digest = digestOf(result);
      if (digest) this.created.add(digest);
      return result;
    } finally {
      this.inFlight.delete(p);
    }
  }

  async has(d: Descriptor): Promise<boolean> {
    this.note(d);
    return this.layout.has(d);
  }

  async putBytes(bytes: Buffer, d: Descriptor): Promise<void> {
    this.note(d);
    await this.track(() => this.layout.putBytes(bytes, d), () => d.digest);
  }

  async putContent(content: Content, d: Descriptor): Promise<void> {
    this.note(d);
    await this.track(() => this.layout.putContent(content, d), () => d.digest);
  }

  async putLayer(layer: Layer, options: EncodeLayerOptions): Promise<{ encoded: Awaited<ReturnType<typeof encodeLayer>>; blob?: Content }> {
    const { encoded } = await this.track(() => this.layout.putLayer(layer, options), (r) => r.encoded.digest);
    this.note({ mediaType: encoded.mediaType, digest: encoded.digest, size: encoded.size });
    // The blob is not handed back for the image to remember: a blob of a store or a layout can
    // be collected, and a remembered path would then be a dead end for the next write.
    return { encoded };
  }

  /** Stop taking writes, wait for those in flight, and remove the created blobs nothing references. */
  async discard(reason: unknown, exclusive: <T>(fn: () => Promise<T>) => Promise<T> = (fn) => fn()): Promise<number> {
    this.abandoned ??= { reason };
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
    if (this.created.size === 0) return 0;
    return exclusive(() => this.layout.removeUnreferenced(this.created));
  }
}

/** Every blob digest reachable from `roots` in `layout`; undefined when a document could not be read. */
export async function reachableBlobs(layout: OciLayout, roots: readonly Descriptor[]): Promise<Set<string> | undefined> {
  const marked = new Set<string>();
  let complete = true;
  const visit = async (d: Descriptor, depth: number): Promise<void> => {
    if (marked.has(d.digest)) return;
    if (depth > 16) {
      // Deeper than any reader follows: unknown below, so nothing may be swept on its account.
      complete = false;
      return;
    }
    marked.add(d.digest);
    if (!isManifestMediaType(d.mediaType) && !isIndexMediaType(d.mediaType)) return;
    let doc: unknown;
    try {
      doc = JSON.parse((await layout.readBlob(d)).toString('utf8'));
    } catch {
      complete = false;
      return;
    }
    if (!doc || typeof doc !== 'object') {
      complete = false;
      return;
    }
    const { config, layers, manifests } = doc as { config?: unknown; layers?: unknown; manifests?: unknown };
    const children = [config, ...(Array.isArray(layers) ? layers : []), ...(Array.isArray(manifests) ? manifests : [])];
    for (const c of children) {
      if (c && typeof c === 'object' && typeof (c as Descriptor).digest === 'string') await visit(c as Descriptor, depth + 1);
    }
  };
  for (const r of roots) await visit(r, 0);
  return complete ? marked : undefined;
}

export function resolveInIndex(manifests: readonly Descriptor[], ref: string | undefined, where: string): Descriptor {
  if (ref !== undefined && ref !== '') {
    const byRef = manifests.filter((m) => m.annotations?.[REF_NAME] === ref);
    const found = byRef.length > 0 ? byRef : manifests.filter((m) => m.annotations?.[CONTAINERD_NAME] === ref);
    if (found.length === 0) throw new ImageNotFoundError(ref, where);
    return onlyOne(found, ref, where);
  }
  if (manifests.length === 1) return manifests[0];
  if (manifests.length === 0) throw new ImageNotFoundError('(any)', `${where} (the layout holds no image)`);
  const refs = manifests.map((m) => m.annotations?.[REF_NAME] ?? m.digest);
  throw new CloudRootfsError('AMBIGUOUS_IMAGE', `${where} holds ${manifests.length} images; name one of: ${refs.join(', ')}`, {
    refs,
  });
}

/**
 * The one image several index entries with the same name denote: entries for the same document
 * are one image; different ones are AMBIGUOUS_IMAGE (tools disagree on which wins — skopeo takes
 * the first, others the last — so neither is read).
 */
export function onlyOne(found: readonly Descriptor[], name: string, where: string): Descriptor {
  const digests = [...new Set(found.map((m) => m.digest))];
  if (digests.length > 1) {
    throw new CloudRootfsError('AMBIGUOUS_IMAGE', `${where} names ${digests.length} different images ${name}: ${digests.join(', ')}`, { name, digests });
  }
  return found[found.length - 1];
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
  return selectImage(await readOciLayout(dir, options), options.platform, dir);
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

