/**
 * A persistent sorted map from names to values: a copy-on-write B+tree ordered by UTF-8 bytes.
 * `set`/`delete` copy one root-to-leaf path (O(log n) nodes of at most FANOUT slots), so a
 * directory with 100k children costs the same to change as one with ten. Untouched nodes are
 * shared between versions, and `diffMaps` uses that sharing to skip equal subtrees.
 */
import { compareBytes } from '../path';

const FANOUT = 32;

interface Leaf<V> {
  readonly leaf: true;
  readonly keys: readonly string[];
  readonly values: readonly V[];
}

interface Branch<V> {
  readonly leaf: false;
  /** `firsts[i]` is the smallest key under `children[i]`. */
  readonly firsts: readonly string[];
  readonly children: readonly TreeNode<V>[];
  readonly size: number;
  readonly height: number;
}

type TreeNode<V> = Leaf<V> | Branch<V>;

function nodeSize<V>(n: TreeNode<V>): number {
  return n.leaf ? n.keys.length : n.size;
}

function nodeHeight<V>(n: TreeNode<V>): number {
  return n.leaf ? 0 : n.height;
}

/** Index of the first key >= k (binary search). */
function lowerBound(keys: readonly string[], k: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareBytes(keys[mid], k) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Child index of a branch that covers key k. */
function childIndex(firsts: readonly string[], k: string): number {
  let lo = 0;
  let hi = firsts.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareBytes(firsts[mid], k) <= 0) lo = mid + 1;
    else hi = mid;
  }
  return Math.max(0, lo - 1);
}

function firstKey<V>(n: TreeNode<V>): string {
  return n.leaf ? n.keys[0] : n.firsts[0];
}

function makeBranch<V>(children: TreeNode<V>[]): Branch<V> {
  let size = 0;
  for (const c of children) size += nodeSize(c);
  return { leaf: false, firsts: children.map(firstKey), children, size, height: nodeHeight(children[0]) + 1 };
}

function splice<T>(arr: readonly T[], start: number, deleteCount: number, ...items: T[]): T[] {
  const out = arr.slice();
  out.splice(start, deleteCount, ...items);
  return out;
}

/** Insert or replace; returns one node, or two when the node had to split. */
function setIn<V>(node: TreeNode<V>, k: string, v: V): TreeNode<V>[] {
  if (node.leaf) {
    const i = lowerBound(node.keys, k);
    if (i < node.keys.length && node.keys[i] === k) {
      if (node.values[i] === v) return [node];
      return [{ leaf: true, keys: node.keys, values: splice(node.values, i, 1, v) }];
    }
    const keys = splice(node.keys, i, 0, k);
    const values = splice(node.values, i, 0, v);
    if (keys.length <= FANOUT) return [{ leaf: true, keys, values }];
    const half = keys.length >>> 1;
    return [
      { leaf: true, keys: keys.slice(0, half), values: values.slice(0, half) },
      { leaf: true, keys: keys.slice(half), values: values.slice(half) },
    ];
  }
  const ci = childIndex(node.firsts, k);
  const replaced = setIn(node.children[ci], k, v);
  if (replaced.length === 1 && replaced[0] === node.children[ci]) return [node];
  const children = splice(node.children, ci, 1, ...replaced);
  if (children.length <= FANOUT) return [makeBranch(children)];
  const half = children.length >>> 1;
  return [makeBranch(children.slice(0, half)), makeBranch(children.slice(half))];
}

