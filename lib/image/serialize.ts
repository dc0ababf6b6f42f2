/**
 * From an Image (plus what the writer learned about its layers) to the exact bytes of its config
 * and manifest. An unchanged image read from somewhere reuses its stored bytes instead.
 */
import { MEDIA_TYPES } from '../media-types';
import { Image, ImageIndex } from './image';
import { canonicalJsonBytes } from './json';
import type { Descriptor, ImageConfigDocument, ImageIndexDocument, ImageManifest } from './types';
import { DigestCounter } from '../compress';

export interface WrittenLayer {
  descriptor: Descriptor;
  diffId: string;
}

export function digestOf(bytes: Buffer): string {
  return new DigestCounter().update(bytes).digest();
}

export function descriptorOf(mediaType: string, bytes: Buffer, extra: Partial<Descriptor> = {}): Descriptor {
  return { mediaType, digest: digestOf(bytes), size: bytes.length, ...extra };
}

export function configBytes(image: Image, layers: readonly WrittenLayer[]): Buffer {
  if (image.stored) return image.stored.config;
  const doc: ImageConfigDocument = {
    ...image.config,
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
  };
  return canonicalJsonBytes(doc);
}

export interface SerializedImage {
  config: Buffer;
  configDescriptor: Descriptor;
  manifest: Buffer;
  manifestDescriptor: Descriptor;
}

export function serializeImage(image: Image, layers: readonly WrittenLayer[]): SerializedImage {
  if (image.stored) {
    return {
      config: image.stored.config,
      configDescriptor: image.stored.configDescriptor,
      manifest: image.stored.manifest,
      manifestDescriptor: { ...image.stored.manifestDescriptor, platform: image.platform },
    };
  }
  const config = configBytes(image, layers);
  const configDescriptor = descriptorOf(MEDIA_TYPES.config, config);
  const manifestDoc: ImageManifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.manifest,
    config: configDescriptor,
    layers: layers.map((l) => l.descriptor),
    ...(Object.keys(image.annotations).length > 0 ? { annotations: { ...image.annotations } } : {}),
  };
  const manifest = canonicalJsonBytes(manifestDoc);
  return {
    config,
    configDescriptor,
    manifest,
    manifestDescriptor: descriptorOf(MEDIA_TYPES.manifest, manifest, { platform: image.platform }),
  };
}

export function serializeIndex(index: ImageIndex, children: readonly Descriptor[]): { bytes: Buffer; descriptor: Descriptor } {
  if (index.stored) return { bytes: index.stored.index, descriptor: index.stored.descriptor };
  const doc: ImageIndexDocument = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.index,
    manifests: [...children],
    ...(Object.keys(index.annotations).length > 0 ? { annotations: { ...index.annotations } } : {}),
  };
  const bytes = canonicalJsonBytes(doc);
  return { bytes, descriptor: descriptorOf(MEDIA_TYPES.index, bytes) };
}
