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
import { CloudRootfsError, ImageNotFoundError, LimitExceededError, UnsupportedMediaTypeError, UsageError } from '../errors';
import { Image, ImageIndex, IndexEntry } from '../image/image';
import { hostPlatform, normalizePlatform, parsePlatform, platformMatches, formatPlatform } from '../image/platform';
import { parseOciDocument } from '../image/schema';
import type { Descriptor, ImageConfigDocument, ImageIndexDocument, ImageManifest, Platform } from '../image/types';
import { writeTarget, type BlobTarget, type WriteImageOptions } from '../image/write';
import { imageFromDocuments } from '../formats/layout';
import { isIndexMediaType, isManifestMediaType, MEDIA_TYPES } from '../media-types';
import { registryBlobContent } from './blob-content';
import type { RegistryClient } from './client';
import { clientFor, manifestRef, parseRemoteReference, type RegistryAccessOptions, type RemoteReference } from './remote';
import type { RegistryProgress } from './target';

/** Largest config document read (as for layouts: registries cap manifests at 4 MiB too). */
const MAX_CONFIG_BYTES = 4 << 20;
const MAX_NESTING = 8;
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
  /** Redirect registries: `{ 'docker.io': 'mirror.local:5000' }` reads Docker Hub names from the mirror. */
  mirrors?: Readonly<Record<string, string>>;
  signal?: AbortSignal;
}

/** The image (or index) a `docker://` reference names, with lazy, verified layers. */
export async function pullImage(reference: string, options: PullOptions = {}): Promise<Image | ImageIndex> {
  const ref = parseRemoteReference(reference);
  return loadRemote(ref, options, options.platform !== undefined || options.platforms !== undefined ? options : { ...options, platforms: 'all' });
}