/** Remove; returns the new node, the same node when absent, or undefined when it became empty. */
function deleteIn<V>(node: TreeNode<V>, k: string): TreeNode<V> | undefined {
  if (node.leaf) {
    const i = lowerBound(node.keys, k);
    if (i >= node.keys.length || node.keys[i] !== k) return node;
    if (node.keys.length === 1) return undefined;
    return { leaf: true, keys: splice(node.keys, i, 1), values: splice(node.values, i, 1) };
  }
  const ci = childIndex(node.firsts, k);
  const child = node.children[ci];
  const next = deleteIn(child, k);
  if (next === child) return node;
  const children = next ? splice(node.children, ci, 1, next) : splice(node.children, ci, 1);
  if (children.length === 0) return undefined;
  // Merge small neighbouring leaves so heavy deletion does not leave a sparse tree.
  if (next && next.leaf && next.keys.length < FANOUT / 4) {
    const j = ci + 1 < children.length ? ci + 1 : ci - 1;
    const other = children[j];
    if (j >= 0 && other && other.leaf && other.keys.length + next.keys.length <= FANOUT) {
      const [l, r] = j > ci ? [next, other] : [other, next];
      const merged: Leaf<V> = { leaf: true, keys: [...l.keys, ...r.keys], values: [...l.values, ...r.values] };
      children.splice(Math.min(ci, j), 2, merged);
    }
  }
  return makeBranch(children);
}

function* iterate<V>(node: TreeNode<V>): Generator<[string, V]> {
  if (node.leaf) {
    for (let i = 0; i < node.keys.length; i++) yield [node.keys[i], node.values[i]];
  } else {
    for (const c of node.children) yield* iterate(c);
  }
}

export class PMap<V> {
  private static readonly EMPTY = new PMap<never>(undefined);

  private constructor(private readonly root: TreeNode<V> | undefined) {}

  static empty<V>(): PMap<V> {
    return PMap.EMPTY as PMap<V>;
  }

  /** Build from entries already sorted by `compareBytes` with unique keys (O(n)). */
  static fromSorted<V>(entries: readonly (readonly [string, V])[]): PMap<V> {
    if (entries.length === 0) return PMap.empty();
    let level: TreeNode<V>[] = [];
    for (let i = 0; i < entries.length; i += FANOUT) {
      const slice = entries.slice(i, i + FANOUT);
      level.push({ leaf: true, keys: slice.map((e) => e[0]), values: slice.map((e) => e[1]) });
    }
    while (level.length > 1) {
      const up: TreeNode<V>[] = [];
      for (let i = 0; i < level.length; i += FANOUT) up.push(makeBranch(level.slice(i, i + FANOUT)));
      level = up;
    }
    return new PMap(level[0]);
  }

  static from<V>(entries: Iterable<readonly [string, V]>): PMap<V> {
    const map = new Map<string, V>();
    for (const [k, v] of entries) map.set(k, v);
    const sorted = [...map.entries()].sort((a, b) => compareBytes(a[0], b[0]));
    return PMap.fromSorted(sorted);
  }

  get size(): number {
    return this.root ? nodeSize(this.root) : 0;
  }

  get(k: string): V | undefined {
    let node = this.root;
    while (node) {
      if (node.leaf) {
        const i = lowerBound(node.keys, k);
        return i < node.keys.length && node.keys[i] === k ? node.values[i] : undefined;
      }
      node = node.children[childIndex(node.firsts, k)];
    }
    return undefined;
  }

  has(k: string): boolean {
    return this.get(k) !== undefined;
  }

  set(k: string, v: V): PMap<V> {
    if (!this.root) return new PMap<V>({ leaf: true, keys: [k], values: [v] });
    const parts = setIn(this.root, k, v);
    if (parts.length === 1) return parts[0] === this.root ? this : new PMap(parts[0]);
    return new PMap(makeBranch(parts));
  }

  delete(k: string): PMap<V> {
    if (!this.root) return this;
    let next = deleteIn(this.root, k);
    if (next === this.root) return this;
    while (next && !next.leaf && next.children.length === 1) next = next.children[0];
    return next ? new PMap(next) : PMap.empty();
  }

  entries(): IterableIterator<[string, V]> {
    return this.root ? iterate(this.root) : ([] as [string, V][])[Symbol.iterator]();
  }

  *keys(): IterableIterator<string> {
    for (const [k] of this.entries()) yield k;
  }

