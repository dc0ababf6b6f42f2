/**
 * buildImage(): a Kubefile and a context directory in, an image (or a multi-platform index) out,
 * with its digests; written to the local store when a tag is given.
 *
 * Where the digests come from: writing. With a tag the image goes to the store (the given one,
 * or the default store) and the result describes what the store now holds. Without a tag nothing
 * is stored: the layers are encoded once into a digest-only sink (the same tar+gzip pass a write
 * makes, bytes discarded), so the reported digests are exactly those of any later write with the
 * same `sourceDateEpoch`, and `result.target` can be written anywhere afterwards.
 */
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { posix } from 'node:path';
import { BuildCache, exportBuildCache, importBuildCache, type BuildCacheStats, type CacheOutcome, type ExportBuildCacheResult } from '../cache';
import { CloudRootfsError, UsageError } from '../errors';
import { FileSystem, diskFs, isDiskFs, readDocumentFile } from '../fs';
import { Image, ImageIndex } from '../image/image';
import { formatPlatform, hostPlatform, parsePlatform } from '../image/platform';
import type { Descriptor, ImageConfigDocument, ImageIndexDocument, ImageManifest, Platform } from '../image/types';
import { WriteImageOptions, WriteProgress, writeTarget } from '../image/write';
import { parseKubefile } from '../kubefile';
import { buildRegistryLayer, collectImages, withEmbeddedRegistry, type EmbeddedImageRequest } from '../registry/embedded';
import { authenticatedImages, type ImageListWithAuthSection } from '../sealer';
import { resolveBase as pullBase } from '../registry/pull';
import type { RegistryAccessOptions } from '../registry/remote';
import type { ImageReadLimits } from '../formats/blob-source';
import type { Rootfs } from '../rootfs/rootfs';
import { ImageStore } from '../store';
import { storeName } from '../store/names';
import { checkEncoding } from '../compress';
import { parseRemoteReference } from '../registry/remote';
import type { EncodeLayerOptions } from '../tar/write';
import { removeAll } from '../util/atomic';
import { BaseImageStore, ImageType, ResolveBase, StepProgress, resolveSourceDateEpoch } from './builder';
import { selectBuildCache } from './cache-link';
import { readBuildContext } from './context';
import type { CopyMode } from './copy';
import { DigestOnlyTarget } from './digest-target';
import { BuildWarning, interpretKubefile } from './interpreter';
import { RunExecutor, RunExecutorName, RunNetwork, resolveRunExecutor } from './run';
import { CACHE_DIR } from '../cache/build-cache';
import { RemoteFetcher, type RemoteFetchOptions } from './remote-fetch';

/** Something `buildImage` can write to and read back from (lib/store's ImageStore). */
export interface BuildStore extends BaseImageStore {
  put(target: Image | ImageIndex, name: string, options?: WriteImageOptions): Promise<Descriptor>;
}

export type BuildProgress = StepProgress | (WriteProgress & { platform?: string });

