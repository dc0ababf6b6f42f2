/**
 * The build cache of an image store, under `<store>/cache/v1/`:
 *
 *   steps/<aa>/<step key>.json   a COPY/ADD/APP step → the diff_id of the layer it made
 *   blobs/<aa>/<blob key>.json   a diff_id encoded with given options → blob digest, size, media
 *                                type, and the stamp of the store file when it was last checked
 *   files/<root hash>.json       per-file digest memo of a build context (file-digests.ts)
 *
 * Records are small JSON files written atomically; the blobs themselves are the store's own
 * (`blobs/sha256/…`). Nothing here is ever trusted blindly: a step record is used only through a
 * blob record, a blob record only if the store still holds the blob with the recorded size and
 * either the same file stamp as when it was checked or, failing that, the recorded digest when
 * hashed again. Anything else is a miss and the layer is encoded again, so deleting the whole
 * `cache/` directory (or any file in it) costs time, never correctness.
 */
import { posix } from 'node:path';
import { Content } from '../content';
import { FileSystem, errnoCode } from '../fs';
import { KnownBlob, LayerEncodingCache, attachEncodingCache, encodingCacheOf } from '../image/layer';
import { Layer, LayerStats } from '../layer/layer';
import type { ImageStore } from '../store/store';
import { DigestCounter, decompressStream, hashingTransform } from '../compress';
import { EncodeLayerOptions, EncodedLayer, layerTarStream } from '../tar/write';
import { ensureDir, removeAll, writeFileAtomic } from '../util/atomic';
import { FileDigestMemo, FileDigestStats, hashFile } from './file-digests';
import { blobKey, encoderIdentity, sha256Hex } from './keys';
import { encodingKey } from '../image/layer';
import { lstatPrecise, sameStamp, stampFromStats, stampOf } from './stamp';
import type { StepKey } from './step-key';

export const CACHE_DIR = 'cache';
const LAYOUT_VERSION = 'v1';
/** 2: hardlink records carry their inode's attributes (layers with hardlinks encode differently). */
const RECORD_VERSION = 2;

export interface StepRecord {
  version: number;
  key: string;
  diffId: string;
  /** The instruction that made it (for people reading the cache). */
  instruction?: string;
  /** Shape of the layer, checked against the layer a hit rebuilds in memory. */
  stats: LayerStats;
  created: string;
}

export interface BlobRecord {
  version: number;
  key: string;
  diffId: string;
  /** `encodingKey(options)` of the write that made it. */
  encoding: string;
  /** `encoderIdentity()` of the process that made it. */
  encoder: string;
  digest: string;
  size: number;
  mediaType: string;
  uncompressedSize: number;
  compression: EncodedLayer['compression'];
  /** Shape of the layer (see `shapeKey`), when known. */
  stats?: LayerStats;
  /** The store file as last checked: size, mtime and ctime (ns), inode. */
  checked?: { size: number; mtimeNs: string; ctimeNs: string; ino: string };
  created: string;
}

export interface BuildCacheStats {
  /** Layer steps whose key was found with a usable blob. */
  stepHits: number;
  /** Layers the writer had to encode although they were bound to the cache. */
  misses: number;
  /** Layers of other steps (RUN, edits) whose blob was found by diff_id. */
  blobHits: number;
  /** Blob records rejected: blob missing, wrong size, or wrong digest when hashed again. */
  rejected: number;
  /** Step records whose diff_id disagreed with a fresh encoding (then corrected). */
  mismatches: number;
  files: FileDigestStats;
}

export interface BuildCacheOptions {
  /** See FileDigestMemo: how old a file's last change must be for its memo entry to count (ms). */
  racyMarginMs?: number;
  /** Clock (tests). */
  now?: () => number;
}

/**
 * What the builder knows about a layer it made, when it hands the layer to the cache. Keys and
 * diff_ids are promises: they are computed in the background (hashing files, or a tar) while the
 * build goes on and earlier layers are compressed, and awaited only when a writer needs them.
 */
