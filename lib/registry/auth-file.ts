/**
 * Credentials in docker `config.json` / containers `auth.json` files:
 * `{"auths": {"<host>": {"auth": base64("user:pass")}}}` (or `username`/`password` fields), and
 * the credential helpers such a file names: `credHelpers` (per registry) and `credsStore` (for
 * every other registry), which hold the secrets themselves (cred-helpers.ts).
 *
 * Lookup order, first file with credentials for the host wins (as skopeo does, plus docker's
 * `credsStore`): `$REGISTRY_AUTH_FILE`; `$XDG_RUNTIME_DIR/containers/auth.json` (without
 * XDG_RUNTIME_DIR: `/run/containers/$UID/auth.json`); `$XDG_CONFIG_HOME/containers/auth.json`
 * (else `~/.config/containers/auth.json`); `$DOCKER_CONFIG/config.json` (else
 * `~/.docker/config.json`). In one file: `credHelpers[host]`, then `auths`, then `credsStore`.
 * Identity tokens are refused with a clear error, never guessed at.
 *
 * Writes go to the explicit file, else `$REGISTRY_AUTH_FILE`, else the docker config; through
 * the file's helper for the host (`credHelpers`, else `credsStore`) when it names one.
 */
import * as os from 'node:os';
import * as nodePath from 'node:path';
import { AuthError, NotFoundError, UsageError } from '../errors';
import { diskFs, readDocumentFile, type FileSystem } from '../fs';
import { writeFileAtomic } from '../util/atomic';
import { IDENTITY_TOKEN_USERNAME, helperErase, helperGet, helperStore } from './cred-helpers';

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
  /**
   * registries.conf's `credential-helpers`: `containers-auth.json` for the auth files, any other
   * name for `docker-credential-NAME` (default: the auth files only).
   */
  credentialHelpers?: readonly string[];
}

/** The `credential-helpers` entry that stands for the auth files (containers-auth.json(5)). */
export const AUTH_FILES_HELPER = 'containers-auth.json';

interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  [key: string]: unknown;
}

interface AuthFileJson {
  auths?: Record<string, AuthEntry>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
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
  else if (typeof process.getuid === 'function') files.push(`/run/containers/${process.getuid()}/auth.json`);
  const configHome = env.XDG_CONFIG_HOME || nodePath.join(homeOf({ ...options, env }), '.config');
  files.push(nodePath.join(configHome, 'containers', 'auth.json'));
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
  const { auths, credHelpers, credsStore } = json as AuthFileJson;
  if (auths !== undefined && (typeof auths !== 'object' || auths === null || Array.isArray(auths))) {
    throw new AuthError(`auth file ${path}: "auths" must be an object`, undefined, [], { file: path });
  }
  if (credHelpers !== undefined && (typeof credHelpers !== 'object' || credHelpers === null || Array.isArray(credHelpers) || Object.values(credHelpers).some((v) => typeof v !== 'string'))) {
    throw new AuthError(`auth file ${path}: "credHelpers" must map registries to helper names`, undefined, [], { file: path });
  }
  if (credsStore !== undefined && typeof credsStore !== 'string') {
    throw new AuthError(`auth file ${path}: "credsStore" must be a helper name`, undefined, [], { file: path });
  }
  return json as AuthFileJson;
}

/** Where credentials were found. */
export interface FoundCredentials extends RegistryCredentials {
  /** The auth file that had them, or that named the helper. */
  file?: string;
  /** The credential helper that gave them. */
  helper?: string;
}

/** The names a helper may have stored a registry under: docker's key for Docker Hub, then the host. */
function helperServers(registry: string): string[] {
  return normalizeAuthHost(registry) === 'docker.io' ? [DOCKER_HUB_AUTH_KEY, 'docker.io'] : [registry];
}

/** The helper a file's `credHelpers` names for the host (exact key first, then by host). */
function credHelperFor(json: AuthFileJson, registry: string): string | undefined {
  const helpers = json.credHelpers;
  if (!helpers) return undefined;
  if (Object.prototype.hasOwnProperty.call(helpers, registry) && helpers[registry]) return helpers[registry];
  const host = normalizeAuthHost(registry);
  for (const [key, helper] of Object.entries(helpers)) if (helper && authKeyHost(key) === host) return helper;
  return undefined;
}

async function fromHelper(helper: string, registry: string, env: NodeJS.ProcessEnv, file?: string): Promise<FoundCredentials | undefined> {
  for (const server of helperServers(registry)) {
    const got = await helperGet(helper, server, env);
    if (!got) continue;
    if (got.username === IDENTITY_TOKEN_USERNAME) {
      throw new AuthError(
        `docker-credential-${helper} holds an identity token for ${registry}; identity (OAuth2 refresh) tokens are not supported: store a user name and password or access token instead`,
        undefined,
        [],
        { helper, registry },
      );
    }
    return { username: got.username, password: got.secret, helper, ...(file ? { file } : {}) };
  }
  return undefined;
}

