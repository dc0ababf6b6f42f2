/**
 * Tar archives built header by header, every field controllable (magic, octal and base-256
 * forms, checksum variants, prefixes, GNU and STAR extras, sparse maps), and a seeded generator of
 * archives that combine them: the inputs of the Go differential suite (gotar.spec.ts).
 *
 * The generator leans towards archives a reader accepts (most knobs fire rarely), so that the
 * comparison of accepted entry lists has something to compare; every knob still fires often
 * enough in 2,000 cases.
 */

// --- a seeded random source -------------------------------------------------------------------

export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 1;
  }
  /** A float in [0, 1) (mulberry32). */
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
}

// --- header blocks --------------------------------------------------------------------------------

export const BLOCK = 512;

/** A numeric field: a number (octal, zero-padded, NUL-terminated), a bigint (base-256) or raw bytes. */
export type Field = number | bigint | Buffer;

export type Magic = 'ustar' | 'gnu' | 'v7' | 'star' | 'ustar-version-xx' | 'gnu-version-00';

export type ChecksumForm = 'unsigned' | 'signed' | 'bad' | 'spaces' | 'leading-spaces' | 'no-terminator';

export interface Header {
  magic: Magic;
  typeflag: string;
  name: Buffer | string;
  /** Bytes at 345: the USTAR prefix (155), STAR prefix (131), or GNU atime/ctime area. */
  prefix?: Buffer | string;
  linkname?: Buffer | string;
  mode?: Field;
  uid?: Field;
  gid?: Field;
  size?: Field;
  mtime?: Field;
  devmajor?: Field;
  devminor?: Field;
  uname?: string;
  gname?: string;
  /** STAR atime/ctime at 476/488. */
  starTimes?: [Field, Field];
  /** GNU atime/ctime at 345/357 (raw or a number). */
  gnuTimes?: [Field, Field];
  /** Old GNU sparse: fragments at 386 (at most 4 here), `isextended`, the real size at 483. */
  gnuSparse?: { fragments: [Field, Field][]; extended: boolean; realSize: Field };
  checksum?: ChecksumForm;
}

function put(b: Buffer, at: number, len: number, v: Buffer | string | undefined): void {
  if (v === undefined) return;
  const bytes = typeof v === 'string' ? Buffer.from(v, 'latin1') : v;
  bytes.copy(b, at, 0, Math.min(len, bytes.length));
}

/** Octal, zero-padded to width-1 digits and a NUL (Go's and GNU tar's usual form). */
export const octal = (n: number, width: number): Buffer => Buffer.from(n.toString(8).padStart(width - 1, '0') + '\0', 'latin1');

/** GNU base-256: 0x80 and big-endian two's complement in the rest of the field. */
export function base256(v: bigint, width: number): Buffer {
  const b = Buffer.alloc(width);
  let x = BigInt.asUintN(8 * width, v);
  for (let i = width - 1; i >= 0; i--) {
    b[i] = Number(x & 0xffn);
    x >>= 8n;
  }
  b[0] = (b[0] & 0x7f) | 0x80;
  if (v < 0n) b[0] |= 0x40;
  return b;
}

function numeric(b: Buffer, at: number, width: number, f: Field | undefined): void {
  if (f === undefined) return;
  if (typeof f === 'number') put(b, at, width, octal(f, width));
  else if (typeof f === 'bigint') put(b, at, width, base256(f, width));
  else put(b, at, width, f);
}

