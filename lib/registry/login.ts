/**
 * `login` / `logout`, as `docker login` and `skopeo login` do them: check the credentials against
 * the registry (`GET /v2/`, through the token server when it uses one), then record them in the
 * auth file so later clients (ours, skopeo, podman, docker) find them.
 */
import { UsageError } from '../errors';
import type { FileSystem } from '../fs';
import { authFileForWrite, removeCredentials, storeCredentials } from './auth-file';
import { RegistryClient, type PingResult } from './client';

export interface LoginOptions {
  /** `host[:port]`. */
  registry: string;
  username: string;
  password: string;
  /** Where to store the credentials (default: `$REGISTRY_AUTH_FILE`, else the docker config). */
  authFile?: string;
  insecure?: boolean;
  fs?: FileSystem;
  env?: NodeJS.ProcessEnv;
  homeDir?: string;
  fetch?: typeof fetch;
  retries?: number;
  retryBaseDelayMs?: number;
}

export interface LoginResult {
  /** The auth file written. */
  authFile: string;
  /** The scheme the registry asked for (`none`: it checks nothing, as docker also accepts). */
  auth: PingResult['auth'];
}

/** Verifies the credentials (AuthError when rejected) and stores them (atomic write, mode 0600). */
export async function login(options: LoginOptions): Promise<LoginResult> {
  if (!options.username || options.username.includes(':')) {
    throw new UsageError('login needs a username without ":"');
  }
  if (typeof options.password !== 'string' || options.password === '') throw new UsageError('login needs a password');
  const credentials = { username: options.username, password: options.password };
  const client = new RegistryClient({
    registry: options.registry,
    credentials,
    authFile: false,
    insecure: options.insecure,
    fetch: options.fetch,
    retries: options.retries,
    retryBaseDelayMs: options.retryBaseDelayMs,
  });
  const { auth } = await client.ping();
  const authFile = await storeCredentials(options.registry, credentials, fileOptions(options));
  return { authFile, auth };
}

export interface LogoutOptions {
  registry: string;
  authFile?: string;
  fs?: FileSystem;
  env?: NodeJS.ProcessEnv;
  homeDir?: string;
}

/** Removes the registry's credentials from the auth file; `removed` is false when there were none. */
export async function logout(options: LogoutOptions): Promise<{ authFile: string; removed: boolean }> {
  const opts = fileOptions(options);
  const removed = await removeCredentials(options.registry, opts);
  return { authFile: authFileForWrite(opts), removed };
}

function fileOptions(options: { authFile?: string; fs?: FileSystem; env?: NodeJS.ProcessEnv; homeDir?: string }) {
  return { authFile: options.authFile, fs: options.fs, env: options.env, homeDir: options.homeDir };
}
