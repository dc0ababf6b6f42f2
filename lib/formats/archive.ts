/**
 * Reading image archives: one function that opens a tar (plain or compressed), recognises what
 * it holds and lists its images with their names, whatever wrote it.
 *
 * - An OCI layout (`oci-layout` + `index.json`): an oci-archive, or the hybrid Docker 25+ writes
 *   (which adds `manifest.json`). Images load from `blobs/`, so manifest digests are kept.
 *   Names come from `io.containerd.image.name`, `org.opencontainers.image.ref.name` when it is a
 *   full name, and the hybrid's `manifest.json` `RepoTags`.
 * - A classic `docker save` / `skopeo copy docker-archive:` tar (`manifest.json` with `Config`
 *   and `Layers` paths, possibly through symlinks, layers plain or compressed).
 */
import { posix } from 'node:path';
import { Content, readContentHead } from '../content';
import { DigestCounter, detectCompression } from '../compress';
import { BlobNotFoundError, CloudRootfsError, ImageNotFoundError, InvalidImageError, LimitExceededError, UnsupportedError } from '../errors';
import { Image, ImageIndex } from '../image/image';
import { checkDigest } from '../image/digest';
import { canonicalJsonBytes } from '../image/json';
import { parseOciDocument } from '../image/schema';
import type { Descriptor, ImageConfigDocument, ImageIndexDocument, ImageManifest } from '../image/types';
import { MEDIA_TYPES } from '../media-types';
import { formatReference, parseDockerReference, withDefaultTag } from '../reference/docker';
import { ArchiveLimits, TarArchive } from './archive-io';
import { BlobSource, DEFAULT_MAX_DOCUMENT_BYTES, DEFAULT_MAX_INDEX_ENTRIES, DocumentGraph, ImageReadLimits, checkLayerCount, imageFromDocuments } from './blob-source';
import { CONTAINERD_NAME, REF_NAME, onlyOne } from './layout';
import type { FileSystem } from '../fs';

export type ArchiveFormat = 'oci' | 'docker-hybrid' | 'docker';

export interface ArchiveImage {
  /** Full normalized names (`docker.io/library/nginx:1.25`) this image is known by. */
  names: string[];
  /** `org.opencontainers.image.ref.name` as written (OCI layouts only). */
  refName?: string;
  /** The index.json entry (OCI layouts) or the manifest we made for a classic entry. */
  descriptor: Descriptor;
  load(): Promise<Image | ImageIndex>;
}

export interface ImageArchive {
  readonly path: string;
  readonly format: ArchiveFormat;
  readonly images: readonly ArchiveImage[];
  /** The image named `ref` (tag, ref.name or image name), or the only one when `ref` is absent. */
  find(ref?: string): ArchiveImage;
  close(): void;
}

/**
 * Bounds for reading an archive: its tar structure (ArchiveLimits), its documents and layers
 * (ImageReadLimits; `maxIndexEntries` also bounds the images index.json or manifest.json list).
 */
export interface ArchiveReadLimits extends ArchiveLimits, ImageReadLimits {}

export interface OpenImageArchiveOptions extends ArchiveReadLimits {
  fs: FileSystem;
}

/** `name` normalized, or undefined when it is not an image name (e.g. a bare ref.name tag). */
export function normalizeNameOrUndefined(name: string | undefined): string | undefined {
  if (!name) return undefined;
  try {
    const ref = withDefaultTag(parseDockerReference(name));
    // A digest pins content, it does not name a tag to store the image under.
    return ref.digest === undefined ? formatReference(ref) : undefined;
  } catch {
    return undefined;
  }
}

function looksLikeFullName(refName: string): boolean {
  // A ref.name like `v1.19.9` is a tag; `kubernetes:v1.19.9` or `reg/x:y` names an image.
  return refName.includes(':') || refName.includes('/');
}

class ArchiveBlobs implements BlobSource {
  constructor(
    private readonly archive: TarArchive,
    private readonly extra: Map<string, string> = new Map(),
  ) {}

  get where(): string {
    return this.archive.path;
  }

