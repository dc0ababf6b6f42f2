/**
 * Entries of a rootfs. Entries are immutable values (frozen). A regular-file entry object is also an
 * inode: when the same FileEntry object sits at two paths of a Rootfs, those paths are hardlinks of
 * each other, and exporters write the second as a tar hardlink to the first.
 */
import { bufferContent, Content } from './content';
import { InvalidAttributeError } from './errors';

export type EntryType = 'file' | 'directory' | 'symlink' | 'hardlink';

export interface EntryAttributes {
  /** Permission bits incl. setuid/setgid/sticky (0o7777); no file-type bits. */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** Modification time in whole seconds since the epoch. */
  readonly mtime: number;
  /** Extended attributes (tar PAX `SCHILY.xattr.*`), values as UTF-8 strings. */
  readonly xattrs?: Readonly<Record<string, string>>;
}

export interface FileEntry extends EntryAttributes {
  readonly type: 'file';
  readonly content: Content;
}

export interface DirectoryEntry extends EntryAttributes {
  readonly type: 'directory';
}

export interface SymlinkEntry extends EntryAttributes {
  readonly type: 'symlink';
  /** The link text, verbatim (may be absolute or dangling: it is resolved only at run time). */
  readonly target: string;
}

/**
 * A hardlink as a layer states it: "this path is the file at `target`" (root-relative). Applying
 * the layer resolves it to the target's entry object; a flattened Rootfs holds no HardlinkEntry.
 */
export interface HardlinkEntry extends EntryAttributes {
  readonly type: 'hardlink';
  readonly target: string;
}

export type Entry = FileEntry | DirectoryEntry | SymlinkEntry | HardlinkEntry;

export interface AttributeOptions {
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: number | Date;
  xattrs?: Record<string, string>;
}

export const DEFAULT_FILE_MODE = 0o644;
export const DEFAULT_DIR_MODE = 0o755;
export const DEFAULT_SYMLINK_MODE = 0o777;
/**
 * The largest owner id: Linux's uid_t and gid_t are 32 bits. A bigger one cannot be written to
 * disk (chown refuses it, or a Go extractor truncates it to another user), so it is refused where
 * an entry is made: in every layer read, every build step, every API call.
 */
export const MAX_OWNER_ID = 2 ** 32 - 1;

/** Throws InvalidAttributeError unless `value` is an owner id a filesystem can hold (0..2^32-1). */
export function checkOwnerId(value: number, what: 'uid' | 'gid'): number {
  if (!Number.isInteger(value) || value < 0 || value > MAX_OWNER_ID) {
    throw new InvalidAttributeError(what, value, `owners are whole numbers from 0 to ${MAX_OWNER_ID}`);
  }
  return value;
}

function toSeconds(mtime: number | Date | undefined): number {
  if (mtime === undefined) return 0;
  const s = mtime instanceof Date ? mtime.getTime() / 1000 : mtime;
  if (!Number.isFinite(s)) throw new InvalidAttributeError('mtime', mtime, 'not a time');
  return Math.floor(s);
}

function attrs(opts: AttributeOptions, defaultMode: number): EntryAttributes {
  const mode = opts.mode ?? defaultMode;
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) throw new InvalidAttributeError('mode', mode, 'permission bits are 0 to 07777');
  for (const [k, v] of [['uid', opts.uid], ['gid', opts.gid]] as const) if (v !== undefined) checkOwnerId(v, k);
  const out: EntryAttributes = {
    mode,
    uid: opts.uid ?? 0,
    gid: opts.gid ?? 0,
    mtime: toSeconds(opts.mtime),
    ...(opts.xattrs && Object.keys(opts.xattrs).length > 0 ? { xattrs: Object.freeze({ ...opts.xattrs }) } : {}),
  };
  return out;
}

/** Throws InvalidAttributeError when `opts` holds a value no entry may have (as fileEntry would). */
export function checkAttributes(opts: AttributeOptions): void {
  attrs(opts, DEFAULT_FILE_MODE);
}

export function fileEntry(content: Content | Buffer | string, opts: AttributeOptions = {}): FileEntry {
  const c = typeof content === 'string' || Buffer.isBuffer(content) ? bufferContent(content) : content;
  return Object.freeze({ type: 'file', content: c, ...attrs(opts, DEFAULT_FILE_MODE) });
}

export function directoryEntry(opts: AttributeOptions = {}): DirectoryEntry {
  return Object.freeze({ type: 'directory', ...attrs(opts, DEFAULT_DIR_MODE) });
}

export function symlinkEntry(target: string, opts: AttributeOptions = {}): SymlinkEntry {
  if (typeof target !== 'string' || target === '' || target.includes('\0')) {
    throw new InvalidAttributeError('symlink target', JSON.stringify(target), 'must be a non-empty string without NUL');
  }
  return Object.freeze({ type: 'symlink', target, ...attrs(opts, DEFAULT_SYMLINK_MODE) });
}

export function hardlinkEntry(target: string, opts: AttributeOptions = {}): HardlinkEntry {
  return Object.freeze({ type: 'hardlink', target, ...attrs(opts, DEFAULT_FILE_MODE) });
}

/** The directory a layer implies for a parent it does not list (0755 root:root, like `mkdir -p`). */
export const IMPLICIT_DIRECTORY: DirectoryEntry = directoryEntry();

/** A copy with some attributes replaced. The copy is a new object, so (for files) a new inode. */
export function withAttributes<E extends Entry>(entry: E, opts: AttributeOptions): E {
  const merged = attrs(
    {
      mode: opts.mode ?? entry.mode,
      uid: opts.uid ?? entry.uid,
      gid: opts.gid ?? entry.gid,
      mtime: opts.mtime ?? entry.mtime,
      xattrs: opts.xattrs ?? (entry.xattrs as Record<string, string> | undefined),
    },
    entry.mode,
  );
  return Object.freeze({ ...entry, ...merged }) as unknown as E;
}

export function sameXattrs(a?: Readonly<Record<string, string>>, b?: Readonly<Record<string, string>>): boolean {
  const ka = a ? Object.keys(a) : [];
  const kb = b ? Object.keys(b) : [];
  if (ka.length !== kb.length) return false;
  for (const k of ka) if (!b || b[k] !== a![k]) return false;
  return true;
}

/** Metadata equality (type, attributes, link target); file bytes are compared separately. */
export function sameMetadata(a: Entry, b: Entry): boolean {
  if (a.type !== b.type || a.mode !== b.mode || a.uid !== b.uid || a.gid !== b.gid || a.mtime !== b.mtime) return false;
  if (!sameXattrs(a.xattrs, b.xattrs)) return false;
  if ((a.type === 'symlink' || a.type === 'hardlink') && a.target !== (b as SymlinkEntry).target) return false;
  if (a.type === 'file' && a.content.size !== (b as FileEntry).content.size) return false;
  return true;
}

/**
 * Entry objects known to sit at more than one path (hardlinks). A hint for `diff`, which otherwise
 * would have to index the whole lower tree to find a second path of an inode.
 */
const linked = new WeakSet<Entry>();

export function markLinked<E extends Entry>(entry: E): E {
  linked.add(entry);
  return entry;
}

export function isLinked(entry: Entry): boolean {
  return linked.has(entry);
}
