/** Recognises compressed data by its first bytes (magic numbers). */

export type DetectedCompression = 'gzip' | 'zstd' | 'xz' | 'bzip2';

/** Bytes of head needed to recognise every format below. */
export const SNIFF_BYTES = 6;

const MAGICS: ReadonlyArray<readonly [DetectedCompression, readonly number[]]> = [
  ['gzip', [0x1f, 0x8b, 0x08]], // ID1 ID2, CM = deflate (the only method in use)
  ['zstd', [0x28, 0xb5, 0x2f, 0xfd]], // frame magic 0xFD2FB528, little-endian
  ['xz', [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]], // 0xFD "7zXZ" 0x00
  ['bzip2', [0x42, 0x5a, 0x68]], // "BZh", followed by the block size digit
];

/**
 * The compression format `head` starts with, or undefined for anything else (a plain tar, or too
 * few bytes to tell). Give it at least SNIFF_BYTES bytes when the stream has them.
 */
export function detectCompression(head: Uint8Array): DetectedCompression | undefined {
  for (const [format, magic] of MAGICS) {
    if (head.length >= magic.length && magic.every((byte, i) => head[i] === byte)) {
      if (format === 'bzip2' && !(head.length > 3 && head[3]! >= 0x31 && head[3]! <= 0x39)) continue;
      return format;
    }
  }
  return undefined;
}

/** True when `head` is the start of a compressed file, which is worth storing rather than deflating. */
export function isCompressed(head: Uint8Array): boolean {
  return detectCompression(head) !== undefined;
}
