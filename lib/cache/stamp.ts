/**
 * File stamps: what `lstat` says about a file, precise enough to tell "this file is unchanged
 * since we hashed it" without reading it (git's index uses the same fields). A stamp is taken
 * when a build context is read and attached to the file's Content object, so the cache can find
 * it later without a second `lstat`.
 */
import type { Content } from '../content';
import type { FileSystem, FsStats } from '../fs';
import { lstatOrUndefined } from '../fs';

export interface FileStamp {
  /** The directory the file was read under (the build context); the memo is kept per root. */
  readonly root: string;
  /** Path relative to `root`. */
  readonly path: string;
  readonly size: number;
  /** Nanoseconds since the epoch, as decimal strings (node gives them as bigint). */
  readonly mtimeNs: string;
  readonly ctimeNs: string;
  readonly ino: string;
  readonly dev: string;
  /** Full st_mode (type and permission bits). */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
}

/** The stat fields of a bigint `lstat` (node:fs and memfs both give them with `{ bigint: true }`). */
interface BigStats {
  size: bigint | number;
  mtimeNs?: bigint;
  ctimeNs?: bigint;
  mtimeMs: bigint | number;
  ctimeMs?: bigint | number;
  ino: bigint | number;
  dev: bigint | number;
  mode: bigint | number;
  uid: bigint | number;
  gid: bigint | number;
}

/** Nanoseconds from a stat time: the `Ns` field when the filesystem gives one, else from ms. */
function nanos(ns: bigint | undefined, ms: bigint | number | undefined): string {
  if (ns !== undefined) return ns.toString();
  if (ms === undefined) return '0';
  return typeof ms === 'bigint' ? (ms * 1_000_000n).toString() : BigInt(Math.round(ms * 1e6)).toString();
}

export function stampFromStats(root: string, path: string, st: FsStats | BigStats): FileStamp {
  const s = st as unknown as BigStats;
  return {
    root,
    path,
    size: Number(s.size),
    mtimeNs: nanos(s.mtimeNs, s.mtimeMs),
    ctimeNs: nanos(s.ctimeNs, s.ctimeMs),
    ino: String(s.ino),
    dev: String(s.dev),
    mode: Number(s.mode),
    uid: Number(s.uid),
    gid: Number(s.gid),
  };
}

/** `lstat` with nanosecond times where the filesystem supports it. */
export async function lstatPrecise(fs: FileSystem, path: string): Promise<FsStats | undefined> {
  const lstat = fs.promises.lstat as unknown as (p: string, o?: { bigint: boolean }) => Promise<FsStats>;
  try {
    return await lstat.call(fs.promises, path, { bigint: true });
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    // A filesystem without bigint stats: plain lstat (millisecond times) is still a valid stamp.
    return lstatOrUndefined(fs, path);
  }
}

/** True when two stamps describe the same unchanged file. */
export function sameStamp(a: FileStamp, b: FileStamp): boolean {
  return (
    a.size === b.size &&
    a.mtimeNs === b.mtimeNs &&
    a.ctimeNs === b.ctimeNs &&
    a.ino === b.ino &&
    a.dev === b.dev &&
    a.mode === b.mode &&
    a.uid === b.uid &&
    a.gid === b.gid
  );
}

/** The latest of the file's change times, in milliseconds (for the "racily clean" rule). */
export function stampChangedMs(stamp: FileStamp): number {
  const m = BigInt(stamp.mtimeNs);
  const c = BigInt(stamp.ctimeNs);
  return Number((m > c ? m : c) / 1_000_000n);
}

// --- stamps attached to contents ------------------------------------------------------------------

const stamps = new WeakMap<Content, { stamp: FileStamp; fs: FileSystem; abs: string }>();

/** Remember how `content` (a file of a build context) looked when it was read. */
export function attachStamp(content: Content, fs: FileSystem, abs: string, stamp: FileStamp): void {
  stamps.set(content, { stamp, fs, abs });
}

/** The stamp of a context file's content, with where to re-check it. */
export function stampOf(content: Content): { stamp: FileStamp; fs: FileSystem; abs: string } | undefined {
  return stamps.get(content);
}
