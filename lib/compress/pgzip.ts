/**
 * Parallel gzip, pigz style, on Node's own zlib: the input is cut into fixed blocks, each block
 * is raw-deflated on the libuv threadpool with the previous 32 KiB as its dictionary and ends on a
 * sync flush (the last one on Z_FINISH), and the pieces are concatenated into ONE gzip member.
 * Measured at 1.8x a single zlib stream on 2 cores with the same ratio (docs/reference/io-baseline.md#parallel-gzip).
 *
 * Determinism: block boundaries depend only on the input bytes, the store ranges and blockSize,
 * and each block's deflate input is (block, dictionary, level), so the output never depends on
 * concurrency, write chunking or timing. It does depend on the zlib that Node bundles.
 */
import { availableParallelism } from 'node:os';
import * as zlib from 'node:zlib';
import { UsageError } from '../errors';
import { assertCrc32Available, deflateBound, gzipHeader, gzipTrailer, storedBlocks } from './gzip-format';
import { checkInteger } from './options';
import type { EncodeSummary, Encoder, Sink, WriteHint } from './types';

export interface ParallelGzipOptions {
  /** zlib level 0..9 (default 4). Level 0 writes stored blocks only. */
  level?: number;
  /** Uncompressed bytes per block (default 1 MiB). Part of the output's identity: pin it. */
  blockSize?: number;
  /**
   * Blocks compressing or waiting for the sink at once (default: the cores + 2, see
   * defaultGzipConcurrency). Memory is about concurrency x (blockSize + compressed block). Above
   * 4, raise UV_THREADPOOL_SIZE, which file reads share.
   */
  concurrency?: number;
}

/**
 * Level 4, not zlib's customary 6: on real Kubernetes binaries Node's zlib at 6 costs 1.9× the CPU
 * of umoci's whole layer build for 1.6% less output; at 4 a cold build is about 0.2× `gzip -6` and
 * 1.2–1.5× umoci with output smaller than umoci's (docs/performance.md). Pass `level: 6` for the
 * last 1.6%, `level: 1` for speed.
 */
export const DEFAULT_GZIP_LEVEL = 4;
export const DEFAULT_BLOCK_SIZE = 1 << 20;
/**
 * Two blocks more than there are cores: while the main thread fills (reads, tars, hashes) the
 * next block, every core still has one queued. With exactly one per core a core idles at each
 * hand-over: on 2 cores a level-1 build of the 413 MB bench fixture took 2.3 s at 2, 2.15 s at 4
 * (docs/performance.md). Output does not depend on it.
 */
export function defaultGzipConcurrency(): number {
  return availableParallelism() + 2;
}

/** deflate's window: a block may refer back this far into the bytes before it. */
const WINDOW_SIZE = 32 * 1024;
const MIN_BLOCK_SIZE = 1024;
const MAX_BLOCK_SIZE = 64 << 20;
const EMPTY = Buffer.alloc(0);

function deflateBlock(input: Buffer, dictionary: Buffer, level: number, final: boolean): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    zlib.deflateRaw(
      input,
      {
        level,
        dictionary: dictionary.length > 0 ? dictionary : undefined,
        finishFlush: final ? zlib.constants.Z_FINISH : zlib.constants.Z_SYNC_FLUSH,
        chunkSize: deflateBound(input.length),
      },
      (err, out) => (err ? reject(err) : resolve(out)),
    );
  });
}

/** The last WINDOW_SIZE bytes of `previous` followed by `block`, copied (block buffers are reused). */
function nextWindow(previous: Buffer, block: Buffer): Buffer {
  if (block.length >= WINDOW_SIZE) return Buffer.from(block.subarray(block.length - WINDOW_SIZE));
  const keep = Math.min(previous.length, WINDOW_SIZE - block.length);
  return Buffer.concat([previous.subarray(previous.length - keep), block]);
}

export class ParallelGzipEncoder implements Encoder {
  readonly algorithm = 'gzip' as const;
  readonly level: number;
  readonly blockSize: number;
  readonly concurrency: number;

  private block: Buffer | undefined;
  private blockLength = 0;
  private blockStored = false;
  /** Input bytes just before the current block, used as its deflate dictionary. */
  private window: Buffer = EMPTY;
  private readonly spareBlocks: Buffer[] = [];
  private crc = 0;
  private inputSize = 0;
  private outputSize = 0;
  /** Blocks dispatched whose output has not yet been accepted by the sink. */
  private inFlight = 0;
  private wakeWriter: (() => void) | undefined;
  /** Delivers outputs to the sink in block order; never rejects (failures go to `failure`). */
  private delivery: Promise<void>;
  /** Serialises write/end calls so unawaited calls still run in order. */
  private calls: Promise<unknown> = Promise.resolve();
  private failure: { error: unknown } | undefined;
  private ending: Promise<EncodeSummary> | undefined;