export interface LayerBinding {
  /** The step key of a COPY/ADD/APP step, and the context files it was computed from. */
  stepKey?: Promise<StepKey>;
  /** The layer's diff_id when the builder computes it (RUN output, batched edits, other layers). */
  diffId?: Promise<string>;
  /** The source date epoch the layer was made with (its tar, hence its diff_id, depends on it). */
  sourceDateEpoch: number;
  instruction?: string;
}

export type CacheOutcome = 'hit' | 'miss';

function shardPath(dir: string, key: string): string {
  return posix.join(dir, key.slice(0, 2), `${key}.json`);
}

/**
 * A weak fingerprint of a layer and an encoding: its entry, whiteout and opaque counts and total
 * file bytes. A layer can only be a recorded blob if a blob of its shape was recorded, so a layer
 * whose step missed is hashed (tar → sha256, to find its blob by diff_id) only when the shape is
 * known: never on a cold cache, and for the steps above a changed one on a rebuild.
 */
function shapeKey(stats: LayerStats, encoding: string): string {
  return sha256Hex(JSON.stringify([stats.entries, stats.whiteouts, stats.opaques, stats.bytes, encoding, encoderIdentity()]));
}

function sameStats(a: LayerStats, b: LayerStats): boolean {
  return a.entries === b.entries && a.whiteouts === b.whiteouts && a.opaques === b.opaques && a.bytes === b.bytes;
}

/** The diff_id of a layer: its tar through sha256 (no compression). */
export async function computeDiffId(layer: Layer, sourceDateEpoch: number): Promise<string> {
  const counter = new DigestCounter();
  for await (const chunk of layerTarStream(layer, { sourceDateEpoch })) counter.update(chunk as Buffer);
  return counter.digest();
}

export class BuildCache {
  readonly stats: BuildCacheStats;
  readonly files: FileDigestMemo;
  /** `<store>/cache/v1`. */
  readonly dir: string;
  private readonly outcomes = new WeakMap<Layer, CacheOutcome>();

  private constructor(
    readonly store: ImageStore,
    readonly fs: FileSystem,
    private readonly options: BuildCacheOptions,
  ) {
    this.dir = posix.join(store.root, CACHE_DIR, LAYOUT_VERSION);
    this.files = new FileDigestMemo({ fs, dir: posix.join(this.dir, 'files'), racyMarginMs: options.racyMarginMs, now: options.now });
    this.stats = { stepHits: 0, misses: 0, blobHits: 0, rejected: 0, mismatches: 0, files: this.files.stats };
  }

  /** The cache of `store` (nothing is created until something is recorded). */
  static open(store: ImageStore, options: BuildCacheOptions = {}): BuildCache {
    return new BuildCache(store, store.fs, options);
  }

  private now(): string {
    return new Date((this.options.now ?? Date.now)()).toISOString();
  }

  // --- records ----------------------------------------------------------------------------------

  private async readJson<T>(path: string): Promise<T | undefined> {
    try {
      return JSON.parse(await this.fs.promises.readFile(path, 'utf8')) as T;
    } catch (err) {
      // Missing, or torn by a crash: either way not a record.
      if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR' || err instanceof SyntaxError) return undefined;
      throw err;
    }
  }

  private async writeJson(path: string, value: unknown): Promise<void> {
    await ensureDir(this.fs, posix.dirname(path));
    await writeFileAtomic(this.fs, path, JSON.stringify(value), { durable: false });
  }

  async stepRecord(key: string): Promise<StepRecord | undefined> {
    const r = await this.readJson<StepRecord>(shardPath(posix.join(this.dir, 'steps'), key));
    if (!r || r.version !== RECORD_VERSION || r.key !== key || typeof r.diffId !== 'string' || !r.stats) return undefined;
    return r;
  }

