/**
 * What changed between two root filesystems (or two images' flattened rootfs): paths added,
 * removed and changed, with sizes. Built on `diff` (layer/diff.ts), which skips subtrees the two
 * trees share and compares bytes only where metadata cannot tell, so comparing an image with a
 * child of it costs about the size of the change.
 */
import { contentEquals } from './content';
import { Entry, EntryType } from './entry';
import { Image } from './image/image';
import { diff } from './layer/diff';
import { compareBytes } from './path';
import { Rootfs } from './rootfs/rootfs';

export interface PathSummary {
  path: string;
  type: EntryType;
  /** File size (0 for directories and links). */
  size: number;
  /** Symlink target. */
  target?: string;
}

export type ChangeKind = 'type' | 'content' | 'mode' | 'owner' | 'mtime' | 'xattrs' | 'target';

export interface PathChange {
  path: string;
  before: PathSummary;
  after: PathSummary;
  /** What differs. */
  what: ChangeKind[];
}

export interface RootfsComparison {
  added: PathSummary[];
  removed: PathSummary[];
  changed: PathChange[];
  /** Bytes of files added, removed, and the net size change of the whole tree. */
  totals: { addedBytes: number; removedBytes: number; deltaBytes: number };
}

function summary(path: string, e: Entry): PathSummary {
  return {
    path,
    type: e.type,
    size: e.type === 'file' ? e.content.size : 0,
    ...(e.type === 'symlink' ? { target: e.target } : {}),
  };
}

function sameXattrs(a: Entry, b: Entry): boolean {
  return JSON.stringify(Object.entries(a.xattrs ?? {}).sort()) === JSON.stringify(Object.entries(b.xattrs ?? {}).sort());
}

function differences(a: Entry, b: Entry, contentChanged: boolean): ChangeKind[] {
  if (a.type !== b.type) return ['type'];
  const what: ChangeKind[] = [];
  if (contentChanged) what.push('content');
  if (a.mode !== b.mode) what.push('mode');
  if (a.uid !== b.uid || a.gid !== b.gid) what.push('owner');
  if (a.mtime !== b.mtime) what.push('mtime');
  if (!sameXattrs(a, b)) what.push('xattrs');
  if (a.type === 'symlink' && b.type === 'symlink' && a.target !== b.target) what.push('target');
  return what;
}

/** Compare two trees. Paths are listed in byte order; a removed directory lists its whole subtree. */
export async function compareRootfs(before: Rootfs, after: Rootfs): Promise<RootfsComparison> {
  const layer = await diff(before, after);
  const added: PathSummary[] = [];
  const removed: PathSummary[] = [];
  const changed: PathChange[] = [];
  for (const { path } of layer.entries()) {
    if (path === '') continue;
    const b = after.get(path);
    const a = before.get(path);
    if (!b) continue;
    if (!a) {
      added.push(summary(path, b));
      continue;
    }
    // diff lists a changed file's bytes only when they differ, or its metadata changed; a parent
    // directory is listed only so the layer names it, which is no change.
    const contentChanged = a.type === 'file' && b.type === 'file' && a.content !== b.content && !(await sameBytes(a, b));
    const what = differences(a, b, contentChanged);
    if (what.length > 0) changed.push({ path, before: summary(path, a), after: summary(path, b), what });
  }
  for (const w of layer.whiteouts()) {
    const e = before.get(w);
    if (!e) continue;
    removed.push(summary(w, e));
    if (e.type === 'directory') for (const { path, entry } of before.walk(w)) removed.push(summary(path, entry));
  }
  // A type change (e.g. directory → file) replaces the old subtree: its old children are gone too.
  for (const c of changed) {
    if (c.before.type === 'directory' && c.after.type !== 'directory') {
      for (const { path, entry } of before.walk(c.path)) removed.push(summary(path, entry));
    }
  }
  const byPath = (x: { path: string }, y: { path: string }) => compareBytes(x.path, y.path);
  added.sort(byPath);
  removed.sort(byPath);
  changed.sort(byPath);
  const addedBytes = added.reduce((n, s) => n + s.size, 0);
  const removedBytes = removed.reduce((n, s) => n + s.size, 0);
  const deltaBytes = addedBytes - removedBytes + changed.reduce((n, c) => n + c.after.size - c.before.size, 0);
  return { added, removed, changed, totals: { addedBytes, removedBytes, deltaBytes } };
}

async function sameBytes(a: Entry, b: Entry): Promise<boolean> {
  if (a.type !== 'file' || b.type !== 'file') return true;
  return contentEquals(a.content, b.content);
}

/** Compare the flattened root filesystems of two images. */
export async function compareImages(before: Image, after: Image): Promise<RootfsComparison> {
  return compareRootfs(await before.flatten(), await after.flatten());
}

/** True when nothing differs. */
export function isEmptyComparison(c: RootfsComparison): boolean {
  return c.added.length === 0 && c.removed.length === 0 && c.changed.length === 0;
}
