/**
 * The tar reader of layers and image archives: Go's archive/tar `Reader.Next`, decision by
 * decision (docs/reference/tar.md has each rule with its line in Go's source). Headers only: an
 * entry says where its stored bytes are (`dataOffset`, `dataSize`) and the caller reads them later
 * (lazy Content) or never; `next()` skips what the caller did not read.
 *
 * What Go accepts is returned as Go returns it, with three refusals by design (AmbiguousArchiveError):
 * numbers past ±2^53 (a JS number cannot hold them exactly; owner ids are passed on with their
 * exact decimal, for the entry model to refuse), sparse maps of more than
 * MAX_SPARSE_FRAGMENTS fragments, and a PAX global header whose records Go applies in random order.
 * A sparse file whose stored bytes do not match its map, which Go refuses only when it is read, is
 * refused here at once.
 */
import { AmbiguousArchiveError, CorruptArchiveError } from '../errors';
import { BLOCK, HeaderProblem, MAX_SPECIAL_BYTES, NumberParser, RawHeader, TarTime, blockFormat, decodeBlock, isZeroBlock } from './header';
import type { TarInput } from './input';
import { PAX_XATTR_PREFIX, mergePax, parsePaxRecords } from './pax';
import {
  MAX_SPARSE_FRAGMENTS,
  SPARSE_NAME,
  SparseFragment,
  SparseMap1x0,
  oldGnuSparseEntries,
  paxSparseFormat,
  paxSparseSize,
  sparseMap0x1,
  storedBytes,
  validSparseMap,
} from './sparse';

/** An entry as Go's `Next` returns it (strings are latin1: one char per byte). */
export interface TarEntry {
  /** The typeflag byte; `\0` is already `0` or `5` (by the trailing `/`), as Go returns it. */
  typeflag: string;
  name: string;
  linkname: string;
  /** The size Go reports (for a sparse file, the expanded size). */
  size: number;
  /** The raw mode field (permission bits and whatever else the writer put there). */
  mode: number;
  uid: number;
  gid: number;
  /** The exact decimal of an owner id past ±2^53 (`uid`/`gid` are then the nearest number). */
  uidText?: string;
  gidText?: string;
  /** undefined only for a PAX global header (Go's zero time). */
  mtime?: TarTime;
  atime?: TarTime;
  ctime?: TarTime;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
  /** The PAX records of the entry's own `x` header (Go's PAXRecords); undefined without one. */
  pax?: ReadonlyMap<string, string>;
  /** Where the entry's stored bytes start in the tar (after a sparse 1.0 map). */
  dataOffset: number;
  /** How many stored bytes there are (0 for links, directories and devices, whatever `size` says). */
  dataSize: number;
  /** A sparse file's data fragments (its stored bytes, in order); holes read as zeros. */
  sparse?: readonly SparseFragment[];
  /** Where the entry's first header block (its first extended header) starts, for messages. */
  headerOffset: number;
}

/** How the archive ended: two zero blocks, one zero block then the end, the end at a header, or inside the last padding. */
export type TarEnd = 'marker' | 'zero-block' | 'eof' | 'padding';

export interface TarReaderOptions {
  /** Name of the archive, for error messages. */
  source: string;
  /** Largest PAX header or GNU long name/link read (default and at most Go's 1 MiB). */
  maxSpecialBytes?: number;
  /** The error for an extended header over `maxSpecialBytes` (default: CorruptArchiveError, as Go's ErrFieldTooLong). */
  tooLong?: (size: number, offset: number) => Error;
}

/** Types Go reads no data for, whatever the size field says (`isHeaderOnlyType`). */
export function isHeaderOnlyType(typeflag: string): boolean {
  return typeflag === '1' || typeflag === '2' || typeflag === '3' || typeflag === '4' || typeflag === '5' || typeflag === '6';
}

/** Xattrs as containerd and Docker set them: every `SCHILY.xattr.` PAX record, empty values too. */
export function paxXattrs(pax: ReadonlyMap<string, string> | undefined): Map<string, string> | undefined {
  if (!pax) return undefined;
  let out: Map<string, string> | undefined;
  for (const [k, v] of pax) {
    if (k.startsWith(PAX_XATTR_PREFIX)) (out ??= new Map()).set(k.slice(PAX_XATTR_PREFIX.length), v);
  }
  return out;
}

