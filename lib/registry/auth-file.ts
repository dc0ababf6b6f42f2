/**
 * Credentials in docker `config.json` / containers `auth.json` files:
 * `{"auths": {"<host>": {"auth": base64("user:pass")}}}` (or `username`/`password` fields).
 * Credential helpers (`credsStore`, `credHelpers`) and identity tokens are not supported: such
 * entries are skipped, never guessed at.
 *
 * Lookup order, first file with an entry for the host wins (as skopeo does):
 * `$REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR/containers/auth.json`,
 * `$DOCKER_CONFIG/config.json` (else `~/.docker/config.json`).
 * Writes go to the explicit file, else `$REGISTRY_AUTH_FILE`, else the docker config.
 */
import * as os from 'node:os';
import * as nodePath from 'node:path';
import { AuthError, NotFoundError, UsageError } from '../errors';
import { diskFs, readDocumentFile, type FileSystem } from '../fs';
import { writeFileAtomic } from '../util/atomic';

export interface RegistryCredentials {
  username: string;
  password: string;
}

export interface AuthFileOptions {
  /** Use exactly this file (for reading and writing). */
  authFile?: string;
  fs?: FileSystem;
  /** Environment to read `REGISTRY_AUTH_FILE`, `XDG_RUNTIME_DIR`, `DOCKER_CONFIG`, `HOME` from. */
  env?: NodeJS.ProcessEnv;
  homeDir?: string;
}

interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  [key: string]: unknown;
}

interface AuthFileJson {
  auths?: Record<string, AuthEntry>;
  [key: string]: unknown;
}

/** The key docker uses for Docker Hub; skopeo and podman read it too. */
const DOCKER_HUB_AUTH_KEY = 'https://index.docker.io/v1/';
const DOCKER_HUB_ALIASES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

function homeOf(options: AuthFileOptions): string {
  return options.homeDir ?? options.env?.HOME ?? os.homedir();
}

function dockerConfigPath(options: AuthFileOptions): string {
  const env = options.env ?? process.env;
  const dir = env.DOCKER_CONFIG || nodePath.join(homeOf({ ...options, env }), '.docker');
  return nodePath.join(dir, 'config.json');
}

/** Files consulted for credentials, in order. */
export function authFileCandidates(options: AuthFileOptions = {}): string[] {
  if (options.authFile) return [options.authFile];
  const env = options.env ?? process.env;
  const files: string[] = [];
  if (env.REGISTRY_AUTH_FILE) files.push(env.REGISTRY_AUTH_FILE);
  if (env.XDG_RUNTIME_DIR) files.push(nodePath.join(env.XDG_RUNTIME_DIR, 'containers', 'auth.json'));
  files.push(dockerConfigPath(options));
  return [...new Set(files)];
}

/** The file `login` writes to. */
export function authFileForWrite(options: AuthFileOptions = {}): string {
  if (options.authFile) return options.authFile;
  const env = options.env ?? process.env;
  return env.REGISTRY_AUTH_FILE || dockerConfigPath(options);
}

/**
 * The registry host a key of `auths` stands for, or undefined for keys scoped to a namespace
 * (`quay.io/org`, which containers' auth.json allows) since those are not host-wide credentials.
 */
export function authKeyHost(key: string): string | undefined {
  let rest = key.trim().replace(/^https?:\/\//i, '');
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const path = rest.slice(slash).replace(/\/+$/, '');
    if (path !== '' && path !== '/v1' && path !== '/v2') return undefined;
    rest = rest.slice(0, slash);
  }
  return normalizeAuthHost(rest);
}

function normalizeAuthHost(host: string): string {
  const lower = host.toLowerCase();
  return DOCKER_HUB_ALIASES.has(lower) ? 'docker.io' : lower;
}

