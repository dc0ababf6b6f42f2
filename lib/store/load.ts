/**
 * `load`: every image of an archive (oci-archive, docker-archive hybrid or classic) into the
 * store, under the names the archive gives (or the caller's). All images are opened and every
 * layer verified (digest and diff_id) before anything is tagged, so a bad archive leaves the
 * store's images as they were; a copy that fails removes the blobs it created.
 */
import { CloudRootfsError } from '../errors';
import type { FileSystem } from '../fs';
import type { Image, ImageIndex } from '../image/image';
import type { Descriptor } from '../image/types';
import type { WriteImageOptions, WriteProgress } from '../image/write';
import { openImageArchive, type ArchiveFormat, type ArchiveReadLimits } from '../formats/archive';
import { onlyOne } from '../formats/layout';
import { verifyLayers, type VerifyProgress } from '../formats/verify';
import type { ImageStore } from './store';

export interface LoadArchiveOptions extends Omit<WriteImageOptions, 'onProgress'> {
  fs: FileSystem;
  /** Names to give the archive's image instead of those it carries (archives of one image). */
  names?: string[];
  /**
   * Bounds for the untrusted archive: members, extended headers, decompressed size, documents,
   * nesting, index entries, and (`layerLimits.maxUncompressedBytes`) each layer's tar when verified.
   */
  limits?: ArchiveReadLimits;
  onProgress?: (event: WriteProgress | VerifyProgress) => void;
}

export interface LoadedImage {
  descriptor: Descriptor;
  /** Full normalized names it was tagged with (empty: stored untagged). */
  names: string[];
}

export interface LoadArchiveResult {
  format: ArchiveFormat;
  images: LoadedImage[];
}

export async function loadArchiveIntoStore(store: ImageStore, file: string, options: LoadArchiveOptions): Promise<LoadArchiveResult> {
  const limits = options.limits ?? {};
  const archive = await openImageArchive(file, { ...limits, fs: options.fs });
  try {
    if (options.names && options.names.length > 0 && archive.images.length !== 1) {
      throw new CloudRootfsError('AMBIGUOUS_IMAGE', `${file} holds ${archive.images.length} images; names can only be given for one`, { file });
    }
    // A name two different images of the archive claim: which one would it tag? Refuse.
    if (!options.names || options.names.length === 0) {
      const byName = new Map<string, Descriptor[]>();
      for (const entry of archive.images) for (const n of entry.names) byName.set(n, [...(byName.get(n) ?? []), entry.descriptor]);
      for (const [name, found] of byName) onlyOne(found, name, file);
    }
    const targets: { target: Image | ImageIndex; names: string[] }[] = [];
    for (const entry of archive.images) {
      const target = await entry.load();
      await verifyLayers(target, { onProgress: options.onProgress, ...(limits.layerLimits ?? {}) });
      targets.push({ target, names: options.names && options.names.length > 0 ? options.names : entry.names });
    }
    // A put that fails half-way (a blob that lied about its bytes, a full disk) takes back the
    // blobs it created; images stored before it stay.
    const images: LoadedImage[] = [];
    for (const { target, names } of targets) {
      if (names.length === 0) {
        images.push({ descriptor: await store.putUntagged(target, options), names: [] });
        continue;
      }
      const descriptor = await store.put(target, names[0], options);
      for (const extra of names.slice(1)) await store.tag(names[0], extra);
      images.push({ descriptor, names });
    }
    return { format: archive.format, images };
  } finally {
    archive.close();
  }
}
