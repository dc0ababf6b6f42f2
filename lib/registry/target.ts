/**
 * A BlobTarget over one repository of a registry, for `writeTarget` (which owns the order:
 * layers, config, manifests, indexes). What this adds:
 *
 * - `has` asks the registry (HEAD blob, or HEAD manifest for manifest media types) and remembers
 *   the answer, so a second push of the same image sends no blob at all.
 * - `putContent` uploads a stored blob whose digest is known (monolithic POST + PUT), after a
 *   cross-repository mount from where the blob came from (same registry) or `mountFrom`.
 * - `putLayer` encodes a changeset layer straight into a streaming upload: the tar, compression
 *   and hashing run in one pass and the digest is known only when the upload ends; the client
 *   commits it with the digest it measured, checked against the encoder's.
 * - Manifests are PUT by digest as `writeTarget` reports them, one step behind: the last one (the
 *   image's manifest or the top index) is held until `commit(tag)` PUTs it by tag. So a tag is
 *   written once, last, after every blob and child manifest the registry confirmed.
 */
import { Readable } from 'node:stream';
import { Content } from '../content';
import { RegistryError, UsageError } from '../errors';
import { IO_CHUNK } from '../fs';
import { Layer } from '../layer/layer';
import { isIndexMediaType, isManifestMediaType } from '../media-types';
import { encodeLayer, type EncodedLayer, type EncodeLayerOptions } from '../tar/write';
import type { BlobTarget, WriteProgress } from '../image/write';
import type { Descriptor } from '../image/types';
import { blobOrigin, registryBlobContent } from './blob-content';
import type { BlobSource, PutBlobResult, RegistryClient } from './client';

/** Progress of a push or pull: `writeTarget`'s events, plus running byte counts per blob. */
export type RegistryProgress = WriteProgress | { phase: 'bytes'; digest?: string; done: number; total?: number };

export interface RegistryTargetOptions {
  /** Repositories of the same registry that may hold the blobs (tried as cross-repository mounts). */
  mountFrom?: readonly string[];
  /** Upload streamed layers in `Content-Range` chunks of this many bytes instead of one PATCH. */
  chunkSize?: number;
  onProgress?: (event: RegistryProgress) => void;
  signal?: AbortSignal;
}

export interface PushStats {
  /** Blobs (layers, configs) sent. */
  uploaded: number;
  /** Blobs the registry took from another repository. */
  mounted: number;
  /** Blobs the registry already had. */
  existing: number;
  /** Bytes sent for blobs. */
  bytesUploaded: number;
  /** Manifests and indexes PUT (by digest or tag). */
  manifests: number;
}

interface HeldManifest {
  bytes: Buffer;
  descriptor: Descriptor;
}

export function isManifestLike(mediaType: string | undefined): boolean {
  return isManifestMediaType(mediaType) || isIndexMediaType(mediaType);
}

export class RegistryTarget implements BlobTarget {
  readonly stats: PushStats = { uploaded: 0, mounted: 0, existing: 0, bytesUploaded: 0, manifests: 0 };
  /** Digests the registry confirmed it holds (HEAD, or our own committed upload). */
  private readonly present = new Set<string>();
  /** One upload per digest even when two layers of a write share a blob. */
  private readonly uploads = new Map<string, Promise<void>>();
  private held: HeldManifest | undefined;
  /** Repositories of this registry the written blobs came from: where a config likely is too. */
  private readonly sourceRepositories = new Set<string>();

  constructor(
    readonly client: RegistryClient,
    readonly repository: string,
    private readonly options: RegistryTargetOptions = {},
  ) {}

  async has(descriptor: Descriptor): Promise<boolean> {
    if (this.present.has(descriptor.digest)) return true;
    const signal = this.options.signal;
    const found = isManifestLike(descriptor.mediaType)
      ? (await this.client.headManifest(this.repository, descriptor.digest, { signal })) !== undefined
      : (await this.client.blobExists(this.repository, descriptor.digest, { signal })) !== undefined;
    if (found) {
      this.present.add(descriptor.digest);
      if (!isManifestLike(descriptor.mediaType)) this.stats.existing++;
    }
    return found;
  }

  async putBytes(bytes: Buffer, descriptor: Descriptor): Promise<void> {
    // Manifests go up through putManifest (with their media type), never as blobs.
    if (isManifestLike(descriptor.mediaType)) return;
    // A config read from a registry sits next to its layers: try a mount from where they came from.
    const source = { digest: descriptor.digest, size: descriptor.size, open: () => Readable.from([bytes], { objectMode: false }) };
    await this.upload(descriptor, source, this.mountSources(this.sourceRepositories));
  }

  async putContent(content: Content, descriptor: Descriptor): Promise<void> {
    const origin = blobOrigin(content);
    const sameRegistry = origin !== undefined && origin.registry === this.client.registry;
    if (sameRegistry) this.sourceRepositories.add(origin.repository);
    const source = { digest: descriptor.digest, size: descriptor.size, open: () => content.open() };
    await this.upload(descriptor, source, this.mountSources(sameRegistry ? [origin.repository] : []));
  }

