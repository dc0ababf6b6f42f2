/**
 * COPY (and ADD, APP) as pure functions over Rootfs: the build context's tree in, the image's
 * tree out. Nothing here touches a filesystem; contents stay lazy.
 *
 * Two semantics (docs/reference/sealer.md#kubefile):
 * - `docker` (sealer v0.9+, buildah; the default): a directory source copies its *contents* into
 *   the destination; a file goes to `dest/<name>` when dest ends in `/` or is an existing
 *   directory, else it *becomes* `dest`; several sources need a destination ending in `/`.
 * - `legacy` (sealer v0.7–v0.8): every source lands *inside* dest under its own name
 *   (`COPY apollo charts` → `charts/apollo/…`, `COPY a.yaml etc/b.yaml` → `etc/b.yaml/a.yaml`);
 *   only `.` (the whole context) copies contents.
 *
 * Common rules: sources are context-relative, cleaned by the one path validator (a source that
 * climbs above the context is refused), symlinks among the sources' path components and a
 * symlink source itself are resolved *inside* the context (absolute targets restart at the
 * context root), and symlinks below a copied directory are copied as links. Globs (`*`, `?`,
 * `[…]`, `**`) match context paths. The destination is rootfs-relative; symlinks in its parents
 * resolve inside the rootfs. Copied entries are new inodes (files copied twice are not
 * hardlinked), hardlinks inside one copy are kept, owners are 0:0 or `--chown`, `--chmod` applies
 * to files and directories, mtimes are clamped to the source date epoch, and missing parent
 * directories are created 0755 (owned like the copied files).
 */
import { Minimatch } from 'minimatch';
import { AttributeOptions, DirectoryEntry, Entry, MAX_OWNER_ID, directoryEntry, isLinked, markLinked, withAttributes } from '../entry';
import { CloudRootfsError, InvalidPathError, NotFoundError, UsageError } from '../errors';
import { resolveInRoot } from '../layer/apply';
import { baseName, cleanPath, joinPath, parentPath } from '../path';
import { FsNode, getNode } from '../rootfs/node';
import { PMap } from '../rootfs/pmap';
import { Rootfs } from '../rootfs/rootfs';

export type CopyMode = 'docker' | 'legacy';

export interface Owner {
  uid: number;
  gid: number;
}

export interface RootfsCopyOptions {
  mode?: CopyMode;
  /** `--chown` (default 0:0). */
  owner?: Owner;
  /** `--chmod`, applied to every copied file and directory. */
  chmod?: number;
  /** mtimes are clamped to this (seconds); created directories get it. Default 0. */
  sourceDateEpoch?: number;
  /** The instruction, for messages (`COPY`, `ADD`, `APP mysql`). */
  what?: string;
}

/** One source after glob expansion and symlink resolution. */
export interface ResolvedSource {
  /** The context path as named (before following a symlink): its base name is what lands in dest. */
  path: string;
  /** The node copied (a directory, a file or a symlink below the context root). */
  node: FsNode;
  /** True when `path` is the context root (`.`). */
  isRoot: boolean;
}

