/** The build cache (docs/performance.md#caches): step and blob records in the store, a file digest memo, registry export/import. */
export {
  BuildCache,
  CACHE_DIR,
  computeDiffId,
  layerIdentity,
  setLayerIdentity,
  type BlobRecord,
  type BuildCacheOptions,
  type BuildCacheStats,
  type CacheOutcome,
  type LayerBinding,
  type StepRecord,
} from './build-cache';
export { FileDigestMemo, hashFile, type FileDigestMemoOptions, type FileDigestStats } from './file-digests';
export { blobKey, chainNext, chainStart, encoderIdentity, ENCODER_FORMAT, STEP_KEY_VERSION } from './keys';
export { copyStepKey, type CopyStepDescription, type KeyedSource, type StepKey } from './step-key';
export { attachStamp, stampOf, stampFromStats, lstatPrecise, type FileStamp } from './stamp';
export {
  exportBuildCache,
  importBuildCache,
  BUILD_CACHE_ARTIFACT_TYPE,
  BUILD_CACHE_CONFIG_MEDIA_TYPE,
  type BuildCacheRegistryOptions,
  type ExportBuildCacheResult,
  type ImportBuildCacheResult,
} from './registry';
