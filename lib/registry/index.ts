/** The distribution-API transport: client, auth files and credential helpers, login, TLS, proxies, registries.conf. */
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
  saveCredentials,
  storeCredentials,
  type AuthFileOptions,
  type FoundCredentials,
  type RegistryCredentials,
  type StoredCredentials,
} from './auth-file';
export {
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_STALL_MIN_BYTES,
  DEFAULT_STALL_TIMEOUT_MS,
  type ProxyOption,
  type ProxySettings,
  type RegistryOptions,
  type TlsOption,
  type TlsSettings,
} from './options';
export { certDirFor, defaultCertsRoots, readCertDir, type TlsMaterial } from './certs';
export { proxyResolver, proxySettingsFromEnv, type ProxyResolver } from './proxy';
export { helperGet, helperStore, helperErase, type HelperCredentials } from './cred-helpers';
export {
  findRegistry,
  loadRegistriesConf,
  parseRegistriesConf,
  pullSources,
  type LoadedRegistriesConf,
  type MirrorConfig,
  type PullSource,
  type RegistriesConfig,
  type RegistryConfig,
} from './registries-conf';
export { parseChallenges, type AuthChallenge } from './challenge';
export { scopeStrings, type RepositoryAction, type RepositoryScope } from './auth';
export { DEFAULT_RETRY_POLICY, type RetryPolicy } from './retry';
export {
  parseRemoteReference,
  manifestRef,
  RegistryClientPool,
  choosePullSource,
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
