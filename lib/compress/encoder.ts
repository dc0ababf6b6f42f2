/** One entry point that picks the layer encoder for an algorithm. */
import { UsageError } from '../errors';
import { ParallelGzipEncoder, type ParallelGzipOptions } from './pgzip';
import { GzipEncoder, IdentityEncoder, ZstdEncoder } from './stream-encoders';
import type { CompressionAlgorithm, Encoder, Sink } from './types';

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