  blob(d: Pick<Descriptor, 'digest' | 'size'>): Content {
    const member = this.extra.get(d.digest) ?? blobMemberName(d.digest);
    if (!this.archive.has(member)) throw new BlobNotFoundError(d.digest, this.archive.path);
    return this.archive.content(member);
  }
}

/**
 * `blobs/<alg>/<hex>`, refusing digests that are not plain hex (no path games) and algorithms we
 * cannot verify (the same check, and words, as a layout's: checkDigest).
 */
export function blobMemberName(digest: string): string {
  const [algorithm, hex] = checkDigest(digest);
  return `blobs/${algorithm}/${hex}`;
}

interface DockerManifestEntry {
  Config: string;
  RepoTags: string[];
  Layers: string[];
  LayerSources?: Record<string, Descriptor>;
}

function parseDockerManifestJson(bytes: Buffer, where: string): DockerManifestEntry[] {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new InvalidImageError(`${where}: manifest.json is not JSON (${err instanceof Error ? err.message : String(err)})`, { file: 'manifest.json' });
  }
  const bad = (field: string, why: string) => new InvalidImageError(`${where}: manifest.json ${field} ${why}`, { file: 'manifest.json', field });
  if (!Array.isArray(value)) throw bad('', 'must be an array');
  return value.map((e, i) => {
    if (!e || typeof e !== 'object') throw bad(`/${i}`, 'must be an object');
    const o = e as Record<string, unknown>;
    if (typeof o.Config !== 'string' || o.Config === '') throw bad(`/${i}/Config`, 'must be a file name');
    if (!Array.isArray(o.Layers) || o.Layers.some((l) => typeof l !== 'string')) throw bad(`/${i}/Layers`, 'must be a list of file names');
    if (o.RepoTags != null && (!Array.isArray(o.RepoTags) || o.RepoTags.some((t) => typeof t !== 'string'))) throw bad(`/${i}/RepoTags`, 'must be a list of names');
    return {
      Config: o.Config,
      Layers: o.Layers as string[],
      RepoTags: (o.RepoTags as string[] | null | undefined) ?? [],
      ...(o.LayerSources && typeof o.LayerSources === 'object' ? { LayerSources: o.LayerSources as Record<string, Descriptor> } : {}),
    };
  });
}

function normalizedTags(tags: readonly string[]): string[] {
  return tags.map(normalizeNameOrUndefined).filter((n): n is string => n !== undefined);
}

/** Open an archive and list its images (nothing but small JSON documents is read). */
export async function openImageArchive(path: string, options: OpenImageArchiveOptions): Promise<ImageArchive> {
  const archive = await TarArchive.open(path, options);
  try {
    let images = archive.has('oci-layout') ? await ociImages(archive, options) : archive.has('manifest.json') ? await dockerImages(archive, options) : undefined;
    // A layout with an empty index.json but a manifest.json: what the manifest.json says counts.
    if (images && images.length === 0 && archive.has('oci-layout') && archive.has('manifest.json')) images = await dockerImages(archive, options);
    if (!images) {
      throw new InvalidImageError(`${path} is neither an OCI archive (no oci-layout) nor a docker archive (no manifest.json)`, { file: path });
    }
    const format: ArchiveFormat = archive.has('oci-layout') ? (archive.has('manifest.json') ? 'docker-hybrid' : 'oci') : 'docker';
    return {
      path,
      format,
      images,
      find: (ref) => findImage(images, ref, path),
      close: () => archive.close(),
    };
  } catch (err) {
    archive.close();
    throw err;
  }
}

/** Refuse an archive listing more images than anything should walk (index.json or manifest.json). */
function checkImageCount(count: number, limits: ImageReadLimits, what: string): void {
  const max = limits.maxIndexEntries ?? DEFAULT_MAX_INDEX_ENTRIES;
  if (count > max) throw new LimitExceededError('maxIndexEntries', max, `${what} (${count} entries)`);
}