export interface BuildImageOptions {
  /** The build context directory. */
  context: string;
  /** Path of the Kubefile (default `<context>/Kubefile`). */
  kubefile?: string;
  /** The Kubefile's text, instead of reading `kubefile`. */
  kubefileText?: string;
  /** Store name to give the result (`my-k8s:v1.19.9`); the image is written to the store only then. */
  tag?: string;
  buildArgs?: Readonly<Record<string, string>>;
  /** Build one image per platform under one index (default: this machine's platform, one image). */
  platforms?: readonly (string | Platform)[];
  /** Store to resolve FROM in and to write to (default: the default store, opened when needed). */
  store?: BuildStore;
  /** Filesystem of the context, the Kubefile and the default store (default node:fs). */
  fs?: FileSystem;
  copyMode?: CopyMode;
  /** Seconds (default `SOURCE_DATE_EPOCH` or 0): config/history `created`, mtime clamp. */
  sourceDateEpoch?: number;
  /** Environment (for `SOURCE_DATE_EPOCH` and the default store location). */
  env?: NodeJS.ProcessEnv;
  onProgress?: (event: BuildProgress) => void;
  /**
   * Runs RUN: an executor, or `sandbox` (the default on node:fs: bubblewrap, the rootfs the only
   * writable tree), `host` (on this host without isolation: an explicit opt-in, CLI
   * `--run-on-host`) or `builtin` (no shell). Other filesystems than node:fs have no default.
   */
  runExecutor?: RunExecutor | RunExecutorName;
  /** The network RUN may use: `none` (default) or `host` (CLI `--network host`). */
  network?: RunNetwork;
  /** Bases not in the store (default: pull them from their registry, see `pull`). */
  resolveBase?: ResolveBase;
  /** FROM: pull the base when the store lacks it (`missing`, default), every time, or never. */
  pull?: 'missing' | 'always' | 'never';
  /** Credentials, auth file, insecure… for pulling bases and container images. */
  registry?: RegistryAccessOptions;
  /** Bounds on what a pulled base may make the pull read (docs/security.md, "Limits"). */
  limits?: ImageReadLimits;
  /**
   * `all` (default): collect the container images the rootfs names (manifests/imageList, `image:`
   * in manifests/ and application/apps/, charts' values) plus `imageList`, and embed them in
   * `registry/` as the image's last layer. `lite`: embed nothing (sealer's `--build-mode lite`).
   */
  buildMode?: 'all' | 'lite';
  /** Container images to embed besides the collected ones (`--image-list`). */
  imageList?: readonly string[];
  /** Container images never to embed (`--ignored-image-list`). */
  ignoredImageList?: readonly string[];
  /**
   * Container images behind credentials (`--image-list-with-auth`, sealer's imageListWithAuth.yaml;
   * read it with `parseImageListWithAuth`): each fetched with its section's login, added after the
   * collected images and, as in sealer, not subject to `ignoredImageList`.
   */
  imageListWithAuth?: readonly ImageListWithAuthSection[];
  /** Local sources for container images (`{ 'nginx:1.25': 'oci-archive:/cache/nginx.tar' }`): offline builds. */
  imageSources?: Readonly<Record<string, string>>;
  /**
   * Never touch the network for content: container images need an `imageSources` entry, remote
   * sources (APP `https://…`, `ADD <url>`) must be in the download cache.
   */
  offline?: boolean;
  /**
   * Downloads of remote sources: size limit, timeouts, retries (docs/building.md, "Remote
   * sources"). They are cached under the store's `cache/downloads` when the build cache is on.
   */
  remote?: Omit<RemoteFetchOptions, 'fs' | 'cacheDir' | 'offline'>;
  /** sealer image type (default `kube-installer`). */
  imageType?: ImageType;
  /** Extra labels (`--label`), applied last. */
  labels?: Readonly<Record<string, string>>;
  /** Extra manifest annotations (`--annotation`). */
  annotations?: Readonly<Record<string, string>>;
  /** Layer encoding (compression, level); defaults are the writer's (gzip level 4). */
  encoding?: Pick<EncodeLayerOptions, 'compression' | 'level' | 'concurrency'>;
  /**
   * The build cache (docs/performance.md): default on when the build uses the store (a tag, or
   * `store` given) and the store is an ImageStore; `false` (CLI `--no-cache`) builds everything
   * again; a BuildCache chooses one.
   */
  cache?: boolean | BuildCache;
  /**
   * Build caches to import from registries first (`docker://HOST/REPO:TAG`, as exported with
   * `cacheTo`). One that cannot be read is a warning (`CACHE_IMPORT_FAILED`), not a failure.
   */
  cacheFrom?: readonly string[];
  /** Export the cache to this registry reference after the build (needs a cache). */
  cacheTo?: string;
}

export interface BuiltLayer {
  digest: string;
  size: number;
  diffId: string;
  mediaType: string;
  /** The history entry that made it (`COPY . .`). */
  createdBy?: string;
  /** True for the layers inherited from the base image (copied byte for byte). */
  fromBase: boolean;
}

export interface BuiltImage {
  platform: Platform;
  /** Manifest digest. */
  digest: string;
  /** Config digest (the image ID). */
  configDigest: string;
  layers: BuiltLayer[];
  /**
   * With a build cache, one per layer: `hit` (the blob came from the cache, nothing was
   * compressed), `miss` (encoded by this build), null (a base layer, copied as it was).
   */
  cache?: (CacheOutcome | null)[];
}

