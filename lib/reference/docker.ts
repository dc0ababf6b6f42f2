/**
 * Docker distribution references (`[registry/]repository[:tag][@digest]`), parsed and normalized the
 * way docker's `ParseNormalizedNamed` and sealer do: a bare `nginx` means `docker.io/library/nginx`,
 * `index.docker.io` is an alias of `docker.io`, and the first path component is a registry only
 * when it looks like a host (has a `.` or `:`, is `localhost`, or has uppercase letters).
 */
import { InvalidReferenceError } from '../errors';
import { digestProblem } from './digest';

export interface DockerReference {
  /** Registry host with its port when given: `docker.io`, `quay.io`, `127.0.0.1:5000`, `[::1]:5000`. */
  registry: string;
  /** Repository path inside the registry: `library/nginx`, `coreos/flannel`. Always lowercase. */
  repository: string;
  tag?: string;
  digest?: string;
}

export const DEFAULT_REGISTRY = 'docker.io';
/** Docker Hub's old name, accepted and rewritten to `docker.io`. */
export const LEGACY_DEFAULT_REGISTRY = 'index.docker.io';
/** Single-component Docker Hub names live under `library/`. */
export const OFFICIAL_REPOSITORY_PREFIX = 'library/';
export const DEFAULT_TAG = 'latest';
/** distribution's NameTotalLengthMax: the normalized `registry/repository` may not be longer. */
export const MAX_NAME_LENGTH = 255;

const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const HOST = new RegExp(`^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?$`);
/** A bare image ID; docker refuses it as a name because it would be ambiguous. */
const IMAGE_ID = /^[a-f0-9]{64}$/;

/**
 * Parses and normalizes a reference. Neither tag nor digest is added: use `withDefaultTag` (or
 * `normalizeReference`) for docker's implicit `:latest`.
 */
export function parseDockerReference(input: string): DockerReference {
  if (typeof input !== 'string' || input.length === 0) throw new InvalidReferenceError(String(input), 'empty reference');
  const fail = (reason: string): never => {
    throw new InvalidReferenceError(input, reason);
  };
  if (IMAGE_ID.test(input)) fail('a 64-character hex string is an image ID, not a repository name');

  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    const problem = digestProblem(digest);
    if (problem) fail(problem);
  }

  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) fail('tag must match [A-Za-z0-9_][A-Za-z0-9._-]{0,127}');
  }
  if (rest.length === 0) fail('missing repository name');

  const { registry, repository } = splitRegistry(rest);
  if (!HOST.test(registry)) fail(`${JSON.stringify(registry)} is not a valid registry host[:port]`);
  if (repository.toLowerCase() !== repository) fail(`repository name ${JSON.stringify(repository)} must be lowercase`);
  for (const component of repository.split('/')) {
    if (!PATH_COMPONENT.test(component)) {
      fail(`repository path component ${JSON.stringify(component)} must be lowercase letters and digits joined by . _ __ or -`);
    }
  }
  if (registry.length + 1 + repository.length > MAX_NAME_LENGTH) {
    fail(`the name is longer than ${MAX_NAME_LENGTH} characters`);
  }

  const ref: DockerReference = { registry, repository };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  return ref;
}

/** docker's splitDockerDomain, applied to the name without tag or digest. */
function splitRegistry(name: string): { registry: string; repository: string } {
  const slash = name.indexOf('/');
  let registry: string;
  let repository: string;
  const first = slash >= 0 ? name.slice(0, slash) : '';
  const looksLikeHost = slash >= 0 && (/[.:]/.test(first) || first === 'localhost' || first.toLowerCase() !== first);
  if (looksLikeHost) {
    registry = first;
    repository = name.slice(slash + 1);
  } else {
    registry = DEFAULT_REGISTRY;
    repository = name;
  }
  if (registry === LEGACY_DEFAULT_REGISTRY) registry = DEFAULT_REGISTRY;
  if (registry === DEFAULT_REGISTRY && !repository.includes('/')) repository = OFFICIAL_REPOSITORY_PREFIX + repository;
  return { registry, repository };
}

export function isValidTag(tag: string): boolean {
  return typeof tag === 'string' && TAG.test(tag);
}

/** A repository path as the registry API takes it (`library/nginx`): lowercase components joined by `/`. */
export function isValidRepository(repository: string): boolean {
  return (
    typeof repository === 'string' &&
    repository.length > 0 &&
    repository.length <= MAX_NAME_LENGTH &&
    repository.split('/').every((c) => PATH_COMPONENT.test(c))
  );
}

/** `registry/repository`, without tag or digest. */
export function referenceName(ref: DockerReference): string {
  return `${ref.registry}/${ref.repository}`;
}

/** The canonical string: `docker.io/library/nginx:latest`, `quay.io/a/b@sha256:…`. */
export function formatReference(ref: DockerReference): string {
  return `${referenceName(ref)}${ref.tag !== undefined ? `:${ref.tag}` : ''}${ref.digest !== undefined ? `@${ref.digest}` : ''}`;
}

/** Adds `:latest` when the reference has neither tag nor digest (docker's TagNameOnly). */
export function withDefaultTag(ref: DockerReference): DockerReference {
  return ref.tag === undefined && ref.digest === undefined ? { ...ref, tag: DEFAULT_TAG } : ref;
}

/** `nginx` → `docker.io/library/nginx:latest`, the form sealer records and compares. */
export function normalizeReference(input: string): string {
  return formatReference(withDefaultTag(parseDockerReference(input)));
}

/** The short form people type: `nginx:latest` for `docker.io/library/nginx:latest`. */
export function familiarName(ref: DockerReference | string): string {
  const r = typeof ref === 'string' ? parseDockerReference(ref) : ref;
  let name = referenceName(r);
  if (r.registry === DEFAULT_REGISTRY) {
    name = r.repository;
    const rest = name.slice(OFFICIAL_REPOSITORY_PREFIX.length);
    if (name.startsWith(OFFICIAL_REPOSITORY_PREFIX) && !rest.includes('/')) name = rest;
  }
  return `${name}${r.tag !== undefined ? `:${r.tag}` : ''}${r.digest !== undefined ? `@${r.digest}` : ''}`;
}

/**
 * The repository as sealer's embedded registry stores it, without the domain:
 * `quay.io/coreos/flannel:v1` → `coreos/flannel`, `nginx` → `library/nginx`.
 */
export function repositoryWithoutDomain(ref: DockerReference | string): string {
  return (typeof ref === 'string' ? parseDockerReference(ref) : ref).repository;
}
