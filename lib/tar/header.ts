/**
 * One 512-byte tar header block, decoded exactly as Go's archive/tar does it (`readHeader` and
 * `getFormat`, docs/reference/tar.md): the checksum (unsigned or signed sum), the format guessed
 * from the magic bytes (V7, USTAR/PAX, GNU, STAR), the fields each format has, Go's octal and
 * base-256 number rules and its strings (cut at the first NUL, bytes kept).
 *
 * Strings are latin1 JS strings: one char per byte, so any byte sequence survives and compares as
 * Go compares it. Whoever needs text decodes them (see `utf8Text`).
 */

export const BLOCK = 512;
/** Go's maxSpecialFileSize: the largest PAX header or GNU long name/link it reads. */
export const MAX_SPECIAL_BYTES = 1 << 20;

/** A time as Go's time.Unix(sec, nsec) keeps it: seconds (floor) and 0 ≤ nsec < 1e9. */
export interface TarTime {
  readonly sec: number;
  readonly nsec: number;
}

/** The format `getFormat` guesses from the magic bytes (after the checksum matched). */
export type BlockFormat = 'v7' | 'ustar' | 'star' | 'gnu';

/** The fields of a header block, as `readHeader` returns them. */
export interface RawHeader {
  format: BlockFormat;
  typeflag: string;
  name: string;
  linkname: string;
  /** Infinity when past 2^53 (see sizeField). */
  size: number;
  mode: number;
  uid: number;
  gid: number;
  /** The exact decimal of an owner id past ±2^53 (`uid`/`gid` are then the nearest number). */
  uidText?: string;
  gidText?: string;
  mtime: TarTime;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
  atime?: TarTime;
  ctime?: TarTime;
}

/**
 * Why a header is refused: Go's ErrHeader (`header`), or a form Go accepts that we refuse by
 * design — a number a JS number cannot hold exactly (`number-range`, past ±2^53), a sparse map of
 * more than MAX_SPARSE_FRAGMENTS fragments (`sparse-map-size`).
 */
export type HeaderProblem = 'header' | 'number-range' | 'sparse-map-size';

/**
 * Accumulates the first problem of a block, as Go's `parser` keeps `p.err` and goes on parsing
 * the other fields (a block is refused once, after every field was read).
 */
export class NumberParser {
  problem?: HeaderProblem;

  /** Go's `parseNumeric`: base-256 when the first byte has 0x80 set, else octal. */
  numeric(b: Buffer, start: number, length: number): number {
    if (length > 0 && b[start] & 0x80) return this.base256(b, start, length);
    return this.octal(b, start, length);
  }

  /**
   * Go's `parseOctal`: trim every leading and trailing space and NUL, cut at the first NUL left,
   * then digits 0-7 only (strconv.ParseUint base 8). An empty field is 0.
   */
  octal(b: Buffer, start: number, length: number): number {
    let s = start;
    let e = start + length;
    while (s < e && (b[s] === 0x20 || b[s] === 0)) s++;
    while (e > s && (b[e - 1] === 0x20 || b[e - 1] === 0)) e--;
    if (s === e) return 0;
    let x = 0;
    for (let i = s; i < e; i++) {
      const c = b[i];
      if (c === 0) break; // parseString: cut at the first NUL
      if (c < 0x30 || c > 0x37) {
        this.fail('header');
        return 0;
      }
      x = x * 8 + (c - 0x30); // at most 12 digits: exact
    }
    return x;
  }

  /**
   * GNU base-256: big-endian two's complement, bit 0x40 of the first byte the sign. Go refuses a
   * magnitude past 63 bits (checked before each shift and at the end, as Go does).
   */
  private base256(b: Buffer, start: number, length: number): number {
    const inv = b[start] & 0x40 ? 0xff : 0;
    let x = 0n;
    for (let i = 0; i < length; i++) {
      let c = b[start + i] ^ inv;
      if (i === 0) c &= 0x7f;
      if (x >> 56n > 0n) {
        this.fail('header');
        return 0;
      }
      x = (x << 8n) | BigInt(c);
    }
    if (x >> 63n > 0n) {
      this.fail('header');
      return 0;
    }
    const value = inv ? -x - 1n : x;
    if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) {
      this.fail('number-range');
      this.big = value;
      return 0;
    }
    return Number(value);
  }

  /** The exact value of the last base-256 field past ±2^53 (its problem is then `number-range`). */
  big?: bigint;

  /**
   * An owner id: past ±2^53 it is not refused here but given as the nearest number and its exact
   * decimal, for the entry model to refuse (owners are 32-bit) with its own words.
   */
  owner(b: Buffer, start: number, length: number): { id: number; exact?: string } {
    const own = new NumberParser();
    const id = own.numeric(b, start, length);
    if (own.problem === 'number-range' && own.big !== undefined) return { id: Number(own.big), exact: own.big.toString() };
    if (own.problem) this.fail(own.problem);
    return { id };
  }

  fail(problem: HeaderProblem): void {
    // Go's ErrHeader wins over our own refusal: the block is corrupt whatever else it holds.
    if (this.problem === undefined || problem === 'header') this.problem = problem;
  }
}

/** Go's `parseString`: the bytes up to the first NUL (all of them when there is none). */
export function fieldString(b: Buffer, start: number, length: number): string {
  let end = b.indexOf(0, start);
  if (end < 0 || end > start + length) end = start + length;
  return b.toString('latin1', start, end);
}

