/**
 * oci-archive: an OCI image layout tarred with no wrapping directory (docs/reference/oci.md#image-layout-and-oci-archive), as skopeo,
 * podman and buildah read and write it. Read in place from the tar (any member order, plain or
 * compressed); written in one pass with members in a fixed order, so the same images always give
 * the same bytes.
 *
 * Names: an image saved under a name gets `io.containerd.image.name` = the full normalized name
 * and `org.opencontainers.image.ref.name` = its tag, as docker and containerd write them, so
 * `skopeo copy oci-archive:FILE:TAG` and `ctr import` both find it.
 */
import { Image, ImageIndex, selectImage } from '../image/image';
import type { Descriptor, Platform } from '../image/types';
import { WriteImageOptions, WriteProgress } from '../image/write';
import { FileSystem } from '../fs';
import { parseDockerReference, withDefaultTag, formatReference } from '../reference/docker';
import { ArchiveProgress } from './archive-io';
import { ArchiveReadLimits, openImageArchive } from './archive';
import { writeLayoutArchive } from './archive-writer';
import { CONTAINERD_NAME, REF_NAME } from './layout';
import { InvalidImageError } from '../errors';

export interface ArchiveNameOptions {
  /** Image name (`kubernetes:v1.19.9`), normalized into `io.containerd.image.name`; its tag becomes ref.name. */
  name?: string;
  /** `org.opencontainers.image.ref.name` to write instead of the name's tag. */
  refName?: string;
}

/** The index.json annotations naming an image in an archive. */
export function archiveAnnotations(options: ArchiveNameOptions): Record<string, string> {
  const out: Record<string, string> = {};
  if (options.name) {
    const ref = withDefaultTag(parseDockerReference(options.name));
    out[CONTAINERD_NAME] = formatReference(ref);
    if (ref.tag) out[REF_NAME] = ref.tag;
  }
  if (options.refName) out[REF_NAME] = options.refName;
  return out;
}

export interface ArchiveWriteOptions extends WriteImageOptions {
  fs: FileSystem;
  /** mtime of every archive member, in seconds (default 0). */
  mtime?: number;
  onProgress?: (event: WriteProgress | ArchiveProgress) => void;
}

export interface OciArchiveImage extends ArchiveNameOptions {
  target: Image | ImageIndex;
}

export type WriteOciArchiveOptions = ArchiveWriteOptions & ArchiveNameOptions;

/** Write one image (or index) as an oci-archive at `file` (atomically). */
export async function writeOciArchive(target: Image | ImageIndex, file: string, options: WriteOciArchiveOptions): Promise<Descriptor> {
  const [d] = await writeOciArchiveImages([{ target, name: options.name, refName: options.refName }], file, options);
  return d;
}

/** Write several images into one oci-archive (index.json lists them in the order given). */
export async function writeOciArchiveImages(images: readonly OciArchiveImage[], file: string, options: ArchiveWriteOptions): Promise<Descriptor[]> {
  return writeLayoutArchive(
    images.map((i) => ({ target: i.target, annotations: archiveAnnotations(i) })),
    file,
    options,
  );
}

export interface ReadArchiveOptions extends ArchiveReadLimits {
  fs: FileSystem;
  /** Which image: a ref.name, an image name, or a manifest digest (optional when there is one). */
  ref?: string;
}

/** Read an image (or index) from an oci-archive. */
export async function readOciArchive(file: string, options: ReadArchiveOptions): Promise<Image | ImageIndex> {
  const archive = await openImageArchive(file, options);
  if (archive.format === 'docker') {
    archive.close();
    throw new InvalidImageError(`${file} is a docker archive, not an OCI archive (use docker-archive:${file})`, { file });
  }
  return archive.find(options.ref).load();
}

/** One platform's image from an oci-archive (default: the host's). */
export async function readOciArchiveImage(file: string, options: ReadArchiveOptions & { platform?: Platform }): Promise<Image> {
  return selectImage(await readOciArchive(file, options), options.platform, file);
}
