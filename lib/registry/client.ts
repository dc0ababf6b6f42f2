/**
 * A client for the OCI distribution API (docs/reference/oci.md#distribution-api) on Node's own fetch. It streams every blob in
 * both directions, hashes what it moves, and only ever buffers manifests (capped) and, in chunked
 * uploads, one chunk. Streamed upload bodies go over node:http(s) instead of fetch, because
 * undici's fetch keeps a streamed request body in memory until the request ends (stream-request.ts).
 *
 * Transport rules:
 * - `http://` for `insecure: true` and, unless `insecure: false`, for loopback hosts; else `https://`.
 * - Auth: anonymous until a 401 names the scheme; Basic or Bearer tokens (see ./auth.ts).
 * - Idempotent requests retry on 408/429/5xx and dropped connections with exponential backoff and
 *   jitter, honouring `Retry-After`. A blob upload retries as a whole: a new upload session and a
 *   fresh `source.open()`. A blob download that drops mid-body resumes with a `Range` request.
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
import { streamRequest } from './stream-request';
import { Meter, blobHeaders, rechunk, trackedBody, webStream } from './upload-body';
import {
  DEFAULT_RETRY_POLICY,
  describeNetworkFailure,
  isNetworkFailure,
  isRetryableStatus,
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
const MAX_TAG_PAGES = 10_000;

export interface RegistryClientOptions {
  /** `host[:port]`; `docker.io` (and its aliases) talks to `registry-1.docker.io`. */
  registry: string;
  /** true: plain http; false: always https; unset: http only for loopback hosts. */
  insecure?: boolean;
  /** Explicit credentials; when absent they are looked up in the auth file(s) on first need. */
  credentials?: RegistryCredentials;
  /** Auth file to read instead of the default search list; `false` reads none (anonymous). */
  authFile?: string | false;
  /** Extra attempts after the first for transient failures (default 4). */
  retries?: number;
  /** First backoff step in ms (default 250); doubles per attempt, with jitter. */
  retryBaseDelayMs?: number;
  /** Cap for one wait, backoff or `Retry-After`, in ms (default 30000). */
  maxRetryDelayMs?: number;
  /**
   * The fetch to use for every request (tests, proxies). By default the global fetch serves all
   * requests except streamed blob uploads, which use node:http(s) to keep memory flat; a fetch
   * given here also carries those (as pull-based web streams with `duplex: 'half'`).
   */
  fetch?: typeof fetch;
  userAgent?: string;
  maxManifestBytes?: number;
  /** Filesystem and environment for auth-file discovery. */
  fs?: FileSystem;
  env?: NodeJS.ProcessEnv;
  homeDir?: string;
  /** Clock for token expiry (tests). */
  now?: () => number;
  /**
   * Hash every uploaded blob here too, even when its digest is known (default false). The
   * registry computes the digest of what it receives and refuses to commit a blob whose bytes do
   * not match the digest it is given (distribution spec: 400 DIGEST_INVALID), which is reported
   * as a DigestMismatchError; hashing here as well only costs the pusher's CPU (~0.7 ms per MiB,
   * 160 ms of a 221 MB push). Turn it on for a registry that does not check.
   */
  verifyUploads?: boolean;
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
}

interface UploadSession {
  location: string;
  minChunk: number;
}

export class RegistryClient {
  readonly registry: string;
  /** `http://host[:port]` or `https://…`, no trailing slash. */
  readonly baseUrl: string;
  private readonly origin: string;
  private readonly policy: RetryPolicy;
  private readonly fetchImpl: typeof fetch;
  private readonly userAgent: string;
  private readonly maxManifestBytes: number;
  private readonly auth: RegistryAuth;
  private credentialsPromise: Promise<RegistryCredentials | undefined> | undefined;

