/**
 * One door for "load the image this reference names", whatever the transport. Each transport
 * lives in its own module; this file only dispatches.
 */
import { UnsupportedError } from '../errors';
import { FileSystem, diskFs } from '../fs';
import { Image, ImageIndex, selectImage } from '../image/image';
import type { Platform } from '../image/types';
import { readOciLayout } from '../formats/layout';
import { ImageRef, formatImageRef, parseImageRef } from './reference';

export interface LoadOptions {
  fs?: FileSystem;
  platform?: Platform;
}

/** The image or index a reference names. */
export async function loadTarget(ref: string | ImageRef, options: LoadOptions = {}): Promise<Image | ImageIndex> {
  const r = typeof ref === 'string' ? parseImageRef(ref) : ref;
  const fs = options.fs ?? diskFs;
  switch (r.transport) {
    case 'oci':
      return readOciLayout(r.path, { fs, ref: r.tag });
    default:
      throw new UnsupportedError(`the ${r.transport} transport is not available yet (${formatImageRef(r)})`, r.transport);
  }
}

/** One platform's image (default: the host's) for a reference. */
export async function loadImage(ref: string | ImageRef, options: LoadOptions = {}): Promise<Image> {
  return selectImage(await loadTarget(ref, options), options.platform);
}

export { parseImageRef, formatImageRef };
export type { ImageRef };
