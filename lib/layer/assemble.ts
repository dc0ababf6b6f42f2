/**
 * Turns archive records (raw tar names with entries) into a Layer: the one place where `.wh.`
 * names are interpreted when reading. Used by the tar reader and by tests that write layers as
 * lists of names.
 */
import { Entry, HardlinkEntry, markLinked } from '../entry';
import { CorruptArchiveError, InvalidPathError, InvalidWhiteoutError } from '../errors';
import { CleanPathOptions, cleanPath, isWithin, parseWhiteout, splitPath } from '../path';
import type { FsNode } from '../rootfs/node';
import { Layer } from './layer';

export interface AssembleOptions {
  maxPathBytes?: number;
  /** Where the records come from, for error messages. */
  source?: string;
}

/**
 * A hardlink record whose target this archive wrote before it: it denotes that entry's inode (or,
 * for a link to a link to a lower file, that link).
 */
interface EarlierLink {
  path: string;
  link: HardlinkEntry;
  inode: Entry;
}

export class LayerAssembler {
  private layer = Layer.empty();
  private count = 0;
  private nodeCount = 0;
  private readonly earlierLinks: EarlierLink[] = [];
  private readonly inodeOf = new Map<HardlinkEntry, Entry>();

  constructor(private readonly options: AssembleOptions = {}) {}

  /** Add one archive record. `entry` is ignored for whiteout names (only the name counts). */
  add(rawName: string, entry: Entry): void {
    this.count++;
    this.nodeCount++;
    const opts: CleanPathOptions = { what: 'archive entry', maxPathBytes: this.options.maxPathBytes };
    let path: string;
    try {
      path = cleanPath(rawName, opts);
    } catch (err) {
      if (err instanceof InvalidPathError) {
        throw new CorruptArchiveError(`${this.where()}${err.message}`, { path: rawName, reason: 'path' }, { cause: err });
      }
      throw err;
    }
    // Parents the layer does not list become nodes too: a path 2,000 levels deep makes 2,000.
    this.nodeCount += this.missingParents(path);
    const wh = parseWhiteout(path);
    if (wh) {
      if (wh.kind === 'aufs-meta') return;
      if (wh.kind === 'opaque') {
        this.layer = this.layer.withOpaque(wh.dir);
        return;
      }
      if (wh.path === '') throw new InvalidWhiteoutError(`${this.where()}whiteout ${rawName} names the root`, rawName);
      this.layer = this.layer.withWhiteout(wh.path);
      return;
    }
    // A `.wh.` name further up the path is an ordinary directory name for readers (containerd's
    // rule), but we never create such names ourselves; they are refused as real entries.
    try {
      cleanPath(path, { ...opts, forbidWhiteoutNames: true });
    } catch (err) {
      throw new InvalidWhiteoutError(`${this.where()}${(err as Error).message}`, rawName);
    }
    if (entry.type === 'hardlink') {
      const target = cleanPath(entry.target, { what: 'hardlink target', maxPathBytes: this.options.maxPathBytes });
      const link: HardlinkEntry = { ...entry, target };
      entry = link;
      // Extractors link in archive order: a link to a path this archive already wrote is that
      // entry's inode, whatever comes later (see finish). A target at or below the link's own
      // path is cleared before linking, so it is no such entry.
      // (A link to a link to a lower file denotes that link: the same lower file.)
      const earlier = isWithin(target, path) ? undefined : this.entryAt(target);
      const inode = earlier?.type === 'hardlink' ? (this.inodeOf.get(earlier) ?? earlier) : earlier?.type === 'directory' ? undefined : earlier;
      if (inode) {
        this.inodeOf.set(link, inode);
        this.earlierLinks.push({ path, link, inode });
      }
    }
    this.layer = this.layer.with(path, entry);
  }

  get records(): number {
    return this.count;
  }

  /** Nodes of the layer's tree so far: records and the parent directories they imply. */
  get nodes(): number {
    return this.nodeCount;
  }

  /** How many of `path`'s parent directories the tree does not hold yet. */
  private missingParents(path: string): number {
    const parts = splitPath(path);
    let node: FsNode | undefined = this.layer.root;
    for (let i = 0; i < parts.length - 1; i++) {
      node = node.children?.get(parts[i]);
      if (!node) return parts.length - 1 - i;
    }
    return 0;
  }

  /**
   * The layer. A link to an entry this archive wrote earlier stays a path-based HardlinkEntry
   * when applying in canonical order finds that same entry (the common case, and what re-encodes
   * byte for byte); otherwise — the target sorts after the link, or a later record replaced the
   * target path — the link becomes the entry object itself, which is how a layer says "same
   * inode" independently of order.
   */
  finish(): Layer {
    if (this.earlierLinks.length === 0) return this.layer;
    const position = new Map<string, number>();
    let i = 0;
    for (const step of this.layer.steps()) if (step.kind === 'entry') position.set(step.path, i++);
    let layer = this.layer;
    for (const { path, link, inode } of this.earlierLinks) {
      if (layer.get(path) !== link) continue; // a later record replaced the link itself
      const byPath = this.entryAt(link.target) === inode && (position.get(link.target) ?? Infinity) < (position.get(path) ?? -1);
      if (!byPath) layer = layer.with(path, inode.type === 'hardlink' ? inode : markLinked(inode));
    }
    return layer;
  }

  private entryAt(path: string): Entry | undefined {
    try {
      return this.layer.get(path);
    } catch {
      return undefined; // a name no entry can have (`.wh.` component): nothing was written there
    }
  }

  private where(): string {
    return this.options.source ? `${this.options.source}: ` : '';
  }
}

export function assembleLayer(records: Iterable<[string, Entry]>, options?: AssembleOptions): Layer {
  const a = new LayerAssembler(options);
  for (const [name, entry] of records) a.add(name, entry);
  return a.finish();
}
