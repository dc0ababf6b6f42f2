/**
 * The tree both Rootfs and Layer are made of. A node is immutable; updates copy the nodes on the
 * path from the root (O(depth) nodes, each O(log width) with PMap) and share everything else.
 *
 * In a Rootfs every node has an entry, and only directories have children. A Layer's tree is the
 * tree of its tar paths, so it may also hold implicit parents (no entry), whiteout and opaque
 * flags, and — for faithfulness to odd archives — children under a non-directory entry.
 */
import { compareBytes, splitPath } from '../path';
import type { Entry } from '../entry';
import { PMap } from './pmap';

export interface FsNode {
  /** The entry at this path; undefined for a directory a layer implies but does not list. */
  readonly entry?: Entry;
  /** Present on directories (and on any node of a layer that has entries below it). */
  readonly children?: PMap<FsNode>;
  /** Layer only: the lower path is removed (`.wh.<name>`). */
  readonly whiteout?: boolean;
  /** Layer only: the lower children of this directory are hidden (`.wh..wh..opq`). */
  readonly opaque?: boolean;
}

export const EMPTY_CHILDREN: PMap<FsNode> = PMap.empty<FsNode>();

export function isDirNode(node: FsNode): boolean {
  return node.entry ? node.entry.type === 'directory' : node.children !== undefined;
}

export function getNode(root: FsNode, path: string): FsNode | undefined {
  let node: FsNode | undefined = root;
  for (const name of splitPath(path)) {
    node = node.children?.get(name);
    if (!node) return undefined;
  }
  return node;
}

/**
 * Replace the node at `path` by `update(existing)` (undefined removes it), creating missing
 * parents with `makeParent(existing)`. Returns the new root, or the same root if nothing changed.
 */
export function updateNode(
  root: FsNode,
  path: string,
  update: (existing: FsNode | undefined) => FsNode | undefined,
  makeParent: (existing: FsNode | undefined, parentPath: string) => FsNode,
): FsNode {
  const names = splitPath(path);
  if (names.length === 0) {
    const next = update(root);
    if (!next) throw new Error('cannot remove the root');
    return next;
  }
  // Down the path (creating parents as needed), then back up copying each node: iteratively, as
  // a path may have thousands of components.
  const chain: { node: FsNode; existing: FsNode | undefined }[] = [];
  let node = root;
  for (let depth = 0; depth < names.length - 1; depth++) {
    const existing = node.children?.get(names[depth]);
    chain.push({ node, existing });
    node = existing && existing.children !== undefined ? existing : makeParent(existing, names.slice(0, depth + 1).join('/'));
  }
  const leafExisting = node.children?.get(names[names.length - 1]);
  chain.push({ node, existing: leafExisting });
  let next: FsNode | undefined = update(leafExisting);
  for (let depth = names.length - 1; depth >= 0; depth--) {
    const { node: parent, existing } = chain[depth];
    if (next === existing) {
      next = parent;
      continue;
    }
    const children = parent.children ?? EMPTY_CHILDREN;
    next = { ...parent, children: next ? children.set(names[depth], next) : children.delete(names[depth]) };
  }
  return next!;
}

/** Sort key that puts a directory after a sibling whose name it prefixes with a byte < '/'. */
function orderKey(name: string, node: FsNode): string {
  return node.children !== undefined || node.entry?.type === 'directory' ? name + '/' : name;
}

/**
 * Children in archive order: names compared as tar names (directories with a trailing `/`), so the
 * whole archive lists paths in UTF-8 byte order. PMap order is plain name order; the two differ
 * only when a directory `d` has a sibling like `d-x` or `d.conf`, so re-sorting is usually a no-op.
 */
export function orderedChildren(node: FsNode): [string, FsNode][] {
  if (!node.children) return [];
  const list = [...node.children.entries()];
  let sorted = true;
  for (let i = 1; i < list.length && sorted; i++) {
    if (compareBytes(orderKey(list[i - 1][0], list[i - 1][1]), orderKey(list[i][0], list[i][1])) > 0) sorted = false;
  }
  if (!sorted) list.sort((a, b) => compareBytes(orderKey(a[0], a[1]), orderKey(b[0], b[1])));
  return list;
}

export type VisitStep =
  | { kind: 'entry'; path: string; node: FsNode }
  | { kind: 'opaque'; path: string }
  | { kind: 'whiteout'; path: string };

/**
 * The canonical order in which a tree is written to tar and in which a layer is applied:
 * a node's own entry, then its opaque marker, then its children's whiteouts, then its children.
 * Writer and applier share this one definition, so what we write means what we apply.
 */
export function* canonicalWalk(root: FsNode, rootPath = ''): Generator<VisitStep> {
  if (root.entry) yield { kind: 'entry', path: rootPath, node: root };
  // An explicit stack of directories being walked (a tree may be thousands of levels deep).
  const stack: { path: string; children: [string, FsNode][]; next: number }[] = [];
  const enter = function* (node: FsNode, path: string): Generator<VisitStep> {
    if (node.opaque) yield { kind: 'opaque', path };
    const children = orderedChildren(node);
    for (const [name, child] of children) {
      if (child.whiteout) yield { kind: 'whiteout', path: path === '' ? name : `${path}/${name}` };
    }
    stack.push({ path, children, next: 0 });
  };
  yield* enter(root, rootPath);
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    if (top.next >= top.children.length) {
      stack.pop();
      continue;
    }
    const [name, child] = top.children[top.next++];
    const childPath = top.path === '' ? name : `${top.path}/${name}`;
    if (child.entry) yield { kind: 'entry', path: childPath, node: child };
    if (child.children !== undefined || child.opaque) yield* enter(child, childPath);
  }
}
