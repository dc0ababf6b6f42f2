/**
 * Layer → tar → (diff_id) → compression → (digest, size) → sink, in one streaming pass.
 *
 * Reproducible by construction (docs/reference/oci.md#reproducible-layer-tarballs): canonical order (tar names in byte order, whiteouts
 * before their siblings, parents before children), numeric uid/gid with empty user/group names,
 * mtimes clamped to the source date epoch (default 0), PAX only when a value does not fit USTAR,
 * PAX records in a fixed order, a 1024-byte trailer, gzip with MTIME 0. The same Layer always
 * gives the same diff_id; with the same zlib, the same digest.
 */
import { Readable } from 'node:stream';
import * as tarStream from 'tar-stream';
import { createEncoder, DigestCounter, detectCompression, ParallelGzipEncoder, type CompressionAlgorithm } from '../compress';
import { Entry, FileEntry, IMPLICIT_DIRECTORY } from '../entry';
import { IO_CHUNK } from '../fs';
import { OPAQUE_WHITEOUT, WHITEOUT_PREFIX, baseName, joinPath, parentPath } from '../path';
import { Layer } from '../layer/layer';
import { SizeMismatchError } from '../errors';
import { MEDIA_TYPES } from '../media-types';

export interface LayerTarOptions {
  /** Upper bound for every mtime, in seconds (SOURCE_DATE_EPOCH). Default 0. */
  sourceDateEpoch?: number;
}

export interface EncodeLayerOptions extends LayerTarOptions {
  compression?: CompressionAlgorithm;
  /** gzip level 1-9 (default 4) or zstd level (default 3). */
  level?: number;
  /** Parallel gzip blocks in flight (default: available cores). Never changes the output bytes. */
  concurrency?: number;
  /** Store (not re-deflate) files that are already compressed. Default true. */
  storeCompressed?: boolean;
  signal?: AbortSignal;
}

export interface EncodedLayer {
  /** sha256 of the uncompressed tar: `config.rootfs.diff_ids[i]`. */
  diffId: string;
  /** sha256 of the blob as stored: the manifest's layer digest. */
  digest: string;
  size: number;
  mediaType: string;
  uncompressedSize: number;
  compression: CompressionAlgorithm;
}

const TYPE_BITS = { file: 0o100000, directory: 0o040000, symlink: 0o120000, link: 0o100000 } as const;
const USTAR_MAX_ID = 0o7777777;
const USTAR_MAX_SIZE = 0o77777777777;
/** Files smaller than this are deflated whatever they hold: storing them gains nothing. */
const STORE_MIN_SIZE = 64 * 1024;

type TarHeader = tarStream.Header & { pax?: Record<string, string> };

function headerFor(name: string, entry: Entry | undefined, type: keyof typeof TYPE_BITS, epoch: number, size = 0, linkname?: string): TarHeader {
  const e = entry ?? IMPLICIT_DIRECTORY;
  const pax: Record<string, string> = {};
  if (e.uid > USTAR_MAX_ID) pax.uid = String(e.uid);
  if (e.gid > USTAR_MAX_ID) pax.gid = String(e.gid);
  if (size > USTAR_MAX_SIZE) pax.size = String(size);
  if (e.xattrs) for (const k of Object.keys(e.xattrs).sort()) pax[`SCHILY.xattr.${k}`] = e.xattrs[k];
  const mtime = Math.max(0, Math.min(e.mtime, epoch));
  return {
    name: type === 'directory' ? name + '/' : name,
    // Type bits keep tar-stream from mistaking mode 0 for "unset"; only 0o7777 is encoded.
    mode: (e.mode & 0o7777) | TYPE_BITS[type],
    uid: Math.min(e.uid, USTAR_MAX_ID),
    gid: Math.min(e.gid, USTAR_MAX_ID),
    size,
    mtime: new Date(mtime * 1000),
    type,
    linkname: linkname ?? '',
    uname: '',
    gname: '',
    devmajor: 0,
    devminor: 0,
    ...(Object.keys(pax).length > 0 ? { pax } : {}),
  };
}

function whiteoutHeader(name: string): TarHeader {
  return headerFor(name, { type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0 } as Entry, 'file', 0);
}

