/**
 * Rootfs: an immutable, persistent tree of entries — the files of a CloudRootfs. Every change
 * returns a new Rootfs that shares all untouched subtrees with the old one.
 */
import { Content, readContent } from '../content';
import {
  AttributeOptions,
  DirectoryEntry,
  Entry,
  FileEntry,
  IMPLICIT_DIRECTORY,
  directoryEntry,
  fileEntry,
  markLinked,
  symlinkEntry,
} from '../entry';
import { HardlinkTargetError, LayerConflictError, NotFoundError } from '../errors';
import { cleanPath, splitPath } from '../path';
import { EMPTY_CHILDREN, FsNode, canonicalWalk, getNode, orderedChildren, updateNode } from './node';

/** The top-level directories sealer gives meaning to (docs/reference/sealer.md#the-rootfs-contract). */
export const SECTIONS = [
  'bin',
  'cri',
  'etc',
  'images',
  'registry',
  'scripts',
  'statics',
  'manifests',
  'charts',
  'plugins',
  'application',
] as const;
export type SectionName = (typeof SECTIONS)[number];

/** The top-level files of a CloudRootfs. */
export const TOP_LEVEL_FILES = { kubefile: 'Kubefile', metadata: 'Metadata', readme: 'README.md' } as const;

export interface RootfsEntry {
  path: string;
  entry: Entry;
}

export interface WithOptions {
  /** Attributes for parent directories that must be created (default 0755 root:root, mtime 0). */
  parents?: AttributeOptions;
}

const sizeMemo = new WeakMap<FsNode, number>();

function cleanApiPath(path: string, what = 'path'): string {
  return cleanPath(path, { forbidWhiteoutNames: true, what });
}

export class Rootfs {
  private constructor(
    /** @internal */ readonly root: FsNode,
  ) {}

  static empty(rootAttributes: AttributeOptions = {}): Rootfs {
    return new Rootfs({ entry: directoryEntry(rootAttributes), children: EMPTY_CHILDREN });
  }

  /** @internal Wrap a tree that already satisfies the Rootfs invariants. */
  static fromNode(root: FsNode): Rootfs {
    return new Rootfs(root);
  }

  /** Build from a list of entries (parents created as needed; hardlinks resolved in order). */
  static fromEntries(entries: Iterable<RootfsEntry | [string, Entry]>, options: WithOptions = {}): Rootfs {
    let fs = Rootfs.empty();
    for (const item of entries) {
      const [path, entry] = Array.isArray(item) ? item : [item.path, item.entry];
      fs = fs.with(path, entry, options);
    }
    return fs;
  }

  /** The root directory's own attributes. */
  get rootEntry(): DirectoryEntry {
    return this.root.entry as DirectoryEntry;
  }

  /** Number of entries, not counting the root. */
  get size(): number {
    let n = sizeMemo.get(this.root);
    if (n === undefined) {
      n = -1;
      for (const step of canonicalWalk(this.root)) if (step.kind === 'entry') n++;
      sizeMemo.set(this.root, n);
    }
    return n;
  }

  get(path: string): Entry | undefined {
    return getNode(this.root, cleanApiPath(path))?.entry;
  }

  has(path: string): boolean {
    return this.get(path) !== undefined;
  }

  /** The entry at `path`, or NotFoundError. */
  stat(path: string): Entry {
    const entry = this.get(path);
    if (!entry) throw new NotFoundError(path);
    return entry;
  }

  /** Names of a directory's children, in byte order. */
  list(path = ''): string[] {
    const node = getNode(this.root, cleanApiPath(path));
    if (!node) throw new NotFoundError(path);
    if (!node.children) throw new LayerConflictError(`${path} is not a directory`, path);
    return [...node.children.keys()];
  }

  /** Every entry below `path` (default: the whole tree, root excluded) in archive order. */
  *walk(path = ''): Generator<RootfsEntry> {
    const start = cleanApiPath(path);
    const node = getNode(this.root, start);
    if (!node) return;
    for (const step of canonicalWalk(node, start)) {
      if (step.kind === 'entry' && step.path !== start) yield { path: step.path, entry: step.node.entry! };
    }
  }