export interface BuildImageResult {
  /** The image (one platform) or index (several), as stored when a tag was given. */
  target: Image | ImageIndex;
  /** Digest of the manifest (one platform) or of the index. */
  digest: string;
  descriptor: Descriptor;
  /** The store name, when written. */
  tag?: string;
  stored: boolean;
  /** One per platform, in the order asked for. */
  images: BuiltImage[];
  /** The first image's layers (convenience for single-platform builds). */
  layers: BuiltLayer[];
  warnings: BuildWarning[];
  /** What the build cache did (undefined without a cache). */
  cacheStats?: BuildCacheStats;
  /** The export to `cacheTo`, when asked for. */
  cacheExport?: ExportBuildCacheResult;
  /**
   * Release temporary files RUN left for lazy reads (only needed when nothing was stored and the
   * result is no longer used; a stored result has already released them).
   */
  dispose(): Promise<void>;
}

async function readKubefile(fs: FileSystem, options: BuildImageOptions): Promise<{ text: string; file: string }> {
  if (options.kubefileText !== undefined) return { text: options.kubefileText, file: options.kubefile ?? 'Kubefile' };
  const path = options.kubefile ?? posix.join(options.context, 'Kubefile');
  return { text: await readDocumentFile(fs, path, 'Kubefile'), file: path };
}

function platformsOf(options: BuildImageOptions): Platform[] {
  const list = (options.platforms ?? []).map((p) => (typeof p === 'string' ? parsePlatform(p) : p));
  if (list.length === 0) return [hostPlatform()];
  const seen = new Set<string>();
  for (const p of list) {
    const key = formatPlatform(p);
    if (seen.has(key)) throw new UsageError(`platform ${key} is listed twice`);
    seen.add(key);
  }
  return list;
}

/** The layers and digests of an image written somewhere, from its manifest and config. */
function describeWritten(manifest: ImageManifest, config: ImageConfigDocument, descriptor: Descriptor, built: Image, cache?: BuildCache): BuiltImage {
  const created = (config.history ?? []).filter((h) => !h.empty_layer).map((h) => h.created_by);
  const aligned = created.length === manifest.layers.length;
  return {
    platform: built.platform,
    digest: descriptor.digest,
    configDigest: manifest.config.digest,
    layers: manifest.layers.map((l, i) => ({
      digest: l.digest,
      size: l.size,
      diffId: config.rootfs.diff_ids[i],
      mediaType: l.mediaType,
      ...(aligned && created[i] !== undefined ? { createdBy: created[i] } : {}),
      fromBase: built.layers[i]?.kind === 'blob',
    })),
    ...(cache ? { cache: built.layers.map((l) => (l.kind === 'changeset' ? (cache.outcomeOf(l.layer) ?? null) : null)) } : {}),
  };
}

/**
 * The cache a build uses: the given one, else the store's when the build uses an ImageStore (a
 * tag, or `store` given). The store is opened only when that decides it.
 */
async function chooseCache(options: BuildImageOptions, openStore: () => Promise<BuildStore>): Promise<BuildCache | undefined> {
  if (options.cache instanceof BuildCache) return options.cache;
  if (options.cache === false || (options.tag === undefined && options.store === undefined)) return undefined;
  return selectBuildCache(options.cache, await openStore());
}

