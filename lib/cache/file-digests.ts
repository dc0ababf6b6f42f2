/**
 * The per-file digest memo: sha256 of context files, remembered by stamp (path, size, mtime and
 * ctime in ns, inode, device, mode, owner), so an unchanged file is never read again to compute a
 * step's cache key. Kept on disk per context root under `<cache>/files/`, loaded once per build.
 *
 * Stamps can lie in one case, as git's index knows ("racily clean" files): a file changed twice
 * within one tick of the filesystem clock keeps its mtime and ctime. So a memo entry is trusted
 * only if the file's last change is older than the moment its bytes were hashed by more than a
 * margin (default 2 s, coarser than any filesystem clock); a file written just before or during
 * a build is hashed again on every build until that holds.
 */
import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import { Content, memoDigest } from '../content';
import { SizeMismatchError } from '../errors';
import { FileSystem, IO_CHUNK, errnoCode } from '../fs';
import { ensureDir, writeFileAtomic } from '../util/atomic';
import { FileStamp, sameStamp, stampChangedMs, stampOf } from './stamp';

const MEMO_VERSION = 1;
/** Files at most this big are read with one readFile. */
const WHOLE_READ_MAX = 256 * 1024;

/** [size, mtimeNs, ctimeNs, ino, dev, mode, uid, gid, digest, hashedAtMs] */
type MemoRow = [number, string, string, string, string, number, number, number, string, number];

interface Shard {
  file: string;
  root: string;
  rows: Map<string, MemoRow>;
  dirty: Map<string, MemoRow>;
}

export interface FileDigestMemoOptions {
  fs: FileSystem;
  /** Directory of the memo files (`<cache>/files`). */
  dir: string;
  /** How much older than the hash a file's last change must be for its entry to be trusted (ms). */
  racyMarginMs?: number;
  /** Clock (tests). */
  now?: () => number;
  /** Files hashed at once (default 8). */
  concurrency?: number;
}

export interface FileDigestStats {
  /** Files whose digest came from the memo. */
  memoHits: number;
  /** Files read and hashed. */
  hashed: number;
  bytesHashed: number;
}

function rowMatches(row: MemoRow, s: FileStamp): boolean {
  return sameStamp({ root: s.root, path: s.path, size: row[0], mtimeNs: row[1], ctimeNs: row[2], ino: row[3], dev: row[4], mode: row[5], uid: row[6], gid: row[7] }, s);
}

/** sha256 of a file, checking that it still has the size it had when the context was read. */
export async function hashFile(fs: FileSystem, path: string, size: number, buffer?: Buffer): Promise<string> {
  const hash = createHash('sha256');
  let total = 0;
  if (size <= WHOLE_READ_MAX) {
    const data = await fs.promises.readFile(path);
    hash.update(data);
    total = data.length;
  } else {
    const buf = buffer ?? Buffer.allocUnsafe(IO_CHUNK);
    const fh = await fs.promises.open(path, 'r');
    try {
      for (;;) {
        const { bytesRead } = await fh.read(buf, 0, buf.length, null);
        if (bytesRead === 0) break;
        hash.update(bytesRead === buf.length ? buf : buf.subarray(0, bytesRead));
        total += bytesRead;
        if (total > size) break;
      }
    } finally {
      await fh.close();
    }
  }
  if (total !== size) throw new SizeMismatchError(size, total, `${path} (changed while the build was reading it)`);
  return 'sha256:' + hash.digest('hex');
}

export class FileDigestMemo {
  readonly stats: FileDigestStats = { memoHits: 0, hashed: 0, bytesHashed: 0 };
  private readonly shards = new Map<string, Promise<Shard>>();
  /** One digest computation per content object per process. */
  private readonly known = new WeakMap<Content, Promise<string>>();
  private readonly margin: number;
  private readonly now: () => number;
  private readonly concurrency: number;
  /** Files being hashed, and those waiting (first come, first served across all callers). */
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  private readonly buffers: Buffer[] = [];
  /** `digests` calls in progress, and who waits for none to be. */
  private pending = 0;
  private idleWaiters: (() => void)[] = [];
  private autoFlush: Promise<void> | undefined;

  constructor(private readonly options: FileDigestMemoOptions) {
    this.margin = options.racyMarginMs ?? 2000;
    this.now = options.now ?? Date.now;
    this.concurrency = options.concurrency ?? 8;
  }

