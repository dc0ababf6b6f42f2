import { execFileSync } from 'node:child_process';
import * as zlib from 'node:zlib';
import { SNIFF_BYTES, detectCompression, isCompressed } from '../../lib/compress';
import { findTool } from '../support/tools';
import { textBytes } from './fixtures';

describe('detectCompression', () => {
  it.each([
    ['gzip', [0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00]],
    ['zstd', [0x28, 0xb5, 0x2f, 0xfd, 0x04, 0x00]],
    ['xz', [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
    ['bzip2', [0x42, 0x5a, 0x68, 0x39, 0x31, 0x41]],
  ])('recognises %s by its magic', (format, bytes) => {
    expect(detectCompression(Buffer.from(bytes))).toBe(format);
    expect(isCompressed(Buffer.from(bytes))).toBe(true);
  });

  it('recognises real zlib gzip output', () => {
    expect(detectCompression(zlib.gzipSync(textBytes(100)))).toBe('gzip');
  });

  it.each([
    ['a tar header', Buffer.concat([Buffer.from('etc/kubernetes/admin.conf'), Buffer.alloc(487)])],
    ['text starting with BZh but no block-size digit', Buffer.from('BZhello')],
    ['gzip magic with a non-deflate method', Buffer.from([0x1f, 0x8b, 0x07, 0, 0, 0])],
    ['a truncated magic', Buffer.from([0xfd, 0x37, 0x7a])],
    ['nothing', Buffer.alloc(0)],
    ['a raw deflate stream', zlib.deflateRawSync(textBytes(100))],
  ])('returns undefined for %s', (_name, head) => {
    expect(detectCompression(head)).toBeUndefined();
    expect(isCompressed(head)).toBe(false);
  });

  it('needs no more than SNIFF_BYTES bytes', () => {
    expect(SNIFF_BYTES).toBe(6);
    expect(detectCompression(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]).subarray(0, SNIFF_BYTES))).toBe('xz');
  });

  // Cross-check against the real tools where this machine has them (optional: the magic test above is the contract).
  it.each([
    ['zstd', ['zstd', '-c', '-q']],
    ['xz', ['xz', '-c']],
    ['bzip2', ['bzip2', '-c']],
    ['gzip', ['gzip', '-c', '-n']],
  ])('recognises output of the %s tool', (format, [tool, ...args]) => {
    if (!findTool(tool!)) return; // optional cross-check; the byte-level cases above always run
    const out = execFileSync(tool!, args, { input: textBytes(1000) });
    expect(detectCompression(out.subarray(0, SNIFF_BYTES))).toBe(format);
  });
});
