/**
 * Layer blob → Layer, in one pass that also verifies the blob: sha256 of the stored bytes (digest)
 * and of the uncompressed tar (diff_id). File contents stay in the blob: each becomes a lazy
 * Content that reads its window again on demand (a seek for uncompressed blobs on a filesystem, a
 * decompression cursor otherwise).
 */
import { Readable, Transform } from 'node:stream';
import * as tarStream from 'tar-stream';
import { Content, fileRangeContent } from '../content';
import { DigestCounter, decompressStream, detectCompression, type CompressionAlgorithm } from '../compress';
import { Entry, directoryEntry, fileEntry, hardlinkEntry, symlinkEntry } from '../entry';
import {
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
import { RangeReaderPool } from './ranges';

export interface ReadLayerOptions {
  /** Verify the stored bytes against this digest (and size). */
  expectedDigest?: string;
  expectedSize?: number;
  /** Verify the uncompressed tar against this diff_id. */
  expectedDiffId?: string;
  /** Refuse archives with more entries than this (default 1,000,000). */
  maxEntries?: number;
  /** Refuse paths longer than this many bytes (default 4096). */
  maxPathBytes?: number;
  /** Refuse to decompress more than this many bytes (default 1 TiB). */
  maxUncompressedBytes?: number;
  /**
   * Refuse a layer whose names, link targets and xattrs add up to more than this many bytes
   * (default 1 GiB): a layer's metadata is held in memory.
   */
  maxMetadataBytes?: number;
  /** Name for error messages. */
  source?: string;
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
  entries: number;
}

export const DEFAULT_MAX_ENTRIES = 1_000_000;
export const DEFAULT_MAX_METADATA_BYTES = 1 << 30;
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

function tap(
  counter: Counter,
  onFirst?: (chunk: Buffer) => void,
  tail?: { last: Buffer; ended: boolean },
): Transform {
  let first = true;
  return new Transform({
    highWaterMark: IO_CHUNK,
    transform(chunk: Buffer, _enc, cb) {
      if (first && onFirst) onFirst(chunk);
      first = false;
      counter.update(chunk);
      if (tail) tail.last = chunk.length >= 512 ? chunk.subarray(chunk.length - 512) : Buffer.concat([tail.last, chunk]).subarray(-512);
      cb(null, chunk);
    },
    flush(cb) {
      if (tail) tail.ended = true;
      cb();
    },
  });
}

const roundUpToBlock = (n: number) => Math.ceil(n / 512) * 512;

/** Entry types whose header has no data after it in Go's archive/tar (tar-stream would read `size` bytes). */
const HEADER_ONLY_TYPES = new Set(['link', 'symlink', 'character-device', 'block-device', 'fifo']);

function modeOf(header: tarStream.Header): number {
  return (header.mode ?? 0) & 0o7777;
}

function attrsOf(header: tarStream.Header) {
  const pax = (header.pax ?? {}) as Record<string, string>;
  const xattrs: Record<string, string> = {};
  for (const [k, v] of Object.entries(pax)) if (k.startsWith('SCHILY.xattr.')) xattrs[k.slice(13)] = v;
  const num = (paxKey: string, fallback: number) => (pax[paxKey] !== undefined ? Number(pax[paxKey]) : fallback);
  const mtime = header.mtime instanceof Date ? Math.floor(header.mtime.getTime() / 1000) : 0;
  return {
    mode: modeOf(header),
    uid: num('uid', header.uid ?? 0),
    gid: num('gid', header.gid ?? 0),
    mtime: Number.isFinite(mtime) ? mtime : 0,
    xattrs,
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
  const tail = { last: Buffer.alloc(0), ended: false };
  const maxEntries = options.maxEntries ?? DEFAULT_MAX_ENTRIES;
  const maxMetadata = options.maxMetadataBytes ?? DEFAULT_MAX_METADATA_BYTES;
  const maxLink = options.maxPathBytes ?? DEFAULT_MAX_LINK_BYTES;
  let metadata = 0;
  const requireEnd = options.requireEndMarker ?? !(options.expectedDigest || options.expectedDiffId);
  const assembler = new LayerAssembler({ maxPathBytes: options.maxPathBytes, source });

  let pool: RangeReaderPool | undefined;
  const contentAt = (offset: number, size: number, name: string): Content => {
    if (compression === 'none' && blob.file) {
      return fileRangeContent(blob.file.fs, blob.file.path, blob.file.offset + offset, size, `${source}:${name}`);
    }
    pool ??= new RangeReaderPool(() => decompressStream(blob.open()), source);
    const p = pool;
    return { size, source: `${source}:${name}`, open: () => p.open(offset, size) };
  };

  const rawStream = blob.open();
  const tapped = rawStream.pipe(
    tap(raw, (first) => {
      const c = detectCompression(first);
      compression = c === 'gzip' ? 'gzip' : c === 'zstd' ? 'zstd' : 'none';
    }),
  );
  rawStream.on('error', (err) => tapped.destroy(err));
  const uncompressed = decompressStream(tapped, { maxOutputBytes: options.maxUncompressedBytes ?? 2 ** 40 });
  const counted = uncompressed.pipe(tap(tar, undefined, tail));
  uncompressed.on('error', (err) => counted.destroy(err));
  const extract = tarStream.extract();
  counted.on('error', (err) => extract.destroy(err));
  counted.pipe(extract as unknown as NodeJS.WritableStream);

  let entries = 0;
  /** Where the data of the last entry ends in the tar. */
  let dataEnd = 0;
  try {
    for await (const stream of extract) {
      const header = stream.header as tarStream.Header & { byteOffset?: number };
      if (++entries > maxEntries) throw new LimitExceededError('maxEntries', maxEntries, `${source}: archive entry count`);
      dataEnd = (header.byteOffset ?? 0) + (header.type === 'directory' ? 0 : header.size);
      const entry = toEntry(header, contentAt, source, maxLink);
      metadata += Buffer.byteLength(header.name) + (header.linkname ? Buffer.byteLength(header.linkname) : 0) + (entry ? xattrBytes(entry.xattrs) : 0);
      if (metadata > maxMetadata) throw new LimitExceededError('maxMetadataBytes', maxMetadata, `${source}: names, link targets and xattrs`);
      stream.resume();
      if (entry) assembler.add(header.name, entry);
    }
  } catch (err) {
    // The input ended cleanly right after the last entry's data, only its padding missing: the
    // parser's complaint is the missing end marker, which Go's reader (and so umoci) accepts.
    const paddingOnly = tail.ended && tar.size >= dataEnd && tar.size < roundUpToBlock(dataEnd) && entries > 0;
    if (requireEnd || !paddingOnly || err instanceof CloudRootfsError) {
      rawStream.destroy();
      throw wrapTarError(err, source);
    }
  }
  if (requireEnd && tar.size > 0 && !tail.last.every((b) => b === 0)) {
    throw new CorruptArchiveError(`${source}: tar archive is truncated (no end-of-archive marker)`, { source });
  }
  const result: ReadLayer = {
    layer: assembler.finish(),
    diffId: tar.digest(),
    digest: raw.digest(),
    size: raw.size,
    uncompressedSize: tar.size,
    compression,
    entries,
  };
  if (options.expectedSize !== undefined && options.expectedSize !== result.size) {
    throw new SizeMismatchError(options.expectedSize, result.size, `${source} blob`);
  }
  if (options.expectedDigest && options.expectedDigest !== result.digest) {
    throw new DigestMismatchError(options.expectedDigest, result.digest, `${source} blob`);
  }
  if (options.expectedDiffId && options.expectedDiffId !== result.diffId) {
    throw new DigestMismatchError(options.expectedDiffId, result.diffId, `${source} diff_id`);
  }
  return result;
}

function xattrBytes(xattrs: Readonly<Record<string, string>> = {}): number {
  let n = 0;
  for (const [k, v] of Object.entries(xattrs)) n += Buffer.byteLength(k) + Buffer.byteLength(v);
  return n;
}

function toEntry(
  header: tarStream.Header & { byteOffset?: number },
  contentAt: (offset: number, size: number, name: string) => Content,
  source: string,
  maxLinkBytes: number,
): Entry | undefined {
  const attrs = attrsOf(header);
  if (xattrBytes(attrs.xattrs) > MAX_XATTR_BYTES) {
    throw new LimitExceededError('xattrBytes', MAX_XATTR_BYTES, `${source}: the xattrs of ${header.name}`);
  }
  if (HEADER_ONLY_TYPES.has(header.type as string) && header.size > 0) {
    // Go's reader (umoci, containerd, Docker) reads no data after such a header while tar-stream
    // would skip `size` bytes: the two would see different entries after it. Refuse the ambiguity.
    throw new CorruptArchiveError(`${source}: ${header.name} is a ${header.type} that declares ${header.size} bytes of data`, {
      source,
      path: header.name,
    });
  }
  switch (header.type as string) {
    case 'file':
    case 'contiguous-file': {
      if (header.size > 0 && header.byteOffset === undefined) {
        throw new CorruptArchiveError(`${source}: cannot locate the data of ${header.name}`, { source });
      }
      return fileEntry(contentAt(header.byteOffset ?? 0, header.size, header.name), attrs);
    }
    case 'directory':
      return directoryEntry(attrs);
    case 'symlink':
      if (!header.linkname) throw new CorruptArchiveError(`${source}: symlink ${header.name} has no target`, { source });
      // Text, not a path we resolve; but no filesystem holds a longer one, and it is kept in memory.
      if (Buffer.byteLength(header.linkname) > maxLinkBytes) {
        throw new CorruptArchiveError(`${source}: symlink ${header.name} has a target longer than ${maxLinkBytes} bytes`, { source, path: header.name });
      }
      return symlinkEntry(header.linkname, attrs);
    case 'link':
      if (!header.linkname) throw new CorruptArchiveError(`${source}: hardlink ${header.name} has no target`, { source });
      return hardlinkEntry(header.linkname, attrs);
    case 'pax-global-header':
      return undefined;
    default:
      throw new UnsupportedEntryError(
        `${source}: ${header.name} is a ${header.type}; a CloudRootfs holds only files, directories and links`,
        header.name,
        String(header.type),
      );
  }
}

/** Read a layer from an in-memory or streamed tar given as an opener (tests, ADD of local archives). */
export function readLayerTar(open: () => Readable, options: ReadLayerOptions = {}): Promise<ReadLayer> {
  return readLayerBlob({ size: -1, open }, options);
}