/** For the transports dispatcher: `docker://…` → what the tag names, every platform, lazy layers. */
export async function loadRegistryTarget(reference: string, options: RegistryAccessOptions & { mirrors?: PullOptions['mirrors']; signal?: AbortSignal } = {}): Promise<Image | ImageIndex> {
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
  const target = await loadRemote(ref, withDefaultPlatform(options), withDefaultPlatform(options));
  const descriptor = await writeTarget(target, layout, writeOptions(options));
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
  const target = await loadRemote(ref, withDefaultPlatform(options), withDefaultPlatform(options));
  if (options.name === undefined && ref.tag === undefined) {
    if (!store.putUntagged) throw new UsageError(`${reference} names a digest only: give the name to store it under`);
    const descriptor = await store.putUntagged(target, writeOptions(options));
    return { reference: ref.name, descriptor, target: await store.loadTarget(descriptor.digest), name: descriptor.digest };
  }
  const name = options.name ?? `${ref.registry}/${ref.repository}:${ref.tag}`;
  const descriptor = await store.put(target, name, writeOptions(options));
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

function withDefaultPlatform<T extends PullOptions>(options: T): T {
  return options.platform !== undefined || options.platforms !== undefined ? options : { ...options, platform: hostPlatform() };
}

function writeOptions(options: PullToOptions): WriteImageOptions {
  return {
    layerConcurrency: options.layerConcurrency ?? 4,
    onProgress: options.onProgress,
  };
}

async function loadRemote(ref: RemoteReference, access: RegistryAccessOptions & { mirrors?: PullOptions['mirrors'] }, selection: PullOptions & PullToOptions): Promise<Image | ImageIndex> {
  const registry = access.mirrors?.[ref.registry] ?? ref.registry;
  const onProgress = selection.onProgress;
  const remote: Remote = {
    client: clientFor(registry, access),
    repository: ref.repository,
    onBytes: onProgress ? (digest, done, total) => onProgress({ phase: 'bytes', digest, done, total }) : undefined,
  };
  const wanted = wantedPlatforms(selection);
  const target = await loadReference(remote, manifestRef(ref), wanted, 0);
  if (selection.platform !== undefined && target instanceof ImageIndex) return target.select(toPlatform(selection.platform));
  return target;
}

async function loadReference(remote: Remote, ref: string, wanted: Wanted, depth: number): Promise<Image | ImageIndex> {
  if (depth > MAX_NESTING) throw new LimitExceededError('maxNesting', MAX_NESTING, `index nesting at ${ref}`);
  const m = await remote.client.getManifest(remote.repository, ref);
  const descriptor: Descriptor = { mediaType: m.mediaType, digest: m.digest, size: m.bytes.length };
  const where = `${remote.client.registry}/${remote.repository}@${m.digest}`;
  if (isManifestMediaType(m.mediaType)) return loadImage(remote, m.bytes, descriptor, where);
  if (isIndexMediaType(m.mediaType)) return loadIndex(remote, m.bytes, descriptor, wanted, depth, where);
  if (m.mediaType.startsWith('application/vnd.docker.distribution.manifest.v1')) {
    throw new UnsupportedMediaTypeError(m.mediaType, `${where}: Docker schema 1 images are not supported (re-push the image with a current client)`);
  }
  throw new UnsupportedMediaTypeError(m.mediaType, where);
}

async function loadImage(remote: Remote, bytes: Buffer, descriptor: Descriptor, where: string): Promise<Image> {
  const kind = descriptor.mediaType === MEDIA_TYPES.dockerManifest ? 'docker-manifest' : 'manifest';
  const manifest = parseOciDocument<ImageManifest>(kind, bytes, { file: `${where} (manifest)` });
  const configBytes = await readSmallBlob(remote, manifest.config, where);
  const config = parseOciDocument<ImageConfigDocument>('config', configBytes, { file: `${where} (config)`, checkHistory: false });
  return imageFromDocuments(manifest, bytes, descriptor, config, configBytes, (d) => blobContent(remote, d), where);
}

function blobContent(remote: Remote, d: Descriptor): Content {
  return registryBlobContent(remote.client, remote.repository, d, { onBytes: remote.onBytes });
}

async function readSmallBlob(remote: Remote, d: Descriptor, where: string): Promise<Buffer> {
  if (d.size > MAX_CONFIG_BYTES) throw new LimitExceededError('maxDocumentBytes', MAX_CONFIG_BYTES, `${where}: config ${d.digest} (${d.size} bytes)`);
  const stream = await remote.client.getBlob(remote.repository, d.digest, { expectedSize: d.size });
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}

async function loadIndex(remote: Remote, bytes: Buffer, descriptor: Descriptor, wanted: Wanted, depth: number, where: string): Promise<ImageIndex> {
  const kind = descriptor.mediaType === MEDIA_TYPES.dockerManifestList ? 'docker-manifest-list' : 'index';
  const doc = parseOciDocument<ImageIndexDocument>(kind, bytes, { file: `${where} (index)` });
  let complete = true;
  const chosen: Descriptor[] = [];
  for (const m of doc.manifests) {
    // Attestations and other artifacts are not images: left out, as the layout reader does.
    const usable = (isManifestMediaType(m.mediaType) || isIndexMediaType(m.mediaType)) && m.platform?.os !== 'unknown';
    const fits = wanted === 'all' || isIndexMediaType(m.mediaType) || wanted.some((w) => platformMatches(w, m.platform));
    if (usable && fits) chosen.push(m);
    else complete = false;
  }
  const loaded = await mapLimited(chosen, DOCUMENT_CONCURRENCY, (m) => loadReference(remote, m.digest, wanted, depth + 1));
  const entries: IndexEntry[] = [];
  loaded.forEach((image, i) => {
    const m = chosen[i];
    if (image instanceof ImageIndex && image.manifests.length === 0) {
      complete = false;
      return;
    }
    if (image instanceof ImageIndex && !image.stored) complete = false;
    entries.push({ image, platform: m.platform, annotations: m.annotations });
  });
  if (wanted !== 'all' && entries.length === 0 && depth === 0) {
    const available = doc.manifests.flatMap((m) => (m.platform ? [m.platform] : []));
    throw new CloudRootfsError(
      'PLATFORM_NOT_FOUND',
      `${where} has no image for platform ${wanted.map(formatPlatform).join(', ')} (have: ${available.map(formatPlatform).join(', ') || 'none'})`,
      { platform: wanted, available },
    );
  }
  return new ImageIndex(entries, doc.annotations ?? {}, complete ? { index: bytes, descriptor } : undefined);
}

async function mapLimited<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]);
      }
    }),
  );
  return out;
}


