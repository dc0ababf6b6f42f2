/**
 * Sharing a build cache through a registry, as BuildKit's registry cache does: the records go
 * into one OCI artifact — an image manifest whose config is the cache records (JSON, its own
 * media type) and whose layers are the layer blobs the records name — pushed under a tag. Any
 * machine of a pipeline imports it before building: the records join its store's cache and the
 * blobs it can use are downloaded (verified) into its store.
 *
 * Only step and blob records travel; the file digest memo is about one machine's files and stays.
 * Blob records of another encoder (zlib or Node version) are skipped: their keys never match
 * here. A blob record is taken only when its blob hashes to its digest and decompresses to its
 * diff_id; a step record only when it leads to such a blob. What cannot be checked is whether a
 * step key really makes that diff_id: import caches you trust (as with BuildKit's).
 */
import { Readable } from 'node:stream';
import { InvalidImageError, LimitExceededError } from '../errors';
import { canonicalJsonBytes } from '../image/json';
import type { Descriptor, ImageManifest } from '../image/types';
import { DigestCounter } from '../compress';
import { MEDIA_TYPES } from '../media-types';
import { registryBlobContent } from '../registry/blob-content';
import type { RegistryClient } from '../registry/client';
import { clientFor, manifestRef, parseRemoteReference, type RegistryAccessOptions } from '../registry/remote';
import { RegistryTarget, type PushStats, type RegistryProgress } from '../registry/target';
import type { ImageStore } from '../store/store';
import { BlobRecord, BuildCache, StepRecord } from './build-cache';
import { encoderIdentity } from './keys';
import { mapLimited } from '../util/concurrency';

/** `artifactType` of the cache manifest, and the media type of its config (the records). */
export const BUILD_CACHE_ARTIFACT_TYPE = 'application/vnd.cloudrootfs.build-cache.v1';
export const BUILD_CACHE_CONFIG_MEDIA_TYPE = 'application/vnd.cloudrootfs.build-cache.config.v1+json';
const EXPORT_VERSION = 1;
/** Largest records document accepted on import. */
const MAX_RECORDS_BYTES = 64 << 20;

export interface BuildCacheRegistryOptions extends RegistryAccessOptions {
  /** Blobs transferred at once (default 4). */
  concurrency?: number;
  /** Other repositories of the registry to mount blobs from (export). */
  mountFrom?: readonly string[];
  onProgress?: (event: RegistryProgress) => void;
  signal?: AbortSignal;
}

export interface ExportBuildCacheResult {
  reference: string;
  /** Digest of the cache manifest. */
  digest: string;
  steps: number;
  blobs: number;
  stats: PushStats;
}

export interface ImportBuildCacheResult {
  reference: string;
  digest: string;
  steps: number;
  blobs: number;
  /** Blobs downloaded into the store (the others were there already). */
  downloaded: number;
}

type ExportedStep = Omit<StepRecord, 'version' | 'created'>;
type ExportedBlob = Omit<BlobRecord, 'version' | 'created' | 'checked'>;

interface CacheDocument {
  version: number;
  steps: ExportedStep[];
  blobs: ExportedBlob[];
}

const HEX64 = /^[0-9a-f]{64}$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;

function asCache(store: ImageStore | BuildCache): BuildCache {
  return store instanceof BuildCache ? store : BuildCache.open(store);
}

/** Push the cache of `store` (its records whose blobs the store holds, and those blobs) to `ref`. */
export async function exportBuildCache(store: ImageStore | BuildCache, ref: string, options: BuildCacheRegistryOptions = {}): Promise<ExportBuildCacheResult> {
  const cache = asCache(store);
  const dest = parseRemoteReference(ref);
  const { steps, blobs } = await cache.records();
  const layout = cache.store.layout;

  // Only what another machine can use: blob records whose blob is here, steps that reach one.
  const usable: ExportedBlob[] = [];
  for (const r of blobs) {
    if (!DIGEST.test(r.digest) || !(await layout.has({ digest: r.digest, size: r.size }))) continue;
    usable.push({
      key: r.key,
      diffId: r.diffId,
      encoding: r.encoding,
      encoder: r.encoder,
      digest: r.digest,
      size: r.size,
      mediaType: r.mediaType,
      uncompressedSize: r.uncompressedSize,
      compression: r.compression,
      ...(r.stats ? { stats: r.stats } : {}),
    });
  }
  const withBlob = new Set(usable.map((b) => b.diffId));
  const usableSteps: ExportedStep[] = steps
    .filter((s) => withBlob.has(s.diffId))
    .map((s) => ({ key: s.key, diffId: s.diffId, instruction: s.instruction, stats: s.stats }));
  const doc: CacheDocument = { version: EXPORT_VERSION, steps: usableSteps, blobs: usable };
  const configBytes = canonicalJsonBytes(doc);
  const config: Descriptor = { mediaType: BUILD_CACHE_CONFIG_MEDIA_TYPE, digest: new DigestCounter().update(configBytes).digest(), size: configBytes.length };
  const layers = new Map<string, Descriptor>();
  for (const b of usable) layers.set(b.digest, { mediaType: b.mediaType, digest: b.digest, size: b.size });
  const manifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.manifest,
    artifactType: BUILD_CACHE_ARTIFACT_TYPE,
    config,
    layers: [...layers.values()],
  };
  const manifestBytes = canonicalJsonBytes(manifest);

  const client = clientFor(dest.registry, options);
  const target = new RegistryTarget(client, dest.repository, { mountFrom: options.mountFrom, onProgress: options.onProgress, signal: options.signal });
  await mapLimited([...layers.values()], options.concurrency ?? 4, async (d) => {
    if (!(await target.has(d))) await target.putContent(layout.blob(d), d);
  });
  if (!(await target.has(config))) await target.putBytes(configBytes, config);
  const digest = await client.putManifest(dest.repository, manifestRef(dest), manifestBytes, MEDIA_TYPES.manifest, { signal: options.signal });
  target.stats.manifests++;
  return { reference: dest.name, digest, steps: usableSteps.length, blobs: usable.length, stats: target.stats };
}

