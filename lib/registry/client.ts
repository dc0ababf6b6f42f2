/**
 * A client for the OCI distribution API (docs/reference/oci.md#distribution-api) over node:http(s)
 * (transport.ts: any port, per-registry TLS, proxies, connect and stall timeouts). It streams
 * every blob in both directions, hashes what it moves, and only ever buffers manifests (capped)
 * and, in chunked uploads, one chunk.
 *
 * Transport rules:
 * - The scheme, TLS verification and the fall back to plain http follow endpoint.ts (skopeo's
 *   `--tls-verify`, registries.conf `insecure`, loopback hosts); a client that falls back stays
 *   on http.
 * - Auth: anonymous until a 401 names the scheme; Basic or Bearer tokens (see ./auth.ts), with
 *   credentials from the options, credential helpers or auth files (./auth-file.ts).
 * - Idempotent requests retry on 408/429/5xx, dropped connections and stalls with exponential
 *   backoff and jitter, honouring `Retry-After`; one operation's attempts share one budget of
 *   `retries`, so a stalled registry fails within a bound. A blob upload retries as a whole: a
 *   new upload session and a fresh `source.open()`. A blob download that drops mid-body resumes
 *   with a `Range` request.
 * - Redirects (blob storage) are followed by hand; `Authorization` is only ever sent to the
 *   registry's own origin.
 */
import { Readable } from 'node:stream';
import {
  AuthError,
  BlobNotFoundError,
  DigestMismatchError,
  ImageNotFoundError,
  InvalidReferenceError,
  LimitExceededError,
  NetworkError,
  RegistryError,
  SizeMismatchError,
  TimeoutError,
  TlsError,
  UnsupportedMediaTypeError,
  UsageError,
} from '../errors';
import type { FileSystem } from '../fs';
import { IO_CHUNK } from '../fs';
import { MEDIA_TYPES } from '../media-types';
import { canVerifyAlgorithm, createDigestHasher, digestOfBytes, isDigest, parseDigest, type DigestHasher } from '../reference/digest';
import { isValidRepository, isValidTag } from '../reference/docker';
import { RegistryAuth, type RepositoryScope } from './auth';
import { findCredentials, type RegistryCredentials } from './auth-file';
import {
  apiHost,
  baseMediaType,
  bodyChunks,
  contentLength,
  discard,
  isRedirect,
  manifestMediaType,
  nextLink,
  readCapped,
  readRegistryErrors,
  redactUrl,
  useHttp,
  withQuery,
} from './http';
import { planEndpoint, type EndpointPlan } from './endpoint';
import type { RegistryOptions } from './options';
import { loadRegistriesConf, type LoadedRegistriesConf } from './registries-conf';
import type { RegistryResponse } from './transport';
import { Meter, blobHeaders, rechunk, trackedBody } from './upload-body';
import {
  DEFAULT_RETRY_POLICY,
  describeNetworkFailure,
  isNetworkFailure,
  isPlainHttpAnswer,
  isRetryableStatus,
  isTlsFailure,
  parseRetryAfter,
  retryDelay,
  sleep,
  type RetryPolicy,
} from './retry';

/** What `getManifest` asks for unless told otherwise: OCI and Docker schema 2, images and indexes. */
export const DEFAULT_MANIFEST_ACCEPT: readonly string[] = [
  MEDIA_TYPES.manifest,
  MEDIA_TYPES.index,
  MEDIA_TYPES.dockerManifest,
  MEDIA_TYPES.dockerManifestList,
];

/** Registries must accept manifests of at least 4 MiB (distribution-spec); we refuse to read bigger. */
export const DEFAULT_MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

const MAX_REDIRECTS = 10;
/** Bytes a broken download must have moved since its last failure to be resumed with a fresh retry budget. */
const RESUME_PROGRESS_BYTES = 1 << 20;
const MAX_TAG_PAGES = 10_000;

/** A client's options: how to reach registries (RegistryOptions), for one registry. */
export interface RegistryClientOptions extends RegistryOptions {
  /** `host[:port]`; `docker.io` (and its aliases) talks to `registry-1.docker.io`. */
  registry: string;
  maxManifestBytes?: number;
  /** Clock for token expiry (tests). */
  now?: () => number;
}

/**
 * What clients of one call share (a RegistryClientPool's): registries.conf, read once, and, for
 * a mirror, its own `insecure`.
 */
export interface ClientContext {
  conf?: Promise<LoadedRegistriesConf>;
  endpointInsecure?: boolean;
}

/** A blob to upload. `open()` may be called more than once: every retry starts over. */
export interface BlobSource {
  /** Known up front: enables the HEAD skip, mounts and a monolithic upload. */
  digest?: string;
  size?: number;
  open(): Readable;
  /**
   * For producers that hash while they stream (compress + hash + upload in one pass): called after
   * the stream ended; its answer must match what the client measured, or nothing is committed.
   */
  digestAfter?: () => string | undefined;
}

export interface PutBlobOptions {
  /** Upload in `Content-Range` chunks of this many bytes (raised to `OCI-Chunk-Min-Length`). */
  chunkSize?: number;
  /** Stream one PATCH and commit with `PUT ?digest=` even when the digest is known. */
  streaming?: boolean;
  /** Repositories of the same registry to try a cross-repository mount from first. */
  mountFrom?: string | readonly string[];
  /** HEAD the blob first and skip the upload when it exists (default true; needs `digest`). */
  skipExisting?: boolean;
  signal?: AbortSignal;
}

export interface PutBlobResult {
  digest: string;
  size: number;
  /** `exists`: HEAD found it; `mounted`: cross-repo mount; `uploaded`: bytes were sent. */
  outcome: 'exists' | 'mounted' | 'uploaded';
  /** Upload attempts used (0 when nothing was uploaded). */
  attempts: number;
}

