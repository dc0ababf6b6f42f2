/**
 * Image archives (oci-archive, docker-archive) as tar files, read in place and written in one
 * streaming pass.
 *
 * Reading never extracts: the archive is indexed (member name → data offset and size) and each
 * member is served as lazy Content. An uncompressed archive is seeked (`fileRangeContent`), so a
 * multi-gigabyte `docker save` is indexed by reading its headers only; a compressed one is read
 * through decompression cursors that continue forward. Because nothing is written, a hostile
 * archive cannot write outside anything — and names that would escape (`../x`, `/etc/x`, links
 * leading out of the archive) are refused anyway, with typed errors.
 *
 * Writing packs members in the order given (callers pass a fixed order), with uid/gid 0, empty
 * user/group names and a fixed mtime, into a temporary file renamed into place at the end, so
 * equal inputs give byte-identical archives and a failure leaves nothing behind.
 */
import { posix } from 'node:path';
import { Readable } from 'node:stream';
import * as tarStream from 'tar-stream';
import { Content, fileRangeContent, readContent } from '../content';
import { DigestCounter, decompressStream, detectCompression } from '../compress';
import {
  CloudRootfsError,
  CorruptArchiveError,
  DigestMismatchError,
  InvalidPathError,
  LimitExceededError,
  NotFoundError,
  SizeMismatchError,
  UnsupportedError,
} from '../errors';
import { FileSystem, IO_CHUNK, errnoCode } from '../fs';
import { cleanPath } from '../path';
import { RangeReaderPool } from '../tar/ranges';
import { writeStreamAtomic } from '../util/atomic';

export type ArchiveMemberType = 'file' | 'directory' | 'symlink' | 'hardlink' | 'other';

export interface ArchiveMember {
  /** Cleaned, archive-relative name (no leading `./`, no trailing `/`). */
  name: string;
  type: ArchiveMemberType;
  size: number;
  /** Offset of the member's data in the uncompressed tar. */
  offset: number;
  linkname?: string;
}

export interface ArchiveLimits {
  /** Refuse archives with more members than this (default 100,000; an image archive has few). */
  maxMembers?: number;
  /** Largest PAX / GNU long-name record accepted (default 1 MiB). */
  maxHeaderBytes?: number;
  /** A compressed archive: refuse to decompress more than this many bytes (default 1 TiB). */
  maxUncompressedBytes?: number;
}

const BLOCK = 512;
const DEFAULT_MAX_MEMBERS = 100_000;
const DEFAULT_MAX_HEADER = 1 << 20;
const DEFAULT_MAX_UNCOMPRESSED = 2 ** 40;
const MAX_LINK_HOPS = 40;
const READ_AHEAD = 64 * 1024;

// --- header decoding (USTAR, GNU and PAX, as tar-stream and Go read them) -----------------------

interface RawHeader {
  name: string;
  typeflag: string;
  size: number;
  linkname: string;
}

function readString(block: Buffer, start: number, length: number): string {
  const end = block.indexOf(0, start);
  return block.toString('utf8', start, end >= 0 && end < start + length ? end : start + length);
}

function readNumber(block: Buffer, start: number, length: number, what: string, source: string): number {
  // GNU base-256: the high bit of the first byte set (positive values only).
  if (block[start] & 0x80) {
    let value = block[start] & 0x7f;
    for (let i = start + 1; i < start + length; i++) value = value * 256 + block[i];
    if (!Number.isSafeInteger(value)) throw new CorruptArchiveError(`${source}: ${what} too large`, { source });
    return value;
  }
  const text = block.toString('latin1', start, start + length).replace(/\0.*$/s, '').trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw new CorruptArchiveError(`${source}: invalid ${what} field ${JSON.stringify(text)}`, { source });
  return parseInt(text, 8);
}

/** undefined for an all-zero block (end of archive). */
function decodeHeader(block: Buffer, source: string, at: number): RawHeader | undefined {
  if (block.every((b) => b === 0)) return undefined;
  const stored = readNumber(block, 148, 8, 'checksum', source);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : block[i];
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  if (stored !== unsigned && stored !== signed) {
    throw new CorruptArchiveError(`${source}: not a tar archive (bad header checksum at offset ${at})`, { source, offset: at });
  }
  let name = readString(block, 0, 100);
  const magic = block.toString('latin1', 257, 263);
  if (magic === 'ustar\0') {
    const prefix = readString(block, 345, 155);
    if (prefix) name = `${prefix}/${name}`;
  }
  return {
    name,
    typeflag: String.fromCharCode(block[156] || 0x30),
    size: readNumber(block, 124, 12, 'size', source),
    linkname: readString(block, 157, 100),
  };
}