  /**
   * The digests of `contents` (deduplicated). All callers share one queue of `concurrency` files
   * in flight, served in call order: the steps of a build hash their files in step order, so the
   * first layers' keys are ready first. When no call is left in progress, what was learned is
   * written to disk in the background.
   */
  async digests(contents: Iterable<Content>): Promise<Map<Content, string>> {
    this.pending++;
    try {
      const out = new Map<Content, string>();
      await Promise.all([...new Set(contents)].map(async (c) => out.set(c, await this.queued(c))));
      return out;
    } finally {
      if (--this.pending === 0) {
        for (const w of this.idleWaiters.splice(0)) w();
        this.autoFlush = this.write().catch(() => undefined);
      }
    }
  }

  private async queued(content: Content): Promise<string> {
    if (content.digest) return content.digest;
    if (this.active >= this.concurrency) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active++;
    const buffer = this.buffers.pop() ?? Buffer.allocUnsafe(IO_CHUNK);
    try {
      return await this.digestOf(content, buffer);
    } finally {
      this.buffers.push(buffer);
      this.active--;
      this.waiting.shift()?.();
    }
  }

  /** sha256 of one content: known digest, memo entry, or read and hash (and remember). */
  digestOf(content: Content, buffer?: Buffer): Promise<string> {
    if (content.digest) return Promise.resolve(content.digest);
    let p = this.known.get(content);
    if (!p) {
      p = this.compute(content, buffer);
      this.known.set(content, p);
      p.catch(() => this.known.delete(content));
    }
    return p;
  }

  private async compute(content: Content, buffer?: Buffer): Promise<string> {
    const stamped = stampOf(content);
    if (!stamped) return memoDigest(content); // not a context file: hash it (once per process)
    const { stamp, fs, abs } = stamped;
    const shard = await this.shard(stamp.root);
    const row = shard.rows.get(stamp.path);
    if (row && rowMatches(row, stamp) && stampChangedMs(stamp) + this.margin < row[9]) {
      this.stats.memoHits++;
      return row[8];
    }
    const hashedAt = this.now();
    const digest = await hashFile(fs, abs, stamp.size, buffer);
    this.stats.hashed++;
    this.stats.bytesHashed += stamp.size;
    const fresh: MemoRow = [stamp.size, stamp.mtimeNs, stamp.ctimeNs, stamp.ino, stamp.dev, stamp.mode, stamp.uid, stamp.gid, digest, hashedAt];
    shard.rows.set(stamp.path, fresh);
    shard.dirty.set(stamp.path, fresh);
    return digest;
  }

  private shard(root: string): Promise<Shard> {
    let p = this.shards.get(root);
    if (!p) {
      p = this.loadShard(root);
      this.shards.set(root, p);
    }
    return p;
  }

  private shardFile(root: string): string {
    return posix.join(this.options.dir, createHash('sha256').update(root).digest('hex').slice(0, 40) + '.json');
  }

  private async readRows(file: string, root: string): Promise<Map<string, MemoRow>> {
    try {
      const doc = JSON.parse(await this.options.fs.promises.readFile(file, 'utf8')) as { version?: number; root?: string; entries?: Record<string, MemoRow> };
      if (doc.version !== MEMO_VERSION || doc.root !== root || typeof doc.entries !== 'object' || doc.entries === null) return new Map();
      const rows = new Map<string, MemoRow>();
      for (const [k, v] of Object.entries(doc.entries)) if (Array.isArray(v) && v.length === 10 && typeof v[8] === 'string') rows.set(k, v);
      return rows;
    } catch (err) {
      // Missing or unreadable memo: start empty (the memo is only ever a shortcut).
      if (errnoCode(err) !== 'ENOENT' && !(err instanceof SyntaxError)) throw err;
      return new Map();
    }
  }

  private async loadShard(root: string): Promise<Shard> {
    const file = this.shardFile(root);
    return { file, root, rows: await this.readRows(file, root), dirty: new Map() };
  }

  /** Wait for every hash in progress, then write what was learned (merged with other builds'). */
  async flush(): Promise<void> {
    if (this.pending > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    await this.autoFlush;
    await this.write();
  }

  private async write(): Promise<void> {
    for (const p of this.shards.values()) {
      const shard = await p.catch(() => undefined);
      if (!shard || shard.dirty.size === 0) continue;
      const rows = await this.readRows(shard.file, shard.root);
      for (const [k, v] of shard.dirty) rows.set(k, v);
      const entries: Record<string, MemoRow> = {};
      for (const [k, v] of rows) entries[k] = v;
      await ensureDir(this.options.fs, this.options.dir);
      await writeFileAtomic(this.options.fs, shard.file, JSON.stringify({ version: MEMO_VERSION, root: shard.root, entries }), { durable: false });
      shard.dirty.clear();
    }
  }
}