async function ociImages(archive: TarArchive, limits: ImageReadLimits): Promise<ArchiveImage[]> {
  const where = archive.path;
  const maxDoc = limits.maxDocumentBytes ?? DEFAULT_MAX_DOCUMENT_BYTES;
  parseOciDocument('layout', await archive.read('oci-layout'), { file: `${where}:oci-layout` });
  if (!archive.has('index.json')) throw new InvalidImageError(`${where} is not an OCI archive: index.json is missing`, { file: where });
  const index = parseOciDocument<ImageIndexDocument>('index', await archive.read('index.json', maxDoc), { file: `${where}:index.json` });
  checkImageCount(index.manifests.length, limits, `${where}:index.json`);
  // The hybrid's manifest.json names images by config file; map config digest → RepoTags.
  const tagsByConfig = new Map<string, string[]>();
  if (archive.has('manifest.json')) {
    const entries = parseDockerManifestJson(await archive.read('manifest.json', maxDoc), where);
    checkImageCount(entries.length, limits, `${where}:manifest.json`);
    for (const e of entries) {
      const m = /^blobs\/sha256\/([a-f0-9]{64})$/.exec(posix.normalize(e.Config));
      if (!archive.has(e.Config)) throw new BlobNotFoundError(e.Config, `${where} (manifest.json Config)`);
      for (const l of e.Layers) if (!archive.has(l)) throw new BlobNotFoundError(l, `${where} (manifest.json Layers)`);
      if (m) tagsByConfig.set(`sha256:${m[1]}`, [...(tagsByConfig.get(`sha256:${m[1]}`) ?? []), ...normalizedTags(e.RepoTags)]);
    }
  }
  // One graph for the whole archive: entries that share documents read them once.
  const graph = new DocumentGraph(new ArchiveBlobs(archive), limits);
  const out: ArchiveImage[] = [];
  for (const descriptor of index.manifests) {
    const refName = descriptor.annotations?.[REF_NAME];
    const names = new Set<string>();
    const containerd = normalizeNameOrUndefined(descriptor.annotations?.[CONTAINERD_NAME]);
    if (containerd) names.add(containerd);
    if (refName && looksLikeFullName(refName)) {
      const n = normalizeNameOrUndefined(refName);
      if (n) names.add(n);
    }
    let loaded: Promise<Image | ImageIndex> | undefined;
    const load = () => (loaded ??= graph.load(descriptor));
    if (tagsByConfig.size > 0) {
      // Only manifests (and indexes) we can open contribute RepoTags; a broken one fails on load.
      try {
        const target = await load();
        const images = target instanceof ImageIndex ? target.images().map((i) => i.image) : [target];
        for (const img of images) for (const t of tagsByConfig.get(img.stored?.configDescriptor.digest ?? '') ?? []) names.add(t);
      } catch (err) {
        loaded = undefined;
        if (!(err instanceof CloudRootfsError)) throw err;
      }
    }
    out.push({ names: [...names], ...(refName ? { refName } : {}), descriptor, load });
  }
  return out;
}

