/**
 * diff(lower, upper): the smallest layer that turns `lower` into `upper` when applied.
 *
 * Subtrees the two Rootfs share (same node objects) are skipped without being entered, so the cost
 * grows with the change, not with the tree. What it emits:
 * - a removed path: one whiteout (`.wh.d` for a whole directory, never its contents);
 * - an added path, or one whose type changed: the entry and its whole subtree (no whiteout needed:
 *   anything but dir-over-dir replaces);
 * - a changed file/symlink (metadata, link text or bytes): the new entry; a directory whose own
 *   attributes changed: the directory entry (its children merge);
 * - every parent directory of an emitted path, with upper's attributes (so the tar lists parents);
 * - a file that is the same inode as an earlier path: a hardlink to that path.
 */
import { contentEquals } from '../content';
import { Entry, FileEntry, hardlinkEntry, isLinked, sameMetadata } from '../entry';
import { compareBytes, joinPath, parentPath } from '../path';
import { EMPTY_CHILDREN, FsNode, canonicalWalk, getNode } from '../rootfs/node';
import { PMap, diffMaps } from '../rootfs/pmap';
import { Rootfs } from '../rootfs/rootfs';
import { Layer } from './layer';
import { mapLimited } from '../util/concurrency';

interface Plan {
  entries: Map<string, Entry>;
  whiteouts: string[];
  /** Files equal in metadata whose bytes must be compared before deciding. */
  candidates: { path: string; a: FileEntry; b: FileEntry }[];
  /** Upper's entry of every directory the walk entered: the parents an emitted path may need. */
  dirs: Map<string, Entry>;
}

function addSubtree(plan: Plan, path: string, node: FsNode): void {
  if (!node.children || node.children.size === 0) {
    plan.entries.set(path, node.entry!); // a leaf: no walk needed
    return;
  }
  for (const step of canonicalWalk(node, path)) {
    if (step.kind === 'entry') plan.entries.set(step.path, step.node.entry!);
  }
}

/** Compare two directories and every directory below both (with a work list: trees may be deep). */
function compareDirs(plan: Plan, top: string, topA: FsNode, topB: FsNode): void {
  const pending: [string, FsNode, FsNode][] = [[top, topA, topB]];
  while (pending.length > 0) {
    const [path, a, b] = pending.pop()!;
    plan.dirs.set(path, b.entry!);
    diffMaps(a.children!, b.children!, (name, ca, cb) => {
      const p = joinPath(path, name);
      if (!cb) {
        plan.whiteouts.push(p);
        return;
      }
      if (!ca) {
        addSubtree(plan, p, cb);
        return;
      }
      const ea = ca.entry!;
      const eb = cb.entry!;
      if (ea.type === 'directory' && eb.type === 'directory') {
        if (!sameMetadata(ea, eb)) plan.entries.set(p, eb);
        pending.push([p, ca, cb]);
      } else if (ea.type !== eb.type || !sameMetadata(ea, eb)) {
        addSubtree(plan, p, cb);
      } else if (eb.type === 'file' && ea !== eb) {
        plan.candidates.push({ path: p, a: ea as FileEntry, b: eb });
      }
    });
  }
}

export interface DiffOptions {
  /** Parallel content comparisons when bytes must be hashed (default 4). */
  concurrency?: number;
}

export async function diff(lower: Rootfs, upper: Rootfs, options: DiffOptions = {}): Promise<Layer> {
  const plan: Plan = { entries: new Map(), whiteouts: [], candidates: [], dirs: new Map() };
  if (lower.root !== upper.root) {
    if (!sameMetadata(lower.rootEntry, upper.rootEntry)) plan.entries.set('', upper.rootEntry);
    compareDirs(plan, '', lower.root, upper.root);
  }
  await mapLimited(plan.candidates, options.concurrency ?? 4, async ({ path, a, b }) => {
    if (!(await contentEquals(a.content, b.content))) plan.entries.set(path, b);
  });

  // Parents of everything emitted, with upper's attributes, so the tar lists every parent.
  const parents = new Set<string>();
  for (const path of [...plan.entries.keys(), ...plan.whiteouts]) {
    for (let p = parentPath(path); p !== '' && !parents.has(p); p = parentPath(p)) parents.add(p);
  }
  for (const p of parents) {
    if (!plan.entries.has(p)) plan.entries.set(p, plan.dirs.get(p) ?? getNode(upper.root, p)!.entry!);
  }
  const layer = layerOf(plan);
  return mayLink(plan) ? linkSharedInodes(layer, lower, upper) : layer;
}

