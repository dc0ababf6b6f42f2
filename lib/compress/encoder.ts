/** One entry point that picks the layer encoder for an algorithm. */
import { UsageError } from '../errors';
import { checkInteger } from './options';
import { ParallelGzipEncoder, type ParallelGzipOptions } from './pgzip';
import { GzipEncoder, IdentityEncoder, ZstdEncoder } from './stream-encoders';
import type { CompressionAlgorithm, Encoder, Sink } from './types';
import { requireZstd } from './zstd';

/**
 * Refuse, before any work is done, encoding settings no encoder would take: an unknown
 * algorithm, a level outside its range (gzip 0-9, zstd 1-19), a level without compression, zstd
 * where this Node has none. The same checks the encoders make when they start, made early.
 */
export function checkEncoding(options: { compression?: string; level?: number }): void {
  const { compression = 'gzip', level } = options;
  switch (compression) {
    case 'gzip':
      if (level !== undefined) checkInteger('level', level, 0, 9);
      return;
    case 'zstd':
      if (level !== undefined) checkInteger('level', level, 1, 19);
      requireZstd();
      return;
    case 'none':
      if (level !== undefined) throw new UsageError(`a compression level (${level}) means nothing without compression (none)`);
      return;
    default:
      throw new UsageError(`unknown compression algorithm ${JSON.stringify(compression)} (gzip, zstd or none)`);
  }
}

export interface EncoderOptions extends ParallelGzipOptions {
  algorithm: CompressionAlgorithm;
  /**
   * gzip only. 'parallel' (default) is the block-parallel encoder, whose bytes do not depend on
   * `concurrency`; 'stream' is one zlib.createGzip stream (different bytes, one core).
   */
  gzipEngine?: 'parallel' | 'stream';
}

/**
 * The encoder for `options.algorithm`, writing to `sink`. `level` means the zlib level for gzip
 * (default 4) and the zstd level for zstd (default 3). zstd throws UnsupportedError on Node < 22.15.
 */
export function createEncoder(sink: Sink, options: EncoderOptions): Encoder {
  switch (options.algorithm) {
    case 'gzip':
      return options.gzipEngine === 'stream'
        ? new GzipEncoder(sink, { level: options.level })
        : new ParallelGzipEncoder(sink, options);
    case 'zstd':
      return new ZstdEncoder(sink, { level: options.level });
    case 'none':
      return new IdentityEncoder(sink);
    default:
      throw new UsageError(`unknown compression algorithm ${JSON.stringify(options.algorithm as unknown)}`);
  }
}
