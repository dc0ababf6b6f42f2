/**
 * GNU sparse files as Go's archive/tar reads them (docs/reference/tar.md): the maps of the old
 * GNU `S` header and of PAX sparse formats 0.0, 0.1 and 1.0, Go's checks on a map, and the
 * expanded content — the stored fragments in order, holes read as zeros — as lazy Content that
 * streams (a sparse file is never held in memory).
 */
import { Readable } from 'node:stream';
import type { Content } from '../content';
import { SizeMismatchError } from '../errors';
import type { HeaderProblem } from './header';
import { NumberParser } from './header';
import { SPARSE_MAP, parseDecimal } from './pax';

/** One data fragment of a sparse file: `length` stored bytes that belong at `offset`. */
export interface SparseFragment {
  readonly offset: number;
  readonly length: number;
}

/**
 * Most fragments one sparse map may have. Go has no such bound (a map is as long as its header
 * data); we refuse longer maps, which no file of a container image has.
 */
export const MAX_SPARSE_FRAGMENTS = 65_536;

export const SPARSE_NAME = 'GNU.sparse.name';

/**
 * Which PAX sparse format the records declare (Go's `readGNUSparsePAXHeaders`): 0.0/0.1 and 1.0
 * by their version records, 0.x also by a non-empty map without version records; any other
 * version means the entry is not sparse at all.
 */
export function paxSparseFormat(records: ReadonlyMap<string, string> | undefined): '0.x' | '1.0' | undefined {
  if (!records) return undefined;
  const major = records.get('GNU.sparse.major') ?? '';
  const minor = records.get('GNU.sparse.minor') ?? '';
  if (major === '0' && (minor === '0' || minor === '1')) return '0.x';
  if (major === '1' && minor === '0') return '1.0';
  if (major !== '' || minor !== '') return undefined;
  if ((records.get(SPARSE_MAP) ?? '') !== '') return '0.x';
  return undefined;
}

/** The expanded size a PAX sparse entry declares (`GNU.sparse.size`, else `realsize`), if any. */
export function paxSparseSize(records: ReadonlyMap<string, string>): number | HeaderProblem | undefined {
  const size = records.get('GNU.sparse.size') || records.get('GNU.sparse.realsize') || '';
  return size === '' ? undefined : parseDecimal(size);
}

/** Go's `readGNUSparseMap0x1`: `GNU.sparse.numblocks` pairs of decimals in `GNU.sparse.map`. */
export function sparseMap0x1(records: ReadonlyMap<string, string>): SparseFragment[] | HeaderProblem {
  const count = parseDecimal(records.get('GNU.sparse.numblocks') ?? '');
  if (typeof count !== 'number') return 'header';
  if (count < 0) return 'header';
  const text = records.get(SPARSE_MAP) ?? '';
  const parts = text === '' ? [] : text.split(',');
  if (parts.length !== 2 * count) return 'header';
  if (count > MAX_SPARSE_FRAGMENTS) return 'sparse-map-size';
  return pairs(parts);
}

function pairs(parts: readonly string[]): SparseFragment[] | HeaderProblem {
  const out: SparseFragment[] = [];
  let problem: HeaderProblem | undefined;
  for (let i = 0; i + 1 < parts.length; i += 2) {
    const offset = parseDecimal(parts[i]);
    const length = parseDecimal(parts[i + 1]);
    if (offset === 'header' || length === 'header') return 'header';
    if (typeof offset !== 'number' || typeof length !== 'number') {
      problem = 'number-range';
      continue;
    }
    out.push({ offset, length });
  }
  return problem ?? out;
}

/**
 * The newline-terminated decimals of a sparse 1.0 map, at the start of the entry's data. Go reads
 * whole blocks until it holds as many newlines as it needs (`readGNUSparseMap1x0`).
 */
export class SparseMap1x0 {
  private text = '';
  private pos = 0;
  /** Newlines read and not yet consumed. */
  newlines = 0;
  /** Bytes of map blocks read. */
  bytes = 0;