  /** Place `entry` at `path`, replacing whatever was there (a directory over a directory keeps its children). */
  with(path: string, entry: Entry, options: WithOptions = {}): Rootfs {
    const p = cleanApiPath(path);
    let placed: Entry = entry;
    if (entry.type === 'hardlink') {
      const target = cleanApiPath(entry.target, 'hardlink target');
      const t = getNode(this.root, target)?.entry;
      if (!t) throw new HardlinkTargetError(`hardlink ${p} -> ${target}: target does not exist`, p, target);
      if (t.type === 'directory') throw new HardlinkTargetError(`hardlink ${p} -> ${target}: target is a directory`, p, target);
      placed = markLinked(t);
    }
    if (p === '') {
      if (placed.type !== 'directory') throw new LayerConflictError('the root must stay a directory', p);
      return new Rootfs({ ...this.root, entry: placed });
    }
    const parentEntry = options.parents ? directoryEntry(options.parents) : IMPLICIT_DIRECTORY;
    const root = updateNode(
      this.root,
      p,
      (existing) => {
        if (placed.type === 'directory') {
          return { entry: placed, children: existing?.entry?.type === 'directory' ? existing.children : EMPTY_CHILDREN };
        }
        return { entry: placed };
      },
      (existing, parentPath) => {
        if (existing) throw new LayerConflictError(`cannot create ${p}: ${parentPath} is not a directory`, parentPath);
        return { entry: parentEntry, children: EMPTY_CHILDREN };
      },
    );
    return root === this.root ? this : new Rootfs(root);
  }

  withFile(path: string, content: Content | Buffer | string, attributes: AttributeOptions = {}, options?: WithOptions): Rootfs {
    return this.with(path, fileEntry(content, attributes), options);
  }

  withDirectory(path: string, attributes: AttributeOptions = {}, options?: WithOptions): Rootfs {
    return this.with(path, directoryEntry(attributes), options);
  }

  withSymlink(path: string, target: string, attributes: AttributeOptions = {}, options?: WithOptions): Rootfs {
    return this.with(path, symlinkEntry(target, attributes), options);
  }

  /** Make `path` a hardlink of the existing file at `target` (the same inode). */
  withHardlink(path: string, target: string, options?: WithOptions): Rootfs {
    return this.with(path, { type: 'hardlink', target, mode: 0, uid: 0, gid: 0, mtime: 0 }, options);
  }

  /** Remove `path` and everything below it; a missing path is a no-op. */
  without(path: string): Rootfs {
    const p = cleanApiPath(path);
    if (p === '') throw new LayerConflictError('cannot remove the root', p);
    if (!getNode(this.root, p)) return this;
    return new Rootfs(
      updateNode(
        this.root,
        p,
        () => undefined,
        () => {
          throw new Error('unreachable: parent exists');
        },
      ),
    );
  }

  /** Copy an entry (and its subtree) to a new path; files become new inodes, not hardlinks. */
  copy(from: string, to: string, options?: WithOptions): Rootfs {
    const src = getNode(this.root, cleanApiPath(from));
    if (!src) throw new NotFoundError(from);
    let out: Rootfs = this.with(to, copyEntry(src.entry!), options);
    const base = cleanApiPath(to);
    const start = cleanApiPath(from);
    const seen = new Map<Entry, Entry>();
    for (const step of canonicalWalk(src, start)) {
      if (step.kind !== 'entry' || step.path === start) continue;
      const rel = step.path.slice(start === '' ? 0 : start.length + 1);
      const original = step.node.entry!;
      let copied = seen.get(original);
      if (!copied) {
        copied = copyEntry(original);
        seen.set(original, copied);
      } else {
        // A second name of one copied inode: `diff` finds such links only when they are marked.
        markLinked(copied);
      }
      out = out.with(base === '' ? rel : `${base}/${rel}`, copied);
    }
    return out;
  }

  /** The subtree at `path` as a Rootfs of its own (its root takes the directory's attributes). */
  subtree(path: string): Rootfs {
    const node = getNode(this.root, cleanApiPath(path));
    if (!node) throw new NotFoundError(path);
    if (node.entry?.type !== 'directory') throw new LayerConflictError(`${path} is not a directory`, path);
    return new Rootfs(node);
  }

