/**
 * The filesystem is passed in, never imported behind the caller's back (as isomorphic-git does):
 * `node:fs` and memfs's `fs` both satisfy this interface, so the same code runs on disk and in
 * memory. Only the members listed here are used.
 */
import * as nodeFs from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { FileSystemError, LimitExceededError, NotFoundError, fileSystemError } from './errors';

export interface FsStats {
  isFile(): boolean;
  isDirectory(): boolean;
  isSymbolicLink(): boolean;
  isFIFO?(): boolean;
  isCharacterDevice?(): boolean;
  isBlockDevice?(): boolean;
  isSocket?(): boolean;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtimeMs: number;
  ino: number;
  dev: number;
  nlink: number;
}

export interface FsDirent {
  name: string;
  isFile(): boolean;
  isDirectory(): boolean;
  isSymbolicLink(): boolean;
}

export interface FsFileHandle {
  write(buffer: Uint8Array, offset?: number, length?: number, position?: number | null): Promise<{ bytesWritten: number }>;
  read(buffer: Uint8Array, offset: number, length: number, position: number | null): Promise<{ bytesRead: number }>;
  sync?(): Promise<void>;
  close(): Promise<void>;
}

/* eslint-disable @typescript-eslint/no-explicit-any */
export interface FsPromises {
  stat(path: string): Promise<FsStats>;
  lstat(path: string): Promise<FsStats>;
  readdir(path: string): Promise<string[]>;
  readFile(path: string): Promise<Buffer>;
  readFile(path: string, encoding: 'utf8'): Promise<string>;
  writeFile(path: string, data: string | Uint8Array, options?: any): Promise<void>;
  mkdir(path: string, options?: { recursive?: boolean; mode?: number }): Promise<string | undefined | void>;
  rm(path: string, options?: { recursive?: boolean; force?: boolean }): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  rmdir(path: string): Promise<void>;
  readlink(path: string): Promise<string>;
  symlink(target: string, path: string): Promise<void>;
  link(existing: string, path: string): Promise<void>;
  chmod(path: string, mode: number): Promise<void>;
  utimes(path: string, atime: number | Date, mtime: number | Date): Promise<void>;
  open(path: string, flags: string | number, mode?: number): Promise<FsFileHandle>;
  lchown?(path: string, uid: number, gid: number): Promise<void>;
  lutimes?(path: string, atime: number | Date, mtime: number | Date): Promise<void>;
}

export interface ReadStreamOptions {
  start?: number;
  end?: number;
  highWaterMark?: number;
}

export interface FileSystem {
  promises: FsPromises;
  createReadStream(path: string, options?: ReadStreamOptions): Readable;
  createWriteStream(path: string, options?: { flags?: string; mode?: number; highWaterMark?: number }): Writable;
}
/* eslint-enable @typescript-eslint/no-explicit-any */

/** The default: the real disk. */
export const diskFs: FileSystem = nodeFs as unknown as FileSystem;

/**
 * True when `fs` is the process's own node:fs (where child processes, like RUN, can see the files).
 * Compared by `promises`: each CommonJS `import * as fs` is a fresh wrapper around the same module.
 */
export function isDiskFs(fs: FileSystem): boolean {
  return (fs as { promises?: unknown }).promises === nodeFs.promises;
}

export function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
}

export async function lstatOrUndefined(fs: FileSystem, path: string): Promise<FsStats | undefined> {
  try {
    return await fs.promises.lstat(path);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw err;
  }
}

/** 1 MiB reads: the measured sweet spot for hashing and packing (docs/reference/io-baseline.md). */
export const IO_CHUNK = 1 << 20;

/**
 * Read-buffer size for a file of `size` bytes: 1 MiB for big files, but no bigger than the file
 * (rounded up to 16 KiB): a stream allocates a whole highWaterMark per read, and 20k small files
 * each getting a 1 MiB buffer cost more than reading them.
 */
export function readChunkFor(size: number): number {
  return Math.min(IO_CHUNK, Math.max(16 << 10, Math.ceil((size + 1) / 16384) * 16384));
}

/** Largest document `readDocumentFile` reads by default (a Kubefile, an image list, an auth file). */
export const DEFAULT_MAX_DOCUMENT_FILE_BYTES = 16 << 20;

/**
 * Read a file the user named as a document (a Kubefile, an image list, an auth file), as UTF-8.
 * Only a regular file is read (symlinks followed): a fifo would block forever and a device
 * never end, so anything else is NOT_A_FILE; a missing file is NOT_FOUND (`what` names it); a
 * file over `maxBytes` is LIMIT_EXCEEDED; other failures are typed errors naming `path`.
 */
export async function readDocumentFile(fs: FileSystem, path: string, what: string, maxBytes = DEFAULT_MAX_DOCUMENT_FILE_BYTES): Promise<string> {
  let st: FsStats;
  try {
    st = await fs.promises.stat(path);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new NotFoundError(path, what);
    throw fileSystemError(err, path, `read the ${what}`);
  }
  if (!st.isFile()) {
    const kind = st.isDirectory() ? 'a directory' : 'not a regular file (a fifo, socket or device)';
    throw new FileSystemError('NOT_A_FILE', `the ${what} ${path} is ${kind}`, path);
  }
  if (st.size > maxBytes) throw new LimitExceededError('documentFileBytes', maxBytes, `the ${what} ${path} (${st.size} bytes)`);
  try {
    return await fs.promises.readFile(path, 'utf8');
  } catch (err) {
    throw fileSystemError(err, path, `read the ${what}`);
  }
}
