/**
 * registries.conf (containers-registries.conf(5), version 2), as containers/image reads it, for
 * what an image pull needs of it: mirrors, `insecure`, `blocked`, `credential-helpers`.
 *
 * Files: `registriesConf` (skopeo's `--registries-conf`), else `$CONTAINERS_REGISTRIES_CONF` (or
 * `$REGISTRIES_CONFIG_PATH`, as podman reads them), else `$HOME/.config/containers/registries.conf`
 * when it exists, else `/etc/containers/registries.conf`. Then the drop-ins (`*.conf`, in name
 * order, no recursion, v2 only): with the user file only `$HOME/.config/containers/registries.conf.d`,
 * else `/etc/containers/registries.conf.d` and then the user one. A `[[registry]]` of a later file
 * replaces one with the same `prefix`; `credential-helpers` is replaced when present. A missing
 * default file is an empty configuration; a missing explicit one is an error.
 *
 * Matching: the `[[registry]]` whose `prefix` (default: its `location`) is the longest prefix of
 * the reference `HOST/REPO[:TAG|@DIGEST]`, ending where the reference has `:`, `/`, `@` or its end
 * (`*.example.com` matches subdomains). A pull tries its mirrors in file order (by digest only
 * with `mirror-by-digest-only`, or as each mirror's `pull-from-mirror` says), then the primary
 * (`location`, or the reference as it is), each with its own `insecure`; the first that serves
 * the manifest serves the whole image. A version-1 file (`[registries.search]`, `.insecure`,
 * `.block`) is read as the equivalent version 2.
 *
 * Not used: `unqualified-search-registries`, `short-name-mode` and `[aliases]` (a name without a
 * registry means Docker Hub here, as in docker and sealer).
 */
import * as os from 'node:os';
import * as nodePath from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { RegistryConfigError } from '../errors';
import { diskFs, errnoCode, type FileSystem } from '../fs';
import { formatReference, parseDockerReference, type DockerReference } from '../reference/docker';

/** One mirror of a registry. */
export interface MirrorConfig {
  location: string;
  /** Skip TLS verification and allow plain HTTP for this mirror. */
  insecure?: boolean;
  /** `all` (default), `digest-only` or `tag-only`: which pulls may use it. */
  pullFromMirror?: 'all' | 'digest-only' | 'tag-only';
}

/** One `[[registry]]` table, its keys in camelCase. */
export interface RegistryConfig {
  /** What references it applies to (default: `location`); `*.example.com` for subdomains. */
  prefix?: string;
  /** Where images under `prefix` really are (`host[:port][/namespace]`). */
  location?: string;
  /** Skip TLS verification and allow plain HTTP. */
  insecure?: boolean;
  /** Refuse to pull from it. */
  blocked?: boolean;
  /** Use the mirrors only for references by digest. */
  mirrorByDigestOnly?: boolean;
  mirrors?: MirrorConfig[];
}

/** registries.conf's content, as the SDK takes it (`registriesConf: { registries: […] }`). */
export interface RegistriesConfig {
  registries?: RegistryConfig[];
  /** `credential-helpers`: `containers-auth.json` (the auth files) or helper names, in order. */
  credentialHelpers?: string[];
}

/** A `[[registry]]` after checking: prefix and location normalized. */
export interface ResolvedRegistry {
  prefix: string;
  location: string;
  insecure: boolean;
  blocked: boolean;
  mirrorByDigestOnly: boolean;
  mirrors: ResolvedMirror[];
}

export interface ResolvedMirror {
  location: string;
  insecure: boolean;
  pullFromMirror?: 'all' | 'digest-only' | 'tag-only';
}

/** The configuration in force: registries sorted by prefix, and where it came from. */
export interface LoadedRegistriesConf {
  registries: ResolvedRegistry[];
  credentialHelpers?: string[];
  /** The files read (for messages), or `the registriesConf option`. */
  sources: string[];
}

export const EMPTY_REGISTRIES_CONF: LoadedRegistriesConf = Object.freeze({ registries: [], sources: [] }) as unknown as LoadedRegistriesConf;

export interface RegistriesConfOptions {
  registriesConf?: string | false | RegistriesConfig;
  authFs?: FileSystem;
  env?: NodeJS.ProcessEnv;
  homeDir?: string;
}

const SYSTEM_FILE = '/etc/containers/registries.conf';
const SYSTEM_DIR = '/etc/containers/registries.conf.d';

// ------------------------------------------------------------------ parsing

function fail(where: string, message: string): never {
  throw new RegistryConfigError(`${where}: ${message}`, { file: where });
}

