/**
 * Where the tar reader gets its bytes: a stream it pulls chunks from (layers, compressed
 * archives), or a file it seeks in (uncompressed archives: data is skipped without being read).
 */
import type { FsFileHandle } from '../fs';

/** Forward-only bytes with a position. */
export interface TarInput {
  /** Bytes consumed (read or skipped) so far. */
  readonly position: number;
  /** The next `n` bytes; fewer only when the input ends first (then possibly none). */
  read(n: number): Promise<Buffer>;
  /** Skip `n` bytes; resolves to how many were skipped (fewer only when the input ends first). */
  skip(n: number): Promise<number>;
}

/** A stream's chunks, pulled on demand (backpressure is the consumer's pace). */
export class StreamInput implements TarInput {
  position = 0;
  private readonly chunks: Buffer[] = [];
  private first = 0; // index of the first chunk still held
  private head = 0; // bytes of chunks[first] already consumed
  private buffered = 0;
  private ended = false;

  constructor(private readonly source: AsyncIterator<Buffer>) {}

  private async pull(): Promise<boolean> {
    if (this.ended) return false;
    const r = await this.source.next();
    if (r.done) {
      this.ended = true;
      return false;
    }
    if (r.value.length > 0) {
      this.chunks.push(r.value);
      this.buffered += r.value.length;
    }
    return true;
  }

  private dropConsumed(): void {
    if (this.first > 64) {
      this.chunks.splice(0, this.first);
      this.first = 0;
    }
  }

  async read(n: number): Promise<Buffer> {
    while (this.buffered < n && (await this.pull()));
    const take = Math.min(n, this.buffered);
    const c = this.chunks[this.first];
    let out: Buffer;
    if (take === 0) return Buffer.alloc(0);
    if (c.length - this.head >= take) {
      out = c.subarray(this.head, this.head + take);
      this.consume(take);
    } else {
      out = Buffer.allocUnsafe(take);
      let at = 0;
      while (at < take) {
        const chunk = this.chunks[this.first];
        const k = Math.min(chunk.length - this.head, take - at);
        chunk.copy(out, at, this.head, this.head + k);
        at += k;
        this.consume(k);
      }
    }
    return out;
  }

  async skip(n: number): Promise<number> {
    let left = n;
    while (left > 0) {
      if (this.buffered === 0 && !(await this.pull())) break;
      if (this.buffered === 0) continue;
      const chunk = this.chunks[this.first];
      const k = Math.min(chunk.length - this.head, left);
      this.consume(k);
      left -= k;
    }
    return n - left;
  }

  private consume(k: number): void {
    this.head += k;
    this.buffered -= k;
    this.position += k;
    if (this.head === this.chunks[this.first].length) {
      this.chunks[this.first] = EMPTY;
      this.first++;
      this.head = 0;
      this.dropConsumed();
    }
  }
}

const EMPTY = Buffer.alloc(0);

/** Headers of small members sit close together: read windows, not single blocks. */
const READ_AHEAD = 64 * 1024;

/** A file of known size read by seeking: skipping reads nothing. */
export class FileInput implements TarInput {
  position = 0;
  private window = EMPTY;
  private windowStart = 0;

  constructor(
    private readonly handle: Pick<FsFileHandle, 'read'>,
    private readonly size: number,
  ) {}

  async read(n: number): Promise<Buffer> {
    const want = Math.max(0, Math.min(n, this.size - this.position));
    if (this.position < this.windowStart || this.position + want > this.windowStart + this.window.length) {
      const length = Math.max(0, Math.min(Math.max(want, READ_AHEAD), this.size - this.position));
      const buf = Buffer.alloc(length);
      let got = 0;
      while (got < length) {
        const { bytesRead } = await this.handle.read(buf, got, length - got, this.position + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      this.window = buf.subarray(0, got);
      this.windowStart = this.position;
    }
    const from = this.position - this.windowStart;
    const out = this.window.subarray(from, Math.min(this.window.length, from + want));
    this.position += out.length;
    return out;
  }

  async skip(n: number): Promise<number> {
    const k = Math.max(0, Math.min(n, this.size - this.position));
    this.position += k;
    return k;
  }
}