/** True when some file of the plan is a known hardlink or sits at two paths (else no link pass). */
function mayLink(plan: Plan): boolean {
  const seen = new Set<Entry>();
  for (const e of plan.entries.values()) {
    if (e.type !== 'file') continue;
    if (isLinked(e) || seen.has(e)) return true;
    seen.add(e);
  }
  return false;
}

interface Draft {
  entry?: Entry;
  whiteout?: boolean;
  children?: Map<string, Draft>;
}

/**
 * The layer holding the plan's entries and whiteouts, built in one pass: the same tree that
 * `Layer.empty().withWhiteout(…).with(…)` for each path would give (paths in a diff are unique,
 * valid and consistent with upper), without copying a root-to-leaf path per entry.
 */
function layerOf(plan: Plan): Layer {
  const root: Draft = {};
  const at = (path: string): Draft => {
    let d = root;
    if (path === '') return d;
    for (const name of path.split('/')) {
      d.children ??= new Map();
      let next = d.children.get(name);
      if (!next) d.children.set(name, (next = {}));
      d = next;
    }
    return d;
  };
  for (const w of plan.whiteouts) at(w).whiteout = true;
  for (const [path, entry] of plan.entries) at(path).entry = entry;
  // Drafts to nodes, children before parents (iteratively: a layer may be thousands of levels deep).
  const nodeOf = (d: Draft, children: PMap<FsNode> | undefined): FsNode => {
    if (!children && (d.entry ? d.entry.type === 'directory' : !d.whiteout)) children = EMPTY_CHILDREN;
    return { ...(d.entry ? { entry: d.entry } : {}), ...(children ? { children } : {}), ...(d.whiteout ? { whiteout: true } : {}) };
  };
  type Frame = { draft: Draft; names: string[]; built: (readonly [string, FsNode])[] };
  const open = (draft: Draft): Frame => ({ draft, names: draft.children && draft.children.size > 0 ? [...draft.children.keys()].sort(compareBytes) : [], built: [] });
  const stack: Frame[] = [open(root)];
  let result: FsNode | undefined;
  while (stack.length > 0) {
    const frame = stack[stack.length - 1];
    if (frame.built.length < frame.names.length) {
      stack.push(open(frame.draft.children!.get(frame.names[frame.built.length])!));
      continue;
    }
    stack.pop();
    const node = nodeOf(frame.draft, frame.built.length > 0 ? PMap.fromSorted(frame.built) : undefined);
    const parent = stack[stack.length - 1];
    if (parent) parent.built.push([parent.names[parent.built.length], node] as const);
    else result = node;
  }
  return Layer.fromNode(result!);
}

/**
 * Second pass in archive order: a file object met twice becomes a hardlink to its first path; a
 * file that is still a lower inode at an untouched path becomes a hardlink to that path.
 */
function linkSharedInodes(layer: Layer, lower: Rootfs, upper: Rootfs): Layer {
  const first = new Map<Entry, string>();
  let lowerIndex: Map<Entry, string[]> | undefined;
  let out = layer;
  for (const { path, entry } of layer.entries()) {
    if (entry.type !== 'file') continue;
    const seen = first.get(entry);
    if (seen !== undefined) {
      out = out.with(path, linkTo(seen, entry));
      continue;
    }
    if (isLinked(entry)) {
      lowerIndex ??= indexLinked(lower);
      const kept = (lowerIndex.get(entry) ?? []).find(
        (p) => getNode(upper.root, p)?.entry === entry && layer.get(p) === undefined && !touchedByWhiteout(layer, p),
      );
      if (kept !== undefined) {
        out = out.with(path, linkTo(kept, entry));
        continue;
      }
    }
    first.set(entry, path);
  }
  return out;
}

/**
 * A hardlink record carrying its inode's attributes, as tar writes one: extractors that apply a
 * link header's mode, owner and mtime to the path (Docker's does) change the shared inode.
 */
function linkTo(target: string, inode: FileEntry): Entry {
  const { mode, uid, gid, mtime, xattrs } = inode;
  return hardlinkEntry(target, { mode, uid, gid, mtime, ...(xattrs ? { xattrs: { ...xattrs } } : {}) });
}

function touchedByWhiteout(layer: Layer, path: string): boolean {
  for (let p = path; p !== ''; p = parentPath(p)) if (layer.isWhiteout(p)) return true;
  return false;
}

function indexLinked(rootfs: Rootfs): Map<Entry, string[]> {
  const index = new Map<Entry, string[]>();
  for (const { path, entry } of rootfs.walk()) {
    if (entry.type !== 'file' || !isLinked(entry)) continue;
    const list = index.get(entry);
    if (list) list.push(path);
    else index.set(entry, [path]);
  }
  return index;
}