/** Credentials from one `auths` entry, or undefined when it holds none we can use. */
export function decodeAuthEntry(entry: unknown): RegistryCredentials | undefined {
  if (typeof entry !== 'object' || entry === null) return undefined;
  const e = entry as AuthEntry;
  if (typeof e.auth === 'string' && e.auth !== '') {
    const decoded = Buffer.from(e.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon <= 0) return undefined;
    return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  if (typeof e.username === 'string' && e.username !== '' && typeof e.password === 'string') {
    return { username: e.username, password: e.password };
  }
  return undefined;
}

export function encodeAuthEntry(credentials: RegistryCredentials): AuthEntry {
  return { auth: Buffer.from(`${credentials.username}:${credentials.password}`, 'utf8').toString('base64') };
}

/** The parsed file, or undefined when it does not exist. Unparseable JSON is an AuthError. */
export async function readAuthFile(fs: FileSystem, path: string): Promise<AuthFileJson | undefined> {
  let text: string;
  try {
    text = await readDocumentFile(fs, path, 'auth file');
  } catch (err) {
    if (err instanceof NotFoundError) return undefined;
    throw err;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new AuthError(`auth file ${path} is not valid JSON`, undefined, [], { file: path, cause: String(err) });
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new AuthError(`auth file ${path} must hold a JSON object`, undefined, [], { file: path });
  }
  const auths = (json as AuthFileJson).auths;
  if (auths !== undefined && (typeof auths !== 'object' || auths === null || Array.isArray(auths))) {
    throw new AuthError(`auth file ${path}: "auths" must be an object`, undefined, [], { file: path });
  }
  return json as AuthFileJson;
}

/** Credentials for `registry` (host[:port]) from the first auth file that has them. */
export async function findCredentials(
  registry: string,
  options: AuthFileOptions = {},
): Promise<(RegistryCredentials & { file: string }) | undefined> {
  const fs = options.fs ?? diskFs;
  const host = normalizeAuthHost(registry);
  for (const file of authFileCandidates(options)) {
    const json = await readAuthFile(fs, file);
    const auths = json?.auths;
    if (!auths) continue;
    // An exact key beats a normalized one (`https://host/` vs `host`).
    const exact = Object.prototype.hasOwnProperty.call(auths, registry) ? decodeAuthEntry(auths[registry]) : undefined;
    if (exact) return { ...exact, file };
    for (const [key, entry] of Object.entries(auths)) {
      if (authKeyHost(key) !== host) continue;
      const creds = decodeAuthEntry(entry);
      if (creds) return { ...creds, file };
    }
  }
  return undefined;
}

/** Stores credentials for `registry`, replacing any entry for the same host; returns the file written. */
export async function storeCredentials(
  registry: string,
  credentials: RegistryCredentials,
  options: AuthFileOptions = {},
): Promise<string> {
  if (!credentials.username || credentials.username.includes(':')) {
    throw new UsageError('a registry username must be non-empty and must not contain ":"');
  }
  const fs = options.fs ?? diskFs;
  const file = authFileForWrite(options);
  const json: AuthFileJson = (await readAuthFile(fs, file)) ?? {};
  const auths: Record<string, AuthEntry> = { ...(json.auths ?? {}) };
  const host = normalizeAuthHost(registry);
  for (const key of Object.keys(auths)) if (authKeyHost(key) === host) delete auths[key];
  auths[host === 'docker.io' ? DOCKER_HUB_AUTH_KEY : registry] = encodeAuthEntry(credentials);
  await writeAuthFile(fs, file, { ...json, auths });
  return file;
}

/** Removes every host-wide entry for `registry`; true when something was removed. */
export async function removeCredentials(registry: string, options: AuthFileOptions = {}): Promise<boolean> {
  const fs = options.fs ?? diskFs;
  const file = authFileForWrite(options);
  const json = await readAuthFile(fs, file);
  if (!json?.auths) return false;
  const host = normalizeAuthHost(registry);
  const auths = { ...json.auths };
  let removed = false;
  for (const key of Object.keys(auths)) {
    if (authKeyHost(key) === host) {
      delete auths[key];
      removed = true;
    }
  }
  if (removed) await writeAuthFile(fs, file, { ...json, auths });
  return removed;
}

/** Temp file in the same directory, mode 0600, then rename: readers never see half a file. */
async function writeAuthFile(fs: FileSystem, file: string, json: AuthFileJson): Promise<void> {
  await fs.promises.mkdir(nodePath.dirname(file), { recursive: true, mode: 0o700 });
  await writeFileAtomic(fs, file, JSON.stringify(json, null, '\t') + '\n', { mode: 0o600 });
}
