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

export function tempSibling(path: string, tag = ''): string {
  const dir = posix.dirname(path);
  const base = posix.basename(path);
  return posix.join(dir, `${TEMP_PREFIX}${tag}${base}-${process.pid}-${randomBytes(6).toString('hex')}`);
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
 * `dir` must not exist or be empty (an empty one is replaced).
 */
export async function buildDirAtomic<T>(fs: FileSystem, dir: string, build: (tmpDir: string) => Promise<T>): Promise<T> {
  const tmp = tempSibling(dir);
  await ensureDir(fs, posix.dirname(dir));
  await fs.promises.mkdir(tmp, { mode: 0o755 });
  try {
    const result = await build(tmp);
    try {
      await fs.promises.rename(tmp, dir);
    } catch (err) {
      const code = errnoCode(err);
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'EISDIR' && code !== 'EPERM') throw err;
      // An empty directory at the destination: swap it out.
      await fs.promises.rmdir(dir);
      await fs.promises.rename(tmp, dir);
    }
    return result;
  } catch (err) {
    await removeAll(fs, tmp).catch(() => undefined);
    throw err;
  }
}
