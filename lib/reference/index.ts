/** Image references (`[registry/]repository[:tag][@digest]`) and content digests. */
export {
  DEFAULT_REGISTRY,
  DEFAULT_TAG,
  LEGACY_DEFAULT_REGISTRY,
  MAX_NAME_LENGTH,
  OFFICIAL_REPOSITORY_PREFIX,
  familiarName,
  formatReference,
  isValidRepository,
  isValidTag,
  normalizeReference,
  parseDockerReference,
  referenceName,
  repositoryWithoutDomain,
  withDefaultTag,
  type DockerReference,
} from './docker';
export {
  canVerifyAlgorithm,
  createDigestHasher,
  digestOfBytes,
  digestProblem,
  isDigest,
  parseDigest,
  type DigestHasher,
  type ParsedDigest,
} from './digest';