  async writeStepRecord(record: Omit<StepRecord, 'version' | 'created'>): Promise<void> {
    await this.writeJson(shardPath(posix.join(this.dir, 'steps'), record.key), { version: RECORD_VERSION, ...record, created: this.now() });
  }

  async blobRecord(diffId: string, options: EncodeLayerOptions): Promise<BlobRecord | undefined> {
    const key = blobKey(diffId, options);
    const r = await this.readJson<BlobRecord>(shardPath(posix.join(this.dir, 'blobs'), key));
    if (!r || r.version !== RECORD_VERSION || r.key !== key || r.diffId !== diffId || typeof r.digest !== 'string' || typeof r.size !== 'number') return undefined;
    return r;
  }

  /** Remember a blob the store holds (called right after it was written, so trusted as is). */
  async recordBlob(encoded: EncodedLayer, options: EncodeLayerOptions, stats?: LayerStats): Promise<boolean> {
    const checked = await this.blobStamp(encoded.digest);
    if (!checked || checked.size !== encoded.size) return false;
    const key = blobKey(encoded.diffId, options);
    const record: BlobRecord = {
      version: RECORD_VERSION,
      key,
      diffId: encoded.diffId,
      encoding: encodingKey(options),
      encoder: encoderIdentity(),
      digest: encoded.digest,
      size: encoded.size,
      mediaType: encoded.mediaType,
      uncompressedSize: encoded.uncompressedSize,
      compression: encoded.compression,
      ...(stats ? { stats } : {}),
      checked,
      created: this.now(),
    };
    await this.writeJson(shardPath(posix.join(this.dir, 'blobs'), key), record);
    if (stats) await this.markShape(stats, encodingKey(options));
    return true;
  }

  /** `encoding` is `encodingKey(options)` of the write. */
  private shapePath(stats: LayerStats, encoding: string): string {
    return shardPath(posix.join(this.dir, 'shapes'), shapeKey(stats, encoding));
  }

  private async markShape(stats: LayerStats, encoding: string): Promise<void> {
    await this.writeJson(this.shapePath(stats, encoding), { version: RECORD_VERSION, stats });
  }

  private async hasShape(stats: LayerStats, encoding: string): Promise<boolean> {
    return (await this.readJson<unknown>(this.shapePath(stats, encoding))) !== undefined;
  }

  /**
   * Adopt a blob record from elsewhere (an import) for a blob the store holds: the blob must hash
   * to the recorded digest and decompress to a tar with the recorded diff_id. Returns false (and
   * writes nothing) otherwise.
   */
  async adoptBlobRecord(record: BlobRecord): Promise<boolean> {
    const checked = await this.blobStamp(record.digest);
    if (!checked || checked.size !== record.size) return false;
    const compressed = new DigestCounter();
    const tar = new DigestCounter();
    try {
      const raw = this.store.layout.blob(record).open().pipe(hashingTransform(compressed));
      for await (const chunk of decompressStream(raw)) tar.update(chunk as Buffer);
    } catch {
      return false;
    }
    if (compressed.digest() !== record.digest || tar.digest() !== record.diffId) return false;
    await this.writeJson(shardPath(posix.join(this.dir, 'blobs'), record.key), { ...record, version: RECORD_VERSION, checked });
    if (record.stats) await this.markShape(record.stats, record.encoding);
    return true;
  }

  async putStepRecord(record: StepRecord): Promise<void> {
    await this.writeJson(shardPath(posix.join(this.dir, 'steps'), record.key), { ...record, version: RECORD_VERSION });
  }

  private async blobStamp(digest: string): Promise<BlobRecord['checked'] | undefined> {
    const st = await lstatPrecise(this.fs, this.store.layout.blobPath(digest));
    if (!st || !st.isFile()) return undefined;
    const s = stampFromStats('', '', st);
    return { size: s.size, mtimeNs: s.mtimeNs, ctimeNs: s.ctimeNs, ino: s.ino };
  }