const padding = (n: number) => (BLOCK - (n % BLOCK)) % BLOCK;

export class TarReader {
  /** Set once `next()` returned undefined. */
  end?: TarEnd;
  private remaining = 0;
  private pad = 0;
  private error?: unknown;
  private readonly maxSpecial: number;

  constructor(
    private readonly input: TarInput,
    private readonly options: TarReaderOptions,
  ) {
    this.maxSpecial = Math.min(options.maxSpecialBytes ?? MAX_SPECIAL_BYTES, MAX_SPECIAL_BYTES);
  }

  /** Bytes of the tar consumed so far. */
  get position(): number {
    return this.input.position;
  }

  /** The next entry, or undefined at the end of the archive. Errors are sticky, as Go's. */
  async next(): Promise<TarEntry | undefined> {
    if (this.error !== undefined) throw this.error;
    if (this.end) return undefined;
    try {
      return await this.advance();
    } catch (err) {
      this.error = err;
      throw err;
    }
  }

  private corrupt(message: string, offset: number, reason: string): CorruptArchiveError {
    const { source } = this.options;
    return new CorruptArchiveError(`${source}: ${message} (at byte ${offset})`, { source, offset, reason });
  }

  private refuse(problem: HeaderProblem, offset: number): Error {
    const { source } = this.options;
    switch (problem) {
      case 'header':
        return this.corrupt('invalid tar header', offset, 'header');
      case 'number-range':
        return new AmbiguousArchiveError(`${source}: a tar header holds a number beyond ±2^53, which cannot be represented exactly (at byte ${offset})`, {
          source,
          offset,
          reason: 'number-range',
        });
      case 'sparse-map-size':
        return new AmbiguousArchiveError(`${source}: a sparse file has more than ${MAX_SPARSE_FRAGMENTS} fragments (at byte ${offset})`, {
          source,
          offset,
          reason: 'sparse-map-size',
        });
    }
  }

  private truncated(offset: number): CorruptArchiveError {
    return this.corrupt('tar archive is truncated', offset, 'truncated');
  }

  /** Go's `handleRegularFile`: the data that follows a header, none for header-only types. */
  private setData(typeflag: string, size: number, offset: number): void {
    const nb = isHeaderOnlyType(typeflag) ? 0 : size;
    if (nb < 0) throw this.refuse('header', offset);
    this.remaining = nb;
    this.pad = padding(nb);
  }

  /** Read the rest of the current data (an extended header's), at most maxSpecial bytes. */
  private async readSpecial(offset: number): Promise<Buffer> {
    const size = this.remaining;
    if (size > this.maxSpecial) {
      throw this.options.tooLong?.(size, offset) ?? this.corrupt(`extended header of ${size} bytes (more than ${this.maxSpecial})`, offset, 'extended-header-size');
    }
    const data = await this.input.read(size);
    this.remaining = 0;
    if (data.length < size) throw this.truncated(this.input.position);
    return data;
  }

  /** Read one block of the current data (sparse 1.0 maps); Go's ErrUnexpectedEOF when there is none left. */
  private async readDataBlock(): Promise<Buffer> {
    if (this.remaining < BLOCK) throw this.truncated(this.input.position);
    const block = await this.input.read(BLOCK);
    this.remaining -= BLOCK;
    if (block.length < BLOCK) throw this.truncated(this.input.position);
    return block;
  }