export function headerBlock(h: Header): Buffer {
  const b = Buffer.alloc(BLOCK);
  put(b, 0, 100, h.name);
  numeric(b, 100, 8, h.mode ?? 0o644);
  numeric(b, 108, 8, h.uid ?? 0);
  numeric(b, 116, 8, h.gid ?? 0);
  numeric(b, 124, 12, h.size ?? 0);
  numeric(b, 136, 12, h.mtime ?? 0);
  b[156] = h.typeflag.charCodeAt(0);
  put(b, 157, 100, h.linkname);
  switch (h.magic) {
    case 'ustar':
    case 'star':
      put(b, 257, 8, 'ustar\x0000');
      break;
    case 'ustar-version-xx':
      put(b, 257, 8, 'ustar\x00xx');
      break;
    case 'gnu':
      put(b, 257, 8, 'ustar  \x00');
      break;
    case 'gnu-version-00':
      put(b, 257, 8, 'ustar 00');
      break;
    case 'v7':
      break;
  }
  if (h.magic !== 'v7') {
    put(b, 265, 32, h.uname ?? '');
    put(b, 297, 32, h.gname ?? '');
    numeric(b, 329, 8, h.devmajor ?? 0);
    numeric(b, 337, 8, h.devminor ?? 0);
  }
  put(b, 345, 155, h.prefix);
  if (h.magic === 'star') {
    put(b, 508, 4, 'tar\x00');
    if (h.starTimes) {
      numeric(b, 476, 12, h.starTimes[0]);
      numeric(b, 488, 12, h.starTimes[1]);
    }
  }
  if (h.gnuTimes) {
    numeric(b, 345, 12, h.gnuTimes[0]);
    numeric(b, 357, 12, h.gnuTimes[1]);
  }
  if (h.gnuSparse) {
    h.gnuSparse.fragments.slice(0, 4).forEach(([o, l], i) => {
      numeric(b, 386 + i * 24, 12, o);
      numeric(b, 398 + i * 24, 12, l);
    });
    b[482] = h.gnuSparse.extended ? 1 : 0;
    numeric(b, 483, 12, h.gnuSparse.realSize);
  }
  b.fill(0x20, 148, 156);
  let unsigned = 0;
  let signed = 0;
  for (const c of b) {
    unsigned += c;
    signed += c < 0x80 ? c : c - 256;
  }
  switch (h.checksum ?? 'unsigned') {
    case 'unsigned':
      put(b, 148, 8, unsigned.toString(8).padStart(6, '0') + '\0 ');
      break;
    case 'signed':
      put(b, 148, 8, (signed < 0 ? 0 : signed).toString(8).padStart(6, '0') + '\0 ');
      break;
    case 'bad':
      put(b, 148, 8, (unsigned + 1).toString(8).padStart(6, '0') + '\0 ');
      break;
    case 'spaces':
      break; // all spaces: parses as 0
    case 'leading-spaces':
      put(b, 148, 8, unsigned.toString(8).padStart(6, ' ') + '\0 ');
      break;
    case 'no-terminator':
      put(b, 148, 8, unsigned.toString(8).padStart(8, '0'));
      break;
  }
  return b;
}

/** Old GNU sparse extension block: up to 21 fragments and the `isextended` byte at 504. */
export function sparseExtension(fragments: [Field, Field][], extended: boolean): Buffer {
  const b = Buffer.alloc(BLOCK);
  fragments.slice(0, 21).forEach(([o, l], i) => {
    numeric(b, i * 24, 12, o);
    numeric(b, i * 24 + 12, 12, l);
  });
  b[504] = extended ? 1 : 0;
  return b;
}

export function padded(data: Buffer): Buffer {
  const rest = data.length % BLOCK;
  return rest === 0 ? data : Buffer.concat([data, Buffer.alloc(BLOCK - rest)]);
}

/** PAX records (`len key=value\n`), the length computed. */
export function paxRecords(records: [string, string | Buffer][]): Buffer {
  return Buffer.concat(records.map(([k, v]) => paxRecord(k, v)));
}

