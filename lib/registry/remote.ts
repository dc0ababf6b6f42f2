/**
 * What push, pull and the embedded registry share: `docker://` references, the options that
 * reach a registry (RegistryOptions, passed through unchanged), a pool that keeps one client per
 * registry endpoint so a run asks the token server once per scope and reads registries.conf once,
 * and the choice of mirror or primary a pull reads from (registries.conf).
 */
import { CloudRootfsError, InvalidReferenceError, RegistryBlockedError } from '../errors';
import { formatReference, parseDockerReference, withDefaultTag, type DockerReference } from '../reference/docker';
import { RegistryClient, type ClientContext } from './client';
import type { RegistryOptions } from './options';
import { loadRegistriesConf, pullSources, type LoadedRegistriesConf } from './registries-conf';
import { isAbortError } from './retry';

export const DOCKER_TRANSPORT_PREFIX = 'docker://';

/** How to reach registries (RegistryOptions), and a pool to share clients between calls. */
export interface RegistryAccessOptions extends RegistryOptions {
  /** Share clients (their connections, token caches and registries.conf) between calls. */
  clients?: RegistryClientPool;
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

/** How a pull reaches one endpoint: a mirror's own `insecure`, and whether it is a mirror on another host. */
export interface EndpointChoice {
  /** registries.conf's `insecure` for this endpoint. */
  insecure?: boolean;
  /** A mirror on another host than the registry the reference names: `credentials` are not sent to it. */
  foreignMirror?: boolean;
}

/** One RegistryClient per registry endpoint, created on first use with the pool's options. */
export class RegistryClientPool {
  private readonly clients = new Map<string, RegistryClient>();
  private conf: Promise<LoadedRegistriesConf> | undefined;
  private readonly options: RegistryOptions;

  constructor(options: RegistryAccessOptions = {}) {
    const { clients: _ignored, ...rest } = options;
    void _ignored;
    this.options = rest;
  }

  /** registries.conf as the pool's options name it, read once. */
  registriesConf(): Promise<LoadedRegistriesConf> {
    this.conf ??= loadRegistriesConf(this.options);
    this.conf.catch(() => (this.conf = undefined)); // tried again on the next call
    return this.conf;
  }

  get(registry: string, endpoint: EndpointChoice = {}): RegistryClient {
    const key = `${registry}\n${endpoint.insecure ?? ''}\n${endpoint.foreignMirror === true}`;
    let client = this.clients.get(key);
    if (!client) {
      const context: ClientContext = { conf: this.registriesConf(), ...(endpoint.insecure !== undefined ? { endpointInsecure: endpoint.insecure } : {}) };
      const options = endpoint.foreignMirror ? { ...this.options, credentials: undefined } : this.options;
      client = new RegistryClient({ ...options, registry }, context);
      this.clients.set(key, client);
    }
    return client;
  }
}

/** The client for `registry`: from the caller's pool when there is one, else a new one. */
export function clientFor(registry: string, options: RegistryAccessOptions): RegistryClient {
  if (options.clients) return options.clients.get(registry);
  const { clients: _none, ...rest } = options;
  void _none;
  return new RegistryClient({ ...rest, registry });
}

/** Where a pull reads an image from: the endpoint that served its top manifest, and that answer. */
export interface PullSourceChoice<T> {
  client: RegistryClient;
  /** The reference as that endpoint names the image (a mirror's location may add a namespace). */
  reference: DockerReference;
  value: T;
}

/**
 * The endpoint a pull of `ref` reads from. `mirrors` (a registry → mirror host map) replaces the
 * registry outright; otherwise registries.conf's mirrors for the reference are tried in order,
 * then the primary, and the first whose `fetchTop` succeeds serves the whole image (as podman and
 * CRI-O do). When all fail, the primary's error is thrown, naming the mirrors' failures.
 */
export async function choosePullSource<T>(
  ref: DockerReference,
  access: RegistryAccessOptions & { mirrors?: Readonly<Record<string, string>> },
  fetchTop: (client: RegistryClient, reference: DockerReference) => Promise<T>,
): Promise<PullSourceChoice<T>> {
  const pool = access.clients ?? new RegistryClientPool(access);
  const replaced = access.mirrors?.[ref.registry];
  if (replaced) {
    // An explicit redirect of the caller's: its credentials go along (unlike registries.conf mirrors).
    const client = pool.get(replaced);
    const reference = { ...ref, registry: replaced };
    return { client, reference, value: await fetchTop(client, reference) };
  }
  const conf = await pool.registriesConf();
  const { registry, sources } = pullSources(conf, ref);
  if (registry?.blocked) throw new RegistryBlockedError(registry.prefix, conf.sources.join(', '));
  const failures: Array<{ reference: string; error: unknown }> = [];
  for (const source of sources) {
    const client = pool.get(source.reference.registry, {
      insecure: source.insecure,
      foreignMirror: source.mirror && source.reference.registry !== ref.registry,
    });
    try {
      return { client, reference: source.reference, value: await fetchTop(client, source.reference) };
    } catch (err) {
      if (isAbortError(err) || source === sources[sources.length - 1]) {
        if (failures.length > 0 && !isAbortError(err)) throw withMirrorFailures(err, failures);
        throw err;
      }
      failures.push({ reference: formatReference(source.reference), error: err });
    }
  }
  throw new Error('unreachable: the primary is always the last source');
}

/** The primary's error, its message prefixed with the mirrors' (as containers/image words it). */
function withMirrorFailures(err: unknown, failures: ReadonlyArray<{ reference: string; error: unknown }>): unknown {
  if (!(err instanceof Error)) return err;
  const text = failures.map((f) => `[${f.reference}: ${f.error instanceof Error ? f.error.message : String(f.error)}]`).join('\n');
  err.message = `(Mirrors also failed: ${text}): ${err.message}`;
  if (err instanceof CloudRootfsError) {
    (err.details as Record<string, unknown>).mirrors = failures.map((f) => ({
      reference: f.reference,
      code: (f.error as { code?: unknown })?.code,
      message: f.error instanceof Error ? f.error.message : String(f.error),
    }));
  }
  return err;
}
