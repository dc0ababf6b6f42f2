/**
 * What `inspect` shows: the manifest, config and layers of an image (or of each image of an
 * index), as plain JSON. Works on stored images; layers not yet written show no digest.
 */
import { Image, ImageIndex, selectImage } from './image/image';
import { serializeImage, WrittenLayer } from './image/serialize';
import type { Descriptor, ImageConfigDocument, ImageManifest, Platform } from './image/types';

export interface LayerSummary {
  mediaType?: string;
  digest?: string;
  size?: number;
  diffId?: string;
}

export interface ImageInspection {
  name?: string;
  /** Manifest digest (undefined for an image with layers not yet written). */
  digest?: string;
  mediaType?: string;
  platform: Platform;
  manifest?: ImageManifest;
  config: Omit<ImageConfigDocument, 'rootfs'> & { rootfs?: ImageConfigDocument['rootfs'] };
  layers: LayerSummary[];
  annotations: Record<string, string>;
  /** Present when the reference names a multi-platform index. */
  index?: { digest?: string; mediaType?: string; manifests: { digest?: string; platform?: Platform }[] };
}

function written(image: Image): WrittenLayer[] | undefined {
  const out: WrittenLayer[] = [];
  for (const l of image.layers) {
    if (l.kind !== 'blob') return undefined;
    out.push({ descriptor: l.descriptor, diffId: l.diffId });
  }
  return out;
}

export function inspectImage(image: Image, name?: string): ImageInspection {
  const layers = written(image);
  const s = layers ? serializeImage(image, layers) : undefined;
  return {
    ...(name ? { name } : {}),
    digest: s?.manifestDescriptor.digest,
    mediaType: s?.manifestDescriptor.mediaType,
    platform: image.platform,
    manifest: s ? (JSON.parse(s.manifest.toString('utf8')) as ImageManifest) : undefined,
    config: s ? (JSON.parse(s.config.toString('utf8')) as ImageConfigDocument) : { ...image.config },
    layers: image.layers.map((l) =>
      l.kind === 'blob'
        ? { mediaType: l.descriptor.mediaType, digest: l.descriptor.digest, size: l.descriptor.size, diffId: l.diffId }
        : {},
    ),
    annotations: { ...image.annotations },
  };
}

export interface InspectOptions {
  platform?: Platform;
  reference?: string;
}

/** Inspect one platform of a target; for an index, the index's entries are listed too. */
export async function inspectTarget(target: Image | ImageIndex, options: InspectOptions = {}): Promise<ImageInspection> {
  const image = selectImage(target, options.platform);
  const result = inspectImage(image, options.reference);
  if (target instanceof ImageIndex) {
    const manifests: { digest?: string; platform?: Platform }[] = target.images().map(({ image: i, platform }) => ({
      digest: i.stored?.manifestDescriptor.digest,
      platform,
    }));
    const d: Descriptor | undefined = target.stored?.descriptor;
    result.index = { digest: d?.digest, mediaType: d?.mediaType, manifests };
  }
  return result;
}