function decodePax(buf: Buffer, source: string): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < buf.length) {
    if (buf[i] === 0) break;
    const space = buf.indexOf(0x20, i);
    const len = space > i ? parseInt(buf.toString('latin1', i, space), 10) : NaN;
    if (!Number.isInteger(len) || len <= 0 || i + len > buf.length) throw new CorruptArchiveError(`${source}: malformed PAX header`, { source });
    const record = buf.toString('utf8', space + 1, i + len - 1);
    const eq = record.indexOf('=');
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1);
    i += len;
  }
  return out;
}

function memberType(typeflag: string): ArchiveMemberType {
  switch (typeflag) {
    case '0':
    case '7':
      return 'file';
    case '5':
      return 'directory';
    case '2':
      return 'symlink';
    case '1':
      return 'hardlink';
    default:
      return 'other';
  }
}

/** An archive member name, cleaned; absolute names and `..` escapes are refused. */
export function cleanMemberName(name: string, source: string): string {
  if (name.startsWith('/')) throw new InvalidPathError(`${source}: member ${JSON.stringify(name)} has an absolute name`, name);
  return cleanPath(name, { what: `${source}: member` });
}

/**
 * Turns a sequence of 512-byte-aligned reads into members. `read(offset, length)` returns up to
 * `length` bytes (fewer only at the end of the data). Shared by the seeking and streaming scanners.
 */
async function scanMembers(
  read: (offset: number, length: number) => Promise<Buffer>,
  skip: (offset: number) => void,
  source: string,
  limits: ArchiveLimits,
): Promise<ArchiveMember[]> {
  const maxMembers = limits.maxMembers ?? DEFAULT_MAX_MEMBERS;
  const maxHeader = limits.maxHeaderBytes ?? DEFAULT_MAX_HEADER;
  const members: ArchiveMember[] = [];
  let pos = 0;
  let pax: Record<string, string> | undefined;
  let globalPax: Record<string, string> = {};
  let longName: string | undefined;
  let longLink: string | undefined;
  const truncated = () => new CorruptArchiveError(`${source}: tar archive is truncated`, { source });
  for (;;) {
    const block = await read(pos, BLOCK);
    if (block.length === 0) throw truncated(); // no end-of-archive marker
    if (block.length < BLOCK) throw truncated();
    const header = decodeHeader(block, source, pos);
    pos += BLOCK;
    if (!header) break; // end of archive: one zero block is enough (what follows is padding)
    const padded = Math.ceil(header.size / BLOCK) * BLOCK;
    if (header.typeflag === 'x' || header.typeflag === 'g' || header.typeflag === 'L' || header.typeflag === 'K') {
      if (header.size > maxHeader) throw new LimitExceededError('maxHeaderBytes', maxHeader, `${source}: extended header`);
      const data = await read(pos, padded);
      if (data.length < padded) throw truncated();
      const body = data.subarray(0, header.size);
      pos += padded;
      if (header.typeflag === 'x') pax = { ...globalPax, ...decodePax(body, source) };
      else if (header.typeflag === 'g') globalPax = { ...globalPax, ...decodePax(body, source) };
      else if (header.typeflag === 'L') longName = body.toString('utf8').replace(/\0.*$/s, '');
      else longLink = body.toString('utf8').replace(/\0.*$/s, '');
      continue;
    }
    const effective = { ...globalPax, ...(pax ?? {}) };
    const rawName = effective.path ?? longName ?? header.name;
    const linkname = effective.linkpath ?? longLink ?? header.linkname;
    const size = effective.size !== undefined ? Number(effective.size) : header.size;
    if (!Number.isSafeInteger(size) || size < 0) throw new CorruptArchiveError(`${source}: invalid size for ${rawName}`, { source });
    pax = undefined;
    longName = undefined;
    longLink = undefined;
    const type = memberType(header.typeflag);
    // Only regular files carry data; the others' size field is ignored, as GNU tar does.
    const dataSize = type === 'file' ? size : header.typeflag === '1' || header.typeflag === '2' || header.typeflag === '5' ? 0 : size;
    const name = cleanMemberName(rawName, source);
    if (members.length >= maxMembers) throw new LimitExceededError('maxMembers', maxMembers, `${source}: member count`);
    if (name !== '') members.push({ name, type, size: type === 'file' ? size : 0, offset: pos, ...(linkname ? { linkname } : {}) });
    const next = pos + Math.ceil(dataSize / BLOCK) * BLOCK;
    skip(pos + dataSize);
    pos = next;
  }
  return members;
}

