/** The `registry/` a CloudRootfs carries: image collection, distribution storage, the registry layer. */
export {
  collectImages,
  parseImageList,
  scanImageLines,
  scanImageLine,
  imagesFromValues,
  type CollectedImage,
  type CollectOptions,
} from './collect';
export { DistributionStorage, blobDataPath, STORAGE_PREFIX, type StorageStats, type DistributionStorageOptions } from './storage';
export {
  buildRegistryLayer,
  withEmbeddedRegistry,
  type BuildRegistryOptions,
  type EmbeddedImage,
  type EmbeddedImageRequest,
  type AuthenticatedImageRequest,
  type RegistryLayer,
} from './build';
