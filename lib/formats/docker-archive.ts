/**
 * docker-archive: what `docker save` writes and `docker load` reads.
 *
 * We write the hybrid Docker 25+ writes — an OCI layout (`oci-layout`, `index.json`, `blobs/`)
 * plus `manifest.json` and `repositories` pointing into `blobs/sha256/` — so docker (graphdriver
 * or containerd store), podman, skopeo and containerd all load it, and the OCI manifest (hence
 * the image's digest) survives. Layers stay as they are (usually gzip): every loader detects
 * compression. `manifest.json` holds one platform per image (docker's model); the OCI side keeps
 * the whole index.
 *
 * We read the hybrid (through its OCI side) and classic archives (`manifest.json` + layer files,
 * plain or compressed, through symlinks inside the archive). See `archive.ts`.
 */
import { Image, ImageIndex, selectImage } from '../image/image';
import type { Descriptor, Platform } from '../image/types';
import { familiarName, parseDockerReference, withDefaultTag } from '../reference/docker';
import { blobMemberName, openImageArchive } from './archive';
import { BlobCollector, writeLayoutArchive } from './archive-writer';
import { loadFromBlobSource } from './blob-source';
import { ArchiveWriteOptions, ReadArchiveOptions, archiveAnnotations } from './oci-archive';

export interface DockerArchiveImage {
  target: Image | ImageIndex;
  /** Names (`nginx:1.25`, `registry.example.com/a/b:v1`); the first also names the OCI entry. */
  names?: string[];
}

export interface WriteDockerArchiveOptions extends ArchiveWriteOptions {
  /** The platform `manifest.json` describes for a multi-platform image (default: the host's). */
  platform?: Platform;
}

/** Write one image as a docker-archive (hybrid) at `file`, atomically. */
export async function writeDockerArchive(
  target: Image | ImageIndex,
  file: string,
  options: WriteDockerArchiveOptions & { names?: string[] },
): Promise<Descriptor> {
  const [d] = await writeDockerArchiveImages([{ target, names: options.names }], file, options);
  return d;
}

/** The one image of `target` a docker archive's `manifest.json` describes (docker's model: one platform per image). */
function pickPlatform(target: Image | ImageIndex, platform: Platform | undefined): Image {
  return selectImage(target, platform, 'the image to save (a docker archive holds one platform per image: pass a platform, or save as oci-archive)');
}

/** Write several images into one docker-archive. */
export async function writeDockerArchiveImages(images: readonly DockerArchiveImage[], file: string, options: WriteDockerArchiveOptions): Promise<Descriptor[]> {
  // Fail before writing anything when a platform is missing.
  for (const img of images) pickPlatform(img.target, options.platform);
  return writeLayoutArchive(
    images.map((img) => ({ target: img.target, annotations: archiveAnnotations({ name: img.names?.[0] }) })),
    file,
    {
      ...options,
      extraFiles: async (collector: BlobCollector, written: Descriptor[]) => {
        const manifest: { Config: string; RepoTags: string[]; Layers: string[] }[] = [];
        const repositories: Record<string, Record<string, string>> = {};
        for (const [i, img] of images.entries()) {
          // Read back what was written, to know every digest (changeset layers included).
          const stored = pickPlatform(await loadFromBlobSource(collector, written[i]), options.platform);
          const layers = stored.layers.map((l) => (l.kind === 'blob' ? l.descriptor.digest : ''));
          const repoTags: string[] = [];
          for (const name of img.names ?? []) {
            const ref = withDefaultTag(parseDockerReference(name));
            if (ref.tag === undefined) continue;
            const familiar = familiarName({ ...ref, digest: undefined });
            repoTags.push(familiar);
            const repo = familiar.slice(0, familiar.lastIndexOf(':'));
            // Legacy loaders want "repo → tag → top layer id"; ours names the top layer's blob.
            if (layers.length > 0) (repositories[repo] ??= {})[ref.tag] = layers[layers.length - 1].replace(/^sha256:/, '');
          }
          manifest.push({
            Config: blobMemberName(stored.stored!.configDescriptor.digest),
            RepoTags: repoTags,
            Layers: layers.map((d) => blobMemberName(d)),
          });
        }
        return {
          'manifest.json': Buffer.from(JSON.stringify(manifest)),
          'repositories': Buffer.from(JSON.stringify(repositories)),
        };
      },
    },
  );
}

/** Read an image from a docker-archive (hybrid or classic); `ref` picks one by name. */
export async function readDockerArchive(file: string, options: ReadArchiveOptions): Promise<Image | ImageIndex> {
  const archive = await openImageArchive(file, options);
  return archive.find(options.ref).load();
}

export async function readDockerArchiveImage(file: string, options: ReadArchiveOptions & { platform?: Platform }): Promise<Image> {
  return selectImage(await readDockerArchive(file, options), options.platform, file);
}