// --- the reader ------------------------------------------------------------------------------------

export type ArchiveCompression = 'none' | 'gzip' | 'zstd';

export interface OpenArchiveOptions extends ArchiveLimits {
  fs: FileSystem;
}

/** A tar file indexed in place. Members are read lazily; nothing is extracted. */
export class TarArchive {
  private readonly byName = new Map<string, ArchiveMember>();
  private pool?: RangeReaderPool;

  private constructor(
    readonly fs: FileSystem,
    readonly path: string,
    readonly compression: ArchiveCompression,
    readonly members: readonly ArchiveMember[],
    private readonly maxUncompressed: number,
  ) {
    // A later member with the same name replaces an earlier one, as extraction would.
    for (const m of members) this.byName.set(m.name, m);
  }

  static async open(path: string, options: OpenArchiveOptions): Promise<TarArchive> {
    const { fs } = options;
    let size: number;
    try {
      const st = await fs.promises.stat(path);
      if (!st.isFile()) throw new CorruptArchiveError(`${path} is not a file`, { source: path });
      size = st.size;
    } catch (err) {
      if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') throw new NotFoundError(path, 'archive');
      throw err;
    }
    const head = await readAt(fs, path, 0, 8);
    const detected = detectCompression(head);
    if (detected === 'xz' || detected === 'bzip2') {
      throw new UnsupportedError(`${path} is ${detected}-compressed; decompress it or use gzip/zstd`, detected);
    }
    const compression: ArchiveCompression = detected ?? 'none';
    let members: ArchiveMember[];
    try {
      members = compression === 'none' ? await scanSeekable(fs, path, size, options) : await scanStream(fs, path, options);
    } catch (err) {
      if (err instanceof CloudRootfsError || errnoCode(err)) throw err;
      throw new CorruptArchiveError(`${path}: not a readable tar archive: ${err instanceof Error ? err.message : String(err)}`, { source: path }, { cause: err });
    }
    return new TarArchive(fs, path, compression, members, options.maxUncompressedBytes ?? DEFAULT_MAX_UNCOMPRESSED);
  }

  /** Every member name (cleaned), in archive order. */
  names(): string[] {
    return [...this.byName.keys()];
  }

  /** The member at `name`, following symlinks and hardlinks inside the archive (undefined if absent). */
  resolve(name: string): ArchiveMember | undefined {
    let current = cleanMemberName(name, this.path);
    for (let hops = 0; hops <= MAX_LINK_HOPS; hops++) {
      const m = this.byName.get(current) ?? this.viaLinkedParent(current);
      if (!m) return undefined;
      if (m.type === 'symlink') {
        const target = m.linkname ?? '';
        if (target.startsWith('/')) throw new InvalidPathError(`${this.path}: symlink ${m.name} -> ${target} leaves the archive`, m.name);
        current = cleanPath(posix.join(posix.dirname(m.name), target), { what: `${this.path}: symlink ${m.name} -> ${target}` });
        continue;
      }
      if (m.type === 'hardlink') {
        current = cleanMemberName(m.linkname ?? '', this.path);
        continue;
      }
      return m;
    }
    throw new CorruptArchiveError(`${this.path}: too many levels of links at ${name}`, { source: this.path });
  }

  /** `a/b/c` where `a/b` is a symlink to a directory member. */
  private viaLinkedParent(name: string): ArchiveMember | undefined {
    const parts = name.split('/');
    for (let i = parts.length - 1; i > 0; i--) {
      const parent = parts.slice(0, i).join('/');
      const m = this.byName.get(parent);
      if (m && m.type === 'symlink') {
        const target = m.linkname ?? '';
        if (target.startsWith('/')) throw new InvalidPathError(`${this.path}: symlink ${m.name} -> ${target} leaves the archive`, m.name);
        const base = cleanPath(posix.join(posix.dirname(m.name), target), { what: `${this.path}: symlink ${m.name} -> ${target}` });
        return this.byName.get([base, ...parts.slice(i)].join('/'));
      }
      if (m) return undefined;
    }
    return undefined;
  }

  has(name: string): boolean {
    return this.resolve(name)?.type === 'file';
  }

