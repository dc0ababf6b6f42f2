/** The CLI's long outputs are written piece by piece, at the reader's pace, and read the same. */
import { Writable } from 'node:stream';
import type { CommandContext } from '../../lib/cli/command';
import { printJsonPaced, printPaced } from '../../lib/cli/command';

/** A stdout that takes a byte budget, then signals backpressure and drains later. */
class SlowSink extends Writable {
  text = '';
  maxQueued = 0;
  constructor() {
    super({ highWaterMark: 1024 });
  }
  override _write(chunk: Buffer, _enc: string, cb: () => void): void {
    this.text += chunk.toString();
    this.maxQueued = Math.max(this.maxQueued, this.writableLength);
    setImmediate(cb);
  }
}

const ctxOf = (stdout: Writable) => ({ stdout }) as unknown as CommandContext;

describe('paced output', () => {
  test.each([
    ['a list of objects', [{ path: 'a', size: 1, target: undefined }, { path: 'b\nc', mode: '0755', nested: { deep: [1, { x: null }] } }]],
    ['an object of lists', { added: [{ p: 1 }], removed: [], changed: [{ what: ['mode', 'owner'], before: { a: 1 } }], totals: { n: 0 } }],
    ['empty containers and scalars', { a: [], b: {}, c: 'x', d: 1.5, e: true, f: null, g: undefined }],
    ['an empty list', []],
    ['a scalar', 'just text'],
  ])('JSON of %s reads as JSON.stringify(value, null, 2)', async (_what, value) => {
    const sink = new SlowSink();
    await printJsonPaced(ctxOf(sink), value);
    await new Promise<void>((resolve) => sink.end(resolve));
    expect(sink.text).toBe(JSON.stringify(value, null, 2) + '\n');
  });

  test('a long listing waits for the reader instead of queueing in memory', async () => {
    const sink = new SlowSink();
    const line = 'x'.repeat(100);
    for (let i = 0; i < 5000; i++) await printPaced(ctxOf(sink), line);
    await new Promise<void>((resolve) => sink.end(resolve));
    expect(sink.text.length).toBe(5000 * 101);
    // Queued at most one line past the high-water mark (unpaced, all 500 KB would queue).
    expect(sink.maxQueued).toBeLessThan(2048);
  });

  test('a closed stdout does not hang the listing', async () => {
    const sink = new SlowSink();
    sink.destroy();
    await printPaced(ctxOf(sink), 'after close');
  });
});
