/**
 * PAX extended headers as Go's archive/tar reads them (`parsePAX`, `parsePAXRecord`,
 * `validPAXRecord`, `mergePAX`, `parsePAXTime`; docs/reference/tar.md): the record syntax, which
 * keys change which field, and Go's decimal number rules (strconv.ParseInt base 10, 64 bits).
 * Keys and values are latin1 strings (one char per byte), as header strings are.
 */
import type { HeaderProblem, RawHeader, TarTime } from './header';

export const PAX_PATH = 'path';
export const PAX_LINKPATH = 'linkpath';
export const PAX_XATTR_PREFIX = 'SCHILY.xattr.';
export const SPARSE_MAP = 'GNU.sparse.map';
const SPARSE_OFFSET = 'GNU.sparse.offset';
const SPARSE_NUMBYTES = 'GNU.sparse.numbytes';

const MAX_INT64 = 2n ** 63n - 1n;
const MIN_INT64 = -(2n ** 63n);

/**
 * Go's `strconv.ParseInt(s, 10, 64)`: an optional sign, then decimal digits only (no spaces, no
 * `_`, no base prefix), within int64. A value past ±2^53 is `number-range`: Go accepts it, a JS
 * number cannot hold it exactly.
 */
export function parseDecimal(s: string): number | HeaderProblem {
  let i = 0;
  if (s.length > 0 && (s[0] === '+' || s[0] === '-')) i = 1;
  if (i === s.length) return 'header';
  for (let j = i; j < s.length; j++) {
    const c = s.charCodeAt(j);
    if (c < 0x30 || c > 0x39) return 'header';
  }
  if (s.length - i <= 15) return Number(s) + 0; // at most 15 digits: exact and in range (+ 0: no -0)
  const big = BigInt(s[0] === '+' ? s.slice(1) : s);
  if (big > MAX_INT64 || big < MIN_INT64) return 'header';
  if (big > BigInt(Number.MAX_SAFE_INTEGER) || big < BigInt(Number.MIN_SAFE_INTEGER)) return 'number-range';
  return Number(big);
}

/** Go's `parsePAXTime`: `secs[.frac]`, the fraction digits only, padded or cut to nanoseconds. */
export function parsePaxTime(s: string): TarTime | HeaderProblem {
  const dot = s.indexOf('.');
  const ss = dot < 0 ? s : s.slice(0, dot);
  const sn = dot < 0 ? '' : s.slice(dot + 1);
  const secs = parseDecimal(ss);
  if (typeof secs !== 'number') return secs;
  if (sn.length === 0) return { sec: secs, nsec: 0 };
  for (let j = 0; j < sn.length; j++) {
    const c = sn.charCodeAt(j);
    if (c < 0x30 || c > 0x39) return 'header';
  }
  let nsec = Number(sn.length < 9 ? sn.padEnd(9, '0') : sn.slice(0, 9));
  let sec = secs;
  // time.Unix(secs, -nsecs) for a negative seconds string ("-0.5" too), normalized as Go does.
  if (ss.length > 0 && ss[0] === '-' && nsec > 0) {
    sec -= 1;
    nsec = 1e9 - nsec;
  }
  if (!Number.isSafeInteger(sec)) return 'number-range';
  return { sec, nsec };
}

function hasNul(s: string): boolean {
  return s.indexOf('\0') >= 0;
}

/**
 * Go's `parsePAX` over the data of an `x` or `g` header: every record must be well formed (any
 * bad record refuses the header); a later duplicate key wins; GNU sparse 0.0 `offset`/`numbytes`
 * pairs are joined into `GNU.sparse.map` (replacing an explicit one).
 *
 * Keys and values are decoded from the bytes one by one: slices of one string of the whole header
 * would keep all of it (up to 1 MiB) alive for as long as any value is held.
 */
export function parsePaxRecords(data: Buffer): Map<string, string> | 'header' {
  const records = new Map<string, string>();
  const sparseMap: string[] = [];
  let at = 0;
  while (at < data.length) {
    // The length runs to the first space and counts the whole record, its newline included.
    const space = data.indexOf(0x20, at);
    if (space < 0) return 'header';
    const n = parseDecimal(data.toString('latin1', at, space));
    if (typeof n !== 'number' || n < 5 || n > data.length - at) return 'header';
    const recordEnd = at + n; // exclusive; the newline is at recordEnd - 1
    if (recordEnd - 1 <= space || data[recordEnd - 1] !== 0x0a) return 'header';
    const eq = data.indexOf(0x3d, space + 1);
    if (eq < 0 || eq >= recordEnd - 1) return 'header';
    const key = data.toString('latin1', space + 1, eq);
    const value = data.toString('latin1', eq + 1, recordEnd - 1);
    if (key === '') return 'header';
    if (key === 'path' || key === 'linkpath' || key === 'uname' || key === 'gname' ? hasNul(value) : hasNul(key)) return 'header';
    at = recordEnd;
    if (key === SPARSE_OFFSET || key === SPARSE_NUMBYTES) {
      const expected = sparseMap.length % 2 === 0 ? SPARSE_OFFSET : SPARSE_NUMBYTES;
      if (key !== expected || value.includes(',')) return 'header';
      sparseMap.push(value);
    } else {
      records.set(key, value);
    }
  }
  if (sparseMap.length > 0) records.set(SPARSE_MAP, sparseMap.join(','));
  return records;
}

/** The entry fields PAX records can set, on top of the header block's. */
export type PaxFields = Pick<RawHeader, 'name' | 'linkname' | 'uname' | 'gname' | 'uid' | 'gid' | 'uidText' | 'gidText' | 'size' | 'mtime' | 'atime' | 'ctime'>;

/**
 * Go's `mergePAX`: records with an empty value keep the header's value; `path`, `linkpath`,
 * `uname`, `gname`, `uid`, `gid`, `size`, `mtime`, `atime` and `ctime` replace fields; a value that
 * does not parse refuses the header. Returns the first problem (Go's ErrHeader before ours).
 */
export function mergePax(header: PaxFields, records: ReadonlyMap<string, string>): HeaderProblem | undefined {
  let problem: HeaderProblem | undefined;
  const note = (p: HeaderProblem) => {
    if (problem === undefined || p === 'header') problem = p;
  };
  for (const [key, value] of records) {
    if (value === '') continue;
    switch (key) {
      case 'path':
        header.name = value;
        break;
      case 'linkpath':
        header.linkname = value;
        break;
      case 'uname':
        header.uname = value;
        break;
      case 'gname':
        header.gname = value;
        break;
      case 'uid':
      case 'gid': {
        // Past ±2^53 (within int64): the nearest number and the exact decimal, as for the header
        // fields; the entry model refuses owners past 2^32-1.
        const n = parseDecimal(value);
        const text: 'uidText' | 'gidText' = key === 'uid' ? 'uidText' : 'gidText';
        if (typeof n === 'number') {
          header[key] = n;
          delete header[text];
        } else if (n === 'number-range') {
          const exact = BigInt(value);
          header[key] = Number(exact);
          header[text] = exact.toString();
        } else note(n);
        break;
      }
      case 'size': {
        // Past 2^53: Infinity, as for the header's size field (the data cannot be there).
        const n = parseDecimal(value);
        if (typeof n === 'number') header.size = n;
        else if (n === 'number-range') header.size = Infinity;
        else note(n);
        break;
      }
      case 'mtime':
      case 'atime':
      case 'ctime': {
        const t = parsePaxTime(value);
        if (typeof t === 'object') header[key] = t;
        else note(t);
        break;
      }
      default:
        break; // xattrs and the rest stay in the records
    }
  }
  return problem;
}
