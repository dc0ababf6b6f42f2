/**
 * Layer blob → Layer, in one pass that also verifies the blob: sha256 of the stored bytes (digest)
 * and of the uncompressed tar (diff_id). File contents stay in the blob: each becomes a lazy
 * Content that reads its window again on demand (a seek for uncompressed blobs on a filesystem, a
 * decompression cursor otherwise).
 */
import { Readable, Transform } from 'node:stream';
import { Content, fileRangeContent } from '../content';
import { DigestCounter, decompressStream, detectCompression, type CompressionAlgorithm } from '../compress';
import { Entry, directoryEntry, fileEntry, hardlinkEntry, symlinkEntry } from '../entry';
import {
  AmbiguousArchiveError,
  CloudRootfsError,
  CorruptArchiveError,
  DigestMismatchError,
  InvalidAttributeError,
  LimitExceededError,
  SizeMismatchError,
  UnsupportedEntryError,
  UsageError,
} from '../errors';
import { IO_CHUNK } from '../fs';
import { Layer } from '../layer/layer';
import { LayerAssembler } from '../layer/assemble';
import { StreamInput } from './input';
import { RangeReaderPool } from './ranges';
import { TarEntry, TarReader, paxXattrs } from './reader';
import { sparseContent } from './sparse';

export interface ReadLayerOptions {
  /** Verify the stored bytes against this digest (and size). */
  expectedDigest?: string;
  expectedSize?: number;
  /** Verify the uncompressed tar against this diff_id. */
  expectedDiffId?: string;
  /** Refuse archives with more entries than this, the directories they imply counted (default DEFAULT_MAX_ENTRIES). */
  maxEntries?: number;
  /** Refuse paths longer than this many bytes (default 4096). */
  maxPathBytes?: number;
  /** Refuse to decompress more than this many bytes (default 1 TiB). */
  maxUncompressedBytes?: number;
  /**
   * Refuse a layer whose names, link targets and xattrs add up to more than this many bytes
   * (default DEFAULT_MAX_METADATA_BYTES): a layer's metadata is held in memory.
   */
  maxMetadataBytes?: number;
  /**
   * The budget of the image this layer belongs to: the read charges its entries and metadata to
   * it as it goes, and fails once the layers of the image together pass its bounds.
   */
  stack?: StackBudget;
  /** Name for error messages. */
  source?: string;
  /**
   * PAX global headers (`g`): refused by default, since unpackers of layers disagree on what one
   * does to the tree (containerd removes the path it names and creates its parents, Docker's
   * overlay2 skips it, umoci fails). `ignore` skips them, as `docker build` does when ADD unpacks
   * a local archive (`git archive` writes one first).
   */
  globalHeaders?: 'refuse' | 'ignore';
  /**
   * Refuse a tar that ends without its end-of-archive marker (or without the padding of its last
   * entry). Default: only when no digest is given. With a digest the bytes are exactly what the
   * producer wrote, and Go's archive/tar (umoci, containerd, Docker) accepts such archives; umoci
   * 0.4.7's `insert` writes them. Without one, a missing marker is how truncation shows.
   */
  requireEndMarker?: boolean;
  /**
   * Hash the stored bytes (default true). False when something else already checks them (a
   * registry blob's stream verifies its own digest): `digest` is then '' and `expectedDigest`
   * must not be given.
   */
  hashStored?: boolean;
}

export interface ReadLayer {
  layer: Layer;
  diffId: string;
  /** Digest of the stored bytes: sha256, or `expectedDigest`'s algorithm ('' with `hashStored: false`). */
  digest: string;
  size: number;
  uncompressedSize: number;
  compression: CompressionAlgorithm;
  /** Entries, counting the parent directories they imply (what `maxEntries` bounds). */
  entries: number;
  /** Bytes of names, link targets, xattrs and sparse maps the layer holds. */
  metadataBytes: number;
}

/**
 * Entries (with the directories they imply) of one layer, and of all layers of one image together.
 * Chosen with DEFAULT_MAX_METADATA_BYTES so that `load`, `ls`, `export` and a `diff` of two images
 * at both bounds peak under 512 MiB (measured: docs/security.md, "Limits").
 */
