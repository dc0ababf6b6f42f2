/**
 * Encoders over a single Node compression stream: the reference gzip (one zlib deflate stream), zstd,
 * and the pass-through used for uncompressed layers. Same Encoder contract as the parallel gzip.
 */
import { once } from 'node:events';
import type { Transform } from 'node:stream';
import * as zlib from 'node:zlib';
import { UsageError } from '../errors';
import { IO_CHUNK } from '../fs';
import { assertCrc32Available, gzipHeader, gzipTrailer } from './gzip-format';
import { checkInteger } from './options';
import { DEFAULT_GZIP_LEVEL } from './pgzip';
import type { CompressionAlgorithm, EncodeSummary, Encoder, Sink, WriteHint } from './types';
import { createZstdCompressStream } from './zstd';

export const DEFAULT_ZSTD_LEVEL = 3;
/** Stored input goes to zlib in pieces of this size (see GzipEncoder.feed). */
const STORE_PIECE = 64 * 1024;

/** Shared plumbing: write with backpressure, pump the stream's output into the sink in order. */
abstract class StreamEncoder implements Encoder {
  abstract readonly algorithm: CompressionAlgorithm;
  protected inputSize = 0;
  protected outputSize = 0;
  protected crc = 0;
  private readonly pumped: Promise<void>;
  private calls: Promise<unknown> = Promise.resolve();
  private failure: { error: unknown } | undefined;
  private ending: Promise<EncodeSummary> | undefined;

  protected constructor(
    protected readonly stream: Transform,
    private readonly sink: Sink,
    private readonly framing: { header?: Buffer; trailer?: (crc32: number, inputSize: number) => Buffer } = {},
  ) {
    this.pumped = this.pump();
    this.pumped.catch((error) => this.fail(error));
  }

  write(data: Buffer, hint?: WriteHint): Promise<void> {
    if (this.ending) return Promise.reject(new UsageError('write() called after end()'));
    return this.enqueue(async () => {
      this.throwIfFailed();
      if (data.length === 0) return;
      this.crc = zlib.crc32(data, this.crc);
      this.inputSize += data.length;
      await this.feed(data, hint?.store === true);
    });
  }

  end(): Promise<EncodeSummary> {
    this.ending ??= this.enqueue(async () => {
      this.throwIfFailed();
      await this.beforeEnd();
      this.stream.end();
      await this.pumped.catch(() => undefined); // a pump failure is recorded in `failure`
      this.throwIfFailed();
      return this.summary();
    });
    return this.ending;
  }

  abort(reason: unknown = new UsageError('encoder aborted')): void {
    this.fail(reason);
  }

  /** Passes input to the stream; subclasses may treat stored ranges specially. */
  protected async feed(data: Buffer, _stored: boolean): Promise<void> {
    await this.push(data);
  }

  /** Runs before the stream is ended (to flush input a subclass holds back). */
  protected async beforeEnd(): Promise<void> {}

  /** Writes to the stream, waiting for drain when its buffer is full. */
  protected async push(data: Buffer): Promise<void> {
    if (!this.stream.write(data)) await this.settled(once(this.stream, 'drain'));
  }

  protected summary(): EncodeSummary {
    return { algorithm: this.algorithm, inputSize: this.inputSize, outputSize: this.outputSize };
  }

  /** Waits for `event` unless the pump fails first (a destroyed stream never emits drain). */
  protected async settled(event: Promise<unknown>): Promise<void> {
    try {
      await Promise.race([event, this.pumped]);
    } catch (error) {
      this.fail(error); // keeps the first cause if one is recorded (the sink's error, an abort reason)
    }
    this.throwIfFailed();
  }

  private async pump(): Promise<void> {
    if (this.framing.header) await this.deliver(this.framing.header);
    for await (const chunk of this.stream) await this.deliver(chunk as Buffer);
    if (this.framing.trailer) await this.deliver(this.framing.trailer(this.crc, this.inputSize));
  }

  private async deliver(chunk: Buffer): Promise<void> {
    this.outputSize += chunk.length;
    await this.sink(chunk);
  }

  private enqueue<T>(task: () => Promise<T>): Promise<T> {
    const run = this.calls.then(task);
    this.calls = run.catch(() => undefined);
    return run;
  }

  private fail(error: unknown): void {
    if (this.failure) return;
    this.failure = { error };
    this.stream.destroy();
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure.error;
  }
}

export interface GzipEncoderOptions {
  /** zlib level 0..9 (default 4). */
  level?: number;
}