/** A `location` or `prefix`: no URI scheme, trailing slashes trimmed (sysregistriesv2 parseLocation). */
function parseLocation(value: string, where: string): string {
  const trimmed = value.replace(/\/+$/, '');
  if (/^https?:\/\//.test(trimmed)) fail(where, `invalid location '${value}': URI schemes are not supported`);
  return trimmed;
}

function bool(value: unknown, key: string, where: string): boolean | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'boolean') fail(where, `"${key}" must be true or false`);
  return value;
}

function str(value: unknown, key: string, where: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') fail(where, `"${key}" must be a string`);
  return value;
}

function table(value: unknown, key: string, where: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(where, `"${key}" must be a table`);
  return value as Record<string, unknown>;
}

function tables(value: unknown, key: string, where: string): Record<string, unknown>[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) fail(where, `"${key}" must be an array of tables ([[${key}]])`);
  return value.map((v) => table(v, key, where));
}

function strings(value: unknown, key: string, where: string): string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) fail(where, `"${key}" must be a list of strings`);
  return value as string[];
}

/** The file's TOML document as a RegistriesConfig (v1 tables converted), unchecked beyond types. */
function fromToml(doc: Record<string, unknown>, where: string, forceV2: boolean): RegistriesConfig {
  const v1 = doc.registries !== undefined ? table(doc.registries, 'registries', where) : undefined;
  const v2Keys = ['registry', 'unqualified-search-registries', 'credential-helpers', 'short-name-mode', 'aliases'];
  if (v1) {
    if (forceV2) fail(where, 'registry must be in v2 format but is in v1');
    if (v2Keys.some((k) => doc[k] !== undefined)) fail(where, 'mixing sysregistry v1/v2 is not supported');
    const list = (name: string): string[] =>
      v1[name] === undefined ? [] : (strings(table(v1[name], `registries.${name}`, where).registries, `registries.${name}.registries`, where) ?? []);
    const byLocation = new Map<string, RegistryConfig>();
    const entry = (location: string): RegistryConfig => {
      const loc = parseLocation(location, where);
      let e = byLocation.get(loc);
      if (!e) byLocation.set(loc, (e = { location: loc, prefix: loc }));
      return e;
    };
    for (const l of list('block')) entry(l).blocked = true;
    for (const l of list('insecure')) entry(l).insecure = true;
    return { registries: [...byLocation.values()] };
  }
  const registries = tables(doc.registry, 'registry', where).map((r): RegistryConfig => {
    const mirrors = tables(r.mirror, 'registry.mirror', where).map((m): MirrorConfig => {
      const pull = str(m['pull-from-mirror'], 'pull-from-mirror', where);
      if (pull !== undefined && pull !== '' && pull !== 'all' && pull !== 'digest-only' && pull !== 'tag-only') {
        fail(where, `unsupported pull-from-mirror value "${pull}" for mirror "${String(m.location)}"`);
      }
      return {
        location: str(m.location, 'location', where) ?? '',
        ...(bool(m.insecure, 'insecure', where) !== undefined ? { insecure: m.insecure as boolean } : {}),
        ...(pull ? { pullFromMirror: pull as MirrorConfig['pullFromMirror'] } : {}),
      };
    });
    if (r['pull-from-mirror'] !== undefined) fail(where, `pull-from-mirror must not be set for a non-mirror registry "${String(r.prefix ?? r.location)}"`);
    return {
      prefix: str(r.prefix, 'prefix', where),
      location: str(r.location, 'location', where),
      insecure: bool(r.insecure, 'insecure', where),
      blocked: bool(r.blocked, 'blocked', where),
      mirrorByDigestOnly: bool(r['mirror-by-digest-only'], 'mirror-by-digest-only', where),
      mirrors,
    };
  });
  return { registries, credentialHelpers: strings(doc['credential-helpers'], 'credential-helpers', where) };
}