export interface GetBlobOptions {
  expectedSize?: number;
  signal?: AbortSignal;
}

export interface ManifestResult {
  bytes: Buffer;
  mediaType: string;
  digest: string;
}

export interface ManifestHead {
  digest: string | undefined;
  mediaType: string;
  size: number | undefined;
}

export interface GetManifestOptions {
  accept?: readonly string[];
  signal?: AbortSignal;
  /** Refuse a manifest bigger than this (default: the client's `maxManifestBytes`). */
  maxBytes?: number;
}

export interface PingResult {
  /** The authentication scheme the registry uses (`none` when `/v2/` answered 200 anonymously). */
  auth: 'none' | 'basic' | 'bearer';
}

/** A request's body: replayable bytes, or a factory for a stream that can be sent once. */
type RequestBody = Uint8Array | (() => AsyncIterable<Buffer>);

/** Attempts one operation has used: every retry of it, at any level, draws from one budget. */
interface RetryBudget {
  used: number;
}

interface SendRequest {
  method: string;
  url: string;
  scopes: readonly RepositoryScope[];
  headers?: Record<string, string>;
  body?: RequestBody;
  /** Retry transient failures inside `send` (idempotent requests only). */
  retry: boolean;
  /** Follow 3xx by hand (only for bodiless requests). */
  followRedirects?: boolean;
  /** false for the token server: no registry credentials, no challenge handling. */
  registryAuth?: boolean;
  signal?: AbortSignal;
  /** Shared with the operation's other requests (default: this request's own). */
  budget?: RetryBudget;
}

interface UploadSession {
  location: string;
  minChunk: number;
}

export class RegistryClient {
  readonly registry: string;
  private readonly host: string;
  private scheme: 'https' | 'http';
  /** The scheme is decided (no fall back to http pending). */
  private schemeSettled = false;
  private probe: Promise<void> | undefined;
  private readonly policy: RetryPolicy;
  private readonly userAgent: string;
  private readonly maxManifestBytes: number;
  private readonly auth: RegistryAuth;
  private plan: Promise<EndpointPlan> | undefined;
  private credentialsPromise: Promise<RegistryCredentials | undefined> | undefined;

