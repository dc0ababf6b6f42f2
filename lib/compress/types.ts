/**
 * The shape every layer compressor shares, so the layer writer drives gzip, zstd and "none"
 * the same way: push tar bytes in with `write` (awaiting it is the backpressure), then `end`.
 */

export type CompressionAlgorithm = 'gzip' | 'zstd' | 'none';

/**
 * Receives the compressed bytes in order. A returned promise is awaited before the next chunk is
 * delivered, so a slow file or upload slows the encoder down instead of piling up memory.
 * Chunks are never reused by the encoder afterwards: the sink may keep them.
 */
export type Sink = (chunk: Buffer) => void | Promise<void>;

export interface WriteHint {
  /**
   * The bytes are already compressed (a gzip/zstd/xz/bzip2 file inside the tar): emit them as
   * stored deflate blocks instead of spending CPU to gain about 1% (docs/reference/io-baseline.md#already-compressed-input).
   */
  store?: boolean;
}

/** What the encoder did, including the facts of the gzip trailer. */
export interface EncodeSummary {
  algorithm: CompressionAlgorithm;
  /** Uncompressed bytes written in (the layer's tar size). */
  inputSize: number;
  /** Bytes handed to the sink, header and trailer included (the blob size). */
  outputSize: number;
  /** CRC-32 of the input, as written in the gzip trailer (gzip only). */
  crc32?: number;
}

export interface Encoder {
  readonly algorithm: CompressionAlgorithm;
  /**
   * Compress `data`. Resolves when the encoder can take more. As with `stream.write`, `data` is
   * handed over: do not modify it afterwards (some encoders hold it until it is compressed).
   * Calls are processed in call order even if the caller does not await each one.
   */
  write(data: Buffer, hint?: WriteHint): Promise<void>;
  /** Flush everything to the sink (trailer included). Calling it again returns the same result. */
  end(): Promise<EncodeSummary>;
  /** Stop early: drop pending output and make further calls fail with `reason`. */
  abort(reason?: unknown): void;
}