  private async advance(): Promise<TarEntry | undefined> {
    const input = this.input;
    let pax: Map<string, string> | undefined;
    let longName = '';
    let longLink = '';
    let firstHeader = -1;
    for (;;) {
      // Skip what the caller did not read of the previous entry, then its padding (the end of the
      // input inside the padding is a clean end for Go).
      if (this.remaining > 0) {
        const want = this.remaining;
        this.remaining = 0;
        if ((await input.skip(want)) < want) throw this.truncated(input.position);
      }
      if (this.pad > 0) {
        const want = this.pad;
        this.pad = 0;
        if ((await input.skip(want)) < want) {
          this.end = 'padding';
          return undefined;
        }
      }
      const at = input.position;
      if (firstHeader < 0) firstHeader = at;
      const block = await input.read(BLOCK);
      if (block.length === 0) {
        this.end = 'eof';
        return undefined;
      }
      if (block.length < BLOCK) throw this.truncated(input.position);
      if (isZeroBlock(block)) {
        const second = await input.read(BLOCK);
        if (second.length === 0) {
          this.end = 'zero-block';
          return undefined;
        }
        if (second.length < BLOCK) throw this.truncated(input.position);
        if (isZeroBlock(second)) {
          this.end = 'marker';
          return undefined;
        }
        throw this.corrupt('a zero block followed by a header', at + BLOCK, 'header');
      }
      const decoded = decodeBlock(block);
      if (decoded.problem !== undefined) throw decoded.problem === 'header' && !decoded.header ? this.corrupt('not a tar header (bad checksum)', at, 'checksum') : this.refuse(decoded.problem, at);
      const hdr = decoded.header;
      this.setData(hdr.typeflag, hdr.size, at);
      switch (hdr.typeflag) {
        case 'x':
        case 'g': {
          const records = parsePaxRecords(await this.readSpecial(at));
          if (records === 'header') throw this.corrupt('invalid PAX record', at, 'header');
          if (hdr.typeflag === 'g') return this.globalHeader(hdr, records, firstHeader, at);
          pax = records; // a later `x` replaces an earlier one: records are not merged
          continue;
        }
        case 'L':
        case 'K': {
          const data = await this.readSpecial(at);
          const nul = data.indexOf(0);
          const value = data.toString('latin1', 0, nul < 0 ? data.length : nul);
          if (hdr.typeflag === 'L') longName = value;
          else longLink = value;
          continue;
        }
        default:
          return this.entry(hdr, block, pax, longName, longLink, firstHeader, at);
      }
    }
  }

  /**
   * A `g` header is returned as an entry of its own, its records never applied to later entries
   * (its `path` record names it). Go applies the records in random map order and ignores a bad
   * one, so with a bad record its name is a coin toss: refused.
   */
  private globalHeader(hdr: RawHeader, records: Map<string, string>, firstHeader: number, at: number): TarEntry {
    const fields = { ...hdr };
    if (mergePax(fields, records) === 'header') {
      throw new AmbiguousArchiveError(`${this.options.source}: a PAX global header with an invalid record: Go names it at random (at byte ${at})`, {
        source: this.options.source,
        offset: at,
        reason: 'global-header',
      });
    }
    return {
      typeflag: 'g',
      name: fields.name,
      linkname: '',
      size: 0,
      mode: 0,
      uid: 0,
      gid: 0,
      uname: '',
      gname: '',
      devmajor: 0,
      devminor: 0,
      pax: records,
      dataOffset: this.input.position,
      dataSize: 0,
      headerOffset: firstHeader,
    };
  }