/** Build the image(s) a Kubefile describes. */
export async function buildImage(options: BuildImageOptions): Promise<BuildImageResult> {
  const fs = options.fs ?? diskFs;
  if (!options.context) throw new UsageError('buildImage needs a context directory');
  // Every argument is checked before any work: a bad tag or level must not wait for the build.
  const platforms = platformsOf(options);
  if (options.tag !== undefined) storeName(options.tag);
  checkEncoding(options.encoding ?? {});
  if (options.cacheTo !== undefined) parseRemoteReference(options.cacheTo);
  for (const ref of options.cacheFrom ?? []) parseRemoteReference(ref);
  const { text, file } = await readKubefile(fs, options);
  const kf = parseKubefile(text, { file });
  const env = options.env ?? process.env;

  let store: BuildStore | undefined = options.store;
  const openStore = async (): Promise<BuildStore> => (store ??= await ImageStore.open({ fs, env }));
  // FROM name:tag needs the store only if the Kubefile names a base; open it lazily.
  const baseStore: BaseImageStore = { loadTarget: async (name) => (await openStore()).loadTarget(name) };

  // One context read and one RUN executor for every platform.
  const sourceDateEpoch = resolveSourceDateEpoch(options.sourceDateEpoch, env);
  const context = await readBuildContext(options.context, { fs, sourceDateEpoch });
  const cache = await chooseCache(options, openStore);
  if ((options.cacheFrom?.length || options.cacheTo) && !cache) {
    throw new UsageError('cacheFrom/cacheTo need the build cache (a store, and cache not turned off)');
  }
  // A named (or default) executor is ours to dispose; a given one is the caller's.
  const givenExecutor = typeof options.runExecutor === 'object' ? options.runExecutor : undefined;
  const createdExecutor = givenExecutor ? undefined : resolveRunExecutor(options.runExecutor, fs);
  const runExecutor = givenExecutor ?? createdExecutor ?? options.runExecutor;
  const fetcher = new RemoteFetcher({
    env,
    ...(options.remote ?? {}),
    offline: options.offline,
    fs: cache ? cache.fs : fs,
    ...(cache ? { cacheDir: posix.join(cache.store.root, CACHE_DIR, 'downloads') } : {}),
  });
  // Temporary trees (RUN output, fetched container images) back lazy contents until the image is
  // written; a failed build removes them at once.
  const workDirs: string[] = [];
  const dispose = async () => {
    await createdExecutor?.dispose?.();
    await fetcher.dispose();
    for (const dir of workDirs.splice(0)) await removeAll(fs, dir);
  };
  try {
    const cacheWarnings: BuildWarning[] = [];
    for (const ref of options.cacheFrom ?? []) {
      try {
        await importBuildCache(cache!, ref, { ...(options.registry ?? {}), authFs: fs });
      } catch (err) {
        const why = err instanceof Error ? err.message : String(err);
        cacheWarnings.push({ code: 'CACHE_IMPORT_FAILED', message: `could not import the build cache ${ref}: ${why}` });
      }
    }
    const resolveBase: ResolveBase =
      options.resolveBase ??
      (async (ref, platform) =>
        pullBase(ref, {
          store: await openStore(),
          pull: options.pull ?? 'missing',
          platform,
          authFs: fs,
          ...(options.registry ?? {}),
          ...(options.limits ? { limits: options.limits } : {}),
        }));

    const built: Image[] = [];
    const warnings: BuildWarning[] = [];
    for (const platform of platforms) {
      const interpretation = interpretKubefile(kf, {
        file,
        fs,
        platform,
        sourceDateEpoch,
        env,
        copyMode: options.copyMode,
        context,
        store: baseStore,
        resolveBase,
        runExecutor,
        ...(options.network ? { network: options.network } : {}),
        fetcher,
        imageType: options.imageType,
        buildArgs: options.buildArgs,
        onProgress: options.onProgress,
        cache: cache ?? false,
      });
      if (built.length === 0) warnings.push(...cacheWarnings, ...interpretation.warnings);
      let image = await interpretation.builder.build();
      if (options.labels && Object.keys(options.labels).length > 0) image = image.withLabels({ ...options.labels });
      for (const [k, v] of Object.entries(options.annotations ?? {})) image = image.withAnnotation(k, v);
      if ((options.buildMode ?? 'all') === 'all') {
        // The merged tree the builder already holds (build() computed it): no second flatten.
        const rootfs = await interpretation.builder.rootfs();
        image = await embedContainerImages(image, rootfs, platform, options, fs, workDirs);
      }
      if (cache) bindUnboundLayers(image, cache, sourceDateEpoch);
      built.push(image);
    }
    const target: Image | ImageIndex = built.length === 1 && (options.platforms ?? []).length <= 1 ? built[0] : ImageIndex.of(built);

    const writeOptions: WriteImageOptions = {
      ...(options.encoding ?? {}),
      sourceDateEpoch,
      onProgress: options.onProgress ? (e) => options.onProgress!(e) : undefined,
    };
    const exportCache = () => (options.cacheTo ? exportBuildCache(cache!, options.cacheTo, { ...(options.registry ?? {}), authFs: fs }) : undefined);
    const common = { warnings, ...(cache ? { cacheStats: cache.stats } : {}) };

    if (options.tag !== undefined) {
      const s = await openStore();
      const descriptor = await s.put(target, options.tag, writeOptions);
      const stored = await s.loadTarget(options.tag);
      const images = describeStored(stored, built, cache);
      await dispose();
      await cache?.flush();
      const cacheExport = await exportCache();
      return {
        target: stored,
        digest: descriptor.digest,
        descriptor,
        tag: options.tag,
        stored: true,
        images,
        layers: images[0].layers,
        ...common,
        ...(cacheExport ? { cacheExport } : {}),
        dispose: async () => undefined,
      };
    }

    const sink = new DigestOnlyTarget();
    const descriptor = await writeTarget(target, sink, writeOptions);
    const images = describeDigestOnly(sink, descriptor, built, cache);
    await cache?.flush();
    const cacheExport = await exportCache();
    return {
      target,
      digest: descriptor.digest,
      descriptor,
      stored: false,
      images,
      layers: images[0].layers,
      ...common,
      ...(cacheExport ? { cacheExport } : {}),
      dispose,
    };
  } catch (err) {
    await dispose().catch(() => undefined);
    throw err;
  }
}

