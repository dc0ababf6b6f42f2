/**
 * zstd comes with Node's zlib only from Node 22.15 / 23.8 (experimental there). This module is
 * the one place that knows how to find it, so encoder and decoder fail the same clear way.
 */
import * as zlib from 'node:zlib';
import type { Transform } from 'node:stream';
import { UnsupportedError } from '../errors';

interface ZstdZlib {
  createZstdCompress?: (options?: { params?: Record<number, number>; chunkSize?: number }) => Transform;
  createZstdDecompress?: (options?: { chunkSize?: number }) => Transform;
  constants: { ZSTD_c_compressionLevel?: number };
}

const zstdZlib = zlib as unknown as ZstdZlib;

export function zstdAvailable(): boolean {
  return typeof zstdZlib.createZstdCompress === 'function' && typeof zstdZlib.createZstdDecompress === 'function';
}

/** Throws UnsupportedError (the same words as the encoder) when this Node has no zstd. */
export function requireZstd(what = 'zstd compression'): void {
  if (!zstdAvailable() || zstdZlib.constants.ZSTD_c_compressionLevel === undefined) throw unsupported(what);
}

function unsupported(what: string): UnsupportedError {
  return new UnsupportedError(
    `${what} needs Node.js >= 22.15 (zlib.createZstdCompress); this is Node ${process.version}. ` +
      'Use gzip, or run on a newer Node.',
    'zstd',
    { nodeVersion: process.version, requires: '>=22.15.0' },
  );
}

export function createZstdCompressStream(level: number, chunkSize: number): Transform {
  const create = zstdZlib.createZstdCompress;
  const levelParam = zstdZlib.constants.ZSTD_c_compressionLevel;
  if (!create || levelParam === undefined) throw unsupported('zstd compression');
  return create({ params: { [levelParam]: level }, chunkSize });
}

export function createZstdDecompressStream(chunkSize: number): Transform {
  const create = zstdZlib.createZstdDecompress;
  if (!create) throw unsupported('zstd decompression');
  return create({ chunkSize });
}
