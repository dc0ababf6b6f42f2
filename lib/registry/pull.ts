/**
 * Pulling images from a registry.
 *
 * `pullImage` reads the documents (the tag's manifest or index, the chosen platforms' manifests
 * and configs: small, verified) and returns an Image or ImageIndex whose layers stay in the
 * registry: a layer is downloaded, and verified, only when something reads it. Unchanged, the
 * result keeps the registry's exact bytes, so writing it anywhere keeps every digest.
 *
 * `pullToLayout` / `pullToStore` download every blob of the chosen platform(s) into a BlobTarget
 * (an OCI layout, the store), through `writeTarget`: bounded parallel layer downloads, each
 * checked against its digest and size before it is renamed into place, manifests last.
 */
import { Content } from '../content';
import { ImageNotFoundError, LimitExceededError, SizeMismatchError, UnsupportedMediaTypeError, UsageError } from '../errors';
import { Image, ImageIndex, selectImage } from '../image/image';
import { hostPlatform, normalizePlatform, parsePlatform, platformMatches, platformNotFound } from '../image/platform';
import type { Descriptor, ImageIndexDocument, Platform } from '../image/types';
import { writeTarget, type BlobTarget, type WriteImageOptions } from '../image/write';
import { BlobSource, DEFAULT_MAX_DOCUMENT_BYTES, DocumentGraph, type ImageReadLimits, type LayerReadLimits } from '../formats/blob-source';
import { OciLayout } from '../formats/layout';
import { StackCheck, diffIdCheckedContent, readCheckedLayer, type CheckedLayer } from '../formats/verify';
import type { BlobLayer } from '../image/layer';
import type { Layer } from '../layer/layer';
import { DEFAULT_MAX_ENTRIES, DEFAULT_MAX_METADATA_BYTES } from '../tar/read';
import { isIndexMediaType, isManifestMediaType } from '../media-types';
import { registryBlobContent } from './blob-content';
import type { RegistryClient } from './client';
import { choosePullSource, manifestRef, parseRemoteReference, type RegistryAccessOptions, type RemoteReference } from './remote';
import type { RegistryProgress } from './target';

/** Child manifests fetched at once when an index is read. */
const DOCUMENT_CONCURRENCY = 4;

export type PlatformChoice = Platform | string;

export interface PullOptions extends RegistryAccessOptions {
  /** One platform: the result is that platform's Image (an index is resolved). */
  platform?: PlatformChoice;
  /**
   * Several platforms: an index of those (an Image when the tag names one manifest); `'all'`:
   * exactly what the tag names. `pullImage` defaults to `'all'`; the downloading functions to the
   * host's platform, as `docker pull` does.
   */
  platforms?: readonly PlatformChoice[] | 'all';
  /**
   * Redirect registries: `{ 'docker.io': 'mirror.local:5000' }` reads Docker Hub names from the
   * mirror only. Mirrors tried before the registry itself come from registries.conf
   * (`registriesConf`).
   */
  mirrors?: Readonly<Record<string, string>>;
  signal?: AbortSignal;
  /**
   * Bounds for what the registry serves: document size (default 4 MiB), index nesting (8), index
   * entries reachable (10,000), layers per image (1,000), and the limits for reading layers
   * (`layerLimits`; its `maxUncompressedBytes` also bounds the diff_id check of a download).
   */
  limits?: ImageReadLimits;
}

/** The image (or index) a `docker://` reference names, with lazy, verified layers. */
export async function pullImage(reference: string, options: PullOptions = {}): Promise<Image | ImageIndex> {
  const ref = parseRemoteReference(reference);
  return loadRemote(ref, options, options.platform !== undefined || options.platforms !== undefined ? options : { ...options, platforms: 'all' });
}

/** For the transports dispatcher: `docker://…` → what the tag names, every platform, lazy layers. */
export async function loadRegistryTarget(
  reference: string,
  options: RegistryAccessOptions & Pick<PullOptions, 'mirrors' | 'signal' | 'limits'> = {},
): Promise<Image | ImageIndex> {
  return pullImage(reference, { ...options, platforms: 'all' });
}

export interface PullToOptions extends PullOptions {
  /** Layers downloaded at once (default 4). */
  layerConcurrency?: number;
  onProgress?: (event: RegistryProgress) => void;
}

export interface PullResult {
  reference: string;
  /** What was written: the manifest (one platform) or index (several) descriptor. */
  descriptor: Descriptor;
  target: Image | ImageIndex;
}