interface PackedEntry {
  header: TarHeader;
  file?: FileEntry;
}

/** The tar entries of a layer, in canonical order (parents the layer only implies included). */
export function* layerTarEntries(layer: Layer, options: LayerTarOptions = {}): Generator<PackedEntry> {
  const epoch = options.sourceDateEpoch ?? 0;
  // Every path already in the archive, whatever its type: a parent that the layer lists as a file
  // or symlink was written as such (canonical order puts it before its children) and must not be
  // repeated as a directory, which would change what the layer means.
  const emitted = new Set<string>(['']);
  const firstPathOf = new Map<Entry, string>();
  function* parents(path: string): Generator<PackedEntry> {
    const missing: string[] = [];
    for (let p = parentPath(path); !emitted.has(p); p = parentPath(p)) missing.push(p);
    for (const p of missing.reverse()) {
      emitted.add(p);
      yield { header: headerFor(p, layer.get(p) ?? IMPLICIT_DIRECTORY, 'directory', epoch) };
    }
  }
  for (const step of layer.steps()) {
    if (step.kind === 'opaque') {
      const name = joinPath(step.path, OPAQUE_WHITEOUT);
      yield* parents(name);
      yield { header: whiteoutHeader(name) };
      continue;
    }
    if (step.kind === 'whiteout') {
      const name = joinPath(parentPath(step.path), WHITEOUT_PREFIX + baseName(step.path));
      yield* parents(name);
      yield { header: whiteoutHeader(name) };
      continue;
    }
    const { path } = step;
    const entry = step.node.entry!;
    if (path === '') {
      yield { header: { ...headerFor('.', entry, 'directory', epoch), name: './' } };
      continue;
    }
    yield* parents(path);
    emitted.add(path);
    switch (entry.type) {
      case 'directory':
        yield { header: headerFor(path, entry, 'directory', epoch) };
        break;
      case 'symlink':
        yield { header: headerFor(path, entry, 'symlink', epoch, 0, entry.target) };
        break;
      case 'hardlink':
        yield { header: headerFor(path, entry, 'link', epoch, 0, entry.target) };
        break;
      case 'file': {
        const first = firstPathOf.get(entry);
        if (first !== undefined) {
          yield { header: headerFor(path, entry, 'link', epoch, 0, first) };
        } else {
          firstPathOf.set(entry, path);
          yield { header: headerFor(path, entry, 'file', epoch, entry.content.size), file: entry };
        }
        break;
      }
    }
  }
}

/** Files at most this big are read whole, ahead of the packer, several at a time. */
const PREFETCH_MAX_FILE = 256 * 1024;
const PREFETCH_WINDOW = 64;
const PREFETCH_BYTES = 16 << 20;

type Prefetched = PackedEntry & { data?: Promise<Buffer> };

async function readSmall(content: FileEntry['content']): Promise<Buffer> {
  const f = content.file!;
  const buf =
    f.offset === 0
      ? await f.fs.promises.readFile(f.path)
      : await (async () => {
          const parts: Buffer[] = [];
          for await (const c of content.open()) parts.push(c as Buffer);
          return Buffer.concat(parts);
        })();
  if (buf.length !== content.size) throw new SizeMismatchError(content.size, buf.length, content.source ?? f.path);
  return buf;
}

/**
 * Entries in order, with the bytes of small on-disk files already being read: opening files one
 * after another leaves the pool idle between round trips, which dominates for many small files.
 * Only file-backed content is read ahead; blob windows are read in order (their cursors go forward).
 */
function* prefetching(entries: Iterable<PackedEntry>): Generator<Prefetched> {
  const it = entries[Symbol.iterator]();
  const window: Prefetched[] = [];
  let bytes = 0;
  let done = false;
  const fill = () => {
    while (!done && window.length < PREFETCH_WINDOW && bytes < PREFETCH_BYTES) {
      const next = it.next();
      if (next.done) {
        done = true;
        break;
      }
      const item: Prefetched = next.value;
      const c = item.file?.content;
      if (c && c.file && c.size > 0 && c.size <= PREFETCH_MAX_FILE) {
        bytes += c.size;
        item.data = readSmall(c);
        item.data.catch(() => undefined); // surfaced when the packer awaits it
      }
      window.push(item);
    }
  };
  fill();
  while (window.length > 0) {
    const item = window.shift()!;
    if (item.data) bytes -= item.file!.content.size;
    yield item;
    fill();
  }
}

