/** Media types we write and read (docs/reference/oci.md#media-types). */
export const MEDIA_TYPES = {
  layer: 'application/vnd.oci.image.layer.v1.tar',
  layerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  layerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  layerNondistributable: 'application/vnd.oci.image.layer.nondistributable.v1.tar',
  layerNondistributableGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  layerNondistributableZstd: 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar',
  dockerForeignLayerGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  config: 'application/vnd.oci.image.config.v1+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  index: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  empty: 'application/vnd.oci.empty.v1+json',
} as const;

const LAYER_TYPES = new Set<string>([
  MEDIA_TYPES.layer,
  MEDIA_TYPES.layerGzip,
  MEDIA_TYPES.layerZstd,
  MEDIA_TYPES.layerNondistributable,
  MEDIA_TYPES.layerNondistributableGzip,
  MEDIA_TYPES.layerNondistributableZstd,
  MEDIA_TYPES.dockerLayerGzip,
  MEDIA_TYPES.dockerLayer,
  MEDIA_TYPES.dockerForeignLayerGzip,
]);

export function isLayerMediaType(mt: string): boolean {
  return LAYER_TYPES.has(mt);
}

export function isManifestMediaType(mt: string | undefined): boolean {
  return mt === MEDIA_TYPES.manifest || mt === MEDIA_TYPES.dockerManifest;
}

export function isIndexMediaType(mt: string | undefined): boolean {
  return mt === MEDIA_TYPES.index || mt === MEDIA_TYPES.dockerManifestList;
}
