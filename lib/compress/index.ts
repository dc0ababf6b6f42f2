export type { CompressionAlgorithm, EncodeSummary, Encoder, Sink, WriteHint } from './types';
export { ParallelGzipEncoder, DEFAULT_BLOCK_SIZE, DEFAULT_GZIP_LEVEL, type ParallelGzipOptions } from './pgzip';
export {
  GzipEncoder,
  ZstdEncoder,
  IdentityEncoder,
  DEFAULT_ZSTD_LEVEL,
  type GzipEncoderOptions,
  type ZstdEncoderOptions,
} from './stream-encoders';
export { checkEncoding, createEncoder, type EncoderOptions } from './encoder';
export { detectCompression, isCompressed, SNIFF_BYTES, type DetectedCompression } from './sniff';
export { createDecoder, decompressStream, type DecompressOptions } from './decode';
export { DigestCounter, digestAlgorithm, digestOfBuffer, digestOfStream, hashingTransform, teeSink, type Digest, type DigestAlgorithm, type Sha256Digest } from './digest';
export { zstdAvailable } from './zstd';