  constructor(private readonly options: RegistryClientOptions) {
    const registry = options.registry?.trim();
    if (!registry || !/^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d+)?$/.test(registry)) {
      throw new InvalidReferenceError(String(options.registry), 'a registry must be host[:port]');
    }
    this.registry = registry;
    const scheme = useHttp(registry, options.insecure) ? 'http' : 'https';
    this.baseUrl = `${scheme}://${apiHost(registry)}`;
    this.origin = new URL(this.baseUrl).origin;
    this.policy = {
      retries: options.retries ?? DEFAULT_RETRY_POLICY.retries,
      baseDelayMs: options.retryBaseDelayMs ?? DEFAULT_RETRY_POLICY.baseDelayMs,
      maxDelayMs: options.maxRetryDelayMs ?? DEFAULT_RETRY_POLICY.maxDelayMs,
    };
    this.fetchImpl = options.fetch ?? fetch;
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
    const res = await this.openBlob(repo, digest, 0, options.signal);
    const length = contentLength(res);
    if (options.expectedSize !== undefined && length !== undefined && length !== options.expectedSize) {
      await discard(res);
      throw new SizeMismatchError(options.expectedSize, length, `blob ${digest}`);
    }
    return Readable.from(this.blobChunks(repo, digest, res, hasher, options), { objectMode: false, highWaterMark: IO_CHUNK });
  }

  /** GET (optionally from `offset` with a Range) following redirects; 200/206 or a typed error. */
  private async openBlob(repo: string, digest: string, offset: number, signal?: AbortSignal): Promise<Response> {
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
    first: Response,
    hasher: DigestHasher,
    options: GetBlobOptions,
  ): AsyncGenerator<Buffer> {
    let res = first;
    let offset = 0;
    let failures = 0;
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
        if (failures >= this.policy.retries) {
          throw new NetworkError(`download of blob ${digest} from ${this.registry}/${repo} kept failing: ${describeNetworkFailure(err)}`, {
            registry: this.registry,
            digest,
            offset,
          }, { cause: err });
        }
        await sleep(retryDelay(failures, this.policy), options.signal);
        failures++;
        res = await this.openBlob(repo, digest, offset, options.signal);
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
    const { res, bytes } = await this.withBodyRetries(options.signal, async () => {
      const res = await this.send({
        method: 'GET',
        url: this.repoUrl(repo, `manifests/${ref}`),
        headers: { accept: (options.accept ?? DEFAULT_MANIFEST_ACCEPT).join(', ') },
        scopes: [{ repository: repo, actions: ['pull'] }],
        retry: true,
        followRedirects: true,
        signal: options.signal,
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

  /** Runs a request-and-read again when the body drops mid-way (send() only retries up to the headers). */
  private async withBodyRetries<T>(signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        const bodyDropped = err instanceof NetworkError && err.details.phase === 'body';
        if (!bodyDropped || attempt >= this.policy.retries) throw err;
        await sleep(retryDelay(attempt, this.policy), signal);
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

  private sessionFrom(res: Response, requestUrl: string): UploadSession {
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

  private nextLocation(res: Response, current: string): string {
    const location = res.headers.get('location');
    return location ? new URL(location, current).toString() : current;
  }

  private async expectCommitted(res: Response, digest: string, repo: string): Promise<void> {
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
      const found = await findCredentials(this.registry, {
        authFile: this.options.authFile,
        fs: this.options.fs,
        env: this.options.env,
        homeDir: this.options.homeDir,
      });
      return found ? { username: found.username, password: found.password } : undefined;
    })();
    return this.credentialsPromise;
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

  /**
   * One logical request: adds auth (same origin only), answers one 401 challenge, follows
   * redirects by hand, and (when `retry`) retries transient statuses and network failures.
   * Returns the final response; it never throws for an HTTP status.
   */
  private async send(req: SendRequest): Promise<Response> {
    let url = req.url;
    let attempt = 0;
    let redirects = 0;
    let authRetried = false;
    const firstOrigin = new URL(req.url).origin;
    for (;;) {
      const origin = new URL(url).origin;
      const useRegistryAuth = req.registryAuth !== false && origin === this.origin;
      const headers = new Headers(req.headers);
      headers.set('user-agent', this.userAgent);
      // Credentials never follow a redirect to another host (blob storage, CDNs).
      if (origin !== firstOrigin) headers.delete('authorization');
      if (useRegistryAuth && !headers.has('authorization')) {
        const authorization = await this.auth.authorization(req.scopes);
        if (authorization) headers.set('authorization', authorization);
      }
      let res: Response;
      try {
        if (typeof req.body === 'function' && !this.options.fetch) {
          // Streams go over node:http: fetch would keep the whole body in memory (stream-request.ts).
          res = await streamRequest(url, { method: req.method, headers, body: req.body(), signal: req.signal });
        } else {
          const body = typeof req.body === 'function' ? webStream(req.body()) : req.body;
          res = await this.fetchImpl(url, {
            method: req.method,
            headers,
            body,
            redirect: 'manual',
            signal: req.signal,
            ...(typeof req.body === 'function' ? { duplex: 'half' } : {}),
          } as RequestInit);
        }
      } catch (err) {
        if (!isNetworkFailure(err)) throw err;
        if (req.retry && attempt < this.policy.retries) {
          await sleep(retryDelay(attempt++, this.policy), req.signal);
          continue;
        }
        throw new NetworkError(`${req.method} ${redactUrl(url)} failed: ${describeNetworkFailure(err)}`, {
          registry: this.registry,
          method: req.method,
          attempts: attempt + 1,
        }, { cause: err });
      }

      const replayable = typeof req.body !== 'function';
      if (res.status === 401 && useRegistryAuth && !authRetried && replayable) {
        const retryWithAuth = await this.auth.onUnauthorized(res, req.scopes, headers.get('authorization') ?? undefined).catch(async (err) => {
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
      if (isRetryableStatus(res.status) && req.retry && attempt < this.policy.retries) {
        const wait = retryDelay(attempt++, this.policy, parseRetryAfter(res.headers.get('retry-after')));
        await discard(res);
        await sleep(wait, req.signal);
        continue;
      }
      return res;
    }
  }

  /** Throws the typed error for an unexpected response. */
  private async fail(res: Response, what: string): Promise<never> {
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

// Re-exported for callers that decide schemes or parse pagination themselves.
export { apiHost, isLoopbackHost, nextLink } from './http';
