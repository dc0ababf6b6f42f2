/**
 * An exclusive lock shared by processes on one store: a lock file created with O_EXCL (`wx`),
 * holding who took it (pid, host, a random nonce, the time).
 *
 * - Inside one process, callers queue on an in-memory mutex first, so the file is only ever
 *   contended between processes.
 * - A lock whose holder is dead (same host, `kill(pid, 0)` says ESRCH) or that is older than
 *   `staleMs` is broken: it is renamed to a unique name (only one breaker can win that rename),
 *   checked to still be the lock that was judged stale, and removed.
 * - Release removes the file only if it still holds our nonce.
 *
 * Only short critical sections run under it (index.json read-modify-write, garbage collection);
 * blob writes never need it because blobs are content-addressed and renamed into place.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { LockTimeoutError, fileSystemError } from '../errors';
import { FileSystem, FsFileHandle, errnoCode } from '../fs';
import { signedTempName } from '../util/atomic';

export interface LockOptions {
  /** Give up after this long (default 60 s). */
  timeoutMs?: number;
  /** A lock older than this is stale whatever its holder (default 10 min). */
  staleMs?: number;
}

interface Holder {
  pid: number;
  host: string;
  nonce: string;
  time: number;
}

const DEFAULT_TIMEOUT = 60_000;
const DEFAULT_STALE = 10 * 60_000;
/** A lock file with no readable holder (its writer died between create and write) is stale after this. */
const UNREADABLE_STALE = 30_000;

const queues = new WeakMap<FileSystem, Map<string, Promise<unknown>>>();

/** Run `fn` while holding the lock at `lockPath`. */
export async function withLock<T>(fs: FileSystem, lockPath: string, fn: () => Promise<T>, options: LockOptions = {}): Promise<T> {
  let byPath = queues.get(fs);
  if (!byPath) queues.set(fs, (byPath = new Map()));
  const previous = byPath.get(lockPath) ?? Promise.resolve();
  let release!: () => void;
  const mine = new Promise<void>((resolve) => (release = resolve));
  const tail = previous.then(() => mine);
  byPath.set(lockPath, tail);
  try {
    await previous.catch(() => undefined);
    const nonce = await acquire(fs, lockPath, options);
    try {
      return await fn();
    } finally {
      await releaseFile(fs, lockPath, nonce);
    }
  } finally {
    release();
    if (byPath.get(lockPath) === tail) byPath.delete(lockPath);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function acquire(fs: FileSystem, lockPath: string, options: LockOptions): Promise<string> {
  const timeout = options.timeoutMs ?? DEFAULT_TIMEOUT;
  const staleMs = options.staleMs ?? DEFAULT_STALE;
  const started = Date.now();
  const nonce = randomBytes(12).toString('hex');
  let delay = 2;
  for (;;) {
    const holder: Holder = { pid: process.pid, host: hostname(), nonce, time: Date.now() };
    let fh: FsFileHandle | undefined;
    try {
      fh = await fs.promises.open(lockPath, 'wx', 0o644);
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw fileSystemError(err, lockPath, 'take the lock');
    }
    if (fh) {
      try {
        try {
          await fh.write(Buffer.from(JSON.stringify(holder)));
        } finally {
          await fh.close();
        }
      } catch (err) {
        // A lock without its holder (a full disk) would make every later writer wait for it to
        // go stale: take it back before reporting.
        await fs.promises.unlink(lockPath).catch(() => undefined);
        throw fileSystemError(err, lockPath, 'take the lock');
      }
      return nonce;
    }
    const seen = await readLock(fs, lockPath);
    if (seen && isStale(seen, staleMs)) {
      await breakLock(fs, lockPath, seen.raw);
      continue;
    }
    if (Date.now() - started > timeout) throw new LockTimeoutError(lockPath, Date.now() - started, seen?.holder);
    await sleep(delay + Math.random() * delay);
    delay = Math.min(delay * 2, 50);
  }
}

interface SeenLock {
  raw: string;
  holder?: Holder;
  mtimeMs: number;
}

async function readLock(fs: FileSystem, lockPath: string): Promise<SeenLock | undefined> {
  try {
    const [raw, st] = await Promise.all([fs.promises.readFile(lockPath, 'utf8'), fs.promises.stat(lockPath)]);
    let holder: Holder | undefined;
    try {
      const v = JSON.parse(raw) as Holder;
      if (typeof v.pid === 'number' && typeof v.nonce === 'string') holder = v;
    } catch {
      holder = undefined;
    }
    return { raw, holder, mtimeMs: st.mtimeMs };
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoCode(err) === 'EPERM';
  }
}

function isStale(seen: SeenLock, staleMs: number): boolean {
  const age = Date.now() - (seen.holder?.time ?? seen.mtimeMs);
  if (!seen.holder) return Date.now() - seen.mtimeMs > UNREADABLE_STALE;
  if (age > staleMs) return true;
  if (seen.holder.host !== hostname()) return false;
  // Our own pid: the in-process queue says nobody here holds it, so an earlier holder leaked it.
  if (seen.holder.pid === process.pid) return true;
  return !processAlive(seen.holder.pid);
}

/** Remove a stale lock, unless someone replaced it since we looked. */
async function breakLock(fs: FileSystem, lockPath: string, judged: string): Promise<void> {
  // A signed temporary name: what a breaker that dies here leaves is swept by gc.
  const aside = signedTempName(`${lockPath}.stale`);
  try {
    await fs.promises.rename(lockPath, aside);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return; // another breaker won
    throw err;
  }
  const now = await fs.promises.readFile(aside, 'utf8').catch(() => '');
  if (now !== judged) {
    // We moved a fresh lock: put it back if the name is still free.
    await fs.promises.link(aside, lockPath).catch(() => undefined);
  }
  await fs.promises.unlink(aside).catch(() => undefined);
}

async function releaseFile(fs: FileSystem, lockPath: string, nonce: string): Promise<void> {
  const seen = await readLock(fs, lockPath);
  if (seen?.holder?.nonce === nonce) await fs.promises.unlink(lockPath).catch(() => undefined);
}