  /** The regular file at `name` (links followed) or NotFoundError. */
  file(name: string): ArchiveMember {
    const m = this.resolve(name);
    if (!m) throw new NotFoundError(name, `member of ${this.path}:`);
    if (m.type !== 'file') throw new CorruptArchiveError(`${this.path}: ${name} is a ${m.type}, not a file`, { source: this.path, name });
    return m;
  }

  /** Lazy content of a file member. */
  content(name: string): Content {
    const m = this.file(name);
    const source = `${this.path}:${m.name}`;
    if (this.compression === 'none') return fileRangeContent(this.fs, this.path, m.offset, m.size, source);
    const maxOutputBytes = this.maxUncompressed;
    this.pool ??= new RangeReaderPool(() => decompressStream(this.fs.createReadStream(this.path, { highWaterMark: IO_CHUNK }), { maxOutputBytes }), this.path);
    const pool = this.pool;
    return { size: m.size, source, open: () => pool.open(m.offset, m.size) };
  }

  /** A small member read whole (manifest.json, index.json, configs), refusing more than `max` bytes. */
  async read(name: string, max = 4 << 20): Promise<Buffer> {
    const m = this.file(name);
    if (m.size > max) throw new LimitExceededError('maxDocumentBytes', max, `${this.path}: ${name} (${m.size} bytes)`);
    return readContent(this.content(name), max);
  }

  close(): void {
    this.pool?.close();
    this.pool = undefined;
  }
}

