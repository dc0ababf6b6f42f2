/**
 * The `registry/` a CloudRootfs carries: the container images it needs, for one platform, in
 * distribution's storage layout, as one last layer of the image.
 *
 * Each image is fetched from its registry (or a mirror), or from a local source (`oci:`,
 * `oci-archive:`, `docker-archive:`, or an Image already loaded) so a build can run offline. As
 * sealer's saver does, the tag's manifest is stored as the registry serves it (an index stays an
 * index), plus the chosen platform's manifest, config and layers only. The repository is the name
 * without its registry (`quay.io/coreos/flannel:v1` → `coreos/flannel`). Blobs shared between
 * images, or already in the base image's `registry/`, are stored once.
 *
 * Blobs stream to disk under `workDir` (never held in memory) and the layer is read from there:
 * keep `workDir` until the image has been written, then remove it.
 */
import { posix } from 'node:path';
import { withAttributes, type Entry } from '../../entry';
import { CloudRootfsError, DestinationExistsError, ImageNotFoundError, UnsupportedMediaTypeError, UsageError } from '../../errors';
import { diskFs, type FileSystem } from '../../fs';
import { Image, ImageIndex } from '../../image/image';
import { hostPlatform, normalizePlatform, parsePlatform, platformMatches, platformNotFound } from '../../image/platform';
import { parseOciDocument } from '../../image/schema';
import type { Descriptor, ImageIndexDocument, ImageManifest, Platform } from '../../image/types';
import { writeTarget } from '../../image/write';
import { Layer } from '../../layer/layer';
import { isLocalImageRef, loadLocalTarget } from '../../formats/local';
import { isIndexMediaType, isManifestMediaType, MEDIA_TYPES } from '../../media-types';
import { formatReference, parseDockerReference, withDefaultTag, type DockerReference } from '../../reference/docker';
import { readRootfsFromDirectory } from '../../rootfs/io';
import { Rootfs } from '../../rootfs/rootfs';
import { getContainerImages, withContainerImages, type ContainerImageRef } from '../../sealer/extension';
import { parseImageRef } from '../../reference/transport';
import { isEmptyOrMissing, ensureDir } from '../../util/atomic';
import { registryBlobContent } from '../blob-content';
import { choosePullSource, manifestRef, RegistryClientPool, type RegistryAccessOptions } from '../remote';
import type { RegistryCredentials } from '../auth-file';
import type { CollectedImage } from './collect';
import { blobDataPath, DistributionStorage, type StorageStats } from './storage';
import { mapLimited } from '../../util/concurrency';

/**
 * An image to embed: a name, a container-image reference, a collected image, or any of these with
 * the credentials to fetch it with (`--image-list-with-auth`), which then win over the auth files.
 */
export type EmbeddedImageRequest = string | ContainerImageRef | CollectedImage | AuthenticatedImageRequest;

export interface AuthenticatedImageRequest {
  image: string;
  appName?: string;
  credentials: RegistryCredentials;
}

export interface BuildRegistryOptions extends RegistryAccessOptions {
  /** Where `registry/` is assembled (`<workDir>/registry`); must be empty or missing. */
  workDir: string;
  /** Filesystem of `workDir` and of local sources (default: the disk). */
  fs?: FileSystem;
  /** The platform to embed (default: the host's). */
  platform?: Platform | string;
  /**
   * Local sources by image: `{ 'docker.io/library/nginx:1.25': 'oci:/cache/nginx:1.25' }` (keys are
   * normalized before matching; values are references or loaded images).
   */
  sources?: Readonly<Record<string, string | Image | ImageIndex>>;
  /** Loads a source reference (default: `oci:`, `oci-archive:` and `docker-archive:` from `fs`). */
  load?: (reference: string) => Promise<Image | ImageIndex>;
  /**
   * Registry host → mirror host to fetch from instead (`{ 'docker.io': 'mirror.local:5000' }`).
   * Mirrors tried before the registry come from registries.conf (`registriesConf`).
   */
  mirrors?: Readonly<Record<string, string>>;
  /** Never contact a registry: every image needs a local source. */
  offline?: boolean;
  /** Images fetched at once (default 2). */
  concurrency?: number;
  /** Blobs of one image fetched at once (default 3). */
  blobConcurrency?: number;
  /** The rootfs below the new layer: blobs its `registry/` holds are linked, not stored again. */
  base?: Rootfs;
  onProgress?: (event: { image: string; phase: 'fetching' | 'stored'; digest?: string }) => void;
}

