/**
 * Atomic outputs: everything is written under a temporary name in the destination's own directory
 * and renamed into place, so a reader (or a crash) never sees a partial file or directory.
 * Temporary names start with `.tmp-` and end with the writer's pid, a random part and a signature
 * over the rest of the name, so a later run can recognise — and sweep — only what a crashed
 * writer of this library left, never a user's file that merely looks alike.
 */
import { createHash, randomBytes } from 'node:crypto';
import { posix } from 'node:path';
import type { Readable } from 'node:stream';
import { CloudRootfsError, FileSystemError, fileSystemError } from '../errors';
import { errnoCode, FileSystem, IO_CHUNK, isDiskFs, lstatOrUndefined } from '../fs';

export const TEMP_PREFIX = '.tmp-';

/** `<anything>-<pid>-<12 hex random>-<8 hex signature>`: who wrote it, a random part, our mark. */
const TEMP_NAME = /^(.*-(\d+)-[0-9a-f]{12})-([0-9a-f]{8})$/;
/** The unsigned form earlier versions wrote; recognised only inside the store's own directories. */
const UNSIGNED_TEMP_NAME = /-(\d+)-[0-9a-f]{12}$/;
/** A temporary file older than this is abandoned whoever wrote it (a writer on another host). */
export const TEMP_MAX_AGE_MS = 24 * 3600_000;
/** Room left for the destination's name in a temporary name (NAME_MAX is 255 bytes). */
const MAX_BASE_CHARS = 64;

function signature(stem: string): string {
  return createHash('sha256').update(`cloudrootfs temporary file\0${stem}`).digest('hex').slice(0, 8);
}

/**
 * A name this library marks as its own temporary file: `<stem>-<pid>-<random>-<signature>`. Only
 * names that carry a valid signature are ever swept (see isAbandonedTemp).
 */
export function signedTempName(stem: string, pid = process.pid): string {
  const signed = `${stem}-${pid}-${randomBytes(6).toString('hex')}`;
  return `${signed}-${signature(signed)}`;
}

export function tempSibling(path: string, tag = ''): string {
  const dir = posix.dirname(path);
  const base = posix.basename(path).slice(0, MAX_BASE_CHARS);
  return posix.join(dir, signedTempName(`${TEMP_PREFIX}${tag}${base}`));
}

/** True when the process `pid` exists on this host (EPERM: it exists, owned by someone else). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoCode(err) === 'EPERM';
  }
}

/**
 * Is the temporary file `name` (modified at `mtimeMs`) left over by a writer of this library that
 * is gone? Only a name that carries our signature qualifies (a user's `.tmp-x-123-0123456789ab`
 * never does) — except with `ownDirectory`, for a directory nothing but this library writes in
 * (the store's), where the unsigned names of earlier versions are ours too. Then its pid being
 * dead (on this host), or an age over a day, says so. Names carry no host: on a directory shared
 * between hosts only the age rule is safe there.
 */
export function isAbandonedTemp(name: string, mtimeMs: number, now = Date.now(), options: { ownDirectory?: boolean } = {}): boolean {
  let pid: number;
  const m = TEMP_NAME.exec(name);
  if (m && signature(m[1]) === m[3]) pid = Number(m[2]);
  else {
    const unsigned = options.ownDirectory ? UNSIGNED_TEMP_NAME.exec(name) : null;
    if (!unsigned) return false;
    pid = Number(unsigned[1]);
  }
  if (now - mtimeMs > TEMP_MAX_AGE_MS) return true;
  return pid !== process.pid && !processAlive(pid);
}

/** Remove a tree even where a crashed writer left read-only directories in it. */
export async function removeTree(fs: FileSystem, path: string): Promise<void> {
  try {
    await fs.promises.rm(path, { recursive: true, force: true });
  } catch (err) {
    if (errnoCode(err) !== 'EACCES' && errnoCode(err) !== 'EPERM') throw err;
    await makeWritable(fs, path);
    await fs.promises.rm(path, { recursive: true, force: true });
  }
}

/** Make every directory of a tree writable (iteratively: a tree may be as deep as paths allow). */
async function makeWritable(fs: FileSystem, top: string): Promise<void> {
  const pending = [top];
  while (pending.length > 0) {
    const path = pending.pop()!;
    const st = await lstatOrUndefined(fs, path);
    if (!st?.isDirectory()) continue;
    await fs.promises.chmod(path, 0o700).catch(() => undefined);
    for (const name of await fs.promises.readdir(path).catch(() => [] as string[])) pending.push(posix.join(path, name));
  }
}

const swept = new WeakMap<FileSystem, Set<string>>();

/**
 * Remove what crashed writers left in `dir` (temporary files and directories of dead processes),
 * once per directory per process: every atomic write calls this for its destination's directory,
 * so the next run after a crash cleans up after it. Never fails the write that asked.
 */
