/**
 * apply(rootfs, layer): the rootfs a runtime sees after unpacking the layer on top of it.
 *
 * The rules are the OCI image-spec's, made exact the way umoci's extractor makes them
 * (docs/reference/oci.md#layers), so that our flatten and `umoci unpack` agree on every stack:
 * - steps run in canonical order (a node's entry, its opaque marker, its children's whiteouts, its
 *   children); whiteouts and opaque markers spare every path this layer itself wrote, so a
 *   same-layer entry survives its own whiteout, and an opaque marker hides only lower content;
 * - a directory over a directory merges (attributes replaced, children kept); anything else
 *   replaces the whole subtree;
 * - parent directories are resolved through symlinks *inside* the root (securejoin semantics:
 *   absolute targets restart at the root, `..` never climbs above it); missing parents are created
 *   as 0755 root:root directories (setgid and the group of a setgid ancestor, as the kernel does);
 *   a parent that is a regular file is an error;
 * - a whiteout of a missing path is a no-op; hardlink targets resolve root-relative at the moment
 *   the link is applied and must exist and not be a directory.
 */
import { DirectoryEntry, Entry, IMPLICIT_DIRECTORY, directoryEntry, markLinked } from '../entry';
import { HardlinkTargetError, LayerConflictError } from '../errors';
import { baseName, cleanPath, isWithin, joinPath, parentPath, splitPath } from '../path';
import { EMPTY_CHILDREN, FsNode, getNode, updateNode } from '../rootfs/node';
import { Rootfs } from '../rootfs/rootfs';
import { Layer } from './layer';

const MAX_SYMLINK_HOPS = 255;

/** Implied directories created under a setgid directory, one per group (see impliedDirectoryUnder). */
const setgidImplied = new Map<number, DirectoryEntry>();
const implied = new WeakSet<Entry>([IMPLICIT_DIRECTORY]);

/**
 * The directory a runtime creates for a parent the layer does not list (`mkdir -p`, mode 0777
 * under umask 022, owned by the unpacker, i.e. root). Under a setgid directory the kernel gives
 * the new directory the parent's group and the setgid bit, so umoci's (and containerd's) trees do.
 */
function impliedDirectoryUnder(parent: Entry | undefined): DirectoryEntry {
  if (!parent || parent.type !== 'directory' || (parent.mode & 0o2000) === 0) return IMPLICIT_DIRECTORY;
  let entry = setgidImplied.get(parent.gid);
  if (!entry) {
    entry = directoryEntry({ mode: 0o2755, gid: parent.gid });
    implied.add(entry);
    setgidImplied.set(parent.gid, entry);
  }
  return entry;
}

/** True for a directory entry that applying a layer created because the layer implied it. */
export function isImpliedDirectory(entry: Entry): boolean {
  return implied.has(entry);
}

/**
 * Resolve `unsafe` (a directory path from a layer) inside the tree the way securejoin does: each
 * existing symlink component is replaced by its target; non-existent components (and components
 * below a non-directory) are kept literally.
 */
export function resolveInRoot(root: FsNode, unsafe: string): string {
  let resolved: string[] = [];
  let pending = splitPath(unsafe);
  let hops = 0;
  while (pending.length > 0) {
    const part = pending.shift()!;
    if (part === '' || part === '.') continue;
    if (part === '..') {
      resolved.pop();
      continue;
    }
    const candidate = [...resolved, part];
    const node = getNode(root, candidate.join('/'));
    const entry = node?.entry;
    if (!entry || entry.type !== 'symlink') {
      resolved = candidate;
      continue;
    }
    if (++hops > MAX_SYMLINK_HOPS) {
      throw new LayerConflictError(`too many levels of symbolic links resolving ${unsafe}`, unsafe);
    }
    if (entry.target.startsWith('/')) resolved = [];
    pending = [...entry.target.split('/'), ...pending];
  }
  return resolved.join('/');
}

class Applier {
  /** Resolved paths this layer wrote, and all their ancestors (umoci's upperPaths). */
  private readonly upper = new Set<string>();

  constructor(private root: FsNode) {}

  result(): FsNode {
    return this.root;
  }

