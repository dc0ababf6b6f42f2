/**
 * Byte ranges of a compressed stream without holding it: each reader is a live decompression
 * cursor. A request at or after a reader's position continues it (skipping forward); otherwise a
 * new reader starts from the beginning. Reading a layer's files in archive order — what export,
 * flatten-then-write and diff do — therefore decompresses the blob about once.
 */
import { Readable } from 'node:stream';
import { SizeMismatchError } from '../errors';

interface Cursor {
  iterator: AsyncIterator<Buffer>;
  source: Readable;
  pos: number;
  leftover?: Buffer;
  busy: boolean;
  timer?: NodeJS.Timeout;
}

const IDLE_CLOSE_MS = 3000;
const MAX_IDLE = 2;

export class RangeReaderPool {
  private readonly cursors: Cursor[] = [];

  constructor(
    private readonly openStream: () => Readable,
    private readonly what = 'stream',
  ) {}

  /** A stream of exactly `size` bytes starting at `offset` of the (uncompressed) stream. */
  open(offset: number, size: number): Readable {
    const pool = this;
    async function* range(): AsyncGenerator<Buffer> {
      if (size === 0) return;
      const cursor = pool.acquire(offset);
      let ok = false;
      try {
        await pool.skip(cursor, offset);
        let remaining = size;
        while (remaining > 0) {
          const chunk = await pool.next(cursor);
          if (!chunk) throw new SizeMismatchError(size, size - remaining, pool.what);
          if (chunk.length > remaining) {
            cursor.leftover = chunk.subarray(remaining);
            cursor.pos += remaining;
            const part = chunk.subarray(0, remaining);
            remaining = 0;
            yield part;
          } else {
            cursor.pos += chunk.length;
            remaining -= chunk.length;
            yield chunk;
          }
        }
        ok = true;
      } finally {
        pool.release(cursor, ok);
      }
    }
    return Readable.from(range(), { objectMode: false, highWaterMark: 1 << 20 });
  }

  /** Close every cursor. */
  close(): void {
    for (const c of this.cursors.splice(0)) this.destroy(c);
  }

  private acquire(offset: number): Cursor {
    let best: Cursor | undefined;
    for (const c of this.cursors) {
      if (!c.busy && c.pos <= offset && (!best || c.pos > best.pos)) best = c;
    }
    if (!best) {
      const source = this.openStream();
      best = { source, iterator: source[Symbol.asyncIterator]() as AsyncIterator<Buffer>, pos: 0, busy: false };
      this.cursors.push(best);
    }
    best.busy = true;
    if (best.timer) clearTimeout(best.timer);
    best.timer = undefined;
    return best;
  }

  private release(cursor: Cursor, ok: boolean): void {
    cursor.busy = false;
    if (!ok) {
      // Position unknown after an error or an abandoned read: start afresh next time.
      this.drop(cursor);
      return;
    }
    const idle = this.cursors.filter((c) => !c.busy);
    if (idle.length > MAX_IDLE) {
      const lowest = idle.reduce((a, b) => (a.pos <= b.pos ? a : b));
      this.drop(lowest);
    }
    if (this.cursors.includes(cursor)) {
      cursor.timer = setTimeout(() => this.drop(cursor), IDLE_CLOSE_MS);
      cursor.timer.unref();
    }
  }

  private drop(cursor: Cursor): void {
    const i = this.cursors.indexOf(cursor);
    if (i >= 0) this.cursors.splice(i, 1);
    this.destroy(cursor);
  }

  private destroy(cursor: Cursor): void {
    if (cursor.timer) clearTimeout(cursor.timer);
    cursor.source.destroy();
  }

  private async next(cursor: Cursor): Promise<Buffer | undefined> {
    if (cursor.leftover) {
      const b = cursor.leftover;
      cursor.leftover = undefined;
      return b;
    }
    const r = await cursor.iterator.next();
    return r.done ? undefined : r.value;
  }

  private async skip(cursor: Cursor, offset: number): Promise<void> {
    while (cursor.pos < offset) {
      const chunk = await this.next(cursor);
      if (!chunk) throw new SizeMismatchError(offset, cursor.pos, this.what);
      const need = offset - cursor.pos;
      if (chunk.length > need) {
        cursor.leftover = chunk.subarray(need);
        cursor.pos = offset;
      } else {
        cursor.pos += chunk.length;
      }
    }
  }
}