async function readAll(stream: Readable, limit: number, what: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      stream.destroy();
      throw new LimitExceededError('maxRecordsBytes', limit, what);
    }
    parts.push(chunk as Buffer);
  }
  return Buffer.concat(parts);
}

function checkDocument(value: unknown, where: string): CacheDocument {
  const bad = (why: string): never => {
    throw new InvalidImageError(`${where}: not a cloudrootfs build cache (${why})`);
  };
  if (typeof value !== 'object' || value === null) bad('records are not an object');
  const doc = value as Partial<CacheDocument>;
  if (doc.version !== EXPORT_VERSION) bad(`version ${String(doc.version)}`);
  if (!Array.isArray(doc.steps) || !Array.isArray(doc.blobs)) bad('steps and blobs must be lists');
  for (const s of doc.steps!) {
    if (!s || !HEX64.test(String(s.key)) || !DIGEST.test(String(s.diffId)) || typeof s.stats !== 'object' || s.stats === null) bad('a malformed step record');
  }
  for (const b of doc.blobs!) {
    if (!b || !HEX64.test(String(b.key)) || !DIGEST.test(String(b.diffId)) || !DIGEST.test(String(b.digest))) bad('a malformed blob record');
    if (!Number.isSafeInteger(b.size) || b.size < 0 || typeof b.mediaType !== 'string' || typeof b.encoding !== 'string' || typeof b.encoder !== 'string') {
      bad('a malformed blob record');
    }
  }
  return doc as CacheDocument;
}

/** Fetch the cache at `ref` into `store`: records into its cache, usable blobs into the store. */
export async function importBuildCache(store: ImageStore | BuildCache, ref: string, options: BuildCacheRegistryOptions = {}): Promise<ImportBuildCacheResult> {
  const cache = asCache(store);
  const src = parseRemoteReference(ref);
  const client: RegistryClient = clientFor(src.registry, options);
  const where = `${src.name}`;
  const got = await client.getManifest(src.repository, manifestRef(src), { accept: [MEDIA_TYPES.manifest], signal: options.signal });
  let manifest: ImageManifest & { artifactType?: string };
  try {
    manifest = JSON.parse(got.bytes.toString('utf8')) as ImageManifest & { artifactType?: string };
  } catch {
    throw new InvalidImageError(`${where}: the manifest is not JSON`);
  }
  if (manifest.config?.mediaType !== BUILD_CACHE_CONFIG_MEDIA_TYPE) {
    throw new InvalidImageError(`${where}: not a cloudrootfs build cache (config media type ${JSON.stringify(manifest.config?.mediaType)})`);
  }
  if (manifest.config.size > MAX_RECORDS_BYTES) throw new LimitExceededError('maxRecordsBytes', MAX_RECORDS_BYTES, `${where} records`);
  const configStream = await client.getBlob(src.repository, manifest.config.digest, { expectedSize: manifest.config.size, signal: options.signal });
  const bytes = await readAll(configStream, MAX_RECORDS_BYTES, `${where} records`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new InvalidImageError(`${where}: the cache records are not JSON`);
  }
  const doc = checkDocument(parsed, where);

  // Blobs this process can use (same encoder) and does not hold yet: download, verified.
  const layout = cache.store.layout;
  const listed = new Map((manifest.layers ?? []).map((l) => [l.digest, l]));
  const wanted = new Map<string, ExportedBlob>();
  for (const b of doc.blobs) if (b.encoder === encoderIdentity() && listed.has(b.digest)) wanted.set(b.digest, b);
  let downloaded = 0;
  await mapLimited([...wanted.values()], options.concurrency ?? 4, async (b) => {
    const d: Descriptor = { mediaType: b.mediaType, digest: b.digest, size: b.size };
    if (await layout.has(d)) return;
    await layout.putContent(registryBlobContent(client, src.repository, d), d);
    downloaded++;
  });

  // A blob record is taken only once its blob proved to be what it says: digest and diff_id.
  const created = new Date().toISOString();
  let blobsTaken = 0;
  const adopted = new Set<string>();
  await mapLimited([...wanted.values()], options.concurrency ?? 4, async (b) => {
    if (await cache.adoptBlobRecord({ ...b, version: 1, created })) {
      blobsTaken++;
      adopted.add(b.diffId);
    }
  });
  let stepsTaken = 0;
  for (const s of doc.steps) {
    if (!adopted.has(s.diffId) || (await cache.stepRecord(s.key))) continue;
    await cache.putStepRecord({ ...s, version: 1, created });
    stepsTaken++;
  }
  return { reference: src.name, digest: got.digest, steps: stepsTaken, blobs: blobsTaken, downloaded };
}
