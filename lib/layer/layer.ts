/**
 * Layer: a changeset — entries to add or replace, paths whited out, directories made opaque —
 * exactly what one OCI layer tarball says. Immutable like Rootfs; built from the same tree.
 *
 * The tree holds the layer's tar paths as written. Parents a layer does not list are implicit
 * (no entry): applying the layer keeps the lower directory's attributes for them.
 */
import { AttributeOptions, Entry, directoryEntry, fileEntry, hardlinkEntry, symlinkEntry } from '../entry';
import { Content } from '../content';
import { LayerConflictError } from '../errors';
import { cleanPath } from '../path';
import type { Rootfs } from '../rootfs/rootfs';
import { EMPTY_CHILDREN, FsNode, VisitStep, canonicalWalk, getNode, updateNode } from '../rootfs/node';

export interface LayerStats {
  entries: number;
  whiteouts: number;
  opaques: number;
  /** Sum of file sizes. */
  bytes: number;
}

function clean(path: string, what: string): string {
  return cleanPath(path, { forbidWhiteoutNames: true, what });
}

const implicitParent = (existing: FsNode | undefined): FsNode =>
  // A non-directory entry keeps its place: the tar said both "x is a file" and "x/y exists", and
  // applying it fails (as umoci's does) or, for a symlink, writes through it.
  existing ? { ...existing, children: EMPTY_CHILDREN } : { children: EMPTY_CHILDREN };

export class Layer {
  private constructor(/** @internal */ readonly root: FsNode) {}

  static empty(): Layer {
    return new Layer({ children: EMPTY_CHILDREN });
  }

  /** @internal */
  static fromNode(root: FsNode): Layer {
    return new Layer(root);
  }

  /** The layer that creates `rootfs` on an empty root (every entry, no whiteouts). */
  static fromRootfs(rootfs: Rootfs): Layer {
    return new Layer(rootfs.root);
  }

  /**
   * Add or replace the entry at `path`, as a later tar entry with the same name would: a directory
   * over a directory updates attributes and keeps what is below; anything else replaces the subtree.
   */
  with(path: string, entry: Entry): Layer {
    const p = clean(path, 'layer entry');
    if (p === '' && entry.type !== 'directory') {
      throw new LayerConflictError('refusing to change the type of the root directory', p);
    }
    const update = (existing: FsNode | undefined): FsNode => {
      const keepBelow = existing && entry.type === 'directory' && (existing.entry?.type === 'directory' || !existing.entry);
      return {
        entry,
        ...(keepBelow ? { children: existing!.children ?? EMPTY_CHILDREN } : entry.type === 'directory' ? { children: EMPTY_CHILDREN } : {}),
        ...(existing?.whiteout ? { whiteout: true } : {}),
        ...(keepBelow && existing!.opaque ? { opaque: true } : {}),
      };
    };
    return new Layer(updateNode(this.root, p, update, implicitParent));
  }

  withFile(path: string, content: Content | Buffer | string, attributes: AttributeOptions = {}): Layer {
    return this.with(path, fileEntry(content, attributes));
  }

  withDirectory(path: string, attributes: AttributeOptions = {}): Layer {
    return this.with(path, directoryEntry(attributes));
  }

  withSymlink(path: string, target: string, attributes: AttributeOptions = {}): Layer {
    return this.with(path, symlinkEntry(target, attributes));
  }

  /**
   * `path` is the file at `target`. Give `attributes` those of that file: extractors that apply a
   * link header's mode, owner and mtime to the path (Docker's does) change the shared inode.
   */
  withHardlink(path: string, target: string, attributes: AttributeOptions = {}): Layer {
    return this.with(path, hardlinkEntry(clean(target, 'hardlink target'), attributes));
  }

  /** Delete `path` from the layers below (`.wh.<name>`). Entries of this layer at the path survive. */
  withWhiteout(path: string): Layer {
    const p = clean(path, 'whiteout');
    if (p === '') throw new LayerConflictError('cannot white out the root', p);
    return new Layer(updateNode(this.root, p, (existing) => ({ ...(existing ?? {}), whiteout: true }), implicitParent));
  }

  /** Hide everything the layers below have inside directory `dir` (`dir/.wh..wh..opq`). */
  withOpaque(dir: string): Layer {
    const p = clean(dir, 'opaque directory');
    return new Layer(
      updateNode(
        this.root,
        p,
        (existing) => ({ ...(existing ?? {}), children: existing?.children ?? EMPTY_CHILDREN, opaque: true }),
        implicitParent,
      ),
    );
  }

  get(path: string): Entry | undefined {
    return getNode(this.root, clean(path, 'path'))?.entry;
  }

  isWhiteout(path: string): boolean {
    return getNode(this.root, clean(path, 'path'))?.whiteout === true;
  }

  isOpaque(dir: string): boolean {
    return getNode(this.root, clean(dir, 'path'))?.opaque === true;
  }

  /** Every step of the layer in canonical (archive) order. */
  steps(): Generator<VisitStep> {
    return canonicalWalk(this.root);
  }

  *entries(): Generator<{ path: string; entry: Entry }> {
    for (const s of this.steps()) if (s.kind === 'entry') yield { path: s.path, entry: s.node.entry! };
  }

  whiteouts(): string[] {
    const out: string[] = [];
    for (const s of this.steps()) if (s.kind === 'whiteout') out.push(s.path);
    return out;
  }

  opaques(): string[] {
    const out: string[] = [];
    for (const s of this.steps()) if (s.kind === 'opaque') out.push(s.path);
    return out;
  }

  stats(): LayerStats {
    const st: LayerStats = { entries: 0, whiteouts: 0, opaques: 0, bytes: 0 };
    for (const s of this.steps()) {
      if (s.kind === 'entry') {
        st.entries++;
        const e = s.node.entry!;
        if (e.type === 'file') st.bytes += e.content.size;
      } else if (s.kind === 'whiteout') st.whiteouts++;
      else st.opaques++;
    }
    return st;
  }

  get isEmpty(): boolean {
    return this.steps().next().done === true;
  }
}