/** Checks and normalizes one file's registries (sysregistriesv2 postProcessRegistries). */
export function resolveRegistries(config: RegistriesConfig, where: string): LoadedRegistriesConf {
  const resolved: ResolvedRegistry[] = [];
  for (const r of config.registries ?? []) {
    const location = parseLocation(r.location ?? '', where);
    let prefix: string;
    if (!r.prefix) {
      if (location === '') fail(where, 'invalid condition: both location and prefix are unset');
      prefix = location;
    } else {
      prefix = parseLocation(r.prefix, where);
      if (!prefix.startsWith('*.') && location === '') fail(where, 'invalid condition: location is unset and prefix is not in the format: *.example.com');
      if (prefix.startsWith('*.') && /[/@:]/.test(prefix)) {
        fail(where, `Wildcarded prefix should be in the format: *.example.com. Current prefix "${prefix}" is incorrectly formatted`);
      }
    }
    const mirrors = (r.mirrors ?? []).map((m): ResolvedMirror => {
      const mirrorLocation = parseLocation(m.location ?? '', where);
      if (mirrorLocation === '') fail(where, 'invalid condition: mirror location is unset');
      if (r.mirrorByDigestOnly && m.pullFromMirror) {
        fail(where, `cannot set mirror usage mirror-by-digest-only for the registry ("${prefix}") and pull-from-mirror for per-mirror ("${mirrorLocation}") at the same time`);
      }
      return { location: mirrorLocation, insecure: m.insecure === true, ...(m.pullFromMirror ? { pullFromMirror: m.pullFromMirror } : {}) };
    });
    resolved.push({ prefix, location, insecure: r.insecure === true, blocked: r.blocked === true, mirrorByDigestOnly: r.mirrorByDigestOnly === true, mirrors });
  }
  // One location (or wildcard prefix) must not be insecure and secure, blocked and not.
  const byKey = new Map<string, ResolvedRegistry>();
  for (const r of resolved) {
    const key = r.location || r.prefix;
    const other = byKey.get(key);
    if (other && other.insecure !== r.insecure) fail(where, `registry '${r.location}' is defined multiple times with conflicting 'insecure' setting`);
    if (other && other.blocked !== r.blocked) fail(where, `registry '${r.location}' is defined multiple times with conflicting 'blocked' setting`);
    byKey.set(key, r);
  }
  // The first entry for a prefix wins; the list is kept sorted by prefix.
  const unique = new Map<string, ResolvedRegistry>();
  for (const r of resolved) if (!unique.has(r.prefix)) unique.set(r.prefix, r);
  return {
    registries: [...unique.keys()].sort().map((p) => unique.get(p)!),
    ...(config.credentialHelpers !== undefined ? { credentialHelpers: [...config.credentialHelpers] } : {}),
    sources: [where],
  };
}

/** Parses one registries.conf file's text. */
export function parseRegistriesConf(text: string, where: string, options: { forceV2?: boolean } = {}): LoadedRegistriesConf {
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(text) as Record<string, unknown>;
  } catch (err) {
    const e = err as { message?: string; line?: number; column?: number };
    const first = (e.message ?? String(err)).split('\n')[0];
    throw new RegistryConfigError(`${where}${e.line ? `:${e.line}${e.column ? `:${e.column}` : ''}` : ''}: ${first}`, { file: where });
  }
  return resolveRegistries(fromToml(doc, where, options.forceV2 === true), where);
}

/** A drop-in's settings over the ones before (sysregistriesv2 updateWithConfigurationFrom). */
function merge(base: LoadedRegistriesConf, update: LoadedRegistriesConf): LoadedRegistriesConf {
  const byPrefix = new Map(base.registries.map((r) => [r.prefix, r]));
  for (const r of update.registries) byPrefix.set(r.prefix, r);
  return {
    registries: [...byPrefix.keys()].sort().map((p) => byPrefix.get(p)!),
    credentialHelpers: update.credentialHelpers ?? base.credentialHelpers,
    sources: [...base.sources, ...update.sources],
  };
}

// ------------------------------------------------------------------ loading

async function readText(fs: FileSystem, file: string): Promise<string | undefined> {
  try {
    return await fs.promises.readFile(file, 'utf8');
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new RegistryConfigError(`cannot read ${file}: ${(err as Error).message}`, { file });
  }
}

async function dropIns(fs: FileSystem, dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = (await fs.promises.readdir(dir)).map(String);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw new RegistryConfigError(`reading ${dir}: ${(err as Error).message}`, { file: dir });
  }
  const out: string[] = [];
  for (const name of names.filter((n) => n.endsWith('.conf')).sort()) {
    const file = nodePath.join(dir, name);
    try {
      if ((await fs.promises.stat(file)).isFile()) out.push(file);
    } catch {
      // removed meanwhile: skipped, as containers/image does
    }
  }
  return out;
}