  constructor(
    private readonly sink: Sink,
    options: ParallelGzipOptions = {},
  ) {
    this.level = checkInteger('level', options.level ?? DEFAULT_GZIP_LEVEL, 0, 9);
    this.blockSize = checkInteger('blockSize', options.blockSize ?? DEFAULT_BLOCK_SIZE, MIN_BLOCK_SIZE, MAX_BLOCK_SIZE);
    this.concurrency = checkInteger('concurrency', options.concurrency ?? defaultGzipConcurrency(), 1, 1024);
    assertCrc32Available();
    const header = gzipHeader(this.level);
    this.delivery = Promise.resolve().then(() => this.deliver(header)).catch((error) => this.fail(error));
  }

  write(data: Buffer, hint?: WriteHint): Promise<void> {
    if (this.ending) return Promise.reject(new UsageError('write() called after end()'));
    return this.enqueue(() => this.append(data, hint?.store === true));
  }

  end(): Promise<EncodeSummary> {
    this.ending ??= this.enqueue(() => this.finish());
    return this.ending;
  }

  abort(reason: unknown = new UsageError('encoder aborted')): void {
    this.fail(reason);
  }

  private enqueue<T>(task: () => Promise<T>): Promise<T> {
    const run = this.calls.then(task);
    this.calls = run.catch(() => undefined);
    return run;
  }

  private async append(data: Buffer, stored: boolean): Promise<void> {
    this.throwIfFailed();
    if (data.length === 0) return;
    stored ||= this.level === 0;
    this.crc = zlib.crc32(data, this.crc);
    this.inputSize += data.length;
    // A change between stored and deflated bytes cuts the block, so each block has one mode.
    if (stored !== this.blockStored && this.blockLength > 0) await this.dispatch(false);
    this.blockStored = stored;
    let offset = 0;
    while (offset < data.length) {
      // A full block is sent only once more input arrives: then we know it is not the last one.
      if (this.blockLength === this.blockSize) await this.dispatch(false);
      this.block ??= this.spareBlocks.pop() ?? Buffer.allocUnsafe(this.blockSize);
      const n = data.copy(this.block, this.blockLength, offset, Math.min(data.length, offset + this.blockSize - this.blockLength));
      this.blockLength += n;
      offset += n;
    }
  }

  private async finish(): Promise<EncodeSummary> {
    this.throwIfFailed();
    // The final block may be empty (empty input): deflate then emits just the end-of-stream block.
    await this.dispatch(true);
    await this.delivery;
    this.throwIfFailed();
    await this.deliver(gzipTrailer(this.crc, this.inputSize));
    this.spareBlocks.length = 0;
    this.block = undefined;
    return { algorithm: 'gzip', inputSize: this.inputSize, outputSize: this.outputSize, crc32: this.crc };
  }

  /** Hands the current block to the threadpool once a slot is free, then starts a new block. */
  private async dispatch(final: boolean): Promise<void> {
    while (this.inFlight >= this.concurrency) {
      await new Promise<void>((resolve) => (this.wakeWriter = resolve));
      this.throwIfFailed();
    }
    this.throwIfFailed();
    const buffer = this.block;
    const input = buffer ? buffer.subarray(0, this.blockLength) : EMPTY;
    const dictionary = this.window;
    this.window = nextWindow(dictionary, input);
    this.block = undefined;
    this.blockLength = 0;

    let job: Promise<Buffer>;
    if (this.blockStored || (this.level === 0 && input.length === 0)) {
      job = Promise.resolve(storedBlocks(input, final)); // copies synchronously
      this.recycle(buffer);
    } else {
      job = deflateBlock(input, dictionary, this.level, final);
      job.then(
        () => this.recycle(buffer),
        () => undefined, // the failure is reported through the delivery chain
      );
    }
    this.inFlight++;
    this.delivery = this.delivery.then(async () => {
      try {
        if (this.failure) return;
        const out = await job;
        if (!this.failure) await this.deliver(out);
      } catch (error) {
        this.fail(error);
      } finally {
        this.inFlight--;
        this.wake();
      }
    });
  }

  private recycle(buffer: Buffer | undefined): void {
    if (buffer && !this.ending && this.spareBlocks.length < this.concurrency) this.spareBlocks.push(buffer);
  }

  private async deliver(chunk: Buffer): Promise<void> {
    if (chunk.length === 0) return;
    this.outputSize += chunk.length;
    await this.sink(chunk);
  }

  private fail(error: unknown): void {
    this.failure ??= { error };
    this.wake();
  }

  private wake(): void {
    const wake = this.wakeWriter;
    this.wakeWriter = undefined;
    wake?.();
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure.error;
  }
}
