/**
 * Progress for long operations: a one-line bar redrawn on a terminal's stderr, nothing at all
 * when stderr is not a terminal or with `-q`. It consumes the events the API's `onProgress`
 * callbacks give (WriteProgress per blob, archive bytes, layer verification).
 */
import type { Writable } from 'node:stream';
import type { CommandContext } from './command';
import type { TransferProgress } from '../transports';
import { humanSize } from './common';

const REDRAW_MS = 100;
const WIDTH = 24;

export class ProgressLine {
  private last = 0;
  private drawn = false;
  private layers = 0;
  private skipped = 0;

  constructor(
    private readonly stream: Writable,
    private readonly enabled: boolean,
    private readonly label: string,
  ) {}

  /** Feed an API progress event. */
  readonly onProgress = (event: TransferProgress): void => {
    if (!this.enabled) return;
    switch (event.phase) {
      case 'layer':
        this.layers++;
        if (event.skipped) this.skipped++;
        this.draw(`${this.label}: ${this.layers} layer(s) ready${this.skipped ? ` (${this.skipped} already there)` : ''}`);
        break;
      case 'verify':
        this.draw(`${this.label}: verifying layers ${this.bar(event.done, event.total)} ${event.done}/${event.total}`, event.done === event.total);
        break;
      case 'archive':
        this.draw(`${this.label}: ${this.bar(event.done, event.total)} ${humanSize(event.done)}/${humanSize(event.total)}`, event.done === event.total);
        break;
      default:
        break;
    }
  };

  private bar(done: number, total: number): string {
    const f = total > 0 ? Math.min(1, done / total) : 1;
    const n = Math.round(f * WIDTH);
    return `[${'='.repeat(n)}${' '.repeat(WIDTH - n)}] ${String(Math.floor(f * 100)).padStart(3)}%`;
  }

  private draw(text: string, force = false): void {
    const now = Date.now();
    if (!force && now - this.last < REDRAW_MS) return;
    this.last = now;
    this.stream.write(`\r\x1b[K${text}`);
    this.drawn = true;
  }

  /** Clear the line (call before printing results). */
  done(): void {
    if (this.drawn) this.stream.write('\r\x1b[K');
    this.drawn = false;
  }
}

/** The progress line for this invocation: drawn only on a terminal and without `-q`. */
export function progressFor(ctx: CommandContext, label: string): ProgressLine {
  return new ProgressLine(ctx.stderr, ctx.interactive && !ctx.args.options.quiet, label);
}
