/**
 * Reads a layer blob whatever its compression: gzip (multi-member too), zstd when this Node has
 * it, or a plain tar, chosen by the first bytes rather than by a media type that may be wrong.
 */
import { PassThrough, Readable, pipeline, type Transform } from 'node:stream';
import * as zlib from 'node:zlib';
import { CloudRootfsError, CorruptArchiveError, LimitExceededError, UnsupportedError } from '../errors';
import { IO_CHUNK } from '../fs';
import { SNIFF_BYTES, detectCompression, type DetectedCompression } from './sniff';
import { createZstdDecompressStream } from './zstd';

export interface DecompressOptions {
  /** Fail with LimitExceededError once more than this many bytes come out (a decompression bomb). */
  maxOutputBytes?: number;
}

/**
 * A transform that undoes the compression `head` (the blob's first bytes) reveals, or passes the
 * bytes through when there is none. xz and bzip2 layers are recognised and refused.
 */
export function createDecoder(head: Uint8Array): Transform {
  const format = detectCompression(head);
  switch (format) {
    case 'gzip':
      // Node's gunzip reads every member of a multi-member file.
      return zlib.createGunzip({ chunkSize: IO_CHUNK });
    case 'zstd':
      return createZstdDecompressStream(IO_CHUNK);
    case 'xz':
    case 'bzip2':
      throw new UnsupportedError(`${format}-compressed layers are not supported; recompress as gzip or zstd`, format);
    default:
      return new PassThrough({ highWaterMark: IO_CHUNK });
  }
}

/** True for the errors zlib and zstd raise on bad input (Z_DATA_ERROR, Z_BUF_ERROR at EOF, ZSTD_…). */
function isCodecError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^(Z_|ZSTD_|ERR_ZLIB|ERR_ZSTD)/.test(code);
}

function describeFailure(format: DetectedCompression | undefined, error: unknown): unknown {
  if (error instanceof CloudRootfsError || !isCodecError(error)) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new CorruptArchiveError(`corrupt or truncated ${format ?? 'compressed'} data: ${message}`, { format }, { cause: error });
}

/**
 * The uncompressed bytes of `source`, in chunks of up to 1 MiB. Corrupt or truncated compressed
 * data fails the stream with CorruptArchiveError; errors of `source` itself pass through as-is.
 */
export function decompressStream(source: Readable, options: DecompressOptions = {}): Readable {
  const max = options.maxOutputBytes ?? Infinity;
  async function* decompressed(): AsyncGenerator<Buffer> {
    const input = source[Symbol.asyncIterator]() as AsyncIterator<Buffer | string>;
    let finished = false;
    try {
      // Gather enough of the head to recognise the format.
      const headParts: Buffer[] = [];
      let headLength = 0;
      while (headLength < SNIFF_BYTES) {
        const next = await input.next();
        if (next.done) {
          finished = true;
          break;
        }
        const chunk = typeof next.value === 'string' ? Buffer.from(next.value) : next.value;
        headParts.push(chunk);
        headLength += chunk.length;
      }
      const head = Buffer.concat(headParts);
      const format = detectCompression(head);
      const decoder = createDecoder(head);

      const feed = async function* (): AsyncGenerator<Buffer> {
        if (head.length > 0) yield head;
        while (!finished) {
          const next = await input.next();
          if (next.done) finished = true;
          else yield typeof next.value === 'string' ? Buffer.from(next.value) : next.value;
        }
      };
      // Errors surface through the iteration of `decoder` below; the callback only keeps them handled.
      pipeline(Readable.from(feed(), { objectMode: false, highWaterMark: IO_CHUNK }), decoder, () => undefined);
      let produced = 0;
      try {
        for await (const chunk of decoder) {
          produced += (chunk as Buffer).length;
          if (produced > max) throw new LimitExceededError('maxOutputBytes', max, 'decompressed data');
          yield chunk as Buffer;
        }
      } catch (error) {
        throw describeFailure(format, error);
      }
    } finally {
      if (!finished) await input.return?.();
    }
  }
  return Readable.from(decompressed(), { objectMode: false, highWaterMark: IO_CHUNK });
}