  private markUpper(path: string): void {
    for (let p = path; ; p = parentPath(p)) {
      if (this.upper.has(p)) break;
      this.upper.add(p);
      if (p === '') break;
    }
  }

  /** Remove `path` except the parts of it this layer wrote; `keepTop` for opaque markers. */
  private purge(top: string, keepTop: boolean): void {
    // A work list, not recursion: what this layer wrote may sit thousands of levels deep.
    const pending: [string, boolean][] = [[top, keepTop]];
    while (pending.length > 0) {
      const [path, keep] = pending.pop()!;
      const node = getNode(this.root, path);
      if (!node) continue;
      if (!keep && !this.upper.has(path)) {
        this.remove(path);
        continue;
      }
      if (node.children) for (const name of node.children.keys()) pending.push([joinPath(path, name), false]);
    }
  }

  private remove(path: string): void {
    if (path === '') {
      this.root = { ...this.root, children: EMPTY_CHILDREN };
      return;
    }
    this.root = updateNode(
      this.root,
      path,
      () => undefined,
      () => {
        throw new Error('unreachable');
      },
    );
  }

  private set(path: string, node: FsNode): void {
    // Every parent created here sits below the nearest existing ancestor, so all inherit from it.
    let ancestor = parentPath(path);
    while (ancestor !== '' && !getNode(this.root, ancestor)) ancestor = parentPath(ancestor);
    const impliedEntry = impliedDirectoryUnder(getNode(this.root, ancestor)?.entry);
    this.root = updateNode(
      this.root,
      path,
      () => node,
      (existing, p) => {
        if (existing && existing.entry?.type !== 'directory') {
          throw new LayerConflictError(`cannot create ${path}: ${p} exists and is not a directory`, p);
        }
        return { entry: impliedEntry, children: EMPTY_CHILDREN };
      },
    );
  }

  opaque(dir: string): void {
    this.purge(resolveInRoot(this.root, dir), true);
  }

  whiteout(path: string): void {
    const dir = resolveInRoot(this.root, parentPath(path));
    this.purge(joinPath(dir, baseName(path)), false);
  }

  entry(path: string, entry: Entry): void {
    if (path === '') {
      if (entry.type !== 'directory') throw new LayerConflictError('refusing to change the type of the root directory', path);
      this.root = { ...this.root, entry };
      return;
    }
    const dir = resolveInRoot(this.root, parentPath(path));
    const target = joinPath(dir, baseName(path));
    const existing = getNode(this.root, target);
    let node: FsNode;
    switch (entry.type) {
      case 'directory':
        node = { entry, children: existing?.entry?.type === 'directory' ? existing.children : EMPTY_CHILDREN };
        break;
      case 'hardlink':
        node = { entry: markLinked(this.linkTarget(target, entry.target)) };
        break;
      default:
        node = { entry };
    }
    this.set(target, node);
    this.markUpper(target);
  }

  private linkTarget(path: string, linkname: string): Entry {
    const clean = cleanPath(linkname, { what: 'hardlink target' });
    const resolved = joinPath(resolveInRoot(this.root, parentPath(clean)), baseName(clean));
    // The link's own path is cleared before linking, so a target at or below it no longer exists.
    const found = isWithin(resolved, path) ? undefined : getNode(this.root, resolved)?.entry;
    if (!found) throw new HardlinkTargetError(`hardlink ${path} -> ${linkname}: target does not exist`, path, linkname);
    if (found.type === 'directory') {
      throw new HardlinkTargetError(`hardlink ${path} -> ${linkname}: target is a directory`, path, linkname);
    }
    return found;
  }
}

/** The rootfs after `layer` is applied on top of `rootfs`. Pure: neither input changes. */
export function applyLayer(rootfs: Rootfs, layer: Layer): Rootfs {
  const applier = new Applier(rootfs.root);
  for (const step of layer.steps()) {
    switch (step.kind) {
      case 'opaque':
        applier.opaque(step.path);
        break;
      case 'whiteout':
        applier.whiteout(step.path);
        break;
      case 'entry':
        applier.entry(step.path, step.node.entry!);
        break;
    }
  }
  return Rootfs.fromNode(applier.result());
}