export const DEFAULT_MAX_ENTRIES = 100_000;
/** Names, link targets, xattrs and sparse maps of one layer, and of one image's layers together. */
export const DEFAULT_MAX_METADATA_BYTES = 16 << 20;

/**
 * What the layers of one image hold in memory together: entries, and the bytes of their names,
 * link targets, xattrs and sparse maps. Each read of one of its layers charges it entry by entry,
 * and the read that takes it past a bound fails (LimitExceededError) before the memory is spent.
 * A read that fails gives back what it charged.
 */
export class StackBudget {
  private entries = 0;
  private bytes = 0;

  constructor(
    readonly maxEntries = DEFAULT_MAX_ENTRIES,
    readonly maxMetadataBytes = DEFAULT_MAX_METADATA_BYTES,
  ) {}

  charge(entries: number, bytes: number, source: string): void {
    this.entries += entries;
    this.bytes += bytes;
    if (this.entries > this.maxEntries) {
      throw new LimitExceededError('maxEntries', this.maxEntries, `${source}: the layers of one image together (${this.entries} entries)`);
    }
    if (this.bytes > this.maxMetadataBytes) {
      throw new LimitExceededError('maxMetadataBytes', this.maxMetadataBytes, `${source}: names, link targets and xattrs of the layers of one image together`);
    }
  }

  refund(entries: number, bytes: number): void {
    this.entries -= entries;
    this.bytes -= bytes;
  }
}
/** What Linux stores at most: a symlink's target is a path (4096 bytes), an inode's xattrs 64 KiB. */
const DEFAULT_MAX_LINK_BYTES = 4096;
const MAX_XATTR_BYTES = 64 << 10;

/** What a tap feeds: a DigestCounter, or only a byte count. */
type Counter = { update(chunk: Buffer): unknown; readonly size: number; digest(): string };

function sizeOnly(): Counter {
  let size = 0;
  return {
    update: (chunk: Buffer) => (size += chunk.length),
    get size() {
      return size;
    },
    digest: () => '',
  };
}

function tap(counter: Counter, onFirst?: (chunk: Buffer) => void): Transform {
  let first = true;
  return new Transform({
    highWaterMark: IO_CHUNK,
    transform(chunk: Buffer, _enc, cb) {
      if (first && onFirst) onFirst(chunk);
      first = false;
      counter.update(chunk);
      cb(null, chunk);
    },
  });
}

/** The chunks of `stream`, each hashed into `counter` as it is pulled. */
function hashedChunks(stream: Readable, counter: DigestCounter): AsyncIterator<Buffer> {
  const it = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  return {
    async next() {
      const r = await it.next();
      if (!r.done) counter.update(r.value);
      return r;
    },
  };
}