export async function sweepAbandonedTemps(fs: FileSystem, dir: string): Promise<number> {
  let done = swept.get(fs);
  if (!done) swept.set(fs, (done = new Set()));
  if (done.has(dir)) return 0;
  done.add(dir);
  let removed = 0;
  try {
    const now = Date.now();
    for (const name of await fs.promises.readdir(dir)) {
      if (!name.startsWith(TEMP_PREFIX)) continue;
      const path = posix.join(dir, name);
      const st = await lstatOrUndefined(fs, path);
      if (!st || !isAbandonedTemp(name, st.mtimeMs, now)) continue;
      await removeTree(fs, path);
      removed++;
    }
  } catch {
    // Best effort: a directory we cannot list or clean is not this write's failure.
  }
  return removed;
}

export async function ensureDir(fs: FileSystem, dir: string): Promise<void> {
  try {
    await fs.promises.mkdir(dir, { recursive: true });
  } catch (err) {
    throw await directoryError(fs, err, dir);
  }
}

/** Why `dir` could not be made: something that is not a directory in the way, or the system's reason. */
async function directoryError(fs: FileSystem, err: unknown, dir: string): Promise<unknown> {
  const code = errnoCode(err);
  if (code === 'EEXIST' || code === 'ENOTDIR') {
    const st = await lstatOrUndefined(fs, dir).catch(() => undefined);
    if (st && !st.isDirectory()) return new FileSystemError('NOT_A_DIRECTORY', `${dir} is not a directory`, dir, code, { cause: err });
  }
  return fileSystemError(err, dir, 'create the directory');
}

export async function removeAll(fs: FileSystem, path: string): Promise<void> {
  await fs.promises.rm(path, { recursive: true, force: true });
}

/** fsync a file on the real disk (memfs has nothing to flush). */
async function syncFile(fs: FileSystem, path: string): Promise<void> {
  if (!isDiskFs(fs)) return;
  const fh = await fs.promises.open(path, 'r');
  try {
    await fh.sync?.();
  } finally {
    await fh.close();
  }
}

export interface AtomicWriteOptions {
  mode?: number;
  /** fsync before the rename (default true on disk). */
  durable?: boolean;
}

/**
 * Check, before any work, that something can be made at `path`: the nearest of its ancestors
 * that exists is a directory (a symlink to one counts; missing ones are created). Typed errors
 * naming `path`.
 */
export async function checkParentDirectory(fs: FileSystem, path: string): Promise<void> {
  for (let parent = posix.dirname(path); ; parent = posix.dirname(parent)) {
    const st = await fs.promises.stat(parent).catch((err) => {
      const code = errnoCode(err);
      if (code === 'ENOENT') return undefined;
      if (code === 'ENOTDIR') return { isDirectory: () => false };
      return Promise.reject(fileSystemError(err, path, 'write'));
    });
    if (st) {
      if (!st.isDirectory()) throw new FileSystemError('NOT_A_DIRECTORY', `cannot write ${path}: ${parent} is not a directory`, path, 'ENOTDIR');
      return;
    }
    if (posix.dirname(parent) === parent) return;
  }
}

/**
 * Check, before any work, that a file can be written at `path`: `path` is not a directory and
 * its nearest existing ancestor is one. Typed errors naming `path`.
 */
export async function checkFileDestination(fs: FileSystem, path: string): Promise<void> {
  await checkParentDirectory(fs, path);
  const st = await fs.promises.stat(path).catch(() => undefined);
  if (st?.isDirectory()) throw new FileSystemError('NOT_A_FILE', `cannot write ${path}: it is a directory`, path, 'EISDIR');
}

export async function writeFileAtomic(fs: FileSystem, path: string, data: string | Uint8Array, options: AtomicWriteOptions = {}): Promise<void> {
  await sweepAbandonedTemps(fs, posix.dirname(path));
  const tmp = tempSibling(path);
  try {
    await fs.promises.writeFile(tmp, data, options.mode !== undefined ? { mode: options.mode } : undefined);
    if (options.durable !== false) await syncFile(fs, tmp);
    await fs.promises.rename(tmp, path);
  } catch (err) {
    await fs.promises.rm(tmp, { force: true }).catch(() => undefined);
    // The user's path, not the temporary file's (a full disk, a read-only store…).
    throw fileSystemError(err, path, 'write');
  }
}

/**
 * Stream into a temp file next to `path`; `finish` decides (e.g. after checking a digest) whether
 * the file is renamed to its final name, which it may change. On any error the temp file is
 * removed; a failure to write is a typed error naming `path` (FileSystemError: NO_SPACE…), while
 * errors of `produce`'s own source pass unchanged.
 */