async function readAt(fs: FileSystem, path: string, offset: number, length: number): Promise<Buffer> {
  const fh = await fs.promises.open(path, 'r');
  try {
    const buf = Buffer.alloc(length);
    let got = 0;
    while (got < length) {
      const { bytesRead } = await fh.read(buf, got, length - got, offset + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return buf.subarray(0, got);
  } finally {
    await fh.close();
  }
}

/** Index an uncompressed archive by seeking from header to header: data is never read. */
async function scanSeekable(fs: FileSystem, path: string, fileSize: number, limits: ArchiveLimits): Promise<ArchiveMember[]> {
  const fh = await fs.promises.open(path, 'r');
  try {
    // Headers of small members sit close together: read 64 KiB windows, not 512-byte blocks.
    let window = Buffer.alloc(0);
    let windowStart = 0;
    const read = async (offset: number, length: number): Promise<Buffer> => {
      const n = Math.max(0, Math.min(length, fileSize - offset));
      if (offset < windowStart || offset + n > windowStart + window.length) {
        const size = Math.max(0, Math.min(Math.max(n, READ_AHEAD), fileSize - offset));
        const buf = Buffer.alloc(size);
        let got = 0;
        while (got < size) {
          const { bytesRead } = await fh.read(buf, got, size - got, offset + got);
          if (bytesRead === 0) break;
          got += bytesRead;
        }
        window = buf.subarray(0, got);
        windowStart = offset;
      }
      const from = offset - windowStart;
      return window.subarray(from, Math.min(window.length, from + n));
    };
    return await scanMembers(
      read,
      (end) => {
        if (end > fileSize) throw new CorruptArchiveError(`${path}: tar archive is truncated`, { source: path });
      },
      path,
      limits,
    );
  } finally {
    await fh.close();
  }
}

/** Index a compressed archive in one forward pass over its decompressed bytes (data is skipped). */
async function scanStream(fs: FileSystem, path: string, limits: ArchiveLimits): Promise<ArchiveMember[]> {
  const stream = decompressStream(fs.createReadStream(path, { highWaterMark: IO_CHUNK }), { maxOutputBytes: limits.maxUncompressedBytes ?? DEFAULT_MAX_UNCOMPRESSED });
  const it = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let chunks: Buffer[] = [];
  let start = 0; // stream offset of chunks[0][0]
  let length = 0;
  let ended = false;
  // Reads only move forward: bytes before `offset` are dropped as they go by.
  const read = async (offset: number, want: number): Promise<Buffer> => {
    for (;;) {
      while (chunks.length > 0 && start + chunks[0].length <= offset) {
        start += chunks[0].length;
        length -= chunks[0].length;
        chunks.shift();
      }
      if (ended || start + length >= offset + want) break;
      const r = await it.next();
      if (r.done) ended = true;
      else {
        chunks.push(r.value);
        length += r.value.length;
      }
    }
    const all = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
    chunks = all.length > 0 ? [all] : [];
    const from = Math.max(0, offset - start);
    return Buffer.from(all.subarray(Math.min(from, all.length), Math.min(all.length, from + want)));
  };
  try {
    return await scanMembers(read, () => undefined, path, limits);
  } finally {
    stream.destroy();
  }
}

// --- the writer ------------------------------------------------------------------------------------

export interface ArchiveEntry {
  name: string;
  type: 'file' | 'directory';
  /** File data; a Buffer or lazy Content (streamed, never held whole). */
  data?: Buffer | Content;
  /** When set, the streamed bytes must hash to this digest (blobs are verified on the way in). */
  digest?: string;
}

export interface ArchiveProgress {
  phase: 'archive';
  /** Bytes of member data written so far, and in all. */
  done: number;
  total: number;
  name?: string;
}

export interface WriteArchiveOptions {
  fs: FileSystem;
  /** mtime of every member, in seconds (default 0). */
  mtime?: number;
  onProgress?: (event: ArchiveProgress) => void;
}

function sizeOf(data: Buffer | Content | undefined): number {
  if (!data) return 0;
  return Buffer.isBuffer(data) ? data.length : data.size;
}

/**
 * Write `entries` as an uncompressed tar at `path`, atomically. Entries are written exactly in the
 * order given; headers are fixed (uid/gid 0, no user names, mode 0644/0755, the same mtime).
 */
export async function writeTarArchive(path: string, entries: readonly ArchiveEntry[], options: WriteArchiveOptions): Promise<void> {
  const { fs } = options;
  const mtime = new Date((options.mtime ?? 0) * 1000);
  const total = entries.reduce((n, e) => n + sizeOf(e.data), 0);
  let done = 0;
  await writeStreamAtomic(fs, path, async (write) => {
    const pack = tarStream.pack({ highWaterMark: IO_CHUNK });
    const producing = (async () => {
      for (const entry of entries) {
        const size = entry.type === 'file' ? sizeOf(entry.data) : 0;
        const header: tarStream.Header = {
          name: entry.type === 'directory' ? `${entry.name}/` : entry.name,
          type: entry.type,
          size,
          mode: entry.type === 'directory' ? 0o755 : 0o644,
          uid: 0,
          gid: 0,
          uname: '',
          gname: '',
          mtime,
          linkname: '',
          devmajor: 0,
          devminor: 0,
        };
        await new Promise<void>((resolve, reject) => {
          const sink = pack.entry(header, (err) => (err ? reject(err) : resolve()));
          sink.on('error', () => undefined);
          if (entry.type !== 'file' || size === 0) {
            sink.end(Buffer.isBuffer(entry.data) ? entry.data : undefined);
            if (entry.digest && size === 0) checkDigest(entry, DigestCounter.like(entry.digest));
            return;
          }
          void pumpEntry(entry, sink, (n) => {
            done += n;
            options.onProgress?.({ phase: 'archive', done, total, name: entry.name });
          }).then(
            () => sink.end(undefined),
            (err) => {
              sink.destroy(err);
              reject(err);
            },
          );
        });
      }
      pack.finalize();
    })().catch((err) => {
      pack.destroy(err);
      throw err;
    });
    try {
      for await (const chunk of pack as unknown as AsyncIterable<Buffer>) await write(chunk);
      await producing;
    } catch (err) {
      pack.destroy(err as Error);
      await producing.catch(() => undefined);
      throw err;
    }
  });
}

function checkDigest(entry: ArchiveEntry, counter: DigestCounter): void {
  if (entry.digest && counter.digest() !== entry.digest) throw new DigestMismatchError(entry.digest, counter.digest(), `archive member ${entry.name}`);
}

async function pumpEntry(entry: ArchiveEntry, sink: ReturnType<tarStream.Pack['entry']>, onBytes: (n: number) => void): Promise<void> {
  const expected = sizeOf(entry.data);
  const counter = entry.digest ? DigestCounter.like(entry.digest) : new DigestCounter();
  const source: Readable = Buffer.isBuffer(entry.data) ? Readable.from([entry.data]) : entry.data!.open();
  try {
    for await (const chunk of source) {
      const buf = chunk as Buffer;
      counter.update(buf);
      if (counter.size > expected) throw new SizeMismatchError(expected, counter.size, `archive member ${entry.name}`);
      if (!sink.write(buf)) await new Promise<void>((resolve) => sink.once('drain', () => resolve()));
      onBytes(buf.length);
    }
  } finally {
    source.destroy();
  }
  if (counter.size !== expected) throw new SizeMismatchError(expected, counter.size, `archive member ${entry.name}`);
  checkDigest(entry, counter);
}