  *values(): IterableIterator<V> {
    for (const [, v] of this.entries()) yield v;
  }

  [Symbol.iterator](): IterableIterator<[string, V]> {
    return this.entries();
  }

  /** @internal for diffMaps */
  static rootOf<V>(m: PMap<V>): TreeNode<V> | undefined {
    return m.root;
  }
}

export type DiffVisitor<V> = (key: string, a: V | undefined, b: V | undefined) => void;

/**
 * Calls `visit` for every key whose value differs (by identity) between `a` and `b`, in key order.
 * Subtrees shared by both maps are skipped without being entered.
 */
export function diffMaps<V>(a: PMap<V>, b: PMap<V>, visit: DiffVisitor<V>): void {
  diffNodes(PMap.rootOf(a), PMap.rootOf(b), visit);
}

function diffNodes<V>(a: TreeNode<V> | undefined, b: TreeNode<V> | undefined, visit: DiffVisitor<V>): void {
  if (a === b) return;
  if (!a || !b || a.leaf || b.leaf || a.height !== b.height) {
    mergeRuns(a ? [a] : [], b ? [b] : [], visit);
    return;
  }
  // Children shared by identity cover the same keys in both trees; they anchor the walk, and the
  // unshared runs between two anchors cover the same key range on both sides.
  let ia = 0;
  let ib = 0;
  const flushRun = (endA: number, endB: number) => {
    const runA = a.children.slice(ia, endA);
    const runB = b.children.slice(ib, endB);
    if (runA.length === 1 && runB.length === 1) diffNodes(runA[0], runB[0], visit);
    else if (runA.length + runB.length > 0) mergeRuns(runA, runB, visit);
  };
  for (let i = 0; i < a.children.length; i++) {
    // Shared children keep their order, so the next anchor is at or after ib (at most FANOUT).
    const child = a.children[i];
    let j = ib;
    while (j < b.children.length && b.children[j] !== child) j++;
    if (j === b.children.length) continue;
    flushRun(i, j);
    ia = i + 1;
    ib = j + 1;
  }
  flushRun(a.children.length, b.children.length);
}

/** The leaves under `nodes`, in key order. */
function leavesOf<V>(nodes: readonly TreeNode<V>[], out: Leaf<V>[] = []): Leaf<V>[] {
  for (const n of nodes) {
    if (n.leaf) out.push(n);
    else leavesOf(n.children, out);
  }
  return out;
}

/**
 * Merge-walk two runs of nodes covering the same key range. Index-based over their leaves (no
 * generators, no pairs allocated per key): this is the inner loop of every diff.
 */
function mergeRuns<V>(runA: TreeNode<V>[], runB: TreeNode<V>[], visit: DiffVisitor<V>): void {
  const la = leavesOf(runA);
  const lb = leavesOf(runB);
  let a = 0;
  let i = 0;
  let b = 0;
  let j = 0;
  for (;;) {
    while (a < la.length && i >= la[a].keys.length) {
      a++;
      i = 0;
    }
    while (b < lb.length && j >= lb[b].keys.length) {
      b++;
      j = 0;
    }
    const hasA = a < la.length;
    const hasB = b < lb.length;
    if (!hasA && !hasB) return;
    if (!hasB) {
      visit(la[a].keys[i], la[a].values[i], undefined);
      i++;
      continue;
    }
    if (!hasA) {
      visit(lb[b].keys[j], undefined, lb[b].values[j]);
      j++;
      continue;
    }
    const ka = la[a].keys[i];
    const kb = lb[b].keys[j];
    const c = ka === kb ? 0 : compareBytes(ka, kb);
    if (c < 0) {
      visit(ka, la[a].values[i], undefined);
      i++;
    } else if (c > 0) {
      visit(kb, undefined, lb[b].values[j]);
      j++;
    } else {
      const va = la[a].values[i];
      const vb = lb[b].values[j];
      if (va !== vb) visit(ka, va, vb);
      i++;
      j++;
    }
  }
}