/** Credentials for `registry` (host[:port]) from the auth files and their helpers, or registries.conf's helpers. */
export async function findCredentials(registry: string, options: AuthFileOptions = {}): Promise<FoundCredentials | undefined> {
  const env = options.env ?? process.env;
  for (const helper of options.credentialHelpers?.length ? options.credentialHelpers : [AUTH_FILES_HELPER]) {
    const found = helper === AUTH_FILES_HELPER ? await findInAuthFiles(registry, options, env) : await fromHelper(helper, registry, env);
    if (found) return found;
  }
  return undefined;
}

async function findInAuthFiles(registry: string, options: AuthFileOptions, env: NodeJS.ProcessEnv): Promise<FoundCredentials | undefined> {
  const fs = options.fs ?? diskFs;
  const host = normalizeAuthHost(registry);
  for (const file of authFileCandidates(options)) {
    const json = await readAuthFile(fs, file);
    if (!json) continue;
    const helper = credHelperFor(json, registry);
    if (helper) {
      const found = await fromHelper(helper, registry, env, file);
      if (found) return found;
    }
    const auths = json.auths;
    if (auths) {
      // An exact key beats a normalized one (`https://host/` vs `host`).
      const exact = Object.prototype.hasOwnProperty.call(auths, registry) ? decodeAuthEntry(auths[registry]) : undefined;
      if (exact) return { ...exact, file };
      for (const [key, entry] of Object.entries(auths)) {
        if (authKeyHost(key) !== host) continue;
        const creds = decodeAuthEntry(entry);
        if (creds) return { ...creds, file };
      }
    }
    if (json.credsStore) {
      const found = await fromHelper(json.credsStore, registry, env, file);
      if (found) return found;
    }
  }
  return undefined;
}

/** Where `login` puts credentials: the auth file, and the helper it names for the host (if any). */
export interface StoredCredentials {
  file: string;
  helper?: string;
}

/** Stores credentials for `registry`: in the file's helper for it when it names one, else in the file. */
export async function saveCredentials(registry: string, credentials: RegistryCredentials, options: AuthFileOptions = {}): Promise<StoredCredentials> {
  if (!credentials.username || credentials.username.includes(':')) {
    throw new UsageError('a registry username must be non-empty and must not contain ":"');
  }
  const fs = options.fs ?? diskFs;
  const file = authFileForWrite(options);
  const json: AuthFileJson = (await readAuthFile(fs, file)) ?? {};
  const auths: Record<string, AuthEntry> = { ...(json.auths ?? {}) };
  const host = normalizeAuthHost(registry);
  let removed = false;
  for (const key of Object.keys(auths)) {
    if (authKeyHost(key) === host) {
      delete auths[key];
      removed = true;
    }
  }
  const helper = credHelperFor(json, registry) ?? json.credsStore;
  if (helper) {
    await helperStore(helper, helperServers(registry)[0], credentials.username, credentials.password, options.env ?? process.env);
    // The secret lives in the helper: no plain-text copy stays behind.
    if (removed) await writeAuthFile(fs, file, { ...json, auths });
    return { file, helper };
  }
  auths[host === 'docker.io' ? DOCKER_HUB_AUTH_KEY : registry] = encodeAuthEntry(credentials);
  await writeAuthFile(fs, file, { ...json, auths });
  return { file };
}

/** Stores credentials for `registry` (see saveCredentials); returns the auth file. */
export async function storeCredentials(registry: string, credentials: RegistryCredentials, options: AuthFileOptions = {}): Promise<string> {
  return (await saveCredentials(registry, credentials, options)).file;
}

/** Removes every host-wide entry for `registry`, and erases it from the file's helper; true when something was removed. */
export async function removeCredentials(registry: string, options: AuthFileOptions = {}): Promise<boolean> {
  const fs = options.fs ?? diskFs;
  const file = authFileForWrite(options);
  const json = await readAuthFile(fs, file);
  if (!json) return false;
  let removed = false;
  const helper = credHelperFor(json, registry) ?? json.credsStore;
  if (helper) {
    for (const server of helperServers(registry)) {
      if (await helperErase(helper, server, options.env ?? process.env)) removed = true;
    }
  }
  if (!json.auths) return removed;
  const host = normalizeAuthHost(registry);
  const auths = { ...json.auths };
  let edited = false;
  for (const key of Object.keys(auths)) {
    if (authKeyHost(key) === host) {
      delete auths[key];
      edited = true;
    }
  }
  if (edited) await writeAuthFile(fs, file, { ...json, auths });
  return removed || edited;
}

/** Temp file in the same directory, mode 0600, then rename: readers never see half a file. */
async function writeAuthFile(fs: FileSystem, file: string, json: AuthFileJson): Promise<void> {
  await fs.promises.mkdir(nodePath.dirname(file), { recursive: true, mode: 0o700 });
  await writeFileAtomic(fs, file, JSON.stringify(json, null, '\t') + '\n', { mode: 0o600 });
}