export interface EmbeddedImage {
  /** The normalized reference asked for. */
  image: string;
  appName?: string;
  /** The repository in `registry/` (the name without its registry). */
  repository: string;
  tag?: string;
  /** What the tag names there: the source's manifest or index, byte for byte. */
  digest: string;
  mediaType: string;
  /** The chosen platform's manifest. */
  platformDigest: string;
  platform: Platform;
  source: 'registry' | 'local';
}

export interface RegistryLayer {
  /** The layer adding `registry/…` (to put on top of the image). */
  layer: Layer;
  /** `registry/` as a Rootfs of its own. */
  rootfs: Rootfs;
  /** `<workDir>/registry`: a registry's `rootdirectory` serving these images. */
  root: string;
  images: EmbeddedImage[];
  /** For the `sealer.image.container.images` annotation. */
  containerImages: ContainerImageRef[];
  stats: StorageStats;
}

/** Fetch `images` for one platform into `<workDir>/registry` and make the layer that carries it. */
export async function buildRegistryLayer(images: readonly EmbeddedImageRequest[], options: BuildRegistryOptions): Promise<RegistryLayer> {
  const fs = options.fs ?? diskFs;
  if (!options.workDir) throw new UsageError('buildRegistryLayer needs a workDir');
  const root = posix.join(options.workDir, 'registry');
  if (!(await isEmptyOrMissing(fs, root))) throw new DestinationExistsError(root);
  await ensureDir(fs, root);

  const platform = typeof options.platform === 'string' ? parsePlatform(options.platform) : normalizePlatform(options.platform ?? hostPlatform());
  const requests = normalizeRequests(images);
  const base = options.base;
  const storage = new DistributionStorage(fs, root, {
    preexisting: base ? (digest) => base.get(`registry/${blobDataPath(digest)}`)?.type === 'file' : undefined,
  });
  const pool = options.clients ?? new RegistryClientPool(options);
  // One pool per set of per-image credentials, so each login reaches only its own images.
  const pools = new Map<string, RegistryClientPool>();
  const poolFor = (credentials: RegistryCredentials | undefined): RegistryClientPool => {
    if (!credentials) return pool;
    const key = JSON.stringify([credentials.username, credentials.password]);
    let p = pools.get(key);
    if (!p) {
      const { clients: _ignored, ...rest } = options;
      void _ignored;
      p = new RegistryClientPool({ ...rest, credentials });
      pools.set(key, p);
    }
    return p;
  };
  const sources = new Map<string, string | Image | ImageIndex>();
  for (const [name, source] of Object.entries(options.sources ?? {})) sources.set(normalizeName(name), source);

  // One fetch per image; every (image, appName) pair is still recorded.
  const unique = [...new Map(requests.map((r) => [r.image, r])).values()];
  const fetched = await mapLimited(unique, options.concurrency ?? 2, async (request) => {
    options.onProgress?.({ image: request.image, phase: 'fetching' });
    const ref = withDefaultTag(parseDockerReference(request.image));
    const local = sources.get(request.image);
    const embedded = local !== undefined
      ? await storeLocal(storage, ref, request.image, await loadLocal(local, options, fs), platform)
      : options.offline
        ? missingOffline(request.image)
        : await storeRemote(storage, poolFor(request.credentials), ref, request.image, platform, options);
    options.onProgress?.({ image: request.image, phase: 'stored', digest: embedded.digest });
    return embedded;
  });
  const byImage = new Map(fetched.map((e) => [e.image, e]));

  const rootfs = normalizeAttributes(await readRootfsFromDirectory(root, { fs, owner: { uid: 0, gid: 0 }, mtime: 0 }));
  const layer = Layer.fromRootfs(Rootfs.empty().withSubtree('registry', rootfs));
  const platformRef = { os: platform.os, architecture: platform.architecture, ...(platform.variant ? { variant: platform.variant } : {}) };
  return {
    layer,
    rootfs,
    root,
    images: requests.map((r) => ({ ...byImage.get(r.image)!, ...(r.appName ? { appName: r.appName } : {}) })),
    containerImages: requests.map((r) => ({ image: r.image, ...(r.appName ? { appName: r.appName } : {}), platform: platformRef })),
    stats: storage.stats,
  };
}

