/**
 * Writing images into an archive: the blobs are gathered first (sizes must be known for tar
 * headers), then streamed into the tar in a fixed order.
 *
 * Gathering goes through `writeTarget`, the one place that orders blob writes, into a
 * `BlobCollector`: blobs that already exist somewhere (a store, a layout, another archive) are
 * only referenced, never copied; changeset layers are encoded once into a staging directory next
 * to the output, which is removed afterwards. Every referenced blob is verified (size, digest) as
 * it is streamed into the tar.
 */
import { posix } from 'node:path';
import { Readable } from 'node:stream';
import { Content } from '../content';
import { BlobNotFoundError } from '../errors';
import { FileSystem } from '../fs';
import { Image, ImageIndex } from '../image/image';
import { canonicalJsonBytes } from '../image/json';
import type { Descriptor, ImageIndexDocument } from '../image/types';
import { BlobTarget, WriteImageOptions, WriteProgress, writeTarget } from '../image/write';
import { Layer } from '../layer/layer';
import { MEDIA_TYPES } from '../media-types';
import { compareBytes } from '../path';
import { EncodeLayerOptions, EncodedLayer } from '../tar/write';
import { checkFileDestination, removeAll, tempSibling } from '../util/atomic';
import { ArchiveEntry, ArchiveProgress, writeTarArchive } from './archive-io';
import { blobMemberName } from './archive';
import { BlobSource } from './blob-source';
import { OciLayout } from './layout';

/** A BlobTarget that records where each blob is instead of copying it. */
export class BlobCollector implements BlobTarget, BlobSource {
  readonly blobs = new Map<string, { descriptor: Descriptor; data: Buffer | Content }>();
  private staging?: Promise<OciLayout>;

  constructor(
    private readonly fs: FileSystem,
    private readonly stagingDir: string,
  ) {}

  get where(): string {
    return 'the archive being written';
  }

  async has(d: Descriptor): Promise<boolean> {
    return this.blobs.has(d.digest);
  }

  async putBytes(bytes: Buffer, d: Descriptor): Promise<void> {
    this.blobs.set(d.digest, { descriptor: plain(d), data: bytes });
  }

  async putContent(content: Content, d: Descriptor): Promise<void> {
    this.blobs.set(d.digest, { descriptor: plain(d), data: content });
  }

  async putLayer(layer: Layer, options: EncodeLayerOptions): Promise<{ encoded: EncodedLayer }> {
    this.staging ??= OciLayout.create(this.fs, this.stagingDir);
    const { encoded, blob } = await (await this.staging).putLayer(layer, options);
    this.blobs.set(encoded.digest, { descriptor: { mediaType: encoded.mediaType, digest: encoded.digest, size: encoded.size }, data: blob });
    // No blob is returned: the staging copy is deleted after the archive is written, so the
    // image must not remember it as the layer's encoding.
    return { encoded };
  }

  blob(d: Pick<Descriptor, 'digest' | 'size'>): Content {
    const b = this.blobs.get(d.digest);
    if (!b) throw new BlobNotFoundError(d.digest, this.where);
    const data = b.data;
    if (!Buffer.isBuffer(data)) return data;
    return { size: data.length, digest: d.digest, open: () => Readable.from([data]) };
  }

  async cleanup(): Promise<void> {
    if (this.staging) await removeAll(this.fs, this.stagingDir);
  }

  /** `blobs/`, `blobs/sha256/`, then each blob by digest. */
  blobEntries(): ArchiveEntry[] {
    const dirs = new Set<string>(['blobs']);
    const files: ArchiveEntry[] = [];
    for (const { descriptor, data } of this.blobs.values()) {
      const name = blobMemberName(descriptor.digest);
      dirs.add(posix.dirname(name));
      files.push({ name, type: 'file', data, digest: descriptor.digest });
    }
    return [...[...dirs].map((name): ArchiveEntry => ({ name, type: 'directory' })), ...files];
  }
}

function plain(d: Descriptor): Descriptor {
  return { mediaType: d.mediaType, digest: d.digest, size: d.size };
}

export interface LayoutArchiveImage {
  target: Image | ImageIndex;
  /** Annotations of its index.json entry (names). */
  annotations?: Record<string, string>;
}

export interface WriteLayoutArchiveOptions extends WriteImageOptions {
  fs: FileSystem;
  /** mtime of every member (seconds; default 0). */
  mtime?: number;
  onProgress?: (event: WriteProgress | ArchiveProgress) => void;
  /**
   * Extra top-level files (docker's `manifest.json`, `repositories`), computed once the blobs are
   * known: `collector` can load what was written.
   */
  extraFiles?: (collector: BlobCollector, written: Descriptor[]) => Promise<Record<string, Buffer>>;
}

/**
 * Write images as an OCI layout inside a tar at `path`: members sorted by name (`blobs/…`,
 * `index.json`, `oci-layout`, plus any extra files), so equal inputs give equal bytes.
 */
export async function writeLayoutArchive(images: readonly LayoutArchiveImage[], path: string, options: WriteLayoutArchiveOptions): Promise<Descriptor[]> {
  const { fs } = options;
  await checkFileDestination(fs, path);
  const collector = new BlobCollector(fs, tempSibling(path, 'stage-'));
  try {
    const written: Descriptor[] = [];
    for (const img of images) {
      const d = await writeTarget(img.target, collector, options);
      const entry: Descriptor = {
        mediaType: d.mediaType,
        digest: d.digest,
        size: d.size,
        ...(d.platform && d.mediaType !== MEDIA_TYPES.index ? { platform: d.platform } : {}),
        ...(img.annotations && Object.keys(img.annotations).length > 0 ? { annotations: { ...img.annotations } } : {}),
      };
      written.push(entry);
    }
    const index: ImageIndexDocument = { schemaVersion: 2, mediaType: MEDIA_TYPES.index, manifests: written };
    const files: Record<string, Buffer> = {
      'index.json': canonicalJsonBytes(index),
      'oci-layout': Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' })),
      ...((await options.extraFiles?.(collector, written)) ?? {}),
    };
    const entries: ArchiveEntry[] = [
      ...collector.blobEntries(),
      ...Object.entries(files).map(([name, data]): ArchiveEntry => ({ name, type: 'file', data })),
    ].sort((a, b) => compareBytes(a.name, b.name));
    await writeTarArchive(path, entries, { fs, mtime: options.mtime, onProgress: options.onProgress });
    return written;
  } finally {
    await collector.cleanup();
  }
}