async function dockerImages(archive: TarArchive, limits: ImageReadLimits): Promise<ArchiveImage[]> {
  const where = archive.path;
  const maxDoc = limits.maxDocumentBytes ?? DEFAULT_MAX_DOCUMENT_BYTES;
  const entries = parseDockerManifestJson(await archive.read('manifest.json', maxDoc), where);
  checkImageCount(entries.length, limits, `${where}:manifest.json`);
  // A compressed layer file is hashed once, however many entries (or times) list it.
  const hashed = new Map<string, Promise<string>>();
  const out: ArchiveImage[] = [];
  for (const [i, e] of entries.entries()) {
    if (!archive.has(e.Config)) throw new BlobNotFoundError(e.Config, `${where} (manifest.json entry ${i} Config)`);
    const configBytes = await archive.read(e.Config, maxDoc);
    const configFile = `${where}:${e.Config}`;
    const config = parseOciDocument<ImageConfigDocument>('config', configBytes, { file: configFile, checkHistory: false });
    const diffIds = config.rootfs.diff_ids;
    checkLayerCount(Math.max(diffIds.length, e.Layers.length), limits, `${where}: manifest.json entry ${i}`);
    if (diffIds.length !== e.Layers.length) {
      throw new InvalidImageError(`${where}: manifest.json entry ${i} lists ${e.Layers.length} layers but its config has ${diffIds.length} diff_ids`, {
        layers: e.Layers.length,
        diffIds: diffIds.length,
      });
    }
    const members = new Map<string, string>();
    const layers: Descriptor[] = [];

    for (const [j, layerPath] of e.Layers.entries()) {
      if (!archive.has(layerPath)) {
        if (e.LayerSources?.[diffIds[j]]) throw new UnsupportedError(`${where}: layer ${j} is a foreign layer (LayerSources), which is not in the archive`, 'foreign-layers');
        throw new BlobNotFoundError(layerPath, `${where} (manifest.json entry ${i} Layers)`);
      }
      layers.push(await classicLayerDescriptor(archive, layerPath, diffIds[j], hashed));
      members.set(layers[j].digest, layerPath);
    }
    const configDescriptor: Descriptor = { mediaType: MEDIA_TYPES.config, digest: new DigestCounter().update(configBytes).digest(), size: configBytes.length };
    members.set(configDescriptor.digest, e.Config);
    // A classic archive has no manifest: ours is canonical JSON, so the same archive always gives the same digest.
    const manifest: ImageManifest = { schemaVersion: 2, mediaType: MEDIA_TYPES.manifest, config: configDescriptor, layers };
    const manifestBytes = canonicalJsonBytes(manifest);
    const descriptor: Descriptor = {
      mediaType: MEDIA_TYPES.manifest,
      digest: new DigestCounter().update(manifestBytes).digest(),
      size: manifestBytes.length,
      platform: { os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) },
    };
    const source = new ArchiveBlobs(archive, members);
    out.push({
      names: normalizedTags(e.RepoTags),
      descriptor,
      load: async () =>
        imageFromDocuments(manifest, manifestBytes, descriptor, config, configBytes, (d) => source.blob(d), `${where} manifest.json entry ${i}`, limits),
    });
  }
  return out;
}

/** A classic layer file's descriptor: its digest is its diff_id when it is a plain tar. */
async function classicLayerDescriptor(archive: TarArchive, member: string, diffId: string, hashed: Map<string, Promise<string>>): Promise<Descriptor> {
  const content = archive.content(member);
  const compression = detectCompression(await readContentHead(content, 8));
  if (compression === undefined) return { mediaType: MEDIA_TYPES.layer, digest: diffId, size: content.size };
  if (compression !== 'gzip' && compression !== 'zstd') throw new UnsupportedError(`${archive.path}: ${member} is ${compression}-compressed`, compression);
  // A compressed layer's digest is not recorded anywhere: hash it once.
  const key = archive.file(member).name;
  let digest = hashed.get(key);
  if (!digest) {
    digest = (async () => {
      const counter = new DigestCounter();
      for await (const chunk of content.open()) counter.update(chunk as Buffer);
      return counter.digest();
    })();
    hashed.set(key, digest);
  }
  return { mediaType: compression === 'gzip' ? MEDIA_TYPES.layerGzip : MEDIA_TYPES.layerZstd, digest: await digest, size: content.size };
}

function findImage(images: readonly ArchiveImage[], ref: string | undefined, where: string): ArchiveImage {
  if (ref === undefined || ref === '') {
    if (images.length === 1) return images[0];
    if (images.length === 0) throw new ImageNotFoundError('(any)', `${where} (the archive holds no image)`);
    const refs = images.map((i) => i.names[0] ?? i.refName ?? i.descriptor.digest);
    throw new CloudRootfsError('AMBIGUOUS_IMAGE', `${where} holds ${images.length} images; name one of: ${refs.join(', ')}`, { refs });
  }
  // Several entries under one name: one image if they are the same document, else ambiguous.
  const one = (found: ArchiveImage[]) => found.find((i) => i.descriptor === onlyOne(found.map((f) => f.descriptor), ref, where))!;
  const exact = images.filter((i) => i.refName === ref);
  if (exact.length > 0) return one(exact);
  const normalized = normalizeNameOrUndefined(ref);
  const byName = normalized ? images.filter((i) => i.names.includes(normalized)) : [];
  if (byName.length > 0) return one(byName);
  const byDigest = images.filter((i) => i.descriptor.digest === ref);
  if (byDigest.length > 0) return byDigest[0];
  throw new ImageNotFoundError(ref, where);
}