function wrapTarError(err: unknown, source: string): unknown {
  // An owner, mode or mtime no filesystem holds (the entry model refused it) is a corrupt header.
  if (err instanceof InvalidAttributeError) return new CorruptArchiveError(`${source}: ${err.message}`, { source, reason: 'attribute' }, { cause: err });
  if (err instanceof CloudRootfsError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new CorruptArchiveError(`${source}: not a readable tar archive: ${message}`, { source }, { cause: err });
}

/**
 * Read a layer blob. `blob.open()` must give the stored bytes (compressed or not) each time it is
 * called; it is called once here and again whenever file contents are read later.
 */
export async function readLayerBlob(blob: Content, options: ReadLayerOptions = {}): Promise<ReadLayer> {
  const source = options.source ?? blob.source ?? 'layer';
  if (options.hashStored === false && options.expectedDigest) throw new UsageError('readLayerBlob: expectedDigest needs hashStored');
  // Each digest is computed with the algorithm it is checked against (sha256 or sha512).
  const raw: Counter = options.hashStored === false ? sizeOnly() : options.expectedDigest ? DigestCounter.like(options.expectedDigest) : new DigestCounter();
  const tar = options.expectedDiffId ? DigestCounter.like(options.expectedDiffId) : new DigestCounter();
  let compression: CompressionAlgorithm = 'none';
  const maxEntries = options.maxEntries ?? DEFAULT_MAX_ENTRIES;
  const maxMetadata = options.maxMetadataBytes ?? DEFAULT_MAX_METADATA_BYTES;
  const maxUncompressed = options.maxUncompressedBytes ?? 2 ** 40;
  const maxLink = options.maxPathBytes ?? DEFAULT_MAX_LINK_BYTES;
  const requireEnd = options.requireEndMarker ?? !(options.expectedDigest || options.expectedDiffId);
  const assembler = new LayerAssembler({ maxPathBytes: options.maxPathBytes, source });

  const stored = new StoredBytes(blob, source, () => compression);
  const contentAt = (offset: number, size: number, name: string): Content => new EntryContent(stored, offset, size, name);

  const rawStream = blob.open();
  const tapped = rawStream.pipe(
    tap(raw, (first) => {
      const c = detectCompression(first);
      compression = c === 'gzip' ? 'gzip' : c === 'zstd' ? 'zstd' : 'none';
    }),
  );
  rawStream.on('error', (err) => tapped.destroy(err));
  const uncompressed = decompressStream(tapped, { maxOutputBytes: maxUncompressed });
  const input = new StreamInput(hashedChunks(uncompressed, tar));
  const reader = new TarReader(input, { source });

  let metadata = 0;
  /** What this read charged to `options.stack` (given back if it fails). */
  const charged = { entries: 0, bytes: 0 };
  /** Bytes the holes of sparse files add to the layer's expanded size. */
  let holes = 0;
  try {
    for (let e = await reader.next(); e; e = await reader.next()) {
      if (e.typeflag === 'g' && options.globalHeaders === 'ignore') continue;
      const record = toRecord(e, contentAt, source, maxLink);
      metadata += record.metadataBytes;
      if (metadata > maxMetadata) throw new LimitExceededError('maxMetadataBytes', maxMetadata, `${source}: names, link targets and xattrs`);
      if (e.sparse) {
        holes += e.size - e.dataSize;
        if (input.position + holes > maxUncompressed) throw new LimitExceededError('maxUncompressedBytes', maxUncompressed, `${source}: uncompressed size with sparse files expanded`);
      }
      // Entries count with the parent directories they imply (each is a node held in memory).
      const nodesBefore = assembler.nodes;
      assembler.add(record.name, record.entry);
      const nodes = assembler.nodes - nodesBefore;
      if (assembler.nodes > maxEntries) throw new LimitExceededError('maxEntries', maxEntries, `${source}: archive entry count (with the directories entries imply)`);
      if (options.stack) {
        charged.entries += nodes;
        charged.bytes += record.metadataBytes;
        options.stack.charge(nodes, record.metadataBytes, source);
      }
    }
    if (requireEnd && reader.end !== 'marker' && reader.end !== 'zero-block' && input.position > 0) {
      throw new CorruptArchiveError(`${source}: tar archive is truncated (no end-of-archive marker)`, { source, reason: 'truncated' });
    }
    if (reader.end === 'marker') await expectOnlyZeros(input, source);
  } catch (err) {
    rawStream.destroy();
    uncompressed.destroy();
    options.stack?.refund(charged.entries, charged.bytes);
    throw wrapTarError(err, source);
  }
  const result: ReadLayer = {
    layer: assembler.finish(),
    diffId: tar.digest(),
    digest: raw.digest(),
    size: raw.size,
    uncompressedSize: tar.size,
    compression,
    entries: assembler.nodes,
    metadataBytes: metadata,
  };
  const mismatch =
    options.expectedSize !== undefined && options.expectedSize !== result.size
      ? new SizeMismatchError(options.expectedSize, result.size, `${source} blob`)
      : options.expectedDigest && options.expectedDigest !== result.digest
        ? new DigestMismatchError(options.expectedDigest, result.digest, `${source} blob`)
        : options.expectedDiffId && options.expectedDiffId !== result.diffId
          ? new DigestMismatchError(options.expectedDiffId, result.diffId, `${source} diff_id`)
          : undefined;
  if (mismatch) {
    options.stack?.refund(charged.entries, charged.bytes);
    throw mismatch;
  }
  return result;
}

/**
 * A layer blob's bytes, read again for its entries' contents: seeked when the blob is an
 * uncompressed file, else through decompression cursors that continue forward.
 */
class StoredBytes {
  private pool?: RangeReaderPool;

  constructor(
    private readonly blob: Content,
    readonly source: string,
    private readonly compression: () => CompressionAlgorithm,
  ) {}

  /** Where `offset` of the tar is in a file, when the blob is an uncompressed file. */
  fileAt(offset: number): Content['file'] {
    const file = this.blob.file;
    return this.compression() === 'none' && file ? { fs: file.fs, path: file.path, offset: file.offset + offset } : undefined;
  }

  open(offset: number, size: number, source: string): Readable {
    const file = this.fileAt(offset);
    if (file) return fileRangeContent(file.fs, file.path, file.offset, size, source).open();
    this.pool ??= new RangeReaderPool(() => decompressStream(this.blob.open()), this.source);
    return this.pool.open(offset, size);
  }
}

/**
 * One entry's bytes in a layer blob. A class, not a closure per entry: a layer of a million
 * entries holds a million of these.
 */
class EntryContent implements Content {
  constructor(
    private readonly stored: StoredBytes,
    private readonly offset: number,
    readonly size: number,
    private readonly name: string,
  ) {}

  get source(): string {
    return `${this.stored.source}:${this.name}`;
  }

  get file(): Content['file'] {
    return this.stored.fileAt(this.offset);
  }

  open(): Readable {
    return this.stored.open(this.offset, this.size, this.source);
  }
}

/**
 * After the end-of-archive marker Go reads nothing more; the digests cover what follows, so it is
 * read, and refused unless it is zeros (blocking-factor padding): bytes there are a second
 * archive no unpacker sees.
 */
async function expectOnlyZeros(input: StreamInput, source: string): Promise<void> {
  for (;;) {
    const at = input.position;
    const chunk = await input.read(IO_CHUNK);
    if (chunk.length === 0) return;
    for (let i = 0; i < chunk.length; i++) {
      if (chunk[i] !== 0) {
        throw new CorruptArchiveError(`${source}: data after the end-of-archive marker (at byte ${at + i})`, { source, offset: at + i, reason: 'trailing-data' });
      }
    }
  }
}

/** A tar string (latin1: one char per byte) as text; refused when its bytes are not UTF-8. */
function utf8Text(s: string, what: string, source: string): string {
  // ASCII (the usual case) is the same in both.
  if (!/[\x80-\xff]/.test(s)) return s;
  const bytes = Buffer.from(s, 'latin1');
  const text = bytes.toString('utf8');
  if (!Buffer.from(text, 'utf8').equals(bytes)) {
    throw new AmbiguousArchiveError(`${source}: ${what} is not UTF-8 text (names, link targets and xattrs are held as Unicode strings)`, {
      source,
      reason: 'encoding',
      what,
    });
  }
  return text;
}

const SPECIAL_TYPES: Record<string, string> = {
  '3': 'character-device',
  '4': 'block-device',
  '6': 'fifo',
  '7': 'contiguous-file',
  S: 'gnu-sparse',
  V: 'gnu-volume-header',
  M: 'gnu-multivolume',
  D: 'gnu-dumpdir',
  N: 'gnu-names',
  X: 'solaris-extended-header',
};

/** One archive record for the assembler, and the bytes of metadata it holds. */
interface LayerRecord {
  name: string;
  entry: Entry;
  metadataBytes: number;
}

function toRecord(
  e: TarEntry,
  contentAt: (offset: number, size: number, name: string) => Content,
  source: string,
  maxLinkBytes: number,
): LayerRecord {
  if (e.typeflag === 'g') {
    // containerd removes the path such a header names and creates its parents, Docker's overlay2
    // skips it, umoci fails: what it does to the tree depends on who unpacks it.
    throw new AmbiguousArchiveError(`${source}: a PAX global header (unpackers disagree on what it does to the tree)`, {
      source,
      reason: 'global-header',
      offset: e.headerOffset,
    });
  }
  const name = utf8Text(e.name, `the name of the entry at byte ${e.headerOffset}`, source);
  const linkname = e.linkname === '' ? '' : utf8Text(e.linkname, `the link target of ${name}`, source);
  let metadataBytes = e.name.length + e.linkname.length;
  let xattrs: Record<string, string> | undefined;
  const found = paxXattrs(e.pax);
  if (found) {
    xattrs = {};
    let bytes = 0;
    for (const [k, v] of found) {
      if (k === '') throw new AmbiguousArchiveError(`${source}: ${name} has an xattr with an empty name`, { source, reason: 'xattr-name', path: name });
      bytes += k.length + v.length;
      xattrs[utf8Text(k, `an xattr name of ${name}`, source)] = utf8Text(v, `the xattr ${k} of ${name}`, source);
    }
    if (bytes > MAX_XATTR_BYTES) throw new LimitExceededError('xattrBytes', MAX_XATTR_BYTES, `${source}: the xattrs of ${name}`);
    metadataBytes += bytes;
  }
  if (e.sparse) metadataBytes += 16 * e.sparse.length;
  const headerOnly = e.typeflag === '1' || e.typeflag === '2' || e.typeflag === '3' || e.typeflag === '4' || e.typeflag === '6';
  if (headerOnly && e.size > 0) {
    // Go's reader (containerd, Docker, umoci) reads no data after such a header while other tar
    // readers skip `size` bytes: the two would see different entries after it. Refuse the ambiguity.
    throw new CorruptArchiveError(`${source}: ${name} is a ${e.typeflag === '1' ? 'hardlink' : e.typeflag === '2' ? 'symlink' : SPECIAL_TYPES[e.typeflag]} that declares ${e.size} bytes of data`, {
      source,
      path: name,
      reason: 'header-only-data',
    });
  }
  const attrs = { mode: e.mode & 0o7777, uid: e.uid, gid: e.gid, mtime: e.mtime?.sec ?? 0, ...(xattrs ? { xattrs } : {}) };
  // What the entry model refuses (a negative or too large owner, a mode it cannot hold) is a
  // corrupt header, typed and naming the entry.
  const make = <E extends Entry>(build: () => E): E => {
    try {
      return build();
    } catch (err) {
      const attribute = (err as { code?: unknown }).code === 'INVALID_ATTRIBUTE';
      throw new CorruptArchiveError(`${source}: ${name}: ${err instanceof Error ? err.message : String(err)}`, { source, path: name, reason: attribute ? 'attribute' : 'entry' }, { cause: err });
    }
  };
  let entry: Entry;
  switch (e.typeflag) {
    case '0': {
      const stored = contentAt(e.dataOffset, e.dataSize, name);
      const content = e.sparse ? sparseContent(stored, e.sparse, e.size, `${source}:${name}`) : stored;
      entry = make(() => fileEntry(content, attrs));
      break;
    }
    case '5':
      entry = make(() => directoryEntry(attrs));
      break;
    case '2':
      if (!linkname) throw new CorruptArchiveError(`${source}: symlink ${name} has no target`, { source });
      // Text, not a path we resolve; but no filesystem holds a longer one, and it is kept in memory.
      if (Buffer.byteLength(linkname) > maxLinkBytes) {
        throw new CorruptArchiveError(`${source}: symlink ${name} has a target longer than ${maxLinkBytes} bytes`, { source, path: name });
      }
      entry = make(() => symlinkEntry(linkname, attrs));
      break;
    case '1':
      if (!linkname) throw new CorruptArchiveError(`${source}: hardlink ${name} has no target`, { source });
      entry = make(() => hardlinkEntry(linkname, attrs));
      break;
    default: {
      // Old GNU sparse (`S`), contiguous files (`7`) and the rest: containerd and Docker fail
      // with "unhandled tar header type", umoci with "unknown typeflag".
      const kind = SPECIAL_TYPES[e.typeflag] ?? `type ${JSON.stringify(e.typeflag)}`;
      throw new UnsupportedEntryError(`${source}: ${name} is a ${kind}; a CloudRootfs holds only files, directories and links`, name, kind);
    }
  }
  return { name, entry, metadataBytes };
}

/** Read a layer from an in-memory or streamed tar given as an opener (tests, ADD of local archives). */
export function readLayerTar(open: () => Readable, options: ReadLayerOptions = {}): Promise<ReadLayer> {
  return readLayerBlob({ size: -1, open }, options);
}