export function paxRecord(key: string, value: string | Buffer): Buffer {
  // Strings as UTF-8 (what writers put in PAX records); Buffers for other bytes.
  const body = Buffer.concat([Buffer.from(` ${key}=`, 'utf8'), typeof value === 'string' ? Buffer.from(value, 'utf8') : value, Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

/** A header block and its data, padded. */
export function member(h: Header, data: Buffer = Buffer.alloc(0)): Buffer {
  return Buffer.concat([headerBlock({ size: data.length, ...h }), padded(data)]);
}

// --- the generator ----------------------------------------------------------------------------------

/** Names of a small tree, so that entries meet (duplicates, a directory and a file of one name). */
const SHORT_NAMES = ['a', 'b', 'dir', 'dir/f', 'dir/g', 'x/y/z', './c', '/abs', 'dir/sub/h', 'ünï', 'sp ace', 'nl\nname'];
/** Names only links and leaves take (never a parent). */
const LEAF_NAMES = ['l1', 'dir/l2', 'x/l3'];

function longName(rng: Rng): string {
  const parts: string[] = [];
  const n = 1 + rng.int(4);
  for (let i = 0; i < n; i++) parts.push(`p${i}${'q'.repeat(20 + rng.int(60))}`);
  return parts.join('/');
}

function pickName(rng: Rng, leaf: boolean): string {
  if (rng.chance(0.15)) return longName(rng);
  return leaf ? rng.pick(LEAF_NAMES) : rng.pick(SHORT_NAMES);
}

/** The numeric forms Go accepts (and, when `hostile`, refuses or we refuse), for a value meant to be `n`. */
function numberField(rng: Rng, n: number, width: number, hostile: number): Field {
  if (!rng.chance(0.12)) return n;
  const digits = n.toString(8);
  if (rng.chance(0.4 * hostile)) {
    switch (rng.int(6)) {
      case 0:
        return Buffer.from(`${digits} 1`, 'latin1'); // inner space: ErrHeader
      case 1:
        return Buffer.from('8', 'latin1'); // not octal
      case 2:
        return -1n; // negative base-256
      case 3:
        return 2n ** 32n;
      case 4:
        return 2n ** 53n + 1n; // beyond a JS number
      default:
        return Buffer.from([0x80, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff].slice(0, width)); // overflow
    }
  }
  switch (rng.int(6)) {
    case 0:
      return Buffer.from(digits.padStart(width, '0').slice(-width), 'latin1'); // no NUL
    case 1:
      return Buffer.from(`  ${digits}`.padEnd(width - 1, ' ') + '\0', 'latin1').subarray(0, width); // spaces around
    case 2:
      return Buffer.from(`\0\0${digits}\0`, 'latin1'); // leading NULs
    case 3:
      return Buffer.from(`${digits}\0zz`, 'latin1'); // garbage after the NUL
    case 4:
      return BigInt(n); // base-256
    default:
      return Buffer.alloc(0); // empty: 0
  }
}

interface Budget {
  /** Probability multiplier of the hostile knobs. */
  hostile: number;
}

/** One logical entry: its meta headers and its header, data included. */
function entry(rng: Rng, budget: Budget): Buffer[] {
  const parts: Buffer[] = [];
  const h = budget.hostile;
  const kinds = ['0', '0', '0', '0', '5', '5', '2', '1', '\0', '\0', 'sparse'];
  let kind = rng.pick(kinds);
  if (rng.chance(0.03 * h)) kind = rng.pick(['7', '3', '4', '6', 'Z', 'D', 'V', 'X', 'S']);
  const isLink = kind === '1' || kind === '2';
  let name = pickName(rng, isLink);
  if ((kind === '5' || kind === '\0') && rng.chance(0.6)) name += '/';
  // An old-style file named like a directory is one, for Go: its data would be read as headers.
  const dataless = kind === '\0' && name.endsWith('/') && !rng.chance(0.3 * h);
  if (kind === '0' && rng.chance(0.05 * h)) name += '/';
  const link = isLink ? rng.pick(['a', 'dir/f', '/abs', '../up', 'b', longName(rng)]) : '';
  const pax: [string, string | Buffer][] = [];
  const carriesData = !dataless && (kind === '0' || kind === '\0' || (kind.length === 1 && !'125346'.includes(kind)));
  let data = carriesData ? rng.bytes(rng.int(3) === 0 ? rng.int(1500) : rng.int(40)) : Buffer.alloc(0);
  const magic: Magic = rng.chance(0.8) ? 'ustar' : rng.pick(['gnu', 'v7', 'star', 'ustar-version-xx', 'gnu-version-00']);
  const header: Header = {
    magic,
    typeflag: kind === 'sparse' ? '0' : kind,
    name: '',
    mode: numberField(rng, rng.pick([0o644, 0o755, 0o4755, 0o777, 0o100644, 0o40755]), 8, h),
    uid: numberField(rng, rng.pick([0, 1000, 65534, 2097151]), 8, h),
    gid: numberField(rng, rng.pick([0, 100, 65534]), 8, h),
    mtime: numberField(rng, rng.pick([0, 1700000000, 2 ** 33 - 1]), 12, h),
    uname: rng.chance(0.3) ? 'root' : '',
    gname: rng.chance(0.3) ? 'wheel' : '',
  };
  if (rng.chance(0.02 * h)) header.devmajor = numberField(rng, 1, 8, h);
  if (rng.chance(0.1)) header.checksum = rng.pick<ChecksumForm>(['signed', 'leading-spaces', 'no-terminator']);
  if (rng.chance(0.03 * h)) header.checksum = rng.pick<ChecksumForm>(['bad', 'spaces']);
  if (header.checksum === 'signed') header.uname = 'r\xf6\xf6t'; // a byte ≥ 0x80 makes the signed sum differ

  // The name: in the header (split into a prefix when it can), a GNU long name, a PAX path, both.
  // Now and then bytes that are not UTF-8 (Go keeps them; text cannot say them).
  const nameBytes = rng.chance(0.02 * h) ? Buffer.concat([Buffer.from(name, 'utf8'), Buffer.from([0xff])]) : Buffer.from(name, 'utf8');
  const how = rng.pick(['header', 'header', 'header', 'gnu', 'pax', 'both', 'fallback']);
  let headerName = nameBytes;
  if (how === 'gnu' || how === 'both') {
    let longData = Buffer.concat([nameBytes, rng.chance(0.2) ? Buffer.from('\0trailing', 'latin1') : Buffer.alloc(0)]);
    if (rng.chance(0.05 * h)) longData = Buffer.alloc(0); // empty: the header name stays
    parts.push(member({ magic: 'gnu', typeflag: 'L', name: '././@LongLink' }, longData));
    if (rng.chance(0.1)) parts.splice(0, 0, member({ magic: 'gnu', typeflag: 'L', name: '././@LongLink' }, Buffer.from('overridden-long')));
    headerName = Buffer.from(rng.pick(['hdr-name', 'short']), 'latin1');
  }
  if (how === 'pax' || how === 'both') {
    pax.push(['path', how === 'both' ? 'pax-name-loses' : nameBytes]);
    if (how === 'pax') headerName = Buffer.from('pax-placeholder', 'latin1');
  }
  if (headerName.length > 100) {
    const cut = headerName.lastIndexOf(0x2f, 100 + 1);
    const prefixMax = magic === 'star' ? 131 : 155;
    if (how === 'header' && (magic === 'ustar' || magic === 'star' || magic === 'ustar-version-xx') && cut > 0 && cut <= prefixMax && headerName.length - cut - 1 <= 100) {
      header.prefix = headerName.subarray(0, cut);
      headerName = headerName.subarray(cut + 1);
    } else {
      headerName = headerName.subarray(0, 100); // cut: what the header can hold
    }
  } else if (rng.chance(0.08) && (magic === 'ustar' || magic === 'star')) {
    header.prefix = rng.pick(['pfx', 'a/', 'deep/er']); // prefix + name
  }
  if (how === 'fallback' && magic === 'gnu') header.prefix = rng.pick(['pfx', 'dir', 'n\xe9']); // pre-Go1.8 GNU: atime unparsable
  if (magic === 'star' && rng.chance(0.3)) header.starTimes = [numberField(rng, 1600000000, 12, h), numberField(rng, 1600000001, 12, h)];
  if (magic === 'star' && rng.chance(0.25)) {
    // A prefix filling all of STAR's 131 bytes: read as USTAR's 155, it would run into the times.
    header.prefix = 'S'.repeat(130) + '/';
    header.starTimes = [1600000000, 1600000001];
  }
  if (magic === 'gnu' && !header.prefix && rng.chance(0.2)) header.gnuTimes = [numberField(rng, 1500000000, 12, h), numberField(rng, 1500000002, 12, h)];
  header.name = headerName;

  // The link target, the same ways.
  if (isLink) {
    const lb = Buffer.from(link, 'utf8');
    const lhow = lb.length > 100 ? rng.pick(['gnu', 'pax', 'both']) : rng.pick(['header', 'header', 'gnu', 'pax', 'both']);
    if (lhow === 'header') header.linkname = lb;
    if (lhow === 'gnu' || lhow === 'both') {
      parts.push(member({ magic: 'gnu', typeflag: 'K', name: '././@LongLink' }, lb));
      header.linkname = 'hdr-link';
    }
    if (lhow === 'pax' || lhow === 'both') pax.push(['linkpath', lhow === 'both' ? 'pax-link-loses' : lb]);
    if (lhow === 'pax') header.linkname = 'hdr-link';
  }

  // More PAX records: owners, times, sizes, xattrs, names, unknown keys, and malformed ones.
  const hostilePick = <T>(good: readonly T[], bad: readonly T[]): T => (rng.chance(0.3 * h) ? rng.pick(bad) : rng.pick(good));
  if (rng.chance(0.25)) pax.push(['uid', hostilePick(['5', '+5', '0005', '4294967296', ''], ['-1', ' 5', 'abc', '99999999999999999999'])]);
  if (rng.chance(0.15)) pax.push(['gid', hostilePick(['7', '-0', ''], ['9007199254740993', '1e3'])]);
  if (rng.chance(0.25)) pax.push(['mtime', hostilePick(['1.5', '-1.5', '1.', '1700000000.123456789123', '-0.25', ''], ['.5', '1.5s', '99999999999999999999'])]);
  if (rng.chance(0.1)) pax.push([rng.pick(['atime', 'ctime']), hostilePick(['1.25', '7'], ['x'])]);
  if (rng.chance(0.1)) pax.push([rng.pick(['uname', 'gname']), hostilePick(['user', ''], ['n\0ul'])]);
  if (rng.chance(0.2)) {
    const n = 1 + rng.int(3);
    for (let i = 0; i < n; i++) {
      const key = hostilePick(['user.a', 'user.b', 'security.capability', 'trusted.x', 'user.ü'], ['']);
      const value = hostilePick<string | Buffer>(['v', '', 'v\0w', 'ünï', 'x'.repeat(100)], [Buffer.from([0xff, 0xfe])]);
      pax.push([`SCHILY.xattr.${key}`, value]);
    }
  }
  if (rng.chance(0.1)) pax.push([rng.pick(['comment', 'charset', 'LIBARCHIVE.x', 'hdrcharset']), 'whatever']);
  let sizeLie = 0;
  if (kind === 'sparse') {
    // sizes come with the sparse form below
  } else if (rng.chance(0.04 * h)) {
    sizeLie = rng.pick([1, -1, 600, 0]);
    pax.push(['size', String(Math.max(-1, data.length + sizeLie))]);
  } else if (rng.chance(0.05)) {
    pax.push(['size', String(data.length)]);
    header.size = rng.pick([0, 7, data.length + 3]); // the PAX size counts, not the header's
  }
  if (rng.chance(0.04)) pax.push(['path', '']); // empty: the header's name stays

  // Sparse forms.
  if (kind === 'sparse') {
    const form = rng.pick(['0.0', '0.1', '1.0', '1.0', 'old', 'unknown']);
    const { fragments, realSize, stored } = sparseMap(rng, h);
    data = stored;
    const sparseName = rng.chance(0.6) ? Buffer.from(rng.pick(['sparse-real', 'dir/sparse', longName(rng)]), 'latin1') : undefined;
    if (form === 'old') {
      header.typeflag = 'S';
      header.magic = rng.chance(0.1 * h) ? 'ustar' : 'gnu'; // Go reads S only with the GNU magic
      header.gnuSparse = { fragments: fragments.slice(0, 4), extended: fragments.length > 4, realSize };
      if (sparseName) header.name = sparseName.subarray(0, 100);
      const blocks: Buffer[] = [];
      for (let i = 4; i < fragments.length; i += 21) blocks.push(sparseExtension(fragments.slice(i, i + 21), i + 21 < fragments.length));
      parts.push(...paxHeaderIfAny(pax));
      parts.push(Buffer.concat([headerBlock({ ...header, size: data.length }), ...blocks, padded(data)]));
      return parts;
    }
    if (sparseName) pax.push(['GNU.sparse.name', sparseName]);
    if (rng.chance(0.02 * h)) pax.push(['GNU.sparse.name', Buffer.from([0x66, 0xff])]); // not UTF-8
    if (form !== 'unknown') pax.push([rng.chance(0.8) ? 'GNU.sparse.size' : 'GNU.sparse.realsize', fieldText(realSize)]);
    if (form === '0.0') {
      pax.push(['GNU.sparse.numblocks', String(fragments.length)]);
      if (rng.chance(0.5)) pax.push(['GNU.sparse.major', '0'], ['GNU.sparse.minor', '0']);
      for (const [o, l] of fragments) pax.push(['GNU.sparse.offset', fieldText(o)], ['GNU.sparse.numbytes', fieldText(l)]);
      if (rng.chance(0.05 * h)) pax.push(['GNU.sparse.offset', '1,2']);
    } else if (form === '0.1') {
      pax.push(['GNU.sparse.numblocks', String(fragments.length + (rng.chance(0.05 * h) ? 1 : 0))]);
      if (rng.chance(0.5)) pax.push(['GNU.sparse.major', '0'], ['GNU.sparse.minor', '1']);
      pax.push(['GNU.sparse.map', fragments.map(([o, l]) => `${fieldText(o)},${fieldText(l)}`).join(',')]);
    } else if (form === '1.0') {
      pax.push(['GNU.sparse.major', '1'], ['GNU.sparse.minor', '0']);
      const map = Buffer.from([String(fragments.length), ...fragments.flatMap(([o, l]) => [fieldText(o), fieldText(l)])].join('\n') + '\n', 'latin1');
      data = Buffer.concat([padded(map), data]);
    } else {
      pax.push(['GNU.sparse.major', '2'], ['GNU.sparse.minor', '0']); // not sparse to Go: a plain file
    }
    if (!header.name.length) header.name = 'GNUSparseFile.0/encoded';
  }

  if (pax.length > 0 || rng.chance(0.03)) {
    let records = paxRecords(pax);
    if (rng.chance(0.04 * h)) records = malformPax(rng, records);
    if (rng.chance(0.05)) parts.push(member({ magic: 'ustar', typeflag: 'x', name: 'PaxHeaders/earlier' }, paxRecords([['path', 'replaced'], ['uid', '77']])));
    parts.push(member({ magic: 'ustar', typeflag: 'x', name: 'PaxHeaders/entry' }, records));
  }
  let stored = data;
  if (sizeLie === 600) stored = Buffer.concat([data, rng.bytes(600)]);
  if (isLink || kind === '5' || '346'.includes(kind)) {
    if (rng.chance(0.05 * h)) {
      // A header-only type with a size (and, sometimes, the data after it).
      header.size = 5;
      stored = rng.chance(0.5) ? Buffer.from('hello') : Buffer.alloc(0);
    }
  }
  parts.push(Buffer.concat([headerBlock({ size: header.size ?? data.length, ...header }), padded(stored)]));
  return parts;
}

function fieldText(f: Field): string {
  return typeof f === 'number' ? String(f) : typeof f === 'bigint' ? f.toString() : f.toString('latin1');
}

function paxHeaderIfAny(pax: [string, string | Buffer][]): Buffer[] {
  return pax.length > 0 ? [member({ magic: 'ustar', typeflag: 'x', name: 'PaxHeaders/entry' }, paxRecords(pax))] : [];
}

/** A sparse map (fragments in order), the real size, and the stored bytes; sometimes wrong. */
function sparseMap(rng: Rng, h: number): { fragments: [Field, Field][]; realSize: Field; stored: Buffer } {
  const n = rng.pick([0, 1, 2, 3, 5, 6, 26]);
  const fragments: [number, number][] = [];
  let pos = 0;
  for (let i = 0; i < n; i++) {
    const offset = pos + rng.int(3000);
    const length = rng.int(700);
    fragments.push([offset, length]);
    pos = offset + length;
  }
  let realSize = pos + rng.int(2000);
  let stored = rng.bytes(fragments.reduce((s, [, l]) => s + l, 0));
  const out: [Field, Field][] = fragments;
  if (rng.chance(0.05 * h)) stored = stored.subarray(0, Math.max(0, stored.length - 1)); // too few stored bytes
  else if (rng.chance(0.05 * h)) stored = Buffer.concat([stored, Buffer.from('x')]); // too many
  else if (rng.chance(0.05 * h) && n > 1) [out[0], out[1]] = [out[1], out[0]]; // out of order
  else if (rng.chance(0.05 * h)) realSize = Math.max(0, pos - 1); // past the real size
  else if (rng.chance(0.03 * h) && n > 0) out[0] = [-1n, out[0][1]]; // negative offset
  return { fragments: out, realSize, stored };
}

function malformPax(rng: Rng, records: Buffer): Buffer {
  switch (rng.int(6)) {
    case 0:
      return Buffer.concat([records, Buffer.from('9 a=b\n')]); // length larger than the record
    case 1:
      return Buffer.concat([records, Buffer.from('6 ab\n')]); // no '='
    case 2:
      return Buffer.concat([records, Buffer.from('6 =b\n\n')]); // empty key (and length off)
    case 3:
      return Buffer.concat([records, Buffer.alloc(3)]); // NUL padding inside the size
    case 4:
      return Buffer.concat([records, Buffer.from('10 k\0y=v\n')]); // NUL in a key
    default:
      return Buffer.concat([Buffer.from('011 uid=12\n'), records]); // a leading-zero length (valid)
  }
}

/** A PAX global header: records that never reach later entries (a `path` names it). */
function globalHeader(rng: Rng, h: number): Buffer {
  const records: [string, string][] = [];
  if (rng.chance(0.5)) records.push(['path', rng.pick(['gpath', 'pax_global_header', 'etc/x'])]);
  if (rng.chance(0.5)) records.push(['uid', '7']);
  if (rng.chance(0.3)) records.push(['comment', 'c0ffee']);
  if (rng.chance(0.1 * h)) records.push(['mtime', 'bogus']); // Go names such a header at random
  return member({ magic: 'ustar', typeflag: 'g', name: 'pax_global_header' }, paxRecords(records));
}

export interface GeneratedCase {
  seed: number;
  /** Only forms Go reads were chosen (the archive may still be refused: a truncation, a lie). */
  wellFormed: boolean;
  archive: Buffer;
}

/** One archive of 1–7 entries, then an end (marker, a single zero block, none, garbage, truncation). */
export function generateArchive(seed: number): GeneratedCase {
  const rng = new Rng(seed);
  // Half the archives are well formed (only the forms Go reads), half are hostile.
  const budget: Budget = { hostile: rng.chance(0.5) ? 0 : 1 };
  const parts: Buffer[] = [];
  const n = 1 + rng.int(7);
  for (let i = 0; i < n; i++) {
    if (rng.chance(0.02 + 0.05 * budget.hostile)) parts.push(globalHeader(rng, budget.hostile));
    parts.push(...entry(rng, budget));
  }
  if (rng.chance(0.03 * budget.hostile)) parts.push(member({ magic: 'ustar', typeflag: rng.pick(['x', 'L']), name: 'dangling' }, Buffer.from(rng.chance(0.5) ? '12 path=zzz\n' : 'zzz')));
  let archive = Buffer.concat(parts);
  const end = rng.chance(1 - 0.3 * budget.hostile)
    ? rng.pick(['marker', 'marker', 'marker', 'marker', 'one-zero-block', 'none', 'marker-then-zeros'])
    : rng.pick(['zero-then-header', 'zero-then-partial', 'marker-then-garbage', 'truncated']);
  switch (end) {
    case 'marker':
      archive = Buffer.concat([archive, Buffer.alloc(2 * BLOCK)]);
      break;
    case 'one-zero-block':
      archive = Buffer.concat([archive, Buffer.alloc(BLOCK)]);
      break;
    case 'zero-then-header':
      archive = Buffer.concat([archive, Buffer.alloc(BLOCK), member({ magic: 'ustar', typeflag: '0', name: 'after-zero' }), Buffer.alloc(2 * BLOCK)]);
      break;
    case 'zero-then-partial':
      archive = Buffer.concat([archive, Buffer.alloc(BLOCK), Buffer.alloc(100, 1)]);
      break;
    case 'marker-then-garbage':
      archive = Buffer.concat([archive, Buffer.alloc(2 * BLOCK), member({ magic: 'ustar', typeflag: '0', name: 'hidden' }, Buffer.from('x'))]);
      break;
    case 'marker-then-zeros':
      archive = Buffer.concat([archive, Buffer.alloc(2 * BLOCK + 7 * BLOCK)]);
      break;
    case 'truncated':
      archive = archive.subarray(0, rng.int(archive.length));
      break;
    default:
      break;
  }
  return { seed, wellFormed: budget.hostile === 0, archive };
}