/**
 * Layers the builder did not make (the embedded registry/ layer) join the cache by diff_id, so a
 * rebuild that fetches the same container images reuses their encoded blob. Nothing comes after
 * them in a chain, so their diff_id is not computed up front: the cache hashes the tar only when
 * it has recorded a blob of the layer's shape (never on a cold cache, where the writer's one
 * encoding pass is all the work).
 */
function bindUnboundLayers(image: Image, cache: BuildCache, sourceDateEpoch: number): void {
  for (const l of image.layers) {
    if (l.kind !== 'changeset' || cache.isBound(l.layer)) continue;
    cache.bindLayer(l.layer, { sourceDateEpoch });
  }
}

/**
 * sealer's image collection: the images `rootfs` (the image's merged tree) names, fetched for `platform` and written into
 * `registry/` as one more (last) layer, recorded in the container-images annotation. The work
 * directory holds the blobs until the image is written (removed by `dispose`).
 */
async function embedContainerImages(
  image: Image,
  rootfs: Rootfs,
  platform: Platform,
  options: BuildImageOptions,
  fs: FileSystem,
  workDirs: string[],
): Promise<Image> {
  const collected = await collectImages(rootfs, { images: options.imageList, ignored: options.ignoredImageList });
  // sealer pulls these after the others, with their section's login (build.go#L361-L386).
  const withAuth = authenticatedImages(options.imageListWithAuth ?? []).map((a) => ({ image: a.image, credentials: a.credentials }));
  const requests: EmbeddedImageRequest[] = [...collected, ...withAuth];
  if (requests.length === 0) return image;
  const parent = isDiskFs(fs) ? tmpdir() : '/tmp';
  const workDir = posix.join(parent, `cloudrootfs-registry-${process.pid}-${randomBytes(6).toString('hex')}`);
  workDirs.push(workDir);
  const registry = await buildRegistryLayer(requests, {
    ...(options.registry ?? {}),
    authFs: fs,
    workDir,
    fs,
    platform,
    base: rootfs,
    sources: options.imageSources,
    offline: options.offline,
  });
  return withEmbeddedRegistry(image, registry);
}

function describeStored(stored: Image | ImageIndex, built: Image[], cache?: BuildCache): BuiltImage[] {
  const images = stored instanceof ImageIndex ? stored.images().map((i) => i.image) : [stored];
  return images.map((image, i) => {
    if (!image.stored) throw new CloudRootfsError('INVALID_IMAGE', 'internal: the stored image has no stored documents');
    const manifest = JSON.parse(image.stored.manifest.toString('utf8')) as ImageManifest;
    const config = JSON.parse(image.stored.config.toString('utf8')) as ImageConfigDocument;
    return describeWritten(manifest, config, image.stored.manifestDescriptor, built[i], cache);
  });
}

function describeDigestOnly(sink: DigestOnlyTarget, top: Descriptor, built: Image[], cache?: BuildCache): BuiltImage[] {
  const manifests: Descriptor[] = top.mediaType.includes('index') ? sink.json<ImageIndexDocument>(top.digest).manifests : [top];
  return manifests.map((d, i) => {
    const manifest = sink.json<ImageManifest>(d.digest);
    const config = sink.json<ImageConfigDocument>(manifest.config.digest);
    return describeWritten(manifest, config, d, built[i], cache);
  });
}