const GLOB_CHARS = /(^|[^\\])[*?[]/;

/** True when a COPY source is a wildcard pattern (`*`, `?`, `[`; a `\` escapes one). */
export function isGlob(source: string): boolean {
  return GLOB_CHARS.test(source);
}

function cleanSource(source: string, what: string): string {
  if (source === '') throw new UsageError(`${what}: an empty source path`);
  try {
    return cleanPath(source, { what: `${what} source` });
  } catch (err) {
    if (err instanceof InvalidPathError && /escapes the root/.test(err.message)) {
      throw new InvalidPathError(`${what} source ${JSON.stringify(source)} is outside the build context`, source);
    }
    throw err;
  }
}

/** Follow the node at `path` if it is a symlink (inside the context), as COPY follows its sources. */
function follow(context: Rootfs, path: string): FsNode | undefined {
  const resolved = resolveInRoot(context.root, path);
  return getNode(context.root, resolved);
}

/**
 * Expand and resolve COPY sources against the context. A missing source or a pattern matching
 * nothing is a NotFoundError naming it.
 */
export function resolveSources(context: Rootfs, sources: readonly string[], what = 'COPY'): ResolvedSource[] {
  const out: ResolvedSource[] = [];
  for (const source of sources) {
    const cleaned = cleanSource(source, what);
    if (!isGlob(cleaned)) {
      const node = follow(context, cleaned);
      if (!node?.entry) {
        throw new NotFoundError(cleaned, `${what} source (not in the build context, or excluded by its ignore file)`);
      }
      out.push({ path: cleaned, node, isRoot: cleaned === '' });
      continue;
    }
    const matcher = new Minimatch(cleaned, { dot: true, nobrace: true, noext: true, nocomment: true, nonegate: true });
    const matches: string[] = [];
    for (const { path } of context.walk()) {
      // A match inside an already matched directory is part of that directory's copy.
      if (matches.length > 0 && path.startsWith(matches[matches.length - 1] + '/')) continue;
      if (matcher.match(path)) matches.push(path);
    }
    if (matches.length === 0) {
      throw new NotFoundError(cleaned, `${what} source pattern (matches nothing in the build context)`);
    }
    for (const path of matches) {
      const node = follow(context, path);
      // A matched symlink that points at nothing inside the context copies as the link itself.
      out.push({ path, node: node?.entry ? node : getNode(context.root, path)!, isRoot: false });
    }
  }
  return out;
}

/** Parse `--chmod` (octal: `755`, `0644`). */
export function parseChmod(text: string): number {
  if (!/^0?[0-7]{3,4}$/.test(text)) throw new UsageError(`invalid --chmod ${JSON.stringify(text)}: expected an octal mode such as 755 or 0644`);
  const mode = parseInt(text, 8);
  if (mode > 0o7777) throw new UsageError(`invalid --chmod ${JSON.stringify(text)}`);
  return mode;
}

/** A numeric id, `root`, or a name looked up in passwd/group text (`name:x:id:…`); ids above uid_t are refused. */
function lookupId(text: string, database: string | undefined, what: 'user' | 'group'): number | undefined {
  let id: number | undefined;
  if (/^\d+$/.test(text)) id = Number(text);
  else if (text === 'root') id = 0;
  else {
    for (const line of (database ?? '').split('\n')) {
      const f = line.split(':');
      if (f[0] === text && f.length >= 3 && /^\d+$/.test(f[2])) {
        id = Number(f[2]);
        break;
      }
    }
  }
  if (id !== undefined && !(id <= MAX_OWNER_ID)) {
    throw new UsageError(`--chown: ${what} ${JSON.stringify(text)} is id ${id}, above ${MAX_OWNER_ID} (owner ids are 32 bits)`);
  }
  return id;
}

/**
 * Check `--chown=user[:group]` before anything runs: its shape, and numeric ids within 0..2^32-1
 * (names are looked up later, in the image).
 */
export function checkChown(text: string): void {
  const [user, group, extra] = text.split(':');
  if (!user || extra !== undefined || group === '') throw new UsageError(`invalid --chown ${JSON.stringify(text)}: expected USER[:GROUP]`);
  lookupId(user, undefined, 'user');
  if (group !== undefined) lookupId(group, undefined, 'group');
}

/**
 * Parse `--chown=user[:group]`. Numeric ids always work; names are looked up in the image's
 * `etc/passwd` and `etc/group` (a CloudRootfs usually has neither, so use numbers).
 */
export async function parseChown(text: string, rootfs?: Rootfs): Promise<Owner> {
  checkChown(text);
  const [user, group] = text.split(':');
  const read = async (p: string) => (rootfs?.get(p)?.type === 'file' ? rootfs.readText(p) : undefined);
  const passwd = /^\d+$/.test(user) || user === 'root' ? undefined : await read('etc/passwd');
  const uid = lookupId(user, passwd, 'user');
  if (uid === undefined) throw new UsageError(`--chown: unknown user ${JSON.stringify(user)} (no etc/passwd entry in the image; use a numeric uid)`);
  let gid: number | undefined;
  if (group === undefined) {
    // Docker: without a group, the user's primary group for a name, the same number for a uid.
    if (/^\d+$/.test(user) || user === 'root') gid = uid;
    else {
      const line = passwd?.split('\n').find((l) => l.split(':')[0] === user);
      const g = line?.split(':')[3];
      gid = g && /^\d+$/.test(g) ? (lookupId(g, undefined, 'group') as number) : uid;
    }
  } else {
    const groupDb = /^\d+$/.test(group) || group === 'root' ? undefined : await read('etc/group');
    gid = lookupId(group, groupDb, 'group');
    if (gid === undefined) throw new UsageError(`--chown: unknown group ${JSON.stringify(group)} (no etc/group entry in the image; use a numeric gid)`);
  }
  return { uid, gid };
}

/** What COPY does to every entry it carries. */
function entryTransform(options: RootfsCopyOptions): (e: Entry) => Entry {
  const epoch = options.sourceDateEpoch ?? 0;
  const owner = options.owner ?? { uid: 0, gid: 0 };
  return (e) => {
    const attrs: AttributeOptions = { uid: owner.uid, gid: owner.gid, mtime: Math.max(0, Math.min(e.mtime, epoch)) };
    if (options.chmod !== undefined && e.type !== 'symlink') attrs.mode = options.chmod;
    // withAttributes always returns a new object: the copy is a new inode.
    return withAttributes(e, attrs);
  };
}

/**
 * A copy of the subtree at `node`, every entry transformed. Entries that were one inode in the
 * source stay one inode in the copy (`inodes` spans one COPY step). Iterative: a tree from a base
 * image may be as deep as a path allows.
 */
function cloneTree(top: FsNode, transform: (e: Entry) => Entry, inodes: Map<Entry, Entry>): FsNode {
  const cloneEntry = (source: Entry): Entry => {
    let entry = inodes.get(source);
    if (!entry) {
      entry = transform(source);
      if (source.type === 'file') {
        inodes.set(source, entry);
        if (isLinked(source)) markLinked(entry);
      }
    }
    return entry;
  };
  interface Frame {
    entry: Entry;
    sources: [string, FsNode][];
    copies: [string, FsNode][];
  }
  const open = (node: FsNode): Frame => ({ entry: cloneEntry(node.entry!), sources: [...node.children!.entries()], copies: [] });
  if (top.entry!.type !== 'directory') return { entry: cloneEntry(top.entry!) };
  const stack: Frame[] = [open(top)];
  for (;;) {
    const frame = stack[stack.length - 1];
    if (frame.copies.length < frame.sources.length) {
      const [name, child] = frame.sources[frame.copies.length];
      if (child.entry!.type === 'directory') stack.push(open(child));
      else frame.copies.push([name, { entry: cloneEntry(child.entry!) }]);
      continue;
    }
    stack.pop();
    const copy: FsNode = { entry: frame.entry, children: PMap.fromSorted(frame.copies) };
    const parent = stack[stack.length - 1];
    if (!parent) return copy;
    parent.copies.push([parent.sources[parent.copies.length][0], copy]);
  }
}

/** Where a destination path really is in `rootfs`: parents (and a final symlink to a directory) resolved inside the root. */
function resolveDestination(rootfs: Rootfs, dest: string): string {
  if (dest === '') return '';
  const parent = resolveInRoot(rootfs.root, parentPath(dest));
  const candidate = joinPath(parent, baseName(dest));
  const entry = getNode(rootfs.root, candidate)?.entry;
  if (entry?.type === 'symlink') {
    const target = resolveInRoot(rootfs.root, candidate);
    if (getNode(rootfs.root, target)?.entry?.type === 'directory') return target;
  }
  return candidate;
}

interface Placement {
  rootfs: Rootfs;
  parents: AttributeOptions;
}

/** Put `node` at `path`: a directory over a directory merges (attributes from the source), anything else replaces. */
function place(p: Placement, path: string, node: FsNode): Rootfs {
  const existing = getNode(p.rootfs.root, path);
  const incoming = node.entry!;
  if (incoming.type === 'directory' && existing?.entry?.type === 'directory' && existing.children!.size > 0) {
    let out = p.rootfs.with(path, incoming, { parents: p.parents });
    for (const [name, child] of node.children!.entries()) out = place({ ...p, rootfs: out }, joinPath(path, name), child);
    return out;
  }
  return p.rootfs.withSubtree(path, Rootfs.fromNode(node), { parents: p.parents });
}

/** Put the *children* of directory node `node` into the directory at `dir` (created if missing). */
function placeContents(p: Placement, dir: string, node: FsNode): Rootfs {
  let rootfs = p.rootfs;
  const existing = getNode(rootfs.root, dir);
  if (existing?.entry?.type !== 'directory') {
    // A missing destination (or a file in the way) becomes a directory, like `mkdir -p`.
    rootfs = rootfs.with(dir, directoryEntry(p.parents), { parents: p.parents });
  }
  const current = getNode(rootfs.root, dir)!;
  if (current.children!.size === 0) {
    // Fast path (`FROM scratch` + `COPY . .`): mount the copied tree under the existing entry.
    return rootfs.withSubtree(dir, Rootfs.fromNode({ entry: current.entry as DirectoryEntry, children: node.children! }), { parents: p.parents });
  }
  for (const [name, child] of node.children!.entries()) rootfs = place({ ...p, rootfs }, joinPath(dir, name), child);
  return rootfs;
}

function isDirectoryNode(node: FsNode): boolean {
  return node.entry?.type === 'directory';
}

/** True when a destination as written names a directory (`dir/`, `.`, `dir/.`, ``). */
export function destinationIsDirectory(dest: string): boolean {
  return dest === '' || dest === '.' || dest.endsWith('/') || dest.endsWith('/.');
}

/**
 * Copy `sources` (already resolved against the context) to `dest` in `rootfs`.
 * `destText` is the destination as written (its trailing `/` matters in docker mode).
 */
export function copyResolved(rootfs: Rootfs, sources: readonly ResolvedSource[], destText: string, options: RootfsCopyOptions = {}): Rootfs {
  const what = options.what ?? 'COPY';
  const mode = options.mode ?? 'docker';
  const dest = cleanPath(destText, { what: `${what} destination`, forbidWhiteoutNames: true });
  const owner = options.owner ?? { uid: 0, gid: 0 };
  const parents: AttributeOptions = { mode: 0o755, uid: owner.uid, gid: owner.gid, mtime: options.sourceDateEpoch ?? 0 };
  const transform = entryTransform(options);
  const inodes = new Map<Entry, Entry>();
  let out = rootfs;

  if (mode === 'legacy') {
    const target = resolveDestination(out, dest);
    for (const s of sources) {
      const copy = cloneTree(s.node, transform, inodes);
      if (s.isRoot) out = placeContents({ rootfs: out, parents }, target, copy);
      else {
        if (getNode(out.root, target)?.entry?.type !== 'directory' && target !== '') {
          out = out.with(target, directoryEntry(parents), { parents });
        }
        out = place({ rootfs: out, parents }, joinPath(target, baseName(s.path)), copy);
      }
    }
    return out;
  }

  const several = sources.length > 1;
  const slash = destinationIsDirectory(destText);
  if (several && !slash) {
    throw new UsageError(
      `${what} with more than one source needs a destination directory ending in "/" (got ${JSON.stringify(destText)})`,
    );
  }
  for (const s of sources) {
    const copy = cloneTree(s.node, transform, inodes);
    const target = resolveDestination(out, dest);
    if (isDirectoryNode(copy)) {
      out = placeContents({ rootfs: out, parents }, target, copy);
      continue;
    }
    const existing = getNode(out.root, target)?.entry;
    const intoDir = slash || existing?.type === 'directory';
    if (intoDir) {
      if (existing?.type !== 'directory' && target !== '') out = out.with(target, directoryEntry(parents), { parents });
      out = place({ rootfs: out, parents }, joinPath(target, baseName(s.path)), copy);
    } else {
      out = place({ rootfs: out, parents }, target, copy);
    }
  }
  return out;
}

/** Resolve and copy in one call. */
export function copyFromContext(
  rootfs: Rootfs,
  context: Rootfs,
  sources: readonly string[],
  dest: string,
  options: RootfsCopyOptions = {},
): Rootfs {
  if (sources.length === 0) throw new CloudRootfsError('USAGE', `${options.what ?? 'COPY'} needs at least one source`);
  return copyResolved(rootfs, resolveSources(context, sources, options.what), dest, options);
}