/** The configuration `options` ask for (see the module comment for the files and their order). */
export async function loadRegistriesConf(options: RegistriesConfOptions = {}): Promise<LoadedRegistriesConf> {
  const choice = options.registriesConf;
  if (choice === false) return EMPTY_REGISTRIES_CONF;
  if (typeof choice === 'object') return resolveRegistries(choice, 'the registriesConf option');
  const fs = options.authFs ?? diskFs;
  const env = options.env ?? process.env;
  const home = options.homeDir ?? env.HOME ?? os.homedir();
  const userFile = nodePath.join(home, '.config', 'containers', 'registries.conf');
  const userDir = nodePath.join(home, '.config', 'containers', 'registries.conf.d');
  const explicit = choice || env.CONTAINERS_REGISTRIES_CONF || env.REGISTRIES_CONFIG_PATH || undefined;
  let main: string;
  let dirs: string[];
  let userText: string | undefined;
  if (explicit) {
    main = explicit;
    dirs = [SYSTEM_DIR, userDir];
  } else if ((userText = await readText(fs, userFile)) !== undefined) {
    main = userFile;
    dirs = [userDir];
  } else {
    main = SYSTEM_FILE;
    dirs = [SYSTEM_DIR, userDir];
  }
  const text = main === userFile && userText !== undefined ? userText : await readText(fs, main);
  if (text === undefined && explicit) throw new RegistryConfigError(`loading registries configuration "${main}": no such file`, { file: main });
  let conf = text === undefined ? { ...EMPTY_REGISTRIES_CONF, sources: [main] } : parseRegistriesConf(text, main);
  for (const dir of dirs) {
    for (const file of await dropIns(fs, dir)) {
      const dropIn = await readText(fs, file);
      if (dropIn !== undefined) conf = merge(conf, parseRegistriesConf(dropIn, file, { forceV2: true }));
    }
  }
  return conf;
}

// ------------------------------------------------------------------ matching

/** The length of `prefix` when it matches `ref` (`HOST[/…][:tag|@digest]`), else -1 (refMatchingPrefix). */
export function prefixMatch(ref: string, prefix: string): number {
  if (prefix.startsWith('*.')) {
    const suffix = prefix.slice(1);
    const index = ref.indexOf(suffix);
    if (index === -1 || ref.slice(0, index).includes('/')) return -1;
    const end = index + suffix.length;
    return end === ref.length || ':/@'.includes(ref[end]) ? end : -1;
  }
  if (!ref.startsWith(prefix)) return -1;
  if (ref.length === prefix.length) return prefix.length;
  // As containers/image (which warns against relying on it): `host` also matches `host:5000`.
  return ':/@'.includes(ref[prefix.length]) ? prefix.length : -1;
}

/** The `[[registry]]` with the longest prefix matching `ref`, if any (sysregistriesv2 FindRegistry). */
export function findRegistry(conf: LoadedRegistriesConf, ref: string): ResolvedRegistry | undefined {
  let best: ResolvedRegistry | undefined;
  for (const r of conf.registries) {
    if (prefixMatch(ref, r.prefix) !== -1 && (!best || r.prefix.length > best.prefix.length)) best = r;
  }
  return best;
}

/** One place to try a pull from. */
export interface PullSource {
  /** The reference rewritten for this endpoint. */
  reference: DockerReference;
  /** registries.conf's `insecure` for it. */
  insecure: boolean;
  mirror: boolean;
}

/**
 * Where a pull of `ref` looks, in order: the eligible mirrors, then the primary
 * (PullSourcesFromReference). RegistryBlockedError is the caller's to throw (`registry.blocked`).
 */
export function pullSources(conf: LoadedRegistriesConf, ref: DockerReference): { registry?: ResolvedRegistry; sources: PullSource[] } {
  const text = formatReference(ref);
  const registry = findRegistry(conf, text);
  if (!registry) return { sources: [{ reference: ref, insecure: false, mirror: false }] };
  const byDigest = ref.digest !== undefined;
  const endpoints: Array<{ location: string; insecure: boolean; mirror: boolean }> = [];
  for (const m of registry.mirrors) {
    if (registry.mirrorByDigestOnly && !byDigest) continue;
    if (m.pullFromMirror === 'digest-only' && !byDigest) continue;
    if (m.pullFromMirror === 'tag-only' && byDigest) continue;
    endpoints.push({ location: m.location, insecure: m.insecure, mirror: true });
  }
  endpoints.push({ location: registry.location, insecure: registry.insecure, mirror: false });
  const prefixLength = prefixMatch(text, registry.prefix);
  const sources = endpoints.map((e): PullSource => {
    if (e.location === '') return { reference: ref, insecure: e.insecure, mirror: e.mirror };
    const rewritten = e.location + text.slice(prefixLength);
    let reference: DockerReference;
    try {
      reference = parseDockerReference(rewritten);
    } catch (err) {
      throw new RegistryConfigError(`rewriting ${text} for ${e.location} (prefix ${registry.prefix}) gives ${rewritten}: ${(err as Error).message}`, {
        prefix: registry.prefix,
        location: e.location,
      });
    }
    return { reference, insecure: e.insecure, mirror: e.mirror };
  });
  return { registry, sources };
}
