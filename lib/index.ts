/**
 * cloudrootfs: compose sealer CloudRootfs images programmatically.
 *
 * The layers of the API, each building on the one before:
 *   model      errors, paths, content, entries, Rootfs
 *   layers     Layer, diff, apply, LayerStack
 *   formats    layer tarballs, Image/ImageIndex, OCI layout (and archives, store, registry)
 *   build      Kubefile, ImageBuilder, buildImage
 *   cli        runCli
 */
export * from './errors';
export { diskFs, readDocumentFile, type FileSystem, type FsStats } from './fs';
export {
  cleanPath,
  joinPath,
  parentPath,
  baseName,
  compareBytes,
  parseWhiteout,
  WHITEOUT_PREFIX,
  OPAQUE_WHITEOUT,
  type CleanPathOptions,
  type WhiteoutInfo,
} from './path';
export {
  bufferContent,
  fileContent,
  fileRangeContent,
  readContent,
  readContentText,
  contentDigest,
  contentEquals,
  type Content,
} from './content';
export {
  fileEntry,
  directoryEntry,
  symlinkEntry,
  hardlinkEntry,
  withAttributes,
  sameMetadata,
  checkAttributes,
  checkOwnerId,
  MAX_OWNER_ID,
  DEFAULT_FILE_MODE,
  DEFAULT_DIR_MODE,
  type Entry,
  type EntryType,
  type FileEntry,
  type DirectoryEntry,
  type SymlinkEntry,
  type HardlinkEntry,
  type EntryAttributes,
  type AttributeOptions,
} from './entry';
export { Rootfs, Section, SECTIONS, TOP_LEVEL_FILES, type SectionName, type RootfsEntry, type WithOptions } from './rootfs/rootfs';
export {
  readRootfsFromDirectory,
  writeRootfsToDirectory,
  type ReadDirectoryOptions,
  type WriteDirectoryOptions,
} from './rootfs/io';
export { Layer, type LayerStats } from './layer/layer';
export { applyLayer, resolveInRoot } from './layer/apply';
export { diff, type DiffOptions } from './layer/diff';
export { LayerStack, flatten } from './layer/stack';
export { assembleLayer, LayerAssembler, type AssembleOptions } from './layer/assemble';
export {
  encodeLayer,
  layerTarStream,
  layerTarEntries,
  type EncodeLayerOptions,
  type EncodedLayer,
  type LayerTarOptions,
} from './tar/write';
export {
  readLayerBlob,
  readLayerTar,
  StackBudget,
  DEFAULT_MAX_ENTRIES,
  DEFAULT_MAX_METADATA_BYTES,
  type ReadLayerOptions,
  type ReadLayer,
} from './tar/read';
export {
  ParallelGzipEncoder,
  GzipEncoder,
  createEncoder,
  detectCompression,
  decompressStream,
  DigestCounter,
  digestAlgorithm,
  checkEncoding,
  digestOfBuffer,
  digestOfStream,
  zstdAvailable,
  type Encoder,
  type EncoderOptions,
  type EncodeSummary,
  type CompressionAlgorithm,
  type DigestAlgorithm,
} from './compress';
export { MEDIA_TYPES, isLayerMediaType, isManifestMediaType, isIndexMediaType } from './media-types';
export { Image, ImageIndex, selectImage, timestamp, type ImageInit, type IndexEntry } from './image/image';
export { blobLayer, changesetLayer, type ImageLayer, type BlobLayer, type ChangesetLayer } from './image/layer';
export { hostPlatform, parsePlatform, formatPlatform, normalizePlatform, platformMatches, platformNotFound } from './image/platform';
export { canonicalJson } from './image/json';
export { validate, assertValid, type ValidationReport, type ValidateOptions } from './image/validate';
export { writeImage, writeTarget, type BlobTarget, type WriteImageOptions, type WriteProgress } from './image/write';
export type {
  Descriptor,
  Platform,
  ImageManifest,
  ImageIndexDocument,
  ImageConfigDocument,
  ContainerConfig,
  HistoryEntry,
} from './image/types';
export {
  validateOciDocument,
  checkOciDocument,
  parseOciDocument,
  ociDocumentKindForMediaType,
  OCI_DOCUMENT_KINDS,
  createAjv,
  createDraft04Ajv,
  issuesFromAjv,
  digestProblem,
  decodeStrictBase64,
  type OciDocumentKind,
  type OciValidationOptions,
} from './image/schema';
export {
  OciLayout,
  readOciLayout,
  readOciImage,
  writeOciLayout,
  REF_NAME,
  type ReadLayoutOptions,
  type WriteLayoutOptions,
} from './formats/layout';
export { loadImage, loadTarget, parseImageRef, formatImageRef, type ImageRef, type LoadOptions } from './transports';
export { saveTarget, copyImage, openStore, type SaveOptions, type CopyOptions, type TransportOptions, type TransferProgress } from './transports';
export { inspectImage, inspectTarget, type ImageInspection, type InspectOptions, type ImageSpec } from './inspect';
export * from './sealer';
export {
  ImageStore,
  defaultStoreRoot,
  STORE_ENV,
  storeName,
  parseStoreQuery,
  collectGarbage,
  withLock,
  loadArchiveIntoStore,
  type StoreOptions,
  type StoreEntry,
  type StoreName,
  type StoreQuery,
  type GcResult,
  type LockOptions,
  type LoadArchiveOptions,
  type LoadArchiveResult,
  type LoadedImage,
} from './store';
export {
  writeOciArchive,
  writeOciArchiveImages,
  readOciArchive,
  readOciArchiveImage,
  archiveAnnotations,
  type OciArchiveImage,
  type WriteOciArchiveOptions,
  type ArchiveWriteOptions,
  type ReadArchiveOptions,
  type ArchiveNameOptions,
} from './formats/oci-archive';
export {
  writeDockerArchive,
  writeDockerArchiveImages,
  readDockerArchive,
  readDockerArchiveImage,
  type DockerArchiveImage,
  type WriteDockerArchiveOptions,
} from './formats/docker-archive';
export { openImageArchive, type ImageArchive, type ArchiveImage, type ArchiveFormat } from './formats/archive';
export { TarArchive, writeTarArchive, type ArchiveMember, type ArchiveEntry, type ArchiveProgress, type ArchiveLimits } from './formats/archive-io';
export { verifyLayers, diffIdCheckedContent, type VerifyProgress, type VerifyOptions } from './formats/verify';
export type { ImageReadLimits, LayerReadLimits } from './formats/blob-source';
export type { LayoutLimits } from './formats/layout';
export type { ArchiveReadLimits } from './formats/archive';
export {
  compareRootfs,
  compareImages,
  isEmptyComparison,
  type RootfsComparison,
  type PathSummary,
  type PathChange,
  type ChangeKind,
} from './compare';
export * from './kubefile';
export * from './build';
export {
  BuildCache,
  CACHE_DIR,
  computeDiffId,
  FileDigestMemo,
  exportBuildCache,
  importBuildCache,
  BUILD_CACHE_ARTIFACT_TYPE,
  BUILD_CACHE_CONFIG_MEDIA_TYPE,
  type BuildCacheOptions,
  type BuildCacheStats,
  type CacheOutcome,
  type StepRecord,
  type BlobRecord,
  type BuildCacheRegistryOptions,
  type ExportBuildCacheResult,
  type ImportBuildCacheResult,
} from './cache';
export * from './registry';
export {
  DEFAULT_REGISTRY,
  DEFAULT_TAG,
  familiarName,
  formatReference,
  isValidRepository,
  isValidTag,
  normalizeReference,
  parseDockerReference,
  referenceName,
  repositoryWithoutDomain,
  withDefaultTag,
  parseDigest,
  isDigest,
  digestOfBytes,
  type DockerReference,
  type ParsedDigest,
} from './reference';
export { runCli } from './cli/main';