export async function writeStreamAtomic(
  fs: FileSystem,
  path: string,
  produce: (write: (chunk: Buffer) => Promise<void>) => Promise<void>,
  finish?: () => Promise<string | undefined> | string | undefined,
): Promise<string> {
  await sweepAbandonedTemps(fs, posix.dirname(path));
  const tmp = tempSibling(path);
  const writeError = (err: unknown) => fileSystemError(err, path, 'write');
  const out = fs.createWriteStream(tmp, { highWaterMark: IO_CHUNK });
  let failed: unknown;
  let written = 0;
  out.on('error', (err) => (failed ??= writeError(err)));
  const write = (chunk: Buffer) =>
    new Promise<void>((resolve, reject) => {
      if (failed) return reject(failed);
      written += chunk.length;
      if (out.write(chunk)) resolve();
      else {
        const onDrain = () => {
          out.off('error', onError);
          resolve();
        };
        const onError = (err: unknown) => {
          out.off('drain', onDrain);
          reject(writeError(err));
        };
        out.once('drain', onDrain);
        out.once('error', onError);
      }
    });
  try {
    await produce(write);
    await new Promise<void>((resolve, reject) => {
      if (failed) return reject(failed);
      out.once('error', (err) => reject(writeError(err)));
      // The buffered writes may fail only now (a full disk): end's callback gets that error,
      // possibly before the 'error' event — a file cut short must never get its name.
      out.end((err?: Error | null) => (err ? reject(writeError(err)) : resolve()));
    });
    if (failed) throw failed;
    const bytesWritten = (out as { bytesWritten?: unknown }).bytesWritten;
    if (typeof bytesWritten === 'number' && bytesWritten !== written) {
      throw new FileSystemError('FILESYSTEM_ERROR', `cannot write ${path}: ${bytesWritten} of ${written} bytes were written`, path);
    }
    const finalPath = (await finish?.()) ?? path;
    try {
      await syncFile(fs, tmp);
      await fs.promises.rename(tmp, finalPath);
    } catch (err) {
      throw fileSystemError(err, finalPath, 'write');
    }
    return finalPath;
  } catch (err) {
    out.destroy();
    await fs.promises.rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
}

/** Pipe a readable into `write` (used with writeStreamAtomic). */
export async function pumpTo(source: Readable, write: (chunk: Buffer) => Promise<void>): Promise<void> {
  for await (const chunk of source) await write(chunk as Buffer);
}

/** True when `dir` does not exist or is an empty directory. */
export async function isEmptyOrMissing(fs: FileSystem, dir: string): Promise<boolean> {
  const st = await lstatOrUndefined(fs, dir);
  if (!st) return true;
  if (!st.isDirectory()) return false;
  return (await fs.promises.readdir(dir)).length === 0;
}

/**
 * Build a directory under a temporary sibling name and rename it to `dir` when `build` succeeds.
 * `dir` must not exist or be empty (an empty one is replaced); with `replace`, whatever is at
 * `dir` is swapped out only once the new tree is complete, so a crash leaves the old tree, the
 * new one, or (between the two renames) nothing — never a partial tree at `dir`.
 */
export async function buildDirAtomic<T>(fs: FileSystem, dir: string, build: (tmpDir: string) => Promise<T>, options: { replace?: boolean } = {}): Promise<T> {
  await ensureDir(fs, posix.dirname(dir));
  await sweepAbandonedTemps(fs, posix.dirname(dir));
  const tmp = tempSibling(dir);
  try {
    await fs.promises.mkdir(tmp, { mode: 0o755 });
  } catch (err) {
    throw fileSystemError(err, dir, 'create');
  }
  try {
    const result = await build(tmp);
    try {
      await fs.promises.rename(tmp, dir);
    } catch (err) {
      const code = errnoCode(err);
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'EISDIR' && code !== 'EPERM' && code !== 'ENOTDIR') throw fileSystemError(err, dir, 'create');
      if (options.replace) {
        // Move the old tree aside (a temp name the next run sweeps), put the new one in place.
        const aside = tempSibling(dir, 'old-');
        await fs.promises.rename(dir, aside).catch((e) => Promise.reject(fileSystemError(e, dir, 'replace')));
        await fs.promises.rename(tmp, dir).catch((e) => Promise.reject(fileSystemError(e, dir, 'create')));
        await removeTree(fs, aside).catch(() => undefined);
      } else {
        // An empty directory at the destination: swap it out.
        await fs.promises.rmdir(dir).catch((e) => Promise.reject(fileSystemError(e, dir, 'replace')));
        await fs.promises.rename(tmp, dir).catch((e) => Promise.reject(fileSystemError(e, dir, 'create')));
      }
    }
    return result;
  } catch (err) {
    await removeTree(fs, tmp).catch(() => undefined);
    throw underDestination(err, tmp, dir);
  }
}

/**
 * An error raised while building under `tmp`, reported under `dir`: users see the destination
 * they named, never the temporary directory (typed errors name paths in their message and details).
 */
function underDestination(err: unknown, tmp: string, dir: string): unknown {
  if (!(err instanceof CloudRootfsError)) return err;
  const swap = (text: string) => text.split(tmp).join(dir);
  err.message = swap(err.message);
  for (const [k, v] of Object.entries(err.details)) if (typeof v === 'string') err.details[k] = swap(v);
  // Fields such as `path` on the error itself.
  const fields = err as unknown as Record<string, unknown>;
  for (const k of Object.keys(fields)) if (typeof fields[k] === 'string') fields[k] = swap(fields[k] as string);
  return err;
}
