/**
 * What push, pull and the embedded registry share: `docker://` references, the options that
 * reach a registry (credentials, auth file, insecure, retries), and a pool that keeps one client
 * per registry host so a run asks the token server once per scope, not once per image.
 */
import { InvalidReferenceError } from '../errors';
import type { FileSystem } from '../fs';
import { formatReference, parseDockerReference, withDefaultTag, type DockerReference } from '../reference/docker';
import type { RegistryCredentials } from './auth-file';
import { RegistryClient, type RegistryClientOptions } from './client';

export const DOCKER_TRANSPORT_PREFIX = 'docker://';

/** How to reach registries. Every field is optional; the defaults are docker's. */
export interface RegistryAccessOptions {
  /** Credentials for every registry this call talks to (else the auth files are searched). */
  credentials?: RegistryCredentials;
  /** Read credentials from this file only; `false` reads none. */
  authFile?: string | false;
  /** true: plain http; false: https always; unset: http for loopback hosts only. */
  insecure?: boolean;
  retries?: number;
  retryBaseDelayMs?: number;
  maxRetryDelayMs?: number;
  userAgent?: string;
  /** A fetch for every request (tests, proxies). */
  fetch?: typeof fetch;
  /** Filesystem and environment for auth-file discovery (not for image data). */
  authFs?: FileSystem;
  env?: NodeJS.ProcessEnv;
  homeDir?: string;
  /** Share clients (and their token caches) between calls. */
  clients?: RegistryClientPool;
  /** Hash uploaded blobs here too, not only in the registry (RegistryClientOptions.verifyUploads). */
  verifyUploads?: boolean;
}

/** A `docker://` reference, parsed: the registry, the repository inside it, and tag and/or digest. */
export interface RemoteReference extends DockerReference {
  /** `HOST/REPO:TAG` or `HOST/REPO@DIGEST` as given, normalized. */
  readonly name: string;
}

/**
 * Parses `docker://HOST/REPO[:TAG][@DIGEST]` (the prefix is optional). Without tag or digest,
 * `latest` is implied, as docker and skopeo do.
 */
export function parseRemoteReference(input: string): RemoteReference {
  if (typeof input !== 'string' || input === '') throw new InvalidReferenceError(String(input), 'empty reference');
  let text = input;
  if (text.startsWith(DOCKER_TRANSPORT_PREFIX)) text = text.slice(DOCKER_TRANSPORT_PREFIX.length);
  else if (/^[a-z][a-z0-9+.-]*:\/\//.test(text) || /^(oci|oci-archive|docker-archive):/.test(text)) {
    throw new InvalidReferenceError(input, 'expected a docker:// reference');
  }
  const ref = withDefaultTag(parseDockerReference(text));
  return { ...ref, name: formatReference(ref) };
}

/** The tag or digest to ask the registry for: the digest when both are given (it pins the bytes). */
export function manifestRef(ref: DockerReference): string {
  return ref.digest ?? ref.tag ?? 'latest';
}

/** One RegistryClient per registry host, created on first use with the pool's options. */
export class RegistryClientPool {
  private readonly clients = new Map<string, RegistryClient>();

  constructor(private readonly options: Omit<RegistryAccessOptions, 'clients'> = {}) {}

  get(registry: string): RegistryClient {
    let client = this.clients.get(registry);
    if (!client) {
      client = new RegistryClient(clientOptions(registry, this.options));
      this.clients.set(registry, client);
    }
    return client;
  }
}

export function clientOptions(registry: string, options: Omit<RegistryAccessOptions, 'clients'>): RegistryClientOptions {
  return {
    registry,
    credentials: options.credentials,
    authFile: options.authFile,
    insecure: options.insecure,
    retries: options.retries,
    retryBaseDelayMs: options.retryBaseDelayMs,
    maxRetryDelayMs: options.maxRetryDelayMs,
    userAgent: options.userAgent,
    fetch: options.fetch,
    fs: options.authFs,
    env: options.env,
    homeDir: options.homeDir,
    verifyUploads: options.verifyUploads,
  };
}

/** The client for `registry`: from the caller's pool when there is one, else a new one. */
export function clientFor(registry: string, options: RegistryAccessOptions): RegistryClient {
  return options.clients ? options.clients.get(registry) : new RegistryClient(clientOptions(registry, options));
}
