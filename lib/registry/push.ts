/**
 * Pushing an Image or ImageIndex (or anything a reference names) to `docker://HOST/REPO:TAG`.
 *
 * `writeTarget` orders the writes (layers in parallel, config, manifests, indexes) and the
 * RegistryTarget makes each one a registry call; the tag is PUT last, after the registry has
 * confirmed every blob and child manifest. Blobs the registry has are skipped (HEAD), blobs from
 * another repository of the same registry are mounted, changeset layers are encoded straight into
 * the upload. A failure anywhere leaves the tag untouched.
 */
import { DigestMismatchError, UsageError } from '../errors';
import { diskFs, type FileSystem } from '../fs';
import { Image, ImageIndex } from '../image/image';
import { normalizePlatform, parsePlatform, platformMatches } from '../image/platform';
import type { Descriptor } from '../image/types';
import { writeTarget } from '../image/write';
import { loadLocalTarget } from '../formats/local';
import type { EncodeLayerOptions } from '../tar/write';
import { parseImageRef } from '../reference/transport';
import { pullImage, type ImageStoreLike, type PlatformChoice } from './pull';
import { clientFor, parseRemoteReference, type RegistryAccessOptions } from './remote';
import { RegistryTarget, type PushStats, type RegistryProgress } from './target';

export interface PushOptions extends RegistryAccessOptions, Omit<EncodeLayerOptions, 'signal'> {
  /** Layers uploaded at once (default 3). */
  layerConcurrency?: number;
  /** Other repositories of the destination registry to mount blobs from. */
  mountFrom?: readonly string[];
  /** Upload encoded layers in `Content-Range` chunks of this size instead of one streaming PATCH. */
  chunkSize?: number;
  /** Push only these platforms of an index (default: all of them). */
  platforms?: readonly PlatformChoice[];
  onProgress?: (event: RegistryProgress) => void;
  signal?: AbortSignal;
  /** Filesystem for `oci:`, `oci-archive:` and `docker-archive:` sources (default: the disk). */
  fs?: FileSystem;
  /** Where store names are looked up when the source is a plain name. */
  store?: Pick<ImageStoreLike, 'loadTarget'>;
  /** Loads a source reference this module does not know (takes precedence over `store`). */
  load?: (reference: string) => Promise<Image | ImageIndex>;
}

export interface PushResult {
  /** `HOST/REPO:TAG` (or `@DIGEST`) as pushed. */
  reference: string;
  /** The descriptor of what the tag now names (manifest or index). */
  descriptor: Descriptor;
  digest: string;
  stats: PushStats;
}

/** Push `source` to `destination` (`docker://HOST/REPO[:TAG|@DIGEST]`). */
export async function pushImage(source: Image | ImageIndex | string, destination: string, options: PushOptions = {}): Promise<PushResult> {
  const dest = parseRemoteReference(destination);
  if (dest.tag !== undefined && dest.digest !== undefined) {
    throw new UsageError(`${destination}: push to a tag or to a digest, not both`);
  }
  let target = typeof source === 'string' ? await loadSource(source, options) : source;
  if (options.platforms && target instanceof ImageIndex) target = onlyPlatforms(target, options.platforms);

  const client = clientFor(dest.registry, options);
  const registry = new RegistryTarget(client, dest.repository, {
    mountFrom: options.mountFrom,
    chunkSize: options.chunkSize,
    onProgress: options.onProgress,
    signal: options.signal,
  });
  const { layerConcurrency, onProgress, compression, level, sourceDateEpoch, concurrency, storeCompressed } = options;
  const top = await writeTarget(target, registry, {
    layerConcurrency: layerConcurrency ?? 3,
    onProgress,
    compression,
    level,
    sourceDateEpoch,
    concurrency,
    storeCompressed,
    signal: options.signal,
  });
  if (dest.digest !== undefined && dest.digest !== top.digest) {
    // Checked before anything names the manifest: the blobs stay, unreferenced, as after any failed push.
    throw new DigestMismatchError(dest.digest, top.digest, `the image pushed to ${destination}`);
  }
  const committed = await registry.commit(dest.digest === undefined ? dest.tag : undefined);
  const { platform: _p, ...descriptor } = committed;
  void _p;
  return { reference: dest.name, descriptor, digest: descriptor.digest, stats: registry.stats };
}

/** An index of only the given platforms (new bytes, hence a new digest, unless all are kept). */
function onlyPlatforms(index: ImageIndex, platforms: readonly PlatformChoice[]): ImageIndex {
  const wanted = platforms.map((p) => (typeof p === 'string' ? parsePlatform(p) : normalizePlatform(p)));
  const kept = index.manifests.filter((m) => wanted.some((w) => platformMatches(w, m.platform)));
  if (kept.length === index.manifests.length) return index;
  if (kept.length === 0) index.select(wanted[0]); // throws PLATFORM_NOT_FOUND with what there is
  return new ImageIndex(kept, { ...index.annotations });
}

async function loadSource(source: string, options: PushOptions): Promise<Image | ImageIndex> {
  if (options.load) return options.load(source);
  const ref = parseImageRef(source);
  const fs = options.fs ?? diskFs;
  switch (ref.transport) {
    case 'docker':
      return pullImage(source, { ...options, platforms: 'all', platform: undefined });
    case 'oci':
    case 'oci-archive':
    case 'docker-archive':
      return loadLocalTarget(ref, fs);
    case 'store':
      if (options.store) return options.store.loadTarget(ref.name);
      throw new UsageError(`${source} names an image in the store: pass options.store (or load it and push the Image)`);
  }
}
