/**
 * What `inspect` shows, in the shape sealer's `inspect` prints (its `ImageSpec`: docs/reference/sealer.md#inspect):
 *
 *   { id, name, digest, manifestv1, ociv1, imageExtension, containerImageList }
 *
 * - `id` is the image ID (config digest, hex), `digest` the manifest digest;
 * - `manifestv1` is the manifest without the two sealer annotations (they are shown decoded);
 * - `ociv1` is the config; when the image has a sealer extension its labels move to
 *   `imageExtension.labels` with the CNI/CSI labels collapsed, as sealer prints them;
 * - unlike sealer, an image without the extension inspects fine (`imageExtension: null`).
 *
 * For a multi-platform index, one platform is shown (default: the host's) and `index` lists all.
 */
import { Image, ImageIndex, selectImage } from './image/image';
import { serializeImage, WrittenLayer } from './image/serialize';
import type { ImageConfigDocument, ImageManifest, Platform } from './image/types';
import {
  SEALER_CONTAINER_IMAGES_ANNOTATION,
  SEALER_EXTENSION_ANNOTATION,
  collapseSealerLabels,
  getContainerImages,
  getImageExtension,
  type ContainerImageRef,
  type ImageExtension,
} from './sealer';

export interface ImageSpec {
  /** Image ID: hex of the config digest (undefined until the layers are written). */
  id?: string;
  name?: string;
  /** Manifest digest. */
  digest?: string;
  manifestv1?: ImageManifest;
  ociv1: Omit<ImageConfigDocument, 'rootfs'> & { rootfs?: ImageConfigDocument['rootfs'] };
  imageExtension: ImageExtension | null;
  /** Omitted when empty, as sealer does. */
  containerImageList?: ContainerImageRef[];
  /** Present when the reference names a multi-platform index. */
  index?: { digest?: string; mediaType?: string; manifests: { digest?: string; platform?: Platform }[] };
}

/** @deprecated the old name of ImageSpec. */
export type ImageInspection = ImageSpec;

function written(image: Image): WrittenLayer[] | undefined {
  const out: WrittenLayer[] = [];
  for (const l of image.layers) {
    if (l.kind !== 'blob') return undefined;
    out.push({ descriptor: l.descriptor, diffId: l.diffId });
  }
  return out;
}

export function inspectImage(image: Image, name?: string): ImageSpec {
  const layers = written(image);
  const s = layers ? serializeImage(image, layers) : undefined;
  let manifest = s ? (JSON.parse(s.manifest.toString('utf8')) as ImageManifest) : undefined;
  if (manifest?.annotations) {
    const annotations = { ...manifest.annotations };
    delete annotations[SEALER_EXTENSION_ANNOTATION];
    delete annotations[SEALER_CONTAINER_IMAGES_ANNOTATION];
    const { annotations: _a, ...rest } = manifest;
    void _a;
    manifest = Object.keys(annotations).length > 0 ? { ...rest, annotations } : rest;
  }
  const ociv1 = s ? (JSON.parse(s.config.toString('utf8')) as ImageSpec['ociv1']) : (JSON.parse(JSON.stringify(image.config)) as ImageSpec['ociv1']);
  const extension = getImageExtension(image);
  if (extension) {
    // sealer moves the labels into the extension (collapsed) and drops them from the config.
    const labels = collapseSealerLabels(image.labels);
    if (Object.keys(labels).length > 0) extension.labels = labels;
    else delete extension.labels;
    if (ociv1.config) {
      const { Labels: _l, ...rest } = ociv1.config;
      void _l;
      ociv1.config = rest;
    }
  }
  const containerImages = getContainerImages(image);
  return {
    ...(s ? { id: s.configDescriptor.digest.replace(/^sha256:/, '') } : {}),
    ...(name ? { name } : {}),
    ...(s ? { digest: s.manifestDescriptor.digest } : {}),
    ...(manifest ? { manifestv1: manifest } : {}),
    ociv1,
    imageExtension: extension ?? null,
    ...(containerImages.length > 0 ? { containerImageList: containerImages } : {}),
  };
}

export interface InspectOptions {
  platform?: Platform;
  reference?: string;
}

/** Inspect one platform of a target; for an index, the index's entries are listed too. */
export async function inspectTarget(target: Image | ImageIndex, options: InspectOptions = {}): Promise<ImageSpec> {
  const image = selectImage(target, options.platform, options.reference);
  const result = inspectImage(image, options.reference);
  if (target instanceof ImageIndex) {
    result.index = {
      digest: target.stored?.descriptor.digest,
      mediaType: target.stored?.descriptor.mediaType,
      manifests: target.images().map(({ image: i, platform }) => ({ digest: i.stored?.manifestDescriptor.digest, platform })),
    };
  }
  return result;
}
