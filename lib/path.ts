/**
 * Rootfs paths. Inside cloudrootfs a path is relative, POSIX, normalized (no `.`, `..`, empty or
 * trailing components) and `''` is the root. Every path that comes from outside (archive entry,
 * COPY argument, API call) goes through `cleanPath`, the one validator.
 */
import { InvalidPathError, InvalidWhiteoutError } from './errors';

export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_WHITEOUT = '.wh..wh..opq';
/** AUFS bookkeeping names (`.wh..wh.plnk`, `.wh..wh.aufs`…) that readers skip. */
const AUFS_META_PREFIX = '.wh..wh.';

export const DEFAULT_MAX_PATH_BYTES = 4096;
export const MAX_NAME_BYTES = 255;

export interface CleanPathOptions {
  /** Refuse names that start with `.wh.` (true for real entries; whiteouts are parsed separately). */
  forbidWhiteoutNames?: boolean;
  /** Longest path accepted, in UTF-8 bytes. */
  maxPathBytes?: number;
  /** What the path is, for error messages ("archive entry", "COPY destination"…). */
  what?: string;
}

/**
 * Normalize a path from outside into a rootfs path. A leading `/` or `./` is dropped (the rootfs is
 * the image root), `.` and empty components vanish, `..` is resolved lexically and must never climb
 * above the root. NUL bytes, over-long paths and names, and (optionally) `.wh.` names are refused.
 */
export function cleanPath(input: string, options: CleanPathOptions = {}): string {
  const what = options.what ?? 'path';
  if (typeof input !== 'string') throw new InvalidPathError(`${what} must be a string`, String(input));
  if (input.includes('\0')) throw new InvalidPathError(`${what} contains a NUL byte`, input);
  const max = options.maxPathBytes ?? DEFAULT_MAX_PATH_BYTES;
  if (Buffer.byteLength(input) > max) {
    throw new InvalidPathError(`${what} is longer than ${max} bytes`, input.slice(0, 200) + '…');
  }
  const out: string[] = [];
  for (const part of input.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length === 0) throw new InvalidPathError(`${what} ${JSON.stringify(input)} escapes the root`, input);
      out.pop();
      continue;
    }
    if (Buffer.byteLength(part) > MAX_NAME_BYTES) {
      throw new InvalidPathError(`${what} has a name longer than ${MAX_NAME_BYTES} bytes`, input.slice(0, 200) + '…');
    }
    out.push(part);
  }
  const cleaned = out.join('/');
  if (options.forbidWhiteoutNames) {
    for (const part of out) {
      if (part.startsWith(WHITEOUT_PREFIX)) {
        throw new InvalidPathError(`${what} ${JSON.stringify(input)} uses the reserved whiteout prefix ".wh."`, input);
      }
    }
  }
  return cleaned;
}

/** Validate a path that must already be normalized (API boundary for internal callers). */
export function assertNormalPath(path: string, what = 'path'): void {
  if (cleanPath(path, { what }) !== path) {
    throw new InvalidPathError(`${what} ${JSON.stringify(path)} is not a normalized rootfs path`, path);
  }
}

export function splitPath(path: string): string[] {
  return path === '' ? [] : path.split('/');
}

export function joinPath(...parts: string[]): string {
  return parts.filter((p) => p !== '').join('/');
}

export function parentPath(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? '' : path.slice(0, i);
}

export function baseName(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? path : path.slice(i + 1);
}

/** True when `path` is `ancestor` or lies below it. */
export function isWithin(path: string, ancestor: string): boolean {
  return ancestor === '' || path === ancestor || path.startsWith(ancestor + '/');
}

export type WhiteoutInfo =
  | { kind: 'whiteout'; path: string }
  | { kind: 'opaque'; dir: string }
  | { kind: 'aufs-meta' };

/**
 * Classify a cleaned archive path. Returns undefined for an ordinary entry. Only the basename's
 * prefix counts: `.wh.etc/file` is an ordinary path (containerd's rule); but anything below an
 * AUFS bookkeeping directory is bookkeeping (containers/storage skips it).
 */
export function parseWhiteout(path: string): WhiteoutInfo | undefined {
  const base = baseName(path);
  const dir = parentPath(path);
  // Whatever sits inside AUFS bookkeeping directories (`.wh..wh.plnk/…`) is bookkeeping too.
  if (splitPath(dir).some((part) => part.startsWith(AUFS_META_PREFIX))) return { kind: 'aufs-meta' };
  if (!base.startsWith(WHITEOUT_PREFIX)) return undefined;
  if (base === OPAQUE_WHITEOUT) return { kind: 'opaque', dir };
  if (base.startsWith(AUFS_META_PREFIX)) return { kind: 'aufs-meta' };
  const name = base.slice(WHITEOUT_PREFIX.length);
  if (name === '' || name === '.' || name === '..') {
    throw new InvalidWhiteoutError(`invalid whiteout ${JSON.stringify(path)}: it names no file`, path);
  }
  return { kind: 'whiteout', path: joinPath(dir, name) };
}

export function whiteoutPathFor(path: string): string {
  return joinPath(parentPath(path), WHITEOUT_PREFIX + baseName(path));
}

export function opaquePathFor(dir: string): string {
  return joinPath(dir, OPAQUE_WHITEOUT);
}

/**
 * Compare two strings by their UTF-8 bytes (what `LC_ALL=C sort` does). JS `<` compares UTF-16
 * code units, which differs only when a surrogate meets a code unit in U+E000..U+FFFF.
 */
export function compareBytes(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const ca = a.charCodeAt(i);
    const cb = b.charCodeAt(i);
    if (ca === cb) continue;
    const sa = ca >= 0xd800 && ca <= 0xdfff;
    const sb = cb >= 0xd800 && cb <= 0xdfff;
    if (sa !== sb) return sa ? (cb >= 0xe000 ? 1 : ca - cb) : ca >= 0xe000 ? -1 : ca - cb;
    return ca - cb;
  }
  return a.length - b.length;
}
