/**
 * The references that name files on a filesystem — `oci:`, `oci-archive:`, `docker-archive:` —
 * loaded in one place, for the transports dispatcher and for the registry modules (push sources,
 * embedded-registry sources), which cannot import the dispatcher (it imports them).
 */
import type { FileSystem } from '../fs';
import type { Image, ImageIndex } from '../image/image';
import type { ImageRef } from '../reference/transport';
import type { ArchiveReadLimits } from './archive';
import { readDockerArchive } from './docker-archive';
import { readOciLayout } from './layout';
import { readOciArchive } from './oci-archive';

export type LocalImageRef = Extract<ImageRef, { transport: 'oci' | 'oci-archive' | 'docker-archive' }>;

export function isLocalImageRef(ref: ImageRef): ref is LocalImageRef {
  return ref.transport === 'oci' || ref.transport === 'oci-archive' || ref.transport === 'docker-archive';
}

/** The image or index a file reference names. */
export function loadLocalTarget(ref: LocalImageRef, fs: FileSystem, limits: ArchiveReadLimits = {}): Promise<Image | ImageIndex> {
  switch (ref.transport) {
    case 'oci':
      return readOciLayout(ref.path, { ...limits, fs, ref: ref.tag });
    case 'oci-archive':
      return readOciArchive(ref.path, { ...limits, fs, ref: ref.tag });
    case 'docker-archive':
      return readDockerArchive(ref.path, { ...limits, fs, ref: ref.name });
  }
}