  async putLayer(layer: Layer, options: EncodeLayerOptions): Promise<{ encoded: EncodedLayer; blob: Content }> {
    let encoded: EncodedLayer | undefined;
    const source: BlobSource = {
      open: () => {
        encoded = undefined; // a retry encodes again from the start
        return this.counted(encodedStream(layer, { ...options, signal: options.signal ?? this.options.signal }, (e) => (encoded = e)));
      },
      digestAfter: () => encoded?.digest,
    };
    const result = await this.client.putBlob(this.repository, source, {
      streaming: this.options.chunkSize === undefined,
      chunkSize: this.options.chunkSize,
      signal: this.options.signal,
    });
    if (!encoded) throw new RegistryError('the layer upload was committed before the encoder finished', undefined);
    this.record(result);
    this.present.add(result.digest);
    // The blob now lives here: a later write of the same layer copies (or mounts) it, never re-encodes.
    return { encoded, blob: registryBlobContent(this.client, this.repository, { digest: result.digest, size: result.size }) };
  }

  async putManifest(bytes: Buffer, descriptor: Descriptor): Promise<void> {
    await this.flush();
    this.held = { bytes, descriptor };
  }

  /**
   * PUT the manifest written last (the top of what `writeTarget` wrote) under `tag`, or by digest
   * when no tag is given. Returns its digest.
   */
  async commit(tag?: string): Promise<Descriptor> {
    const held = this.held;
    if (!held) throw new UsageError('commit() needs a manifest: write an image to this target first');
    this.held = undefined;
    if (tag === undefined && this.present.has(held.descriptor.digest)) return held.descriptor;
    await this.client.putManifest(this.repository, tag ?? held.descriptor.digest, held.bytes, held.descriptor.mediaType, { signal: this.options.signal });
    this.stats.manifests++;
    this.present.add(held.descriptor.digest);
    return held.descriptor;
  }

  /** PUT the held manifest by digest (a child of what comes next), unless the registry has it. */
  private async flush(): Promise<void> {
    const held = this.held;
    if (!held) return;
    this.held = undefined;
    if (this.present.has(held.descriptor.digest)) return;
    await this.client.putManifest(this.repository, held.descriptor.digest, held.bytes, held.descriptor.mediaType, { signal: this.options.signal });
    this.stats.manifests++;
    this.present.add(held.descriptor.digest);
  }

  private upload(descriptor: Descriptor, source: BlobSource, mountFrom: readonly string[] = []): Promise<void> {
    if (this.present.has(descriptor.digest)) return Promise.resolve();
    let running = this.uploads.get(descriptor.digest);
    if (!running) {
      const counted: BlobSource = { ...source, open: () => this.counted(source.open(), descriptor) };
      running = this.client
        .putBlob(this.repository, counted, { mountFrom, skipExisting: false, signal: this.options.signal })
        .then((result) => {
          this.record(result);
          this.present.add(descriptor.digest);
        })
        .finally(() => this.uploads.delete(descriptor.digest));
      this.uploads.set(descriptor.digest, running);
    }
    return running;
  }

  /** Repositories to try a mount from: `first`, then `options.mountFrom`; never this one, each once. */
  private mountSources(first: Iterable<string>): string[] {
    return [...new Set([...first, ...(this.options.mountFrom ?? [])])].filter((r) => r !== this.repository);
  }

  private record(result: PutBlobResult): void {
    if (result.outcome === 'mounted') this.stats.mounted++;
    else if (result.outcome === 'exists') this.stats.existing++;
    else {
      this.stats.uploaded++;
      this.stats.bytesUploaded += result.size;
    }
  }

  /** The stream, reporting bytes as they pass when someone listens. */
  private counted(stream: Readable, descriptor?: Descriptor): Readable {
    const onProgress = this.options.onProgress;
    if (!onProgress) return stream;
    async function* counting(): AsyncGenerator<Buffer> {
      let done = 0;
      for await (const chunk of stream) {
        done += (chunk as Buffer).length;
        onProgress!({ phase: 'bytes', digest: descriptor?.digest, done, total: descriptor?.size });
        yield chunk as Buffer;
      }
    }
    return Readable.from(counting(), { objectMode: false, highWaterMark: IO_CHUNK });
  }
}

/**
 * A Readable of the layer's blob as `encodeLayer` produces it, with backpressure: the encoder
 * waits whenever the reader (the HTTP request) has not taken the previous chunks. `done` gets the
 * encoder's result before the stream ends, so the upload can check its digest.
 */
export function encodedStream(layer: Layer, options: EncodeLayerOptions, done: (encoded: EncodedLayer) => void): Readable {
  const abort = new AbortController();
  const outer = options.signal;
  const onOuterAbort = (): void => abort.abort(outer?.reason);
  outer?.addEventListener('abort', onOuterAbort, { once: true });
  let wake: (() => void) | undefined;
  const release = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const out = new Readable({
    highWaterMark: IO_CHUNK,
    read: release,
    destroy(err, callback) {
      if (!abort.signal.aborted) abort.abort(err ?? new Error('the upload stopped reading the layer'));
      release();
      callback(err);
    },
  });
  encodeLayer(
    layer,
    (chunk) => {
      if (out.destroyed) throw abort.signal.reason ?? new Error('the upload stopped reading the layer');
      if (out.push(chunk)) return undefined;
      return new Promise<void>((resolve) => (wake = resolve));
    },
    { ...options, signal: abort.signal },
  ).then(
    (encoded) => {
      outer?.removeEventListener('abort', onOuterAbort);
      done(encoded);
      if (!out.destroyed) out.push(null);
    },
    (err) => {
      outer?.removeEventListener('abort', onOuterAbort);
      if (!out.destroyed) out.destroy(err as Error);
    },
  );
  return out;
}