/**
 * Read buffers for file contents, given back by the consumer once the encoder has copied their
 * bytes. Every fresh 1 MiB Buffer counts as V8 external memory, and allocating one per MiB of
 * layer made V8 run a full mark-compact every few dozen MiB (about 8% of a build's CPU); reusing
 * a handful of buffers avoids most of them. Chunks are lent as the buffer itself or a view of it.
 */
class ChunkPool {
  private readonly free: Buffer[] = [];
  private readonly owners = new WeakMap<Buffer, Buffer>();

  take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafeSlow(IO_CHUNK);
  }

  lend(base: Buffer, length: number): Buffer {
    const chunk = length === base.length ? base : base.subarray(0, length);
    this.owners.set(chunk, base);
    return chunk;
  }

  /** The consumer is done with `chunk`: its buffer may be read into again. */
  give(chunk: Buffer): void {
    const base = this.owners.get(chunk);
    if (!base) return;
    this.owners.delete(chunk);
    if (this.free.length < 8) this.free.push(base);
  }
}

/**
 * Feed a layer into a tar-stream pack. Content chunks of already-compressed files are recorded in
 * `stored`: tar-stream pushes the very Buffer objects it is given, so the consumer can tell them apart.
 * With a `pool`, files are read into its buffers (the consumer gives them back).
 */
async function packLayer(layer: Layer, pack: tarStream.Pack, options: LayerTarOptions, stored?: WeakSet<Buffer>, pool?: ChunkPool): Promise<void> {
  for (const { header, file, data } of prefetching(layerTarEntries(layer, options))) {
    const whole = data ? await data : undefined;
    await new Promise<void>((resolve, reject) => {
      const sink = pack.entry(header, (err) => (err ? reject(err) : resolve()));
      // Failures reach the caller through reject(); the sink's own error event is only an echo.
      sink.on('error', () => undefined);
      if (!file || file.content.size === 0) {
        sink.end(undefined);
        return;
      }
      if (whole) {
        if (stored && whole.length >= STORE_MIN_SIZE && detectCompression(whole) !== undefined) stored.add(whole);
        sink.end(whole);
        return;
      }
      const f = file.content.file;
      void (pool && f ? pipeFile(file, f, sink, pool, stored) : pipeContent(file, sink, stored)).then(
        () => sink.end(undefined),
        (err) => {
          sink.destroy(err);
          reject(err);
        },
      );
    });
  }
  pack.finalize();
}

async function pipeContent(file: FileEntry, sink: ReturnType<tarStream.Pack['entry']>, stored?: WeakSet<Buffer>): Promise<void> {
  let first = true;
  let store = false;
  const source = file.content.open();
  try {
    for await (const chunk of source) {
      const buf = chunk as Buffer;
      if (first) {
        first = false;
        store = stored !== undefined && file.content.size >= STORE_MIN_SIZE && detectCompression(buf) !== undefined;
      }
      if (store) stored!.add(buf);
      if (!sink.write(buf)) await new Promise<void>((resolve) => sink.once('drain', () => resolve()));
    }
  } finally {
    source.destroy();
  }
}

/** Room in the entry again; a closed entry (the pack was destroyed: an error, an abort) ends the wait too. */
function drained(sink: ReturnType<tarStream.Pack['entry']>): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onDrain = (): void => {
      sink.off('close', onClose);
      resolve();
    };
    const onClose = (): void => {
      sink.off('drain', onDrain);
      reject(new Error('the tar entry was closed before the file was written'));
    };
    sink.once('drain', onDrain);
    sink.once('close', onClose);
  });
}