  /**
   * The store blob for `diffId` encoded with `options`, checked: present, recorded size, and the
   * file unchanged since it was checked (else hashed again, and refused unless it still matches).
   */
  async findBlob(diffId: string, options: EncodeLayerOptions): Promise<KnownBlob | undefined> {
    const record = await this.blobRecord(diffId, options);
    if (!record) return undefined;
    const now = await this.blobStamp(record.digest);
    const unchanged =
      now !== undefined &&
      record.checked !== undefined &&
      now.size === record.checked.size &&
      now.mtimeNs === record.checked.mtimeNs &&
      now.ctimeNs === record.checked.ctimeNs &&
      now.ino === record.checked.ino;
    if (!unchanged) {
      if (!now || now.size !== record.size) {
        this.stats.rejected++;
        return undefined;
      }
      const actual = await hashFile(this.fs, this.store.layout.blobPath(record.digest), record.size).catch(() => undefined);
      if (actual !== record.digest) {
        this.stats.rejected++;
        return undefined;
      }
      await this.writeJson(shardPath(posix.join(this.dir, 'blobs'), record.key), { ...record, checked: now });
    }
    const descriptor = { mediaType: record.mediaType, digest: record.digest, size: record.size };
    return {
      encoded: {
        diffId: record.diffId,
        digest: record.digest,
        size: record.size,
        mediaType: record.mediaType,
        uncompressedSize: record.uncompressedSize,
        compression: record.compression,
      },
      blob: this.store.layout.blob(descriptor),
    };
  }

  // --- layers the builder made ------------------------------------------------------------------

  /**
   * Hand a layer to the cache: writers of the layer will ask it for a blob first and tell it what
   * they encoded. Returns the layer.
   */
  bindLayer(layer: Layer, binding: LayerBinding): Layer {
    // Failures surface where the promise is awaited (a miss); never as an unhandled rejection.
    binding.stepKey?.catch(() => undefined);
    binding.diffId?.catch(() => undefined);
    const hook: LayerEncodingCache = {
      lookup: (options) => this.lookup(layer, binding, options),
      record: (options, encoded) => this.record(layer, binding, options, encoded),
    };
    attachEncodingCache(layer, hook);
    return layer;
  }

  /** True when `layer` was handed to a cache (this one or another). */
  isBound(layer: Layer): boolean {
    return encodingCacheOf(layer) !== undefined;
  }

  /** Whether the last write of `layer` reused a cached blob ('hit') or encoded it ('miss'). */
  outcomeOf(layer: Layer): CacheOutcome | undefined {
    return this.outcomes.get(layer);
  }

  private async lookup(layer: Layer, binding: LayerBinding, options: EncodeLayerOptions): Promise<KnownBlob | undefined> {
    if ((options.sourceDateEpoch ?? 0) !== binding.sourceDateEpoch) return undefined;
    let diffId = binding.diffId ? await binding.diffId : undefined;
    const stepKey = binding.stepKey ? await binding.stepKey : undefined;
    const stats = layer.stats();
    let viaStep = false;
    if (diffId === undefined && stepKey !== undefined) {
      const step = await this.stepRecord(stepKey.key);
      // The layer rebuilt in memory must have the recorded shape; if not, the record is not ours.
      if (step && sameStats(step.stats, stats)) {
        diffId = step.diffId;
        viaStep = true;
      }
    }
    let computed = false;
    if (diffId === undefined && (await this.hasShape(stats, encodingKey(options)))) {
      // No step record (a step above a changed one, say), but a blob of this shape exists: the
      // layer may well be one we have. Its tar's sha256 tells, without compressing anything.
      diffId = await computeDiffId(layer, binding.sourceDateEpoch);
      computed = true;
    }
    if (diffId === undefined) return undefined;
    const found = await this.findBlob(diffId, options);
    if (!found) return undefined;
    if (computed && stepKey !== undefined && (await this.sourcesUnchanged(stepKey.contents))) {
      // Next time the step key alone will do.
      await this.writeStepRecord({ key: stepKey.key, diffId, instruction: binding.instruction, stats });
    }
    if (viaStep) this.stats.stepHits++;
    else this.stats.blobHits++;
    this.outcomes.set(layer, 'hit');
    return found;
  }

