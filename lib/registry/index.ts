/** The distribution-API transport: client, auth files, login. */
export {
  RegistryClient,
  DEFAULT_MANIFEST_ACCEPT,
  DEFAULT_MAX_MANIFEST_BYTES,
  apiHost,
  isLoopbackHost,
  type BlobSource,
  type GetBlobOptions,
  type GetManifestOptions,
  type ManifestHead,
  type ManifestResult,
  type PingResult,
  type PutBlobOptions,
  type PutBlobResult,
  type RegistryClientOptions,
} from './client';
export { login, logout, type LoginOptions, type LoginResult, type LogoutOptions } from './login';
export {
  authFileCandidates,
  authFileForWrite,
  findCredentials,
  removeCredentials,
  storeCredentials,
  type AuthFileOptions,
  type RegistryCredentials,
} from './auth-file';
export { parseChallenges, type AuthChallenge } from './challenge';
export { scopeStrings, type RepositoryAction, type RepositoryScope } from './auth';
export { DEFAULT_RETRY_POLICY, type RetryPolicy } from './retry';
export {
  parseRemoteReference,
  manifestRef,
  RegistryClientPool,
  DOCKER_TRANSPORT_PREFIX,
  type RegistryAccessOptions,
  type RemoteReference,
} from './remote';
export { blobOrigin, registryBlobContent, type BlobOrigin, type RegistryBlobOptions } from './blob-content';
export { RegistryTarget, encodedStream, type PushStats, type RegistryProgress, type RegistryTargetOptions } from './target';
export { pushImage, type PushOptions, type PushResult } from './push';
export {
  pullImage,
  pullToLayout,
  pullToStore,
  loadRegistryTarget,
  resolveBase,
  type ImageStoreLike,
  type PlatformChoice,
  type PullOptions,
  type PullResult,
  type PullToOptions,
  type ResolveBaseOptions,
  type TaggableBlobTarget,
} from './pull';
export * from './embedded';
