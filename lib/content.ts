/**
 * Lazy file content. Nothing reads bytes until something (an export, a diff that must compare
 * bytes) opens the content, so a Rootfs of gigabytes costs only its metadata in memory.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { CloudRootfsError, SizeMismatchError } from './errors';
import { FileSystem, IO_CHUNK, readChunkFor } from './fs';

export interface Content {
  /** Byte length. */
  readonly size: number;
  /** A fresh stream of exactly `size` bytes each time it is called. */
  open(): Readable;
  /** `sha256:<hex>` when known without reading (buffers, verified blobs, caches). */
  readonly digest?: string;
  /** Where the bytes come from, for error messages (`/ctx/etc/daemon.json`, `layer sha256:…`). */
  readonly source?: string;
  /** Set when the bytes are exactly a file (or a window of one): readers may seek instead of stream. */
  readonly file?: { readonly fs: FileSystem; readonly path: string; readonly offset: number };
  /**
   * True when every `open()` stream fails *before it ends* unless its bytes are exactly `size`
   * bytes hashing to `digest` (a registry blob: the client hashes as they pass). A writer that
   * names its file only after a clean end then needs no hash of its own.
   */
  readonly selfVerifying?: boolean;
}

/** True when reading `content` checks it against `expected` on its own (see Content.selfVerifying). */
export function verifiesItself(content: Content, expected: { digest: string; size: number }): boolean {
  return content.selfVerifying === true && content.digest === expected.digest && content.size === expected.size;
}

/** Content held in memory (small files the builder writes: configs, Metadata, link files). */
export function bufferContent(data: Buffer | string): Content {
  const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  return {
    size: buf.length,
    digest: 'sha256:' + createHash('sha256').update(buf).digest('hex'),
    open: () => Readable.from([buf], { objectMode: false }),
    source: 'memory',
  };
}

/**
 * Content of a file on an injected filesystem. `size` is the size seen when the Rootfs was read; a
 * file that changed length since then fails loudly on read instead of producing a corrupt tar.
 */
export function fileContent(fs: FileSystem, path: string, size: number, digest?: string): Content {
  return {
    size,
    digest,
    source: path,
    file: { fs, path, offset: 0 },
    open: () => checkedLength(fs.createReadStream(path, { highWaterMark: readChunkFor(size) }), size, path),
  };
}

/** A window `[offset, offset+size)` of a file, e.g. an entry of an uncompressed tar on disk. */
export function fileRangeContent(fs: FileSystem, path: string, offset: number, size: number, source?: string): Content {
  return {
    size,
    source: source ?? `${path}@${offset}`,
    file: { fs, path, offset },
    open: () =>
      size === 0
        ? Readable.from([], { objectMode: false })
        : checkedLength(fs.createReadStream(path, { start: offset, end: offset + size - 1, highWaterMark: readChunkFor(size) }), size, path),
  };
}

/** Wrap a stream so that it errors if it yields more or fewer than `size` bytes. */
export function checkedLength(stream: Readable, size: number, what: string): Readable {
  let seen = 0;
  const out = new Readable({
    highWaterMark: IO_CHUNK,
    read() {
      stream.resume();
    },
    destroy(err, cb) {
      stream.destroy();
      cb(err);
    },
  });
  stream.on('data', (chunk: Buffer) => {
    seen += chunk.length;
    if (seen > size) {
      stream.destroy();
      out.destroy(new SizeMismatchError(size, seen, what));
      return;
    }
    if (!out.push(chunk)) stream.pause();
  });
  stream.on('end', () => {
    if (seen !== size) out.destroy(new SizeMismatchError(size, seen, what));
    else out.push(null);
  });
  stream.on('error', (err) => out.destroy(err));
  return out;
}

export async function readContent(content: Content, limit = 64 << 20): Promise<Buffer> {
  if (content.size > limit) {
    throw new CloudRootfsError('LIMIT_EXCEEDED', `refusing to read ${content.size} bytes into memory (limit ${limit})`, {
      size: content.size,
      limit,
    });
  }
  const chunks: Buffer[] = [];
  for await (const chunk of content.open()) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** The first `bytes` bytes (fewer if the content is shorter), reading no further. */
export async function readContentHead(content: Content, bytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  const stream = content.open();
  try {
    for await (const chunk of stream) {
      chunks.push(chunk as Buffer);
      n += (chunk as Buffer).length;
      if (n >= bytes) break;
    }
  } finally {
    stream.destroy();
  }
  return Buffer.concat(chunks).subarray(0, bytes);
}

export async function readContentText(content: Content, limit?: number): Promise<string> {
  return (await readContent(content, limit)).toString('utf8');
}

/** sha256 of the content, streaming; uses the known digest when there is one. */
export async function contentDigest(content: Content): Promise<string> {
  if (content.digest) return content.digest;
  const hash = createHash('sha256');
  for await (const chunk of content.open()) hash.update(chunk as Buffer);
  return 'sha256:' + hash.digest('hex');
}

/**
 * Digests computed for lazily-read content, so a diff that hashes a file does so once. Keyed by
 * the Content object: two Rootfs that share an entry share its content object too.
 */
const digestMemo = new WeakMap<Content, Promise<string>>();

export function memoDigest(content: Content): Promise<string> {
  if (content.digest) return Promise.resolve(content.digest);
  let p = digestMemo.get(content);
  if (!p) {
    p = contentDigest(content);
    digestMemo.set(content, p);
    p.catch(() => digestMemo.delete(content));
  }
  return p;
}

/** Byte equality without holding either side: same object, size, then digests. */
export async function contentEquals(a: Content, b: Content): Promise<boolean> {
  if (a === b) return true;
  if (a.size !== b.size) return false;
  if (a.digest && b.digest) return a.digest === b.digest;
  const [da, db] = await Promise.all([memoDigest(a), memoDigest(b)]);
  return da === db;
}