  private async entry(
    raw: RawHeader,
    block: Buffer,
    pax: Map<string, string> | undefined,
    longName: string,
    longLink: string,
    firstHeader: number,
    at: number,
  ): Promise<TarEntry> {
    const hdr: RawHeader = raw;
    if (pax) {
      const problem = mergePax(hdr, pax);
      if (problem) throw this.refuse(problem, at);
    }
    // GNU long names and links are applied after the PAX records: they win over `path`/`linkpath`.
    if (longName !== '') hdr.name = longName;
    if (longLink !== '') hdr.linkname = longLink;
    let typeflag = hdr.typeflag;
    if (typeflag === '\0') typeflag = hdr.name.endsWith('/') ? '5' : '0'; // old-style file; a trailing `/` is a directory
    // The PAX size counts from here.
    this.setData(typeflag, hdr.size, at);
    // A size past 2^53: more data than any stream holds (Go finds it truncated when it reads it);
    // on a type without data, Go reports a number a JS number cannot hold.
    if (hdr.size === Infinity) throw isHeaderOnlyType(typeflag) ? this.refuse('number-range', at) : this.truncated(at);
    let sparse: SparseFragment[] | undefined;
    let size = hdr.size;
    let name = hdr.name;
    if (typeflag === 'S') {
      ({ sparse, size } = await this.oldGnuSparse(block, at));
    } else {
      const format = paxSparseFormat(pax);
      if (format && pax) {
        const sparseName = pax.get(SPARSE_NAME) ?? '';
        if (sparseName !== '') name = sparseName;
        const declared = paxSparseSize(pax);
        if (declared === 'header' || declared === 'number-range' || declared === 'sparse-map-size') throw this.refuse(declared, at);
        if (declared !== undefined) size = declared;
        const map = format === '1.0' ? await this.sparseMap1x0(at) : sparseMap0x1(pax);
        if (typeof map === 'string') throw this.refuse(map, at);
        sparse = map;
      }
    }
    if (sparse) {
      if (isHeaderOnlyType(typeflag) || !validSparseMap(sparse, size)) throw this.corrupt('invalid sparse map', at, 'header');
      if (storedBytes(sparse) !== this.remaining) {
        // Go's reader fails when the file is read (errMissData / errUnrefData).
        throw this.corrupt(`sparse file ${JSON.stringify(name)} stores ${this.remaining} bytes for a map of ${storedBytes(sparse)}`, at, 'sparse-data');
      }
    }
    return {
      typeflag,
      name,
      linkname: hdr.linkname,
      size,
      mode: hdr.mode,
      uid: hdr.uid,
      gid: hdr.gid,
      ...(hdr.uidText !== undefined ? { uidText: hdr.uidText } : {}),
      ...(hdr.gidText !== undefined ? { gidText: hdr.gidText } : {}),
      mtime: hdr.mtime,
      ...(hdr.atime ? { atime: hdr.atime } : {}),
      ...(hdr.ctime ? { ctime: hdr.ctime } : {}),
      uname: hdr.uname,
      gname: hdr.gname,
      devmajor: hdr.devmajor,
      devminor: hdr.devminor,
      ...(pax ? { pax } : {}),
      dataOffset: this.input.position,
      dataSize: this.remaining,
      ...(sparse ? { sparse } : {}),
      headerOffset: firstHeader,
    };
  }

  /** Go's `readOldGNUSparseMap`: the map in the header and its extension blocks; size is `realsize`. */
  private async oldGnuSparse(block: Buffer, at: number): Promise<{ sparse: SparseFragment[]; size: number }> {
    if (blockFormat(block) !== 'gnu') throw this.refuse('header', at);
    const p = new NumberParser();
    const size = p.numeric(block, 483, 12);
    if (p.problem) throw this.refuse(p.problem, at);
    const sparse: SparseFragment[] = [];
    let extended = oldGnuSparseEntries(block, 386, 4, p, sparse);
    while (!p.problem && extended) {
      if (sparse.length > MAX_SPARSE_FRAGMENTS) throw this.refuse('sparse-map-size', at);
      // Extension blocks follow the header; the size field does not count them.
      const ext = await this.input.read(BLOCK);
      if (ext.length < BLOCK) throw this.truncated(this.input.position);
      extended = oldGnuSparseEntries(ext, 0, 21, p, sparse);
    }
    if (p.problem) throw this.refuse(p.problem, at);
    if (sparse.length > MAX_SPARSE_FRAGMENTS) throw this.refuse('sparse-map-size', at);
    return { sparse, size };
  }

  /** Go's `readGNUSparseMap1x0`: whole blocks of the data until the map's newlines are there. */
  private async sparseMap1x0(at: number): Promise<SparseFragment[] | HeaderProblem> {
    const map = new SparseMap1x0();
    const feed = async (newlines: number) => {
      while (map.newlines < newlines) {
        if (map.bytes >= MAX_SPECIAL_BYTES) return false;
        map.add(await this.readDataBlock());
      }
      return true;
    };
    if (!(await feed(1))) return 'sparse-map-size';
    const count = map.count();
    if (typeof count !== 'number') return count;
    if (!(await feed(2 * count))) return 'sparse-map-size';
    void at;
    return map.fragments(count);
  }
}
