/**
 * Atomic outputs: everything is written under a temporary name in the destination's own directory
 * and renamed into place, so a reader (or a crash) never sees a partial file or directory.
 * Temporary names start with `.tmp-` so a later run can recognise and sweep leftovers.
 */
import { randomBytes } from 'node:crypto';
import { posix } from 'node:path';
import type { Readable } from 'node:stream';
import { errnoCode, FileSystem, IO_CHUNK, isDiskFs, lstatOrUndefined } from '../fs';

export const TEMP_PREFIX = '.tmp-';

/** `.tmp-<tag><name>-<pid>-<12 hex>` (and the lock's `.stale-<pid>-<12 hex>`): who wrote it, and a random part. */
const TEMP_NAME = /-(\d+)-[0-9a-f]{12}$/;
/** A temporary file older than this is abandoned whoever wrote it (a writer on another host). */
export const TEMP_MAX_AGE_MS = 24 * 3600_000;

export function tempSibling(path: string, tag = ''): string {
  const dir = posix.dirname(path);
  const base = posix.basename(path);
  return posix.join(dir, `${TEMP_PREFIX}${tag}${base}-${process.pid}-${randomBytes(6).toString('hex')}`);
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
 * Is the temporary file `name` (modified at `mtimeMs`) left over by a writer that is gone? Its
 * name carries the writer's pid: a dead pid (on this host) or an age over a day says so. Names
 * carry no host: on a directory shared between hosts only the age rule is safe there.
 */
export function isAbandonedTemp(name: string, mtimeMs: number, now = Date.now()): boolean {
  const m = TEMP_NAME.exec(name);
  if (!m) return false;
  if (now - mtimeMs > TEMP_MAX_AGE_MS) return true;
  const pid = Number(m[1]);
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

async function makeWritable(fs: FileSystem, path: string): Promise<void> {
  const st = await lstatOrUndefined(fs, path);
  if (!st?.isDirectory()) return;
  await fs.promises.chmod(path, 0o700).catch(() => undefined);
  for (const name of await fs.promises.readdir(path).catch(() => [] as string[])) await makeWritable(fs, posix.join(path, name));
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
  await fs.promises.mkdir(dir, { recursive: true });
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

export async function writeFileAtomic(fs: FileSystem, path: string, data: string | Uint8Array, options: AtomicWriteOptions = {}): Promise<void> {
  await sweepAbandonedTemps(fs, posix.dirname(path));
  const tmp = tempSibling(path);
  try {
    await fs.promises.writeFile(tmp, data, options.mode !== undefined ? { mode: options.mode } : undefined);
    if (options.durable !== false) await syncFile(fs, tmp);
    await fs.promises.rename(tmp, path);
  } catch (err) {
    await fs.promises.rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
}

/**
 * Stream into a temp file next to `path`; `finish` decides (e.g. after checking a digest) whether
 * the file is renamed to its final name, which it may change. On any error the temp file is removed.
 */
export async function writeStreamAtomic(
  fs: FileSystem,
  path: string,
  produce: (write: (chunk: Buffer) => Promise<void>) => Promise<void>,
  finish?: () => Promise<string | undefined> | string | undefined,
): Promise<string> {
  await sweepAbandonedTemps(fs, posix.dirname(path));
  const tmp = tempSibling(path);
  const out = fs.createWriteStream(tmp, { highWaterMark: IO_CHUNK });
  let failed: unknown;
  out.on('error', (err) => (failed ??= err));
  const write = (chunk: Buffer) =>
    new Promise<void>((resolve, reject) => {
      if (failed) return reject(failed);
      if (out.write(chunk)) resolve();
      else {
        const onDrain = () => {
          out.off('error', onError);
          resolve();
        };
        const onError = (err: unknown) => {
          out.off('drain', onDrain);
          reject(err);
        };
        out.once('drain', onDrain);
        out.once('error', onError);
      }
    });
  try {
    await produce(write);
    await new Promise<void>((resolve, reject) => {
      if (failed) return reject(failed);
      out.once('error', reject);
      out.end(() => resolve());
    });
    if (failed) throw failed;
    const finalPath = (await finish?.()) ?? path;
    await syncFile(fs, tmp);
    await fs.promises.rename(tmp, finalPath);
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
  await fs.promises.mkdir(tmp, { mode: 0o755 });
  try {
    const result = await build(tmp);
    try {
      await fs.promises.rename(tmp, dir);
    } catch (err) {
      const code = errnoCode(err);
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'EISDIR' && code !== 'EPERM' && code !== 'ENOTDIR') throw err;
      if (options.replace) {
        // Move the old tree aside (a temp name the next run sweeps), put the new one in place.
        const aside = tempSibling(dir, 'old-');
        await fs.promises.rename(dir, aside);
        await fs.promises.rename(tmp, dir);
        await removeTree(fs, aside).catch(() => undefined);
      } else {
        // An empty directory at the destination: swap it out.
        await fs.promises.rmdir(dir);
        await fs.promises.rename(tmp, dir);
      }
    }
    return result;
  } catch (err) {
    await removeTree(fs, tmp).catch(() => undefined);
    throw err;
  }
}