  constructor(
    private readonly options: RegistryClientOptions,
    private readonly context: ClientContext = {},
  ) {
    const registry = options.registry?.trim();
    if (!registry || !/^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d+)?$/.test(registry)) {
      throw new InvalidReferenceError(String(options.registry), 'a registry must be host[:port]');
    }
    this.registry = registry;
    this.host = apiHost(registry);
    this.scheme = options.insecure === true ? 'http' : 'https';
    this.policy = {
      retries: options.retries ?? DEFAULT_RETRY_POLICY.retries,
      baseDelayMs: options.retryBaseDelayMs ?? DEFAULT_RETRY_POLICY.baseDelayMs,
      maxDelayMs: options.maxRetryDelayMs ?? DEFAULT_RETRY_POLICY.maxDelayMs,
    };
    this.userAgent = options.userAgent ?? 'cloudrootfs-registry-client';
    this.maxManifestBytes = options.maxManifestBytes ?? DEFAULT_MAX_MANIFEST_BYTES;
    this.auth = new RegistryAuth({
      registry,
      credentials: () => this.credentials(),
      fetchToken: (url, headers) =>
        this.send({ method: 'GET', url, headers, scopes: [], retry: true, followRedirects: true, registryAuth: false }),
      now: options.now,
    });
  }

  /**
   * `https://host[:port]` or `http://…`, no trailing slash: the scheme in use (a client that
   * may fall back to http starts on https and settles with its first request).
   */
  get baseUrl(): string {
    return `${this.scheme}://${this.host}`;
  }

  private get origin(): string {
    return new URL(this.baseUrl).origin;
  }

  /** Closes idle connections (they close by themselves otherwise, and never keep a process alive). */
  close(): void {
    void this.plan?.then((p) => p.transport.close(), () => undefined);
  }

  /** Token requests made so far (to check the token cache). */
  get tokenRequests(): number {
    return this.auth.tokenRequests;
  }

  // ---------------------------------------------------------------- reads

  /** `GET /v2/`: checks the registry is there and, with credentials, that they are accepted. */
  async ping(options: { signal?: AbortSignal } = {}): Promise<PingResult> {
    const res = await this.send({ method: 'GET', url: `${this.baseUrl}/v2/`, scopes: [], retry: true, followRedirects: true, signal: options.signal });
    if (res.status === 200) {
      await discard(res);
      return { auth: this.auth.scheme };
    }
    if (res.status === 404) await this.fail(res, `${this.registry} does not serve the registry API v2`);
    return this.fail(res, `ping ${this.registry}`);
  }

  /** `HEAD` a blob: its size (-1 if the registry sent no length) when present, undefined when absent. */
  async blobExists(repo: string, digest: string, options: { signal?: AbortSignal } = {}): Promise<{ size: number } | undefined> {
    this.checkRepo(repo);
    parseDigest(digest);
    const res = await this.send({
      method: 'HEAD',
      url: this.repoUrl(repo, `blobs/${digest}`),
      scopes: [{ repository: repo, actions: ['pull'] }],
      retry: true,
      followRedirects: true,
      signal: options.signal,
    });
    if (res.status !== 200 && res.status !== 404) return this.fail(res, `HEAD blob ${digest} in ${repo}`);
    await discard(res);
    return res.status === 200 ? { size: contentLength(res) ?? -1 } : undefined;
  }

  /**
   * The blob's bytes as a stream that hashes everything it passes on and fails with
   * DigestMismatchError (or SizeMismatchError) at the end if they are not the blob asked for.
   */
  async getBlob(repo: string, digest: string, options: GetBlobOptions = {}): Promise<Readable> {
    this.checkRepo(repo);
    const { algorithm } = parseDigest(digest);
    const hasher = createDigestHasher(algorithm); // fails early for algorithms we cannot check
    const budget: RetryBudget = { used: 0 };
    const res = await this.openBlob(repo, digest, 0, options.signal, budget);
    const length = contentLength(res);
    if (options.expectedSize !== undefined && length !== undefined && length !== options.expectedSize) {
      await discard(res);
      throw new SizeMismatchError(options.expectedSize, length, `blob ${digest}`);
    }
    return Readable.from(this.blobChunks(repo, digest, res, hasher, options, budget), { objectMode: false, highWaterMark: IO_CHUNK });
  }

  /** GET (optionally from `offset` with a Range) following redirects; 200/206 or a typed error. */
  private async openBlob(repo: string, digest: string, offset: number, signal?: AbortSignal, budget?: RetryBudget): Promise<RegistryResponse> {
    const headers: Record<string, string> = { 'accept-encoding': 'identity' };
    if (offset > 0) headers.range = `bytes=${offset}-`;
    const res = await this.send({
      method: 'GET',
      url: this.repoUrl(repo, `blobs/${digest}`),
      headers,
      scopes: [{ repository: repo, actions: ['pull'] }],
      retry: true,
      followRedirects: true,
      signal,
      budget,
    });
    if (res.status === 200) return res;
    if (offset > 0 && res.status === 206) {
      // Only a range that starts where we stopped continues the stream.
      const start = /^bytes (\d+)-/.exec(res.headers.get('content-range') ?? '')?.[1];
      if (start !== undefined && Number(start) === offset) return res;
      await discard(res);
      throw new RegistryError(`${this.registry} answered a Range request for ${digest} with the wrong range`, 206, [], {
        asked: offset,
        contentRange: res.headers.get('content-range'),
      });
    }
    if (res.status === 404) {
      await discard(res);
      throw new BlobNotFoundError(digest, `${this.registry}/${repo}`);
    }
    return this.fail(res, `GET blob ${digest} from ${repo}`);
  }

  private async *blobChunks(
    repo: string,
    digest: string,
    first: RegistryResponse,
    hasher: DigestHasher,
    options: GetBlobOptions,
    budget: RetryBudget,
  ): AsyncGenerator<Buffer> {
    let res = first;
    let offset = 0;
    let progressAt = 0;
    for (;;) {
      // A server that ignores Range restarts at 0: drop what we already passed on.
      let skip = res.status === 200 ? offset : 0;
      try {
        for await (const chunk of bodyChunks(res)) {
          let buf = chunk;
          if (skip > 0) {
            const dropped = Math.min(skip, buf.length);
            skip -= dropped;
            buf = buf.subarray(dropped);
            if (buf.length === 0) continue;
          }
          if (options.expectedSize !== undefined && offset + buf.length > options.expectedSize) {
            throw new SizeMismatchError(options.expectedSize, offset + buf.length, `blob ${digest} (at least)`);
          }
          hasher.update(buf);
          offset += buf.length;
          yield buf;
        }
        break;
      } catch (err) {
        if (!isNetworkFailure(err)) throw err;
        // A download that moved on since the last failure earns a fresh budget (containers/image
        // resumes after each MiB); one that does not fails within `retries` attempts.
        if (offset - progressAt >= RESUME_PROGRESS_BYTES) budget.used = 0;
        progressAt = offset;
        if (budget.used >= this.policy.retries) {
          const what = `download of blob ${digest} from ${this.registry}/${repo}`;
          const details = { registry: this.registry, digest, offset, attempts: budget.used + 1 };
          if (err instanceof TimeoutError) throw new TimeoutError(`${what}: ${err.message}`, { ...err.details, ...details }, { cause: err });
          throw new NetworkError(`${what} kept failing: ${describeNetworkFailure(err)}`, details, { cause: err });
        }
        await sleep(retryDelay(budget.used++, this.policy), options.signal);
        res = await this.openBlob(repo, digest, offset, options.signal, budget);
      }
    }
    if (options.expectedSize !== undefined && offset !== options.expectedSize) {
      throw new SizeMismatchError(options.expectedSize, offset, `blob ${digest}`);
    }
    const actual = hasher.digest();
    if (actual !== digest) throw new DigestMismatchError(digest, actual, `blob from ${this.registry}/${repo}`);
  }

  /** `HEAD` a manifest: its digest, media type and size, or undefined when absent. */
  async headManifest(repo: string, ref: string, options: GetManifestOptions = {}): Promise<ManifestHead | undefined> {
    this.checkRepo(repo);
    const byDigest = this.checkRef(ref);
    const res = await this.send({
      method: 'HEAD',
      url: this.repoUrl(repo, `manifests/${ref}`),
      headers: { accept: (options.accept ?? DEFAULT_MANIFEST_ACCEPT).join(', ') },
      scopes: [{ repository: repo, actions: ['pull'] }],
      retry: true,
      followRedirects: true,
      signal: options.signal,
    });
    if (res.status !== 200 && res.status !== 404) return this.fail(res, `HEAD manifest ${repo}:${ref}`);
    await discard(res);
    if (res.status === 404) return undefined;
    return {
      digest: res.headers.get('docker-content-digest') ?? (byDigest ? ref : undefined),
      mediaType: baseMediaType(res.headers.get('content-type')) ?? '',
      size: contentLength(res),
    };
  }

  /**
   * A manifest's exact bytes. By digest, the bytes must hash to it; by tag, they must match the
   * registry's `Docker-Content-Digest` when it sends one. Bigger than `maxManifestBytes` → LimitExceededError.
   */
  async getManifest(repo: string, ref: string, options: GetManifestOptions = {}): Promise<ManifestResult> {
    this.checkRepo(repo);
    const byDigest = this.checkRef(ref);
    const { res, bytes } = await this.withBodyRetries(options.signal, async (budget) => {
      const res = await this.send({
        method: 'GET',
        url: this.repoUrl(repo, `manifests/${ref}`),
        headers: { accept: (options.accept ?? DEFAULT_MANIFEST_ACCEPT).join(', ') },
        scopes: [{ repository: repo, actions: ['pull'] }],
        retry: true,
        followRedirects: true,
        signal: options.signal,
        budget,
      });
      if (res.status === 404) {
        await discard(res);
        throw new ImageNotFoundError(`${this.registry}/${repo}${byDigest ? '@' : ':'}${ref}`, 'registry');
      }
      if (res.status !== 200) return this.fail(res, `GET manifest ${repo}:${ref}`);
      return { res, bytes: await readCapped(res, options.maxBytes ?? this.maxManifestBytes, `manifest ${repo}:${ref}`) };
    });
    const mediaType = manifestMediaType(res.headers.get('content-type'), bytes);
    const what = `manifest ${this.registry}/${repo}${byDigest ? '@' : ':'}${ref}`;
    if (byDigest) {
      const actual = digestOfBytes(bytes, parseDigest(ref).algorithm);
      if (actual !== ref) throw new DigestMismatchError(ref, actual, what);
      return { bytes, mediaType, digest: ref };
    }
    const digest = digestOfBytes(bytes);
    const header = res.headers.get('docker-content-digest');
    // Schema 1 manifests are served with their signatures, which the header's digest excludes.
    // A header that is not a digest at all is the registry's bug; it says nothing about the bytes.
    if (header && isDigest(header) && !mediaType.startsWith('application/vnd.docker.distribution.manifest.v1')) {
      const algorithm = parseDigest(header).algorithm;
      if (canVerifyAlgorithm(algorithm)) {
        const actual = algorithm === 'sha256' ? digest : digestOfBytes(bytes, algorithm);
        if (actual !== header) throw new DigestMismatchError(header, actual, what);
      }
    }
    return { bytes, mediaType, digest };
  }

  /** Every tag of `repo`, following `Link: <…>; rel="next"` pages. */
  async listTags(repo: string, options: { pageSize?: number; signal?: AbortSignal } = {}): Promise<string[]> {
    this.checkRepo(repo);
    const tags: string[] = [];
    let url = this.repoUrl(repo, 'tags/list') + (options.pageSize ? `?n=${options.pageSize}` : '');
    const seen = new Set<string>();
    for (let page = 0; page < MAX_TAG_PAGES; page++) {
      seen.add(url);
      const res = await this.send({
        method: 'GET',
        url,
        headers: { accept: 'application/json' },
        scopes: [{ repository: repo, actions: ['pull'] }],
        retry: true,
        followRedirects: true,
        signal: options.signal,
      });
      if (res.status === 404) {
        await discard(res);
        throw new ImageNotFoundError(`${this.registry}/${repo}`, 'registry');
      }
      if (res.status !== 200) return this.fail(res, `list tags of ${repo}`);
      const body = await readCapped(res, this.maxManifestBytes, `tag list of ${repo}`);
      let json: { tags?: unknown };
      try {
        json = JSON.parse(body.toString('utf8')) as { tags?: unknown };
      } catch {
        throw new RegistryError(`the tag list of ${repo} is not JSON`, res.status);
      }
      if (Array.isArray(json.tags)) for (const t of json.tags) if (typeof t === 'string') tags.push(t);
      const next = nextLink(res.headers.get('link'), url);
      if (!next || seen.has(next)) return tags;
      url = next;
    }
    throw new LimitExceededError('tagPages', MAX_TAG_PAGES, `tag list of ${repo}`);
  }

  /**
   * Runs a request-and-read again when the body drops or stalls mid-way (send() only retries up
   * to the headers); both draw on one budget.
   */
  private async withBodyRetries<T>(signal: AbortSignal | undefined, fn: (budget: RetryBudget) => Promise<T>): Promise<T> {
    const budget: RetryBudget = { used: 0 };
    for (;;) {
      try {
        return await fn(budget);
      } catch (err) {
        const bodyFailed = (err instanceof NetworkError || err instanceof TimeoutError) && err.details.phase === 'body';
        if (!bodyFailed || budget.used >= this.policy.retries) throw err;
        await sleep(retryDelay(budget.used++, this.policy), signal);
      }
    }
  }

  // ---------------------------------------------------------------- writes

  /**
   * Uploads a blob unless the registry has it (HEAD) or can mount it. The mode follows what is
   * known: `chunkSize` → ranged PATCHes; a digest up front → monolithic POST + PUT; otherwise (or
   * `streaming`) one streaming PATCH, then `PUT ?digest=` with the digest measured on the way.
   */
  async putBlob(repo: string, source: BlobSource, options: PutBlobOptions = {}): Promise<PutBlobResult> {
    this.checkRepo(repo);
    const declared = source.digest;
    const algorithm = declared ? parseDigest(declared).algorithm : 'sha256';
    createDigestHasher(algorithm); // fail before any traffic when we cannot check it
    if (options.chunkSize !== undefined && (!Number.isInteger(options.chunkSize) || options.chunkSize <= 0)) {
      throw new UsageError(`chunkSize must be a positive integer, got ${options.chunkSize}`);
    }
    const froms = typeof options.mountFrom === 'string' ? [options.mountFrom] : (options.mountFrom ?? []);
    for (const from of froms) this.checkRepo(from);
    const signal = options.signal;

    if (declared && options.skipExisting !== false) {
      const existing = await this.blobExists(repo, declared, { signal });
      if (existing) return { digest: declared, size: source.size ?? existing.size, outcome: 'exists', attempts: 0 };
    }

    let reusable: UploadSession | undefined;
    if (declared) {
      for (const from of froms) {
        if (from === repo) continue;
        let session: UploadSession | undefined;
        try {
          const mounted = await this.tryMount(repo, declared, from, signal);
          if (mounted === true) {
            const size = source.size ?? (await this.blobExists(repo, declared, { signal }))?.size ?? -1;
            return { digest: declared, size, outcome: 'mounted', attempts: 0 };
          }
          session = mounted;
        } catch (err) {
          // ggcr's lesson: some registries reject odd mounts; a plain upload still works.
          if (!(err instanceof RegistryError || err instanceof AuthError)) throw err;
          continue;
        }
        if (reusable) await this.cancelUpload(reusable.location);
        reusable = session;
      }
    }

    const mode: UploadMode = options.chunkSize !== undefined ? 'chunked' : declared && !options.streaming ? 'monolithic' : 'streaming';
    for (let attempt = 0; ; attempt++) {
      let session: UploadSession | undefined = reusable;
      reusable = undefined;
      try {
        session ??= await this.startUpload(repo, signal);
        const result = await this.uploadOnce(repo, mode, session, source, algorithm, options);
        return { ...result, outcome: 'uploaded', attempts: attempt + 1 };
      } catch (err) {
        if (session) await this.cancelUpload(session.location);
        const retryAfterMs = transientRetryAfter(err);
        if (retryAfterMs === undefined || attempt >= this.policy.retries) throw err;
        await sleep(retryDelay(attempt, this.policy, retryAfterMs >= 0 ? retryAfterMs : undefined), signal);
      }
    }
  }

  /**
   * Cross-repository mount: true when the registry mounted the blob (201); false when it started
   * an upload session instead (202), which is cancelled here.
   */
  async mountBlob(repo: string, digest: string, fromRepo: string, options: { signal?: AbortSignal } = {}): Promise<boolean> {
    this.checkRepo(repo);
    this.checkRepo(fromRepo);
    parseDigest(digest);
    const result = await this.tryMount(repo, digest, fromRepo, options.signal);
    if (result === true) return true;
    await this.cancelUpload(result.location);
    return false;
  }

  private async tryMount(repo: string, digest: string, from: string, signal?: AbortSignal): Promise<true | UploadSession> {
    const url = `${this.repoUrl(repo, 'blobs/uploads/')}?mount=${digest}&from=${from}`;
    const res = await this.send({
      method: 'POST',
      url,
      headers: { 'content-length': '0' },
      body: new Uint8Array(0),
      scopes: [
        { repository: repo, actions: ['pull', 'push'] },
        { repository: from, actions: ['pull'] },
      ],
      retry: true,
      signal,
    });
    if (res.status !== 201 && res.status !== 202) return this.fail(res, `mount ${digest} from ${from} into ${repo}`);
    await discard(res);
    return res.status === 201 ? true : this.sessionFrom(res, url);
  }

  /** Abandons an upload session (best effort: the registry garbage-collects it anyway). */
  async cancelUpload(location: string): Promise<void> {
    try {
      const res = await this.send({ method: 'DELETE', url: location, scopes: [], retry: false });
      await discard(res);
    } catch {
      // nothing to do: the session expires on its own
    }
  }

  private async startUpload(repo: string, signal?: AbortSignal): Promise<UploadSession> {
    const url = this.repoUrl(repo, 'blobs/uploads/');
    const res = await this.send({
      method: 'POST',
      url,
      headers: { 'content-length': '0' },
      body: new Uint8Array(0),
      scopes: [{ repository: repo, actions: ['pull', 'push'] }],
      retry: false,
      signal,
    });
    if (res.status !== 202) return this.fail(res, `start upload to ${repo}`);
    await discard(res);
    return this.sessionFrom(res, url);
  }

  private sessionFrom(res: RegistryResponse, requestUrl: string): UploadSession {
    const location = res.headers.get('location');
    if (!location) throw new RegistryError(`${this.registry} started an upload without a Location`, res.status);
    const min = Number(res.headers.get('oci-chunk-min-length') ?? 0);
    return { location: new URL(location, requestUrl).toString(), minChunk: Number.isFinite(min) && min > 0 ? min : 0 };
  }

  /** One attempt: moves every byte of `source` into `session` and commits it. */
  private async uploadOnce(
    repo: string,
    mode: UploadMode,
    session: UploadSession,
    source: BlobSource,
    algorithm: string,
    options: PutBlobOptions,
  ): Promise<{ digest: string; size: number }> {
    const scopes: RepositoryScope[] = [{ repository: repo, actions: ['pull', 'push'] }];
    const signal = options.signal;
    const stream = source.open();
    // A declared digest goes to the registry, which checks it: hash here only to learn a digest
    // nobody declared (or when asked to).
    const hashHere = this.options.verifyUploads === true || source.digest === undefined;
    const meter = new Meter(hashHere ? createDigestHasher(algorithm) : undefined, source.size);
    // Checked as the source ends, before the last bytes go out, so a bad source never commits.
    const atEnd = (): void => void this.checkMeasured(meter, source);
    try {
      if (mode === 'monolithic') {
        const digest = source.digest as string;
        const body = trackedBody(meter.wrap(stream, atEnd));
        const res = await this.send({
          method: 'PUT',
          url: withQuery(session.location, 'digest', digest),
          headers: blobHeaders(source.size),
          body: () => body.chunks,
          scopes,
          retry: false,
          signal,
        }).catch((err) => Promise.reject(body.error() ?? err));
        await this.expectCommitted(res, digest, repo);
        return { digest, size: meter.size };
      }

      let location = session.location;
      if (mode === 'streaming') {
        const body = trackedBody(meter.wrap(stream, atEnd));
        const res = await this.send({
          method: 'PATCH',
          url: location,
          headers: blobHeaders(source.size),
          body: () => body.chunks,
          scopes,
          retry: false,
          signal,
        }).catch((err) => Promise.reject(body.error() ?? err));
        if (res.status !== 202) return this.fail(res, `upload to ${repo}`);
        await discard(res);
        location = this.nextLocation(res, location);
      } else {
        const chunkSize = Math.max(options.chunkSize as number, session.minChunk);
        for await (const chunk of rechunk(meter.wrap(stream, atEnd), chunkSize)) {
          const start = meter.size - chunk.length;
          const res = await this.send({
            method: 'PATCH',
            url: location,
            headers: {
              'content-type': 'application/octet-stream',
              'content-length': String(chunk.length),
              'content-range': `${start}-${start + chunk.length - 1}`,
            },
            body: chunk,
            scopes,
            retry: false,
            signal,
          });
          if (res.status !== 202) return this.fail(res, `upload chunk ${start}-${start + chunk.length - 1} to ${repo}`);
          await discard(res);
          location = this.nextLocation(res, location);
        }
      }
      const digest = this.checkMeasured(meter, source);
      const res = await this.send({
        method: 'PUT',
        url: withQuery(location, 'digest', digest),
        headers: { 'content-length': '0' },
        body: new Uint8Array(0),
        scopes,
        retry: false,
        signal,
      });
      await this.expectCommitted(res, digest, repo);
      return { digest, size: meter.size };
    } finally {
      stream.destroy();
    }
  }

  /** The digest we measured, after checking it (and the size) against what the source declared. */
  private checkMeasured(meter: Meter, source: BlobSource): string {
    if (source.size !== undefined && source.size !== meter.size) {
      throw new SizeMismatchError(source.size, meter.size, 'blob upload source');
    }
    const measured = meter.hasher?.digest();
    if (source.digest && measured && source.digest !== measured) throw new DigestMismatchError(source.digest, measured, 'blob upload source');
    const after = source.digestAfter?.();
    if (after && measured && after !== measured) throw new DigestMismatchError(after, measured, 'blob upload source');
    if (after && source.digest && after !== source.digest) throw new DigestMismatchError(source.digest, after, 'blob upload source');
    return (source.digest ?? measured)!; // one of them: without a declared digest the bytes are hashed
  }

  private nextLocation(res: RegistryResponse, current: string): string {
    const location = res.headers.get('location');
    return location ? new URL(location, current).toString() : current;
  }

  private async expectCommitted(res: RegistryResponse, digest: string, repo: string): Promise<void> {
    if (res.status === 400) {
      const errors = await readRegistryErrors(res);
      if (errors.some((e) => e.code === 'DIGEST_INVALID')) {
        // The registry hashed what it received: the source, or the bytes on the way, are not `digest`.
        throw new DigestMismatchError(digest, `other bytes (${this.registry} computed another digest)`, `blob upload to ${repo}`);
      }
      const said = errors.length ? `: ${errors.map((e) => `${e.code}${e.message ? ` (${e.message})` : ''}`).join('; ')}` : '';
      throw new RegistryError(`commit blob ${digest} to ${repo}: ${this.registry} answered 400${said}`, 400, errors, { registry: this.registry });
    }
    if (res.status !== 201 && res.status !== 204) return this.fail(res, `commit blob ${digest} to ${repo}`);
    await discard(res);
    const header = res.headers.get('docker-content-digest');
    if (header && header !== digest && header.split(':')[0] === digest.split(':')[0]) {
      throw new DigestMismatchError(digest, header, `blob committed to ${this.registry}/${repo}`);
    }
  }

  /**
   * Stores a manifest (or index) under a tag or its digest; returns its digest. Pushing by digest
   * checks the bytes first; a `Docker-Content-Digest` answer must agree.
   */
  async putManifest(
    repo: string,
    ref: string,
    bytes: Uint8Array,
    mediaType: string,
    options: { signal?: AbortSignal } = {},
  ): Promise<string> {
    this.checkRepo(repo);
    const byDigest = this.checkRef(ref);
    if (typeof mediaType !== 'string' || !/^[A-Za-z0-9][\w.+-]*\/[\w.+-]+$/.test(mediaType)) {
      throw new UnsupportedMediaTypeError(String(mediaType), 'putManifest');
    }
    if (bytes.length > this.maxManifestBytes) {
      throw new LimitExceededError('maxManifestBytes', this.maxManifestBytes, `manifest of ${bytes.length} bytes`);
    }
    const algorithm = byDigest ? parseDigest(ref).algorithm : 'sha256';
    const digest = digestOfBytes(bytes, algorithm);
    if (byDigest && digest !== ref) throw new DigestMismatchError(ref, digest, 'manifest to push');
    const res = await this.send({
      method: 'PUT',
      url: this.repoUrl(repo, `manifests/${ref}`),
      headers: { 'content-type': mediaType, 'content-length': String(bytes.length) },
      body: bytes,
      scopes: [{ repository: repo, actions: ['pull', 'push'] }],
      retry: true,
      signal: options.signal,
    });
    if (res.status !== 201 && res.status !== 200 && res.status !== 202) return this.fail(res, `PUT manifest ${repo}:${ref}`);
    await discard(res);
    const header = res.headers.get('docker-content-digest');
    if (header && header.split(':')[0] === algorithm && header !== digest) {
      throw new DigestMismatchError(digest, header, `manifest stored in ${this.registry}/${repo}`);
    }
    return digest;
  }

  // ---------------------------------------------------------------- transport

  private credentials(): Promise<RegistryCredentials | undefined> {
    this.credentialsPromise ??= (async () => {
      if (this.options.credentials) return this.options.credentials;
      if (this.options.authFile === false) return undefined;
      const plan = await this.ready();
      const found = await findCredentials(this.registry, {
        authFile: this.options.authFile,
        fs: this.options.authFs,
        env: this.options.env,
        homeDir: this.options.homeDir,
        credentialHelpers: plan.credentialHelpers,
      });
      return found ? { username: found.username, password: found.password } : undefined;
    })();
    return this.credentialsPromise;
  }

  /** How this registry is reached (registries.conf and certs.d are read once, on first use). */
  private ready(): Promise<EndpointPlan> {
    this.plan ??= (async () => {
      const conf = await (this.context.conf ??
        loadRegistriesConf(this.options));
      const plan = await planEndpoint(this.registry, this.options, { conf, endpointInsecure: this.context.endpointInsecure });
      this.scheme = plan.scheme;
      this.schemeSettled = plan.httpFallback === 'never';
      return plan;
    })();
    // A failed setup (an unreadable registries.conf, a half certificate pair) is tried again next time.
    this.plan.catch(() => (this.plan = undefined));
    return this.plan;
  }

  private repoUrl(repo: string, rest: string): string {
    return `${this.baseUrl}/v2/${repo}/${rest}`;
  }

  private checkRepo(repo: string): void {
    if (!isValidRepository(repo)) throw new InvalidReferenceError(String(repo), 'not a valid repository path');
  }

  /** Validates a tag-or-digest; true when it is a digest. */
  private checkRef(ref: string): boolean {
    if (typeof ref === 'string' && ref.includes(':')) {
      parseDigest(ref);
      return true;
    }
    if (!isValidTag(ref)) throw new InvalidReferenceError(String(ref), 'not a valid tag or digest');
    return false;
  }

  /** `url` on the scheme in use, when it points at this registry (built before the scheme was settled). */
  private rebase(url: string): string {
    const u = new URL(url);
    if (u.host === new URL(this.baseUrl).host && (u.protocol === 'http:' || u.protocol === 'https:') && u.protocol !== `${this.scheme}:`) {
      u.protocol = `${this.scheme}:`;
      return u.toString();
    }
    return url;
  }

  /**
   * One logical request: adds auth (same origin only), answers one 401 challenge, follows
   * redirects by hand, and (when `retry`) retries transient statuses, network failures and
   * stalls. Returns the final response; it never throws for an HTTP status.
   *
   * While the scheme is not settled (a client that may fall back to http), the first request is
   * the probe: sent on https, and again on http when https fails as the plan allows; the others
   * wait for its outcome. A streamed body is never the probe: `GET /v2/` goes first.
   */
  private async send(req: SendRequest): Promise<RegistryResponse> {
    const plan = await this.ready();
    if (!this.schemeSettled) {
      if (this.probe) {
        await this.probe.catch(() => undefined);
        return this.send(req);
      }
      if (typeof req.body === 'function') {
        const ping = this.send({ method: 'GET', url: `${this.baseUrl}/v2/`, scopes: [], retry: true, registryAuth: false, signal: req.signal });
        await discard(await ping);
        return this.send(req);
      }
      let settle!: () => void;
      this.probe = new Promise<void>((resolve) => (settle = resolve));
      try {
        return await this.sendOn(plan, req, true);
      } finally {
        this.probe = undefined;
        settle();
      }
    }
    return this.sendOn(plan, req, false);
  }

  private async sendOn(plan: EndpointPlan, req: SendRequest, probing: boolean): Promise<RegistryResponse> {
    let url = this.rebase(req.url);
    const budget = req.budget ?? { used: 0 };
    let redirects = 0;
    let authRetried = false;
    const firstOrigin = new URL(url).origin;
    for (;;) {
      const origin = new URL(url).origin;
      const useRegistryAuth = req.registryAuth !== false && origin === this.origin;
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(req.headers ?? {})) headers[name.toLowerCase()] = value;
      headers['user-agent'] = this.userAgent;
      // Credentials never follow a redirect to another host (blob storage, CDNs).
      if (origin !== firstOrigin) delete headers.authorization;
      if (useRegistryAuth && headers.authorization === undefined) {
        const authorization = await this.auth.authorization(req.scopes);
        if (authorization) headers.authorization = authorization;
      }
      let res: RegistryResponse;
      try {
        res = await plan.transport.request({
          method: req.method,
          url,
          headers,
          body: typeof req.body === 'function' ? req.body() : req.body,
          signal: req.signal,
        });
        if (probing && !this.schemeSettled && origin === this.origin) this.schemeSettled = true;
      } catch (err) {
        if (probing && !this.schemeSettled && this.scheme === 'https' && origin === this.origin && this.mayFallBack(plan, err)) {
          // The registry does not speak TLS (or its TLS may be skipped): the same request on http.
          this.scheme = 'http';
          const httpUrl = this.rebase(url);
          try {
            // Still probing: its first answer settles http (before a 401 sends for a token).
            return await this.sendOn(plan, { ...req, url: httpUrl, budget }, true);
          } catch (httpErr) {
            this.scheme = 'https';
            throw this.transportError(req, url, err, budget, httpErr);
          }
        }
        if (!isNetworkFailure(err)) throw this.typed(req, url, err);
        if (req.retry && budget.used < this.policy.retries) {
          await sleep(retryDelay(budget.used++, this.policy), req.signal);
          continue;
        }
        throw this.transportError(req, url, err, budget);
      }

      const replayable = typeof req.body !== 'function';
      if (res.status === 401 && useRegistryAuth && !authRetried && replayable) {
        const retryWithAuth = await this.auth.onUnauthorized(res, req.scopes, headers.authorization).catch(async (err) => {
          await discard(res); // an unsupported scheme: nobody reads this response
          throw err;
        });
        if (retryWithAuth) {
          authRetried = true;
          await discard(res);
          continue;
        }
      }
      if (isRedirect(res.status) && req.followRedirects) {
        const location = res.headers.get('location');
        if (location && redirects < MAX_REDIRECTS) {
          await discard(res);
          url = new URL(location, url).toString();
          redirects++;
          continue;
        }
      }
      if (isRetryableStatus(res.status) && req.retry && budget.used < this.policy.retries) {
        const wait = retryDelay(budget.used++, this.policy, parseRetryAfter(res.headers.get('retry-after')));
        await discard(res);
        await sleep(wait, req.signal);
        continue;
      }
      return res;
    }
  }

  /** Whether a failed https probe may be tried again on http (endpoint.ts). */
  private mayFallBack(plan: EndpointPlan, err: unknown): boolean {
    if (plan.httpFallback === 'any') return isNetworkFailure(err) || isTlsFailure(err) || isPlainHttpAnswer(err);
    if (plan.httpFallback === 'plain-http') return isPlainHttpAnswer(err);
    return false;
  }

  /** A failure that is not a transport failure, typed when it is a TLS one. */
  private typed(req: SendRequest, url: string, err: unknown): unknown {
    if (!isTlsFailure(err)) return err;
    return new TlsError(`${req.method} ${redactUrl(url)}: the TLS handshake with ${new URL(url).host} failed: ${describeNetworkFailure(err)}${tlsHint(err)}`, {
      registry: this.registry,
      method: req.method,
    }, { cause: err });
  }

  /** The error for a request whose attempts are used up: a stall keeps its type. */
  private transportError(req: SendRequest, url: string, err: unknown, budget: RetryBudget, httpErr?: unknown): Error {
    if (httpErr !== undefined) {
      // Both schemes failed: say why each did (skopeo reports only the http one, which hides the cause).
      const typedHttp = isNetworkFailure(httpErr) || httpErr instanceof TimeoutError ? undefined : httpErr;
      if (typedHttp instanceof Error && !(typedHttp instanceof NetworkError)) return typedHttp;
      return new NetworkError(
        `${req.method} ${redactUrl(url)} failed over https (${describeNetworkFailure(err)}) and over http (${describeNetworkFailure(httpErr)})`,
        { registry: this.registry, method: req.method, attempts: budget.used + 1 },
        { cause: httpErr },
      );
    }
    if (err instanceof TimeoutError) {
      return new TimeoutError(`${err.message} (attempt ${budget.used + 1} of ${this.policy.retries + 1})`, {
        ...err.details,
        registry: this.registry,
        method: req.method,
        attempts: budget.used + 1,
      }, { cause: err });
    }
    if (err instanceof NetworkError && err.details.proxy !== undefined) return err;
    return new NetworkError(`${req.method} ${redactUrl(url)} failed: ${describeNetworkFailure(err)}`, {
      registry: this.registry,
      method: req.method,
      attempts: budget.used + 1,
    }, { cause: err });
  }

  /** Throws the typed error for an unexpected response. */
  private async fail(res: RegistryResponse, what: string): Promise<never> {
    const errors = await readRegistryErrors(res);
    const said = errors.length ? `: ${errors.map((e) => `${e.code}${e.message ? ` (${e.message})` : ''}`).join('; ')}` : '';
    if (res.status === 401 || res.status === 403) {
      throw new AuthError(`${what}: ${this.registry} answered ${res.status}${said}`, res.status, errors, { registry: this.registry });
    }
    throw new RegistryError(`${what}: ${this.registry} answered ${res.status}${said}`, res.status, errors, {
      registry: this.registry,
      retryAfterMs: parseRetryAfter(res.headers.get('retry-after')),
    });
  }
}

type UploadMode = 'monolithic' | 'streaming' | 'chunked';

/**
 * For the upload retry loop: the wait the failure asks for (-1 = plain backoff), or undefined
 * when the failure is permanent.
 */
function transientRetryAfter(err: unknown): number | undefined {
  if (err instanceof NetworkError) return -1;
  if (err instanceof RegistryError && err.status !== undefined && isRetryableStatus(err.status)) {
    const after = err.details.retryAfterMs;
    return typeof after === 'number' ? after : -1;
  }
  return undefined;
}

/** What to do about a TLS failure, by its kind. */
function tlsHint(err: unknown): string {
  const text = describeNetworkFailure(err);
  if (/alert (bad certificate|certificate required|handshake failure)/i.test(text)) {
    return ' (the registry asks for a client certificate: put NAME.cert and NAME.key in its certs.d directory, --cert-dir, or the tls option)';
  }
  return ' (give its CA as a *.crt file in its certs.d directory, --cert-dir or the tls option; or turn verification off with --tls-verify=false)';
}

// Re-exported for callers that decide schemes or parse pagination themselves.
export { apiHost, isLoopbackHost, nextLink } from './http';
