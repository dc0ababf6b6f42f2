/**
 * `login` / `logout`, as `docker login` and `skopeo login` do them: check the credentials against
 * the registry (`GET /v2/`, through the token server when it uses one), then record them where
 * later clients (ours, skopeo, podman, docker) find them: in the auth file, or in the credential
 * helper the file names for the registry (`credHelpers`, else `credsStore`).
 */
import { UsageError } from '../errors';
import type { FileSystem } from '../fs';
import { authFileForWrite, removeCredentials, saveCredentials } from './auth-file';
import { RegistryClient, type PingResult } from './client';
import type { RegistryOptions } from './options';

export interface LoginOptions extends Omit<RegistryOptions, 'credentials' | 'authFile'> {
  /** `host[:port]`. */
  registry: string;
  username: string;
  password: string;
  /** Where to store the credentials (default: `$REGISTRY_AUTH_FILE`, else the docker config). */
  authFile?: string;
  /** The filesystem of the auth file (default: `authFs`, else the disk). */
  fs?: FileSystem;
}

export interface LoginResult {
  /** The auth file written, or whose helper took the credentials. */
  authFile: string;
  /** The credential helper that stores them (`docker-credential-NAME`), when the file names one. */
  helper?: string;
  /** The scheme the registry asked for (`none`: it checks nothing, as docker also accepts). */
  auth: PingResult['auth'];
}

/** Verifies the credentials (AuthError when rejected) and stores them (atomic write, mode 0600, or the helper). */
export async function login(options: LoginOptions): Promise<LoginResult> {
  if (!options.username || options.username.includes(':')) {
    throw new UsageError('login needs a username without ":"');
  }
  if (typeof options.password !== 'string' || options.password === '') throw new UsageError('login needs a password');
  const credentials = { username: options.username, password: options.password };
  const { registry, username: _u, password: _p, authFile: _a, fs, ...reach } = options;
  void _u;
  void _p;
  void _a;
  const client = new RegistryClient({ ...reach, authFs: reach.authFs ?? fs, registry, credentials, authFile: false });
  const { auth } = await client.ping();
  const stored = await saveCredentials(registry, credentials, fileOptions(options));
  return { authFile: stored.file, ...(stored.helper ? { helper: stored.helper } : {}), auth };
}

export interface LogoutOptions {
  registry: string;
  authFile?: string;
  fs?: FileSystem;
  env?: NodeJS.ProcessEnv;
  homeDir?: string;
}

/** Removes the registry's credentials from the auth file (and its helper); `removed` is false when there were none. */
export async function logout(options: LogoutOptions): Promise<{ authFile: string; removed: boolean }> {
  const opts = fileOptions(options);
  const removed = await removeCredentials(options.registry, opts);
  return { authFile: authFileForWrite(opts), removed };
}

function fileOptions(options: { authFile?: string; fs?: FileSystem; authFs?: FileSystem; env?: NodeJS.ProcessEnv; homeDir?: string }) {
  return { authFile: options.authFile, fs: options.fs ?? options.authFs, env: options.env, homeDir: options.homeDir };
}