/** True when the block is 512 zero bytes. */
export function isZeroBlock(b: Buffer): boolean {
  for (let i = 0; i < BLOCK; i += 8) {
    // Eight bytes at a time through two 32-bit reads: the common case (a real header) fails fast.
    if ((b.readUInt32LE(i) | b.readUInt32LE(i + 4)) !== 0) return false;
  }
  return true;
}

/**
 * Go's `getFormat`: undefined when the checksum field does not parse as octal or matches neither
 * the unsigned nor the signed sum of the block (the field itself counted as spaces).
 */
export function blockFormat(b: Buffer): BlockFormat | undefined {
  const p = new NumberParser();
  const stored = p.octal(b, 148, 8);
  if (p.problem) return undefined;
  // The sum of the bytes as unsigned and as signed (int8) values, the field itself as 8 spaces.
  let unsigned = 8 * 0x20;
  let high = 0; // bytes ≥ 0x80: each counts 256 less when signed
  for (let i = 0; i < BLOCK; i++) {
    if (i === 148) i = 156;
    const c = b[i];
    unsigned += c;
    high += c >> 7;
  }
  const signed = unsigned - 256 * high;
  if (stored !== unsigned && stored !== signed) return undefined;
  const ustarMagic = b[257] === 0x75 && b[258] === 0x73 && b[259] === 0x74 && b[260] === 0x61 && b[261] === 0x72; // "ustar"
  if (ustarMagic && b[262] === 0) {
    // STAR: "ustar\0" with the "tar\0" trailer at 508.
    if (b[508] === 0x74 && b[509] === 0x61 && b[510] === 0x72 && b[511] === 0) return 'star';
    return 'ustar';
  }
  // GNU: "ustar " with version " \0".
  if (ustarMagic && b[262] === 0x20 && b[263] === 0x20 && b[264] === 0) return 'gnu';
  return 'v7';
}

/**
 * The size field. A size past 2^53 is Infinity, not a refusal: no stream holds that much data, so
 * an entry that carries data is truncated (as Go finds when it reads it); the reader refuses it
 * as a number it cannot hold only for types that carry no data.
 */
function sizeField(b: Buffer, start: number, p: NumberParser): number {
  const own = new NumberParser();
  const size = own.numeric(b, start, 12);
  if (own.problem === 'number-range') return Infinity;
  if (own.problem) p.fail(own.problem);
  return size;
}

function timeOf(sec: number): TarTime {
  return { sec, nsec: 0 };
}

/** True when every char of a latin1 string is ASCII and not NUL (Go's `isASCII`). */
function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80 || c === 0) return false;
  }
  return true;
}

/**
 * Go's `readHeader` for one non-zero block: the fields, or the problem that refuses the block
 * (`undefined` format means a bad checksum, which Go reports as ErrHeader too).
 */
export function decodeBlock(b: Buffer): { header: RawHeader; problem?: HeaderProblem } | { header?: undefined; problem: HeaderProblem } {
  const format = blockFormat(b);
  if (format === undefined) return { problem: 'header' };
  const p = new NumberParser();
  const header: RawHeader = {
    format,
    typeflag: String.fromCharCode(b[156]),
    name: fieldString(b, 0, 100),
    linkname: fieldString(b, 157, 100),
    size: sizeField(b, 124, p),
    mode: p.numeric(b, 100, 8),
    uid: 0,
    gid: 0,
    mtime: timeOf(0),
    uname: '',
    gname: '',
    devmajor: 0,
    devminor: 0,
  };
  header.mtime = timeOf(p.numeric(b, 136, 12));
  const uid = p.owner(b, 108, 8);
  const gid = p.owner(b, 116, 8);
  header.uid = uid.id;
  header.gid = gid.id;
  if (uid.exact !== undefined) header.uidText = uid.exact;
  if (gid.exact !== undefined) header.gidText = gid.exact;
  if (format !== 'v7') {
    header.uname = fieldString(b, 265, 32);
    header.gname = fieldString(b, 297, 32);
    header.devmajor = p.numeric(b, 329, 8);
    header.devminor = p.numeric(b, 337, 8);
    let prefix = '';
    if (format === 'ustar') {
      prefix = fieldString(b, 345, 155);
    } else if (format === 'star') {
      prefix = fieldString(b, 345, 131);
      header.atime = timeOf(p.numeric(b, 476, 12));
      header.ctime = timeOf(p.numeric(b, 488, 12));
    } else {
      // GNU: atime and ctime when their first byte is not NUL, parsed on their own: a failure
      // there is the pre-Go1.8 writer bug, whose bytes 345.. are then a USTAR prefix if ASCII.
      const p2 = new NumberParser();
      if (b[345] !== 0) header.atime = timeOf(p2.numeric(b, 345, 12));
      if (b[357] !== 0) header.ctime = timeOf(p2.numeric(b, 357, 12));
      if (p2.problem) {
        header.atime = undefined;
        header.ctime = undefined;
        const s = fieldString(b, 345, 155);
        if (isAscii(s)) prefix = s;
      }
    }
    if (prefix.length > 0) header.name = `${prefix}/${header.name}`;
  }
  return p.problem ? { header, problem: p.problem } : { header };
}
