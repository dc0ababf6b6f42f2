/** Deterministic test data for the compression specs (seeded, so failures reproduce). */
import * as zlib from 'node:zlib';
import type { Encoder, EncodeSummary, Sink, WriteHint } from '../../lib/compress';

/** xorshift32: fast, seeded, good enough to make incompressible bytes. */
export function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

export function randomBytes(size: number, seed = 1): Buffer {
  const next = prng(seed);
  const out = Buffer.alloc(size);
  for (let i = 0; i + 4 <= size; i += 4) out.writeUInt32LE(next(), i);
  for (let i = size - (size % 4); i < size; i++) out[i] = next() & 0xff;
  return out;
}

const WORDS = ['kube', 'apiserver', 'etcd', 'sealer', 'node', 'image', 'layer', 'registry', 'config', 'pod', 'true', '- name:', '\n', '  '];

/** yaml-ish text: compresses like real config files (to roughly a quarter). */
export function textBytes(size: number, seed = 2): Buffer {
  const next = prng(seed);
  const parts: string[] = [];
  let length = 0;
  while (length < size) {
    const word = WORDS[next() % WORDS.length]! + (next() % 7 === 0 ? String(next() % 1000) : '') + ' ';
    parts.push(word);
    length += word.length;
  }
  return Buffer.from(parts.join('')).subarray(0, size);
}

/** Already-compressed bytes (gzip -1 of 4 x size bytes of text: roughly size bytes), like a registry blob. */
export function gzippedBytes(size: number, seed = 3): Buffer {
  return zlib.gzipSync(textBytes(size * 4, seed), { level: 1 });
}

export interface Piece {
  data: Buffer;
  hint?: WriteHint;
}

/** Runs `pieces` through the encoder built on the sink; returns all output bytes. */
export async function encode(make: (sink: Sink) => Encoder, pieces: Piece[]): Promise<{ out: Buffer; summary: EncodeSummary }> {
  const chunks: Buffer[] = [];
  const encoder = make((chunk) => {
    chunks.push(chunk);
  });
  for (const piece of pieces) await encoder.write(piece.data, piece.hint);
  const summary = await encoder.end();
  return { out: Buffer.concat(chunks), summary };
}

/** Re-cuts pieces into writes of pseudo-random sizes (1..maxChunk), keeping each piece's hint. */
export function rechunk(pieces: Piece[], maxChunk: number, seed: number): Piece[] {
  const next = prng(seed);
  const out: Piece[] = [];
  for (const piece of pieces) {
    let offset = 0;
    while (offset < piece.data.length) {
      const size = 1 + (next() % maxChunk);
      out.push({ data: piece.data.subarray(offset, offset + size), hint: piece.hint });
      offset += size;
    }
  }
  return out;
}

export function concatPieces(pieces: Piece[]): Buffer {
  return Buffer.concat(pieces.map((p) => p.data));
}

/** A tar-like mix: text, then a stored gzip blob, then binary, then another blob. */
export function mixedPieces(): Piece[] {
  return [
    { data: textBytes(300_000, 10) },
    { data: gzippedBytes(200_000, 11), hint: { store: true } },
    { data: randomBytes(512, 12) },
    { data: textBytes(70_001, 13) },
    { data: gzippedBytes(90_000, 14), hint: { store: true } },
    { data: textBytes(1_000, 15) },
  ];
}
