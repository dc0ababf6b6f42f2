/**
 * One door for "load the image this reference names" and "save an image where this reference
 * says", whatever the transport. Each transport lives in its own module; this file only
 * dispatches. Adding one (e.g. `docker://`) means one case in `loadTarget` and one in `saveTarget`.
 */
import { FileSystem, diskFs } from '../fs';
import { Image, ImageIndex, selectImage } from '../image/image';
import type { Descriptor, Platform } from '../image/types';
import type { WriteImageOptions, WriteProgress } from '../image/write';
import { writeOciLayout } from '../formats/layout';
import { loadLocalTarget } from '../formats/local';
import { writeOciArchive } from '../formats/oci-archive';
import { writeDockerArchive } from '../formats/docker-archive';
import type { ArchiveReadLimits } from '../formats/archive';
import type { ArchiveProgress } from '../formats/archive-io';
import { verifyLayers, type VerifyProgress } from '../formats/verify';
import { ImageStore, type StoreOptions } from '../store/store';
import { loadRegistryTarget } from '../registry/pull';
import { pushImage } from '../registry/push';
import type { RegistryAccessOptions } from '../registry/remote';
import { ImageRef, formatImageRef, parseImageRef } from '../reference/transport';

export interface TransportOptions {
  fs?: FileSystem;
  /** The local store for plain names: an open store, or how to open one (default: the default root). */
  store?: ImageStore | StoreOptions;
  /** Credentials, auth file, insecure… for `docker://` references. */
  registry?: RegistryAccessOptions;
}

export interface LoadOptions extends TransportOptions {
  platform?: Platform;
  /**
   * Bounds for untrusted input (layouts, archives, registries): document size, index nesting and
   * entries, archive members, extended headers and decompressed size, and the limits for reading
   * layers (`layerLimits`). Defaults: see docs/security.md.
   */
  limits?: ArchiveReadLimits;
}

export type TransferProgress = WriteProgress | ArchiveProgress | VerifyProgress;

function asRef(ref: string | ImageRef): ImageRef {
  return typeof ref === 'string' ? parseImageRef(ref) : ref;
}

/** The store a plain name refers to. */
export async function openStore(options: TransportOptions = {}): Promise<ImageStore> {
  if (options.store instanceof ImageStore) return options.store;
  return ImageStore.open({ fs: options.fs, ...(options.store ?? {}) });
}

/** The image or index a reference names. */
export async function loadTarget(ref: string | ImageRef, options: LoadOptions = {}): Promise<Image | ImageIndex> {
  const r = asRef(ref);
  const fs = options.fs ?? diskFs;
  const limits = options.limits ?? {};
  switch (r.transport) {
    case 'oci':
    case 'oci-archive':
    case 'docker-archive':
      return loadLocalTarget(r, fs, limits);
    case 'store':
      return (await openStore({ ...options, fs })).loadTarget(r.name);
    case 'docker':
      return loadRegistryTarget(formatImageRef(r), { authFs: fs, ...(options.registry ?? {}), limits });
  }
}

/** One platform's image (default: the host's) for a reference. */
export async function loadImage(ref: string | ImageRef, options: LoadOptions = {}): Promise<Image> {
  return selectImage(await loadTarget(ref, options), options.platform, typeof ref === 'string' ? ref : formatImageRef(ref));
}

export interface SaveOptions extends TransportOptions, Omit<WriteImageOptions, 'onProgress'> {
  /**
   * The image's name, recorded in archives (`io.containerd.image.name`, docker `RepoTags`) when
   * the reference does not give one (`docker-archive:FILE:NAME:TAG` does).
   */
  name?: string;
  /** The platform a docker-archive's manifest.json describes for a multi-platform image. */
  platform?: Platform;
  /** mtime of archive members (seconds, default 0). */
  mtime?: number;
  onProgress?: (event: TransferProgress) => void;
}

/** Write `target` where `ref` says: a layout, an archive, or the store. */
export async function saveTarget(target: Image | ImageIndex, ref: string | ImageRef, options: SaveOptions = {}): Promise<Descriptor> {
  const r = asRef(ref);
  const fs = options.fs ?? diskFs;
  const write = { ...options, fs };
  switch (r.transport) {
    case 'oci':
      return writeOciLayout(target, r.path, { ...write, tag: r.tag });
    case 'oci-archive':
      return writeOciArchive(target, r.path, { ...write, name: options.name, refName: r.tag });
    case 'docker-archive': {
      const name = r.name ?? options.name;
      return writeDockerArchive(target, r.path, { ...write, names: name ? [name] : [] });
    }
    case 'store': {
      const store = await openStore(write);
      return store.put(target, r.name, write);
    }
    case 'docker': {
      const { onProgress: _progress, store: _store, registry, ...encoding } = write;
      void _progress;
      void _store;
      return (await pushImage(target, formatImageRef(r), { ...encoding, authFs: fs, ...(registry ?? {}) })).descriptor;
    }
  }
}

export interface CopyOptions extends SaveOptions, Pick<LoadOptions, 'limits'> {
  /**
   * Check every layer against its digest and diff_id before writing (default: when reading from
   * an archive, so a lying archive never reaches the destination).
   */
  verify?: boolean;
}

/** Copy an image between any two references (`oci-archive:a.tar` → `kubernetes:v1`, …). */
export async function copyImage(source: string | ImageRef, destination: string | ImageRef, options: CopyOptions = {}): Promise<Descriptor> {
  const src = asRef(source);
  const dst = asRef(destination);
  const target = await loadTarget(src, options);
  const verify = options.verify ?? (src.transport === 'oci-archive' || src.transport === 'docker-archive');
  if (verify) await verifyLayers(target, { onProgress: options.onProgress, ...(options.limits?.layerLimits ?? {}) });
  const name = options.name ?? (src.transport === 'store' ? src.name : undefined);
  return saveTarget(target, dst, { ...options, ...(name ? { name } : {}) });
}

export { parseImageRef, formatImageRef };
export type { ImageRef };
