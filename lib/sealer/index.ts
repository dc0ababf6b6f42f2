/** sealer's view of a CloudImage: the extension and container-image annotations, labels, Metadata. */
export {
  SEALER_EXTENSION_ANNOTATION,
  SEALER_CONTAINER_IMAGES_ANNOTATION,
  SEALER_SCHEMA_VERSION,
  KUBE_INSTALLER,
  APP_INSTALLER,
  DEFAULT_BUILD_CLIENT,
  defaultImageExtension,
  getImageExtension,
  withImageExtension,
  updateImageExtension,
  formatImageExtension,
  getContainerImages,
  withContainerImages,
  type SealerApplication,
  type ImageExtension,
  type ContainerImageRef,
} from './extension';
export { METADATA_FILE, parseMetadata, formatMetadata, readMetadata, withMetadata, type CloudRootfsMetadata } from './metadata';
export {
  SEALER_LABELS,
  SEALER_COLLAPSED_LABELS,
  DEFAULT_CLUSTER_RUNTIME,
  DEFAULT_CONTAINER_RUNTIME,
  getSealerVersion,
  withSealerVersion,
  getClusterRuntime,
  withClusterRuntime,
  getContainerRuntime,
  withContainerRuntime,
  getKubeCnis,
  withKubeCni,
  getKubeCsis,
  withKubeCsi,
  getSupportedKubeVersion,
  withSupportedKubeVersion,
  collapseSealerLabels,
  type LabelSource,
  type RuntimeInfo,
} from './labels';
export { checkSealerDocument, validateSealerDocument, type SealerSchemaKind } from './schema';
export {
  parseImageListWithAuth,
  authenticatedImages,
  normalizeWithRegistry,
  type ImageListWithAuthSection,
  type AuthenticatedImage,
} from './image-list-with-auth';