/**
 * Single-threaded gzip: one raw deflate stream (1 MiB chunks) between our own fixed header and
 * trailer. Without store hints its bytes equal `zlib.gzipSync(input, { level })` on Unix; it is
 * the reference for the parallel encoder. Store hints switch the stream to level 0 and back with
 * `params()` (which sync-flushes at the switch), so they save CPU here too. Raw deflate rather
 * than `zlib.createGzip` because Node ignores `params()` on gzip-mode streams, and because our
 * header's OS byte does not change with the platform Node was built for.
 */
export class GzipEncoder extends StreamEncoder {
  readonly algorithm = 'gzip' as const;
  readonly level: number;
  private currentLevel: number;
  private storePiece: Buffer | undefined;
  private storeLength = 0;

  constructor(sink: Sink, options: GzipEncoderOptions = {}) {
    const level = checkInteger('level', options.level ?? DEFAULT_GZIP_LEVEL, 0, 9);
    assertCrc32Available();
    super(zlib.createDeflateRaw({ level, chunkSize: IO_CHUNK }), sink, { header: gzipHeader(level), trailer: gzipTrailer });
    this.level = level;
    this.currentLevel = level;
  }

  protected override async feed(data: Buffer, stored: boolean): Promise<void> {
    const storing = stored || this.level === 0;
    await this.switchLevel(storing ? 0 : this.level);
    if (!storing) return this.push(data);
    // zlib's stored mode cuts its blocks where its input calls end, so stored input is re-cut into
    // fixed pieces counted from the start of the range: the output then does not depend on how the
    // caller happened to chunk it.
    let offset = 0;
    while (offset < data.length) {
      this.storePiece ??= Buffer.allocUnsafe(STORE_PIECE);
      const n = data.copy(this.storePiece, this.storeLength, offset, offset + STORE_PIECE - this.storeLength);
      this.storeLength += n;
      offset += n;
      if (this.storeLength === STORE_PIECE) await this.pushStorePiece();
    }
  }

  protected override async beforeEnd(): Promise<void> {
    await this.pushStorePiece();
  }

  private async pushStorePiece(): Promise<void> {
    if (!this.storePiece || this.storeLength === 0) return;
    const piece = this.storePiece.subarray(0, this.storeLength);
    this.storePiece = undefined; // handed to the stream, which may still hold it
    this.storeLength = 0;
    await this.push(piece);
  }

  private async switchLevel(level: number): Promise<void> {
    if (level === this.currentLevel) return;
    await this.pushStorePiece();
    this.currentLevel = level;
    const deflate = this.stream as zlib.DeflateRaw & zlib.ZlibParams; // params() exists at runtime; the typings omit it
    await this.settled(new Promise<void>((resolve) => deflate.params(level, zlib.constants.Z_DEFAULT_STRATEGY, () => resolve())));
  }

  protected override summary(): EncodeSummary {
    return { ...super.summary(), crc32: this.crc };
  }
}

export interface ZstdEncoderOptions {
  /** zstd level 1..19 (default 3). */
  level?: number;
}

/** zstd through Node's zlib (Node >= 22.15); throws UnsupportedError on older Node. */
export class ZstdEncoder extends StreamEncoder {
  readonly algorithm = 'zstd' as const;
  readonly level: number;

  constructor(sink: Sink, options: ZstdEncoderOptions = {}) {
    const level = checkInteger('level', options.level ?? DEFAULT_ZSTD_LEVEL, 1, 19);
    super(createZstdCompressStream(level, IO_CHUNK), sink);
    this.level = level;
  }
}

/** No compression: bytes go straight to the sink (for `application/vnd.oci.image.layer.v1.tar`). */
export class IdentityEncoder implements Encoder {
  readonly algorithm = 'none' as const;
  private size = 0;
  private calls: Promise<unknown> = Promise.resolve();
  private failure: { error: unknown } | undefined;
  private ending: Promise<EncodeSummary> | undefined;

  constructor(private readonly sink: Sink) {}

  write(data: Buffer, _hint?: WriteHint): Promise<void> {
    if (this.ending) return Promise.reject(new UsageError('write() called after end()'));
    return this.enqueue(async () => {
      if (this.failure) throw this.failure.error;
      if (data.length === 0) return;
      this.size += data.length;
      await this.sink(data);
    });
  }

  end(): Promise<EncodeSummary> {
    this.ending ??= this.enqueue(async () => {
      if (this.failure) throw this.failure.error;
      return { algorithm: 'none' as const, inputSize: this.size, outputSize: this.size };
    });
    return this.ending;
  }

  abort(reason: unknown = new UsageError('encoder aborted')): void {
    this.failure ??= { error: reason };
  }

  private enqueue<T>(task: () => Promise<T>): Promise<T> {
    const run = this.calls.then(task);
    this.calls = run.catch(() => undefined);
    return run;
  }
}
