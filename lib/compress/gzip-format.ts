import * as zlib from 'node:zlib';
import { UnsupportedError } from '../errors';

/**
 * The byte-level pieces of a gzip member (RFC 1952) and of raw stored deflate blocks (RFC 1951
 * §3.2.4) that the parallel encoder assembles around zlib's raw deflate output.
 */

const GZIP_HEADER_SIZE = 10;
/** Largest payload of one stored deflate block (LEN is 16 bits). */
const STORED_BLOCK_MAX = 0xffff;
const STORED_BLOCK_OVERHEAD = 5;

/**
 * The extra-flags byte zlib itself writes for `level`, so our header matches `zlib.gzip`'s:
 * 2 = slowest (level 9), 4 = fastest (levels 0 and 1), 0 otherwise.
 */
export function gzipXfl(level: number): number {
  if (level === 9) return 2;
  if (level <= 1) return 4;
  return 0;
}

/** A fixed 10-byte gzip header: deflate, no flags, MTIME 0 (reproducible), OS 3 (Unix). */
export function gzipHeader(level: number): Buffer {
  const header = Buffer.alloc(GZIP_HEADER_SIZE);
  header[0] = 0x1f;
  header[1] = 0x8b;
  header[2] = 8; // CM = deflate
  header[3] = 0; // FLG: no FTEXT, FHCRC, FEXTRA, FNAME or FCOMMENT
  // bytes 4..7: MTIME = 0, left zero
  header[8] = gzipXfl(level);
  header[9] = 3; // OS = Unix, whatever the host, so digests do not depend on the platform
  return header;
}

/** zlib.crc32 arrived in Node 20.15 / 22.2; fail with a clear message on older runtimes. */
export function assertCrc32Available(): void {
  if (typeof (zlib as { crc32?: unknown }).crc32 !== 'function') {
    throw new UnsupportedError(`gzip encoding needs Node.js >= 20.15 (zlib.crc32); this is Node ${process.version}`, 'zlib.crc32', {
      nodeVersion: process.version,
      requires: '>=20.15.0',
    });
  }
}

/** The 8-byte trailer: CRC-32 of the uncompressed data, then its size modulo 2^32. */
export function gzipTrailer(crc32: number, inputSize: number): Buffer {
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(crc32 >>> 0, 0);
  trailer.writeUInt32LE(inputSize % 0x1_0000_0000, 4);
  return trailer;
}

/**
 * `input` as a run of stored deflate blocks. Every stored block starts and ends on a byte
 * boundary, so the run can sit between sync-flushed deflate blocks without any bit fiddling.
 * With `final` the last block carries BFINAL; an empty final run is the 5-byte empty stored block.
 */
export function storedBlocks(input: Buffer, final: boolean): Buffer {
  const blocks = Math.max(1, Math.ceil(input.length / STORED_BLOCK_MAX));
  if (input.length === 0 && !final) return Buffer.alloc(0);
  const out = Buffer.allocUnsafe(input.length + blocks * STORED_BLOCK_OVERHEAD);
  let at = 0;
  for (let i = 0; i < blocks; i++) {
    const start = i * STORED_BLOCK_MAX;
    const len = Math.min(STORED_BLOCK_MAX, input.length - start);
    out[at] = final && i === blocks - 1 ? 1 : 0; // BFINAL bit, BTYPE 00, then padding to the byte
    out.writeUInt16LE(len, at + 1);
    out.writeUInt16LE(~len & 0xffff, at + 3);
    input.copy(out, at + STORED_BLOCK_OVERHEAD, start, start + len);
    at += STORED_BLOCK_OVERHEAD + len;
  }
  return out;
}

/**
 * An upper bound on raw deflate output for `n` input bytes plus a sync-flush marker. zlib's
 * conservative deflateBound is n + n/32 + n/128 + n/2048 + 7; a little slack on top keeps every
 * block to one output buffer, hence one threadpool job with no round trips to the main thread.
 */
export function deflateBound(n: number): number {
  return n + (n >>> 5) + (n >>> 7) + (n >>> 11) + 64;
}