/** A BlobTarget that can also name what it holds (an OciLayout: `org.opencontainers.image.ref.name`). */
export interface TaggableBlobTarget extends BlobTarget {
  tag?(descriptor: Descriptor, tag?: string): Promise<void>;
}

/**
 * Download the chosen platform(s) (default: the host's) into `layout`, verifying every blob, and
 * name the result `options.tag` in it when given.
 */
export async function pullToLayout(reference: string, layout: TaggableBlobTarget, options: PullToOptions & { tag?: string } = {}): Promise<PullResult> {
  const ref = parseRemoteReference(reference);
  const streamed = new StreamedLayers(options.limits?.layerLimits ?? {});
  const target = await loadRemote(ref, withDefaultPlatform(options), withDefaultPlatform(options), streamed);
  // A layout takes back what a failed download wrote; other targets get writeTarget's order only.
  const write = writeOptions(options, streamed);
  const descriptor = layout instanceof OciLayout ? await layout.writeBlobs(target, write) : await writeTarget(target, layout, write);
  if (options.tag !== undefined && layout.tag) await layout.tag(descriptor, options.tag);
  return { reference: ref.name, descriptor, target };
}

/** What `pullToStore` and `resolveBase` need of the image store. */
export interface ImageStoreLike {
  put(target: Image | ImageIndex, name: string, options?: WriteImageOptions): Promise<Descriptor>;
  /** Store without a name (for references by digest alone); loaded back by digest. */
  putUntagged?(target: Image | ImageIndex, options?: WriteImageOptions): Promise<Descriptor>;
  loadTarget(name: string): Promise<Image | ImageIndex>;
}

/**
 * Download the chosen platform(s) into the store under `name` (default: the normalized reference,
 * `HOST/REPO:TAG`; a reference by digest alone needs a name) and return the stored image, read
 * back from the store.
 */
export async function pullToStore(
  reference: string,
  store: ImageStoreLike,
  options: PullToOptions & { name?: string } = {},
): Promise<PullResult & { name: string }> {
  const ref = parseRemoteReference(reference);
  // Layers are checked against their diff_ids as they download: the store never names an image
  // whose config lies about its layers.
  const streamed = new StreamedLayers(options.limits?.layerLimits ?? {});
  const target = await loadRemote(ref, withDefaultPlatform(options), withDefaultPlatform(options), streamed);
  if (options.name === undefined && ref.tag === undefined) {
    if (!store.putUntagged) throw new UsageError(`${reference} names a digest only: give the name to store it under`);
    const descriptor = await store.putUntagged(target, writeOptions(options, streamed));
    return { reference: ref.name, descriptor, target: await store.loadTarget(descriptor.digest), name: descriptor.digest };
  }
  const name = options.name ?? `${ref.registry}/${ref.repository}:${ref.tag}`;
  const descriptor = await store.put(target, name, writeOptions(options, streamed));
  const stored = await store.loadTarget(name);
  return { reference: ref.name, descriptor, target: stored, name };
}

export interface ResolveBaseOptions extends PullToOptions {
  store: ImageStoreLike;
  /** `missing` (default): pull only when the store lacks it; `always`: pull first; `never`: the store or IMAGE_NOT_FOUND. */
  pull?: 'missing' | 'always' | 'never';
  /** Name in the store (default: the normalized reference). */
  name?: string;
}

/**
 * A Kubefile's `FROM`: the image from the store, pulled into it first when missing (or always).
 * Names without a registry mean Docker Hub, as in docker (`kubernetes:v1.22` →
 * `docker.io/library/kubernetes:v1.22`).
 */