  add(block: Buffer): void {
    this.text = this.text.slice(this.pos) + block.toString('latin1');
    this.pos = 0;
    this.bytes += block.length;
    for (let i = 0; i < block.length; i++) if (block[i] === 0x0a) this.newlines++;
  }

  /** The next token (requires a newline held). */
  token(): string {
    const nl = this.text.indexOf('\n', this.pos);
    const tok = this.text.slice(this.pos, nl);
    this.pos = nl + 1;
    this.newlines--;
    return tok;
  }

  /** The entry count, after one newline was fed: a number ≥ 0, or the problem. */
  count(): number | HeaderProblem {
    const n = parseDecimal(this.token());
    if (typeof n !== 'number') return n === 'header' ? 'header' : 'sparse-map-size';
    if (n < 0) return 'header';
    return n > MAX_SPARSE_FRAGMENTS ? 'sparse-map-size' : n;
  }

  /** The fragments, after 2×count more newlines were fed. */
  fragments(count: number): SparseFragment[] | HeaderProblem {
    const parts: string[] = [];
    for (let i = 0; i < 2 * count; i++) parts.push(this.token());
    return pairs(parts);
  }
}

/**
 * The old GNU map entries at `start` (4 in the header at 386, 21 in an extension block), stopping
 * at the first entry whose offset starts with NUL; returns whether an extension block follows.
 */
export function oldGnuSparseEntries(block: Buffer, start: number, slots: number, parser: NumberParser, out: SparseFragment[]): boolean {
  for (let i = 0; i < slots; i++) {
    const at = start + i * 24;
    if (block[at] === 0) break;
    const offset = parser.numeric(block, at, 12);
    const length = parser.numeric(block, at + 12, 12);
    if (parser.problem) return false;
    out.push({ offset, length });
  }
  return block[start + slots * 24] > 0;
}

/**
 * Go's `validateSparseEntries`: no negative offset or length, no overflow, every fragment within
 * `size`, in order and not overlapping.
 */
export function validSparseMap(fragments: readonly SparseFragment[], size: number): boolean {
  if (size < 0) return false;
  let end = 0;
  for (const f of fragments) {
    if (f.offset < 0 || f.length < 0) return false;
    if (f.offset + f.length > size) return false; // (exact: both are safe integers here)
    if (end > f.offset) return false;
    end = f.offset + f.length;
  }
  return true;
}

/** Bytes the fragments hold: how many stored bytes a sparse entry must have. */
export function storedBytes(fragments: readonly SparseFragment[]): number {
  let n = 0;
  for (const f of fragments) n += f.length;
  return n;
}

const ZERO_CHUNK = 1 << 20;

/**
 * The expanded content of a sparse file: `stored` (its fragments' bytes, back to back) with holes
 * of zeros between and after them, `size` bytes in all. Streams; holes are made as they are read.
 */
export function sparseContent(stored: Content, fragments: readonly SparseFragment[], size: number, source?: string): Content {
  const what = source ?? stored.source ?? 'sparse file';
  async function* expand(): AsyncGenerator<Buffer> {
    const input = stored.open();
    const it = input[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    let pending: Buffer | undefined;
    let pos = 0;
    const zeros = function* (n: number) {
      while (n > 0) {
        const k = Math.min(n, ZERO_CHUNK);
        n -= k;
        yield Buffer.alloc(k);
      }
    };
    try {
      for (const f of fragments) {
        yield* zeros(f.offset - pos);
        let need = f.length;
        while (need > 0) {
          if (!pending || pending.length === 0) {
            const r = await it.next();
            if (r.done) throw new SizeMismatchError(storedBytes(fragments), storedBytes(fragments) - need, what);
            pending = r.value;
          }
          const take = pending.subarray(0, Math.min(need, pending.length));
          pending = pending.subarray(take.length);
          need -= take.length;
          yield take;
        }
        pos = f.offset + f.length;
      }
      yield* zeros(size - pos);
    } finally {
      input.destroy();
    }
  }
  return { size, source: what, open: () => Readable.from(expand(), { objectMode: false, highWaterMark: ZERO_CHUNK }) };
}