  private async record(layer: Layer, binding: LayerBinding, options: EncodeLayerOptions, encoded: EncodedLayer): Promise<void> {
    this.outcomes.set(layer, 'miss');
    this.stats.misses++;
    if ((options.sourceDateEpoch ?? 0) !== binding.sourceDateEpoch) return;
    const diffId = binding.diffId ? await binding.diffId.catch(() => undefined) : undefined;
    if (diffId !== undefined && diffId !== encoded.diffId) this.stats.mismatches++;
    const stepKey = binding.stepKey ? await binding.stepKey.catch(() => undefined) : undefined;
    const stats = layer.stats();
    if (stepKey !== undefined && (await this.sourcesUnchanged(stepKey.contents))) {
      const old = await this.stepRecord(stepKey.key);
      if (old && old.diffId !== encoded.diffId) this.stats.mismatches++;
      await this.writeStepRecord({ key: stepKey.key, diffId: encoded.diffId, instruction: binding.instruction, stats });
    }
    await this.recordBlob(encoded, options, stats);
  }

  /** True when every context file a key was computed from still has the stamp it was read with. */
  private async sourcesUnchanged(contents: readonly Content[]): Promise<boolean> {
    let next = 0;
    let ok = true;
    const list = contents.filter((c) => stampOf(c));
    await Promise.all(
      Array.from({ length: Math.min(16, list.length) }, async () => {
        while (ok && next < list.length) {
          const { stamp, fs, abs } = stampOf(list[next++])!;
          const st = await lstatPrecise(fs, abs);
          if (!st || !sameStamp(stamp, stampFromStats(stamp.root, stamp.path, st))) ok = false;
        }
      }),
    );
    return ok;
  }

  /** Persist the file digest memo (records are written as they are learned). */
  async flush(): Promise<void> {
    await this.files.flush();
  }

  /** Delete the whole cache of the store (`<store>/cache`). */
  async clear(): Promise<void> {
    await removeAll(this.fs, posix.join(this.store.root, CACHE_DIR));
  }

  /** Every record (for export), unchecked. */
  async records(): Promise<{ steps: StepRecord[]; blobs: BlobRecord[] }> {
    const read = async <T>(sub: string): Promise<T[]> => {
      const out: T[] = [];
      const base = posix.join(this.dir, sub);
      let shards: string[];
      try {
        shards = await this.fs.promises.readdir(base);
      } catch (err) {
        if (errnoCode(err) === 'ENOENT') return out;
        throw err;
      }
      for (const shard of shards.sort()) {
        if (!/^[0-9a-f]{2}$/.test(shard)) continue;
        for (const name of (await this.fs.promises.readdir(posix.join(base, shard))).sort()) {
          if (!name.endsWith('.json') || name.startsWith('.')) continue;
          const r = await this.readJson<T>(posix.join(base, shard, name));
          if (r) out.push(r);
        }
      }
      return out;
    };
    return {
      steps: (await read<StepRecord>('steps')).filter((r) => r.version === RECORD_VERSION),
      blobs: (await read<BlobRecord>('blobs')).filter((r) => r.version === RECORD_VERSION),
    };
  }
}

// --- chain identities of layers made in this process ---------------------------------------------

const identities = new WeakMap<Layer, Promise<string>>();

/** How a layer enters the chain key: `step:<key>` for a cacheable step, `diff:<diff_id>` else. */
export function setLayerIdentity(layer: Layer, identity: Promise<string>): void {
  identity.catch(() => undefined);
  identities.set(layer, identity);
}

export function layerIdentity(layer: Layer): Promise<string> | undefined {
  return identities.get(layer);
}