export async function resolveBase(reference: string, options: ResolveBaseOptions): Promise<Image | ImageIndex> {
  const ref = parseRemoteReference(reference);
  const canonical = ref.tag !== undefined ? `${ref.registry}/${ref.repository}:${ref.tag}` : ref.digest!;
  const names = [...new Set([options.name ?? canonical, reference.replace(/^docker:\/\//, '')])];
  const policy = options.pull ?? 'missing';
  if (policy !== 'always') {
    for (const name of names) {
      try {
        return await options.store.loadTarget(name);
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
    if (policy === 'never') throw new ImageNotFoundError(ref.name, 'the image store (pulling is disabled)');
  }
  return (await pullToStore(reference, options.store, { ...options, name: options.name ?? (ref.tag !== undefined ? canonical : undefined) })).target;
}

function isNotFound(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  return code === 'IMAGE_NOT_FOUND' || code === 'NOT_FOUND';
}

// ------------------------------------------------------------------ reading documents

interface Remote {
  client: RegistryClient;
  repository: string;
  onBytes?: (digest: string, done: number, total: number) => void;
}

type Wanted = 'all' | Platform[];

function wantedPlatforms(options: PullOptions): Wanted {
  if (options.platform !== undefined) return [toPlatform(options.platform)];
  if (options.platforms === undefined || options.platforms === 'all') return 'all';
  return options.platforms.map(toPlatform);
}

function toPlatform(p: PlatformChoice): Platform {
  return typeof p === 'string' ? parsePlatform(p) : normalizePlatform(p);
}

/** The host's platform when none is asked for, as `docker pull` does (marked: a single-platform image is then taken as it is). */
function withDefaultPlatform<T extends PullOptions>(options: T): T {
  if (options.platform !== undefined || options.platforms !== undefined) return options;
  return { ...options, platform: hostPlatform(), [DEFAULTED]: true };
}

const DEFAULTED = Symbol('platform defaulted');

function writeOptions(options: PullToOptions, streamed: StreamedLayers): WriteImageOptions {
  return {
    layerConcurrency: options.layerConcurrency ?? 4,
    onProgress: options.onProgress,
    beforeManifest: (image, target) => streamed.checkStack(image, target),
  };
}

/**
 * The layers a pull parsed while they streamed into the destination (each checked on its own:
 * diff_id, every entry, the limits), held until their image's stack is checked — before its
 * manifest is written, so an image whose layers only together go wrong (a hardlink to a file in
 * no layer) is never named either. A layer the destination already had is read back from it.
 * What is held is bounded like a stack: `maxEntries` entries in all.
 */
class StreamedLayers {
  private readonly parsed = new Map<string, CheckedLayer>();
  private held = 0;
  private heldBytes = 0;

  constructor(readonly limits: LayerReadLimits) {}

  private static key(digest: string, diffId: string): string {
    return `${digest} ${diffId}`;
  }

  /** For diffIdCheckedContent: keep a parsed layer (a throw fails its stream). */
  recorder(digest: string, diffId: string): (layer: Layer, entries: number, metadataBytes: number) => void {
    return (layer, entries, metadataBytes) => {
      const max = this.limits.maxEntries ?? DEFAULT_MAX_ENTRIES;
      if (this.held + entries > max) throw new LimitExceededError('maxEntries', max, `the layers of one image together (${this.held + entries} entries)`);
      const maxBytes = this.limits.maxMetadataBytes ?? DEFAULT_MAX_METADATA_BYTES;
      if (this.heldBytes + metadataBytes > maxBytes) {
        throw new LimitExceededError('maxMetadataBytes', maxBytes, 'names, link targets and xattrs of the layers of one image together');
      }
      this.held += entries;
      this.heldBytes += metadataBytes;
      this.parsed.set(StreamedLayers.key(digest, diffId), { layer, entries, metadataBytes });
    };
  }

  async checkStack(image: Image, target: BlobTarget): Promise<void> {
    const stack = new StackCheck(this.limits.maxEntries, this.limits.maxMetadataBytes);
    for (const l of image.layers) {
      if (l.kind !== 'blob') {
        stack.add(l.layer, l.layer.stats().entries);
        continue;
      }
      const got = this.parsed.get(StreamedLayers.key(l.descriptor.digest, l.diffId)) ?? (await this.readBack(l, target));
      if (!got) return; // a destination that cannot give blobs back: each layer was checked alone
      stack.add(got.layer, got.entries, got.metadataBytes);
    }
    for (const l of image.layers) {
      if (l.kind !== 'blob') continue;
      const key = StreamedLayers.key(l.descriptor.digest, l.diffId);
      this.held -= this.parsed.get(key)?.entries ?? 0;
      this.heldBytes -= this.parsed.get(key)?.metadataBytes ?? 0;
      this.parsed.delete(key);
    }
  }

  private async readBack(l: BlobLayer, target: BlobTarget): Promise<CheckedLayer | undefined> {
    return target.blob ? readCheckedLayer(target.blob(l.descriptor), l.descriptor, l.diffId, this.limits) : undefined;
  }
}

/**
 * One repository as a BlobSource for the shared document reader (formats/blob-source.ts):
 * manifests and indexes by digest (verified by the client, size checked here), configs as blobs
 * (verified), layers as lazy registry blobs — with their diff_id checked as they stream when the
 * pull downloads them into a destination.
 */
class RegistrySource implements BlobSource {
  readonly where: string;
  /** The document the tag named, already fetched. */
  readonly prefetched = new Map<string, Buffer>();

  constructor(
    private readonly remote: Remote,
    private readonly streamed: StreamedLayers | undefined,
  ) {
    this.where = `${remote.client.registry}/${remote.repository}`;
  }

  blob(d: Pick<Descriptor, 'digest' | 'size'>, diffId?: string): Content {
    const content = registryBlobContent(this.remote.client, this.remote.repository, d, { onBytes: this.remote.onBytes });
    const s = this.streamed;
    return s && diffId ? diffIdCheckedContent(content, diffId, { ...s.limits, onLayer: s.recorder(d.digest, diffId) }) : content;
  }

  async readDocument(d: Descriptor, maxBytes: number): Promise<Buffer> {
    const { client, repository } = this.remote;
    let bytes = this.prefetched.get(d.digest);
    if (!bytes && (isManifestMediaType(d.mediaType) || isIndexMediaType(d.mediaType))) {
      bytes = (await client.getManifest(repository, d.digest, { maxBytes })).bytes; // checked against the digest
    }
    if (!bytes) {
      const parts: Buffer[] = [];
      // A config: the client checks size (as declared, and as it streams) and digest.
      for await (const chunk of await client.getBlob(repository, d.digest, { expectedSize: d.size })) parts.push(chunk as Buffer);
      bytes = Buffer.concat(parts);
    }
    if (bytes.length !== d.size) throw new SizeMismatchError(d.size, bytes.length, `${d.digest} in ${this.where}`);
    return bytes;
  }
}

async function loadRemote(
  ref: RemoteReference,
  access: RegistryAccessOptions & { mirrors?: PullOptions['mirrors'] },
  selection: PullOptions & PullToOptions,
  streamed?: StreamedLayers,
): Promise<Image | ImageIndex> {
  const onProgress = selection.onProgress;
  const limits = selection.limits ?? {};
  // The mirror (or the registry) that serves the top manifest serves the whole image.
  const chosen = await choosePullSource(ref, access, (client, reference) =>
    client.getManifest(reference.repository, manifestRef(reference), { maxBytes: limits.maxDocumentBytes ?? DEFAULT_MAX_DOCUMENT_BYTES, signal: selection.signal }),
  );
  const remote: Remote = {
    client: chosen.client,
    repository: chosen.reference.repository,
    onBytes: onProgress ? (digest, done, total) => onProgress({ phase: 'bytes', digest, done, total }) : undefined,
  };
  const wanted = wantedPlatforms(selection);
  const defaulted = (selection as { [DEFAULTED]?: boolean })[DEFAULTED] === true;
  const source = new RegistrySource(remote, streamed);
  const m = chosen.value;
  const where = `${source.where}@${m.digest}`;
  if (m.mediaType.startsWith('application/vnd.docker.distribution.manifest.v1')) {
    throw new UnsupportedMediaTypeError(m.mediaType, `${where}: Docker schema 1 images are not supported (re-push the image with a current client)`);
  }
  if (!isManifestMediaType(m.mediaType) && !isIndexMediaType(m.mediaType)) throw new UnsupportedMediaTypeError(m.mediaType, where);
  source.prefetched.set(m.digest, m.bytes);
  const graph = new DocumentGraph(source, {
    ...limits,
    concurrency: DOCUMENT_CONCURRENCY,
    // Nested indexes are always followed: the platforms they hold are known only inside.
    ...(wanted === 'all' ? {} : { accept: (d: Descriptor) => isIndexMediaType(d.mediaType) || wanted.some((w) => platformMatches(w, d.platform)) }),
  });
  const target = await graph.load({ mediaType: m.mediaType, digest: m.digest, size: m.bytes.length });
  if (wanted !== 'all' && target instanceof ImageIndex && target.manifests.length === 0) {
    const listed = (JSON.parse(m.bytes.toString('utf8')) as ImageIndexDocument).manifests ?? [];
    throw platformNotFound(wanted, listed.map((d) => d.platform), where);
  }
  // A tag that names one manifest: it is the image only for the platform it is for — unless the
  // platform was not asked for (the host's by default), where docker pulls it whatever it is.
  if (wanted !== 'all' && target instanceof Image && !defaulted && !wanted.some((w) => platformMatches(w, target.platform))) {
    throw platformNotFound(wanted, [target.platform], where);
  }
  if (selection.platform !== undefined) return selectImage(target, toPlatform(selection.platform), where);
  return target;
}