/** A file's bytes (or a window of a file) read straight into pooled buffers. */
async function pipeFile(
  file: FileEntry,
  f: NonNullable<FileEntry['content']['file']>,
  sink: ReturnType<tarStream.Pack['entry']>,
  pool: ChunkPool,
  stored?: WeakSet<Buffer>,
): Promise<void> {
  const size = file.content.size;
  const what = file.content.source ?? f.path;
  const fh = await f.fs.promises.open(f.path, 'r');
  try {
    let done = 0;
    let store = false;
    while (done < size) {
      const base = pool.take();
      const { bytesRead } = await fh.read(base, 0, Math.min(base.length, size - done), f.offset + done);
      if (bytesRead === 0) throw new SizeMismatchError(size, done, what);
      const chunk = pool.lend(base, bytesRead);
      if (done === 0) store = stored !== undefined && size >= STORE_MIN_SIZE && detectCompression(chunk) !== undefined;
      if (store) stored!.add(chunk);
      done += bytesRead;
      if (!sink.write(chunk)) await drained(sink);
    }
    if (f.offset === 0) {
      // A whole file must not have grown since it was listed either (as checkedLength checks).
      const probe = Buffer.allocUnsafe(1);
      const { bytesRead } = await fh.read(probe, 0, 1, size);
      if (bytesRead > 0) throw new SizeMismatchError(size, size + bytesRead, what);
    }
  } finally {
    await fh.close();
  }
}

/** The layer as an uncompressed tar stream (no hashing). */
export function layerTarStream(layer: Layer, options: LayerTarOptions = {}): Readable {
  const pack = tarStream.pack({ highWaterMark: IO_CHUNK });
  packLayer(layer, pack, options).catch((err) => pack.destroy(err));
  return Readable.from(pack as unknown as AsyncIterable<Buffer>, { objectMode: false, highWaterMark: IO_CHUNK });
}

export function layerMediaType(compression: CompressionAlgorithm): string {
  return compression === 'gzip' ? MEDIA_TYPES.layerGzip : compression === 'zstd' ? MEDIA_TYPES.layerZstd : MEDIA_TYPES.layer;
}

/**
 * Write the layer's blob to `sink` in one pass and return its descriptor facts. `sink` receives the
 * compressed bytes in order; a returned promise is awaited (backpressure).
 */
export async function encodeLayer(
  layer: Layer,
  sink: (chunk: Buffer) => void | Promise<void>,
  options: EncodeLayerOptions = {},
): Promise<EncodedLayer> {
  const compression = options.compression ?? 'gzip';
  const stored = options.storeCompressed === false || compression !== 'gzip' ? undefined : new WeakSet<Buffer>();
  const diffId = new DigestCounter();
  const digest = new DigestCounter();
  const encoder = createEncoder(
    (chunk) => {
      digest.update(chunk);
      return sink(chunk);
    },
    { algorithm: compression, level: options.level, concurrency: options.concurrency },
  );
  const pack = tarStream.pack({ highWaterMark: IO_CHUNK });
  const onAbort = () => pack.destroy(options.signal?.reason ?? new Error('aborted'));
  options.signal?.addEventListener('abort', onAbort, { once: true });
  // Only the parallel gzip encoder copies every chunk before write() resolves: then (and only
  // then) read buffers can be reused.
  const pool = encoder instanceof ParallelGzipEncoder ? new ChunkPool() : undefined;
  const producing = packLayer(layer, pack, options, stored, pool).catch((err) => {
    pack.destroy(err);
    throw err;
  });
  // Awaited below (the loop ends with the pack's error); until then its rejection is not unhandled.
  producing.catch(() => undefined);
  try {
    for await (const chunk of pack as unknown as AsyncIterable<Buffer>) {
      diffId.update(chunk);
      await encoder.write(chunk, stored?.has(chunk) ? { store: true } : undefined);
      if (pool) {
        stored?.delete(chunk);
        pool.give(chunk);
      }
    }
    await producing;
    await encoder.end();
  } catch (err) {
    encoder.abort(err);
    pack.destroy(err as Error);
    await producing.catch(() => undefined);
    throw err;
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }
  return {
    diffId: diffId.digest(),
    digest: digest.digest(),
    size: digest.size,
    mediaType: layerMediaType(compression),
    uncompressedSize: diffId.size,
    compression,
  };
}
