/**
 * Turns archive records (raw tar names with entries) into a Layer: the one place where `.wh.`
 * names are interpreted when reading. Used by the tar reader and by tests that write layers as
 * lists of names.
 */
import { Entry } from '../entry';
import { CorruptArchiveError, InvalidPathError, InvalidWhiteoutError } from '../errors';
import { CleanPathOptions, cleanPath, parseWhiteout } from '../path';
import { Layer } from './layer';

export interface AssembleOptions {
  maxPathBytes?: number;
  /** Where the records come from, for error messages. */
  source?: string;
}

export class LayerAssembler {
  private layer = Layer.empty();
  private count = 0;

  constructor(private readonly options: AssembleOptions = {}) {}

  /** Add one archive record. `entry` is ignored for whiteout names (only the name counts). */
  add(rawName: string, entry: Entry): void {
    this.count++;
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
      entry = { ...entry, target };
    }
    this.layer = this.layer.with(path, entry);
  }

  get records(): number {
    return this.count;
  }

  finish(): Layer {
    return this.layer;
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