/**
 * `image` with the registry layer on top and the embedded images recorded in the
 * `sealer.image.container.images` annotation (merged with what it already lists).
 */
export function withEmbeddedRegistry(image: Image, registry: RegistryLayer, createdBy?: string): Image {
  const withLayer = image.withLayer(registry.layer, {
    created_by: createdBy ?? `cloudrootfs: registry/ with ${registry.images.length} container image(s)`,
  });
  const merged = [...getContainerImages(image)];
  const key = (i: ContainerImageRef) => `${i.image}\n${i.appName ?? ''}`;
  const seen = new Set(merged.map(key));
  for (const i of registry.containerImages) if (!seen.has(key(i))) merged.push(i);
  return withContainerImages(withLayer, merged);
}

// ------------------------------------------------------------------ fetching

interface NormalizedRequest {
  image: string;
  appName?: string;
  credentials?: RegistryCredentials;
}

function normalizeName(name: string): string {
  return formatReference(withDefaultTag(parseDockerReference(name.trim())));
}

function normalizeRequests(images: readonly EmbeddedImageRequest[]): NormalizedRequest[] {
  const out: NormalizedRequest[] = [];
  const seen = new Set<string>();
  const credentials = new Map<string, RegistryCredentials>();
  for (const item of images) {
    const text = typeof item === 'string' ? item : item.image;
    const image = normalizeName(text);
    const appName = typeof item === 'string' ? undefined : item.appName;
    if (typeof item !== 'string' && 'credentials' in item && item.credentials) credentials.set(image, item.credentials);
    const key = `${image}\n${appName ?? ''}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ image, ...(appName ? { appName } : {}) });
  }
  // An image asked for with credentials is fetched with them, whoever else asked for it.
  return out.map((r) => (credentials.has(r.image) ? { ...r, credentials: credentials.get(r.image) } : r));
}

function missingOffline(image: string): never {
  throw new ImageNotFoundError(image, 'the local sources (offline: no registry is contacted)');
}

async function loadLocal(source: string | Image | ImageIndex, options: BuildRegistryOptions, fs: FileSystem): Promise<Image | ImageIndex> {
  if (typeof source !== 'string') return source;
  if (options.load) return options.load(source);
  const ref = parseImageRef(source);
  if (!isLocalImageRef(ref)) {
    throw new UsageError(`local source ${source}: expected oci:, oci-archive: or docker-archive: (or pass options.load)`);
  }
  return loadLocalTarget(ref, fs);
}

async function storeRemote(
  storage: DistributionStorage,
  pool: RegistryClientPool,
  ref: DockerReference,
  image: string,
  platform: Platform,
  options: BuildRegistryOptions,
): Promise<EmbeddedImage> {
  // The mirror (or the registry) that serves the top manifest serves the whole image.
  const { client, reference, value: top } = await choosePullSource(ref, { ...options, clients: pool }, (c, r) => c.getManifest(r.repository, manifestRef(r)));
  // Stored under the name asked for, wherever it was read from.
  const repository = ref.repository;
  const source = reference.repository;
  const where = `${client.registry}/${source}@${top.digest}`;
  let chosen = top;
  if (isIndexMediaType(top.mediaType)) {
    const kind = top.mediaType === MEDIA_TYPES.dockerManifestList ? 'docker-manifest-list' : 'index';
    const index = parseOciDocument<ImageIndexDocument>(kind, top.bytes, { file: `${where} (index)` });
    const match = index.manifests.find((m) => isManifestMediaType(m.mediaType) && m.platform?.os !== 'unknown' && platformMatches(platform, m.platform));
    if (!match) throw noPlatform(image, platform, index.manifests);
    chosen = await client.getManifest(source, match.digest);
  } else if (!isManifestMediaType(top.mediaType)) {
    throw new UnsupportedMediaTypeError(top.mediaType, where);
  }
  const kind = chosen.mediaType === MEDIA_TYPES.dockerManifest ? 'docker-manifest' : 'manifest';
  const manifest = parseOciDocument<ImageManifest>(kind, chosen.bytes, { file: `${where} (manifest)` });
  const blobs: Descriptor[] = [manifest.config, ...manifest.layers];
  await mapLimited(blobs, options.blobConcurrency ?? 3, async (d) => {
    await storage.putBlobContent(registryBlobContent(client, source, d), d);
    await storage.linkBlob(repository, d.digest);
  });
  // Manifests after their blobs, the tag last.
  await storage.putBlobBytes(chosen.bytes, chosen.digest);
  await storage.linkManifest(repository, chosen.digest);
  if (chosen !== top) {
    await storage.putBlobBytes(top.bytes, top.digest);
    await storage.linkManifest(repository, top.digest);
  }
  if (ref.tag !== undefined) await storage.tag(repository, ref.tag, top.digest);
  return {
    image,
    repository,
    ...(ref.tag !== undefined ? { tag: ref.tag } : {}),
    digest: top.digest,
    mediaType: top.mediaType,
    platformDigest: chosen.digest,
    platform,
    source: 'registry',
  };
}

async function storeLocal(storage: DistributionStorage, ref: DockerReference, image: string, target: Image | ImageIndex, platform: Platform): Promise<EmbeddedImage> {
  const repository = ref.repository;
  const writer = storage.repository(repository);
  const selected = target instanceof ImageIndex ? target.select(platform) : target;
  const child = await writeTarget(selected, writer);
  let top: Descriptor = child;
  // A stored index whose direct child is the chosen image is kept as it is (the digest the tag had).
  if (target instanceof ImageIndex && target.stored && target.manifests.some((m) => m.image === selected)) {
    await storage.putBlobBytes(target.stored.index, target.stored.descriptor.digest);
    await storage.linkManifest(repository, target.stored.descriptor.digest);
    top = target.stored.descriptor;
  }
  if (ref.tag !== undefined) await storage.tag(repository, ref.tag, top.digest);
  return {
    image,
    repository,
    ...(ref.tag !== undefined ? { tag: ref.tag } : {}),
    digest: top.digest,
    mediaType: top.mediaType,
    platformDigest: child.digest,
    platform,
    source: 'local',
  };
}

function noPlatform(image: string, platform: Platform, manifests: readonly Descriptor[]): CloudRootfsError {
  return platformNotFound(platform, manifests.map((m) => m.platform), image);
}

/** Same bytes on every machine: directories 0755, files 0644 (the umask of the build must not matter). */
function normalizeAttributes(rootfs: Rootfs): Rootfs {
  let out = Rootfs.empty({ mode: 0o755 });
  for (const { path, entry } of rootfs.walk()) {
    const mode = entry.type === 'directory' ? 0o755 : entry.type === 'file' ? 0o644 : entry.mode;
    out = out.with(path, withAttributes(entry as Entry, { mode, uid: 0, gid: 0, mtime: 0 }));
  }
  return out;
}