  /** Mount another Rootfs at `path` (replacing what was there), sharing its tree. */
  withSubtree(path: string, sub: Rootfs, options: WithOptions = {}): Rootfs {
    const p = cleanApiPath(path);
    if (p === '') return sub;
    const parentEntry = options.parents ? directoryEntry(options.parents) : IMPLICIT_DIRECTORY;
    return new Rootfs(
      updateNode(
        this.root,
        p,
        () => sub.root,
        (existing, parentPath) => {
          if (existing) throw new LayerConflictError(`cannot create ${p}: ${parentPath} is not a directory`, parentPath);
          return { entry: parentEntry, children: EMPTY_CHILDREN };
        },
      ),
    );
  }

  /** Read a file's bytes (small files: configs, Metadata, scripts). */
  async readFile(path: string): Promise<Buffer> {
    const entry = this.resolveFile(path);
    return readContent(entry.content);
  }

  async readText(path: string): Promise<string> {
    return (await this.readFile(path)).toString('utf8');
  }

  /** The file at `path`, following symlinks inside the rootfs. */
  resolveFile(path: string): FileEntry {
    let p = cleanApiPath(path);
    for (let hops = 0; hops < 40; hops++) {
      const entry = getNode(this.root, p)?.entry;
      if (!entry) throw new NotFoundError(path);
      if (entry.type === 'file') return entry;
      if (entry.type !== 'symlink') throw new LayerConflictError(`${path} is not a file`, path);
      const parent = splitPath(p).slice(0, -1).join('/');
      p = cleanPath(entry.target.startsWith('/') ? entry.target : `${parent}/${entry.target}`, { what: 'symlink target' });
    }
    throw new LayerConflictError(`${path}: too many levels of symbolic links`, path);
  }

  // --- CloudRootfs sections -------------------------------------------------------------------

  section(name: SectionName): Section {
    return new Section(this, name);
  }

  get bin(): Section { return this.section('bin'); }
  get cri(): Section { return this.section('cri'); }
  get etc(): Section { return this.section('etc'); }
  get images(): Section { return this.section('images'); }
  get registry(): Section { return this.section('registry'); }
  get scripts(): Section { return this.section('scripts'); }
  get statics(): Section { return this.section('statics'); }
  get manifests(): Section { return this.section('manifests'); }
  get charts(): Section { return this.section('charts'); }
  get plugins(): Section { return this.section('plugins'); }
  get application(): Section { return this.section('application'); }

  /** The top-level `Kubefile`, `Metadata` and `README.md` entries. */
  get kubefile(): Entry | undefined { return this.get(TOP_LEVEL_FILES.kubefile); }
  get metadataFile(): Entry | undefined { return this.get(TOP_LEVEL_FILES.metadata); }
  get readme(): Entry | undefined { return this.get(TOP_LEVEL_FILES.readme); }

  /** Which sealer sections exist. */
  sections(): SectionName[] {
    return SECTIONS.filter((s) => this.get(s)?.type === 'directory');
  }
}

/** A read view on one top-level section (`bin/`, `etc/`…); paths are relative to it. */
export class Section {
  constructor(
    private readonly rootfs: Rootfs,
    readonly name: SectionName,
  ) {}

  get exists(): boolean {
    return this.rootfs.get(this.name)?.type === 'directory';
  }

  get(relativePath: string): Entry | undefined {
    return this.rootfs.get(`${this.name}/${relativePath}`);
  }

  has(relativePath: string): boolean {
    return this.get(relativePath) !== undefined;
  }

  /** Direct children names. */
  list(): string[] {
    return this.exists ? this.rootfs.list(this.name) : [];
  }

  /** Every entry below the section, paths relative to it. */
  *entries(): Generator<RootfsEntry> {
    for (const { path, entry } of this.rootfs.walk(this.name)) {
      yield { path: path.slice(this.name.length + 1), entry };
    }
  }

  /** Relative paths of the regular files below the section. */
  files(): string[] {
    const out: string[] = [];
    for (const { path, entry } of this.entries()) if (entry.type === 'file') out.push(path);
    return out;
  }
}

function copyEntry(entry: Entry): Entry {
  return Object.freeze({ ...entry });
}

/** Children of the root in archive order (used by writers). */
export function rootChildren(rootfs: Rootfs): [string, FsNode][] {
  return orderedChildren(rootfs.root);
}
