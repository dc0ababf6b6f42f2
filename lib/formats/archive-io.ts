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
  AmbiguousArchiveError,
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
import { MAX_SPECIAL_BYTES } from '../tar/header';
import { FileInput, StreamInput, type TarInput } from '../tar/input';
import { RangeReaderPool } from '../tar/ranges';
import { TarReader } from '../tar/reader';
import { sparseContent, type SparseFragment } from '../tar/sparse';
import { writeStreamAtomic } from '../util/atomic';

export type ArchiveMemberType = 'file' | 'directory' | 'symlink' | 'hardlink' | 'other';

export interface ArchiveMember {
  /** Cleaned, archive-relative name (no leading `./`, no trailing `/`). */
  name: string;
  type: ArchiveMemberType;
  /** Bytes the member reads as (a sparse file's expanded size). */
  size: number;
  /** Offset of the member's stored bytes in the uncompressed tar. */
  offset: number;
  linkname?: string;
  /** A sparse file: its stored bytes and where they belong (holes read as zeros). */
  sparse?: { fragments: readonly SparseFragment[]; storedSize: number };
}

export interface ArchiveLimits {
  /** Refuse archives with more members than this (default 100,000; an image archive has few). */
  maxMembers?: number;
  /** Largest PAX / GNU long-name record accepted (default and at most 1 MiB, as Go's reader). */
  maxHeaderBytes?: number;
  /** A compressed archive: refuse to decompress more than this many bytes (default 1 TiB). */
  maxUncompressedBytes?: number;
}

const DEFAULT_MAX_MEMBERS = 100_000;
const DEFAULT_MAX_UNCOMPRESSED = 2 ** 40;
const MAX_LINK_HOPS = 40;

/**
 * What a member is to the programs that read image archives. A regular file (`0`, or `\0` without
 * a trailing `/`) is read by all of them; `7`, `S` and the other types are read as files by
 * skopeo's docker-archive reader but refused by `docker load` and containers/storage, which
 * extract: they are no file here.
 */
function memberType(typeflag: string): ArchiveMemberType {
  switch (typeflag) {
    case '0':
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

/** A tar string (latin1: one char per byte) as text; refused when its bytes are not UTF-8. */
function memberText(s: string, source: string, offset: number): string {
  if (!/[\x80-\xff]/.test(s)) return s;
  const bytes = Buffer.from(s, 'latin1');
  const text = bytes.toString('utf8');
  if (!Buffer.from(text, 'utf8').equals(bytes)) {
    throw new AmbiguousArchiveError(`${source}: the member at byte ${offset} has a name or link that is not UTF-8`, { source, offset, reason: 'encoding' });
  }
  return text;
}

/**
 * Every member, read with the layer reader's tar decoder (Go's decisions). A name two members
 * share (`index.json` and `./index.json` are one name) is refused unless both are directories:
 * skopeo's docker-archive reader takes the first such member, while `docker load`, skopeo's
 * oci-archive reader (both extract the archive) and containerd's import take the last.
 */
async function scanMembers(input: TarInput, source: string, limits: ArchiveLimits): Promise<ArchiveMember[]> {
  const maxMembers = limits.maxMembers ?? DEFAULT_MAX_MEMBERS;
  const maxHeader = Math.min(limits.maxHeaderBytes ?? MAX_SPECIAL_BYTES, MAX_SPECIAL_BYTES);
  const reader = new TarReader(input, {
    source,
    maxSpecialBytes: maxHeader,
    tooLong: () => new LimitExceededError('maxHeaderBytes', maxHeader, `${source}: extended header`),
  });
  const members: ArchiveMember[] = [];
  const byName = new Map<string, ArchiveMember>();
  let count = 0;
  for (let e = await reader.next(); e; e = await reader.next()) {
    if (++count > maxMembers) throw new LimitExceededError('maxMembers', maxMembers, `${source}: member count`);
    const name = cleanMemberName(memberText(e.name, source, e.headerOffset), source);
    if (name === '') continue; // the archive's root directory
    const type = memberType(e.typeflag);
    const linkname = e.linkname === '' ? undefined : memberText(e.linkname, source, e.headerOffset);
    const member: ArchiveMember = {
      name,
      type,
      size: type === 'file' ? e.size : 0,
      offset: e.dataOffset,
      ...(linkname !== undefined ? { linkname } : {}),
      ...(type === 'file' && e.sparse ? { sparse: { fragments: e.sparse, storedSize: e.dataSize } } : {}),
    };
    const earlier = byName.get(name);
    if (earlier && !(earlier.type === 'directory' && type === 'directory')) {
      throw new AmbiguousArchiveError(`${source}: two members are named ${JSON.stringify(name)}; readers of image archives disagree on which one counts`, {
        source,
        name,
        reason: 'duplicate-member',
      });
    }
    byName.set(name, member);
    members.push(member);
  }
  // Go stops at the first zero block; a missing marker is how a truncated archive shows.
  if (reader.end !== 'marker' && reader.end !== 'zero-block') {
    throw new CorruptArchiveError(`${source}: tar archive is truncated (no end-of-archive marker)`, { source, reason: 'truncated' });
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
    // Names are unique (scanMembers refuses duplicates).
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
    const storedSize = m.sparse?.storedSize ?? m.size;
    let stored: Content;
    if (this.compression === 'none') stored = fileRangeContent(this.fs, this.path, m.offset, storedSize, source);
    else {
      const maxOutputBytes = this.maxUncompressed;
      this.pool ??= new RangeReaderPool(() => decompressStream(this.fs.createReadStream(this.path, { highWaterMark: IO_CHUNK }), { maxOutputBytes }), this.path);
      const pool = this.pool;
      stored = { size: storedSize, source, open: () => pool.open(m.offset, storedSize) };
    }
    return m.sparse ? sparseContent(stored, m.sparse.fragments, m.size, source) : stored;
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
    return await scanMembers(new FileInput(fh, fileSize), path, limits);
  } finally {
    await fh.close();
  }
}

/** Index a compressed archive in one forward pass over its decompressed bytes (data is skipped). */
async function scanStream(fs: FileSystem, path: string, limits: ArchiveLimits): Promise<ArchiveMember[]> {
  const stream = decompressStream(fs.createReadStream(path, { highWaterMark: IO_CHUNK }), { maxOutputBytes: limits.maxUncompressedBytes ?? DEFAULT_MAX_UNCOMPRESSED });
  try {
    return await scanMembers(new StreamInput(stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>), path, limits);
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
