/**
 * Downloads of remote build sources: `APP`/`CNI`/`CSI` with `http://` or `https://` sources
 * (sealer downloads them into the build context and copies them into the app,
 * https://github.com/sealerio/sealer/blob/v0.11.0/build/kubefile/parser/app_handler.go#L65-L84)
 * and `ADD <url>` (buildah downloads it and does not unpack it,
 * https://github.com/sealerio/sealer/blob/v0.11.0/vendor/github.com/containers/buildah/add.go#L81-L160).
 *
 * - The body streams to a file (never held in memory), hashed as it goes; a size limit stops it
 *   (before reading when `Content-Length` says so, else as soon as it is passed).
 * - A connect timeout and a stall timeout (no headers, or no body bytes, for that long); network
 *   failures, stalls, 5xx, 408 and 429 are retried with backoff (`Retry-After` honoured), other
 *   statuses fail at once with a FetchError naming the status.
 * - Redirects are followed (at most `maxRedirects`, http and https only); the file is named after
 *   the *original* URL's path, as sealer and buildah name it (`path.Base(url.Path)`).
 * - Proxies come from the environment: `HTTP_PROXY`, `HTTPS_PROXY`, `NO_PROXY` (and lower-case),
 *   through undici's EnvHttpProxyAgent.
 * - A cache keyed by URL (download-cache.ts) keeps the bytes and their validators: a rebuild asks
 *   with `If-None-Match`/`If-Modified-Since`, and a `304` reuses the file; a checksum pin
 *   (`ADD --checksum=sha256:…`) that the cached file already has needs no request at all.
 */
import { createHash, type Hash } from 'node:crypto';
import * as nodeFs from 'node:fs';
import { tmpdir } from 'node:os';
import { posix } from 'node:path';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { DigestMismatchError, FetchError, FetchTimeoutError, LimitExceededError, NetworkError, UsageError } from '../errors';
import { FileSystem, diskFs, isDiskFs } from '../fs';
import { removeAll, writeStreamAtomic } from '../util/atomic';
import { DownloadCache, type DownloadEntry } from './download-cache';

export interface RemoteFetchOptions {
  /**
   * The download cache directory, kept between builds (buildImage uses `<store>/cache/downloads`).
   * Without one, downloads go to a temporary directory that `dispose()` (or process exit) removes.
   */
  cacheDir?: string;
  /** Filesystem of the cache and of the downloaded files (default node:fs). */
  fs?: FileSystem;
  /** Largest file accepted, in bytes (default 4 GiB). */
  maxBytes?: number;
  /** How long to wait for a connection (default 30 s). */
  connectTimeoutMs?: number;
  /** How long a response may send nothing, headers or body (default 60 s). */
  stallTimeoutMs?: number;
  /** Attempts after the first for failures worth retrying (default 3). */
  retries?: number;
  /** First backoff delay, doubled per retry (default 500 ms). */
  retryBaseDelayMs?: number;
  /** Longest wait between attempts, `Retry-After` included (default 30 s). */
  maxRetryDelayMs?: number;
  /** Redirects followed per download (default 10). */
  maxRedirects?: number;
  /** Environment for the proxy variables (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** The undici dispatcher to use instead of ours (a custom agent, TLS settings). */
  dispatcher?: Dispatcher;
  /** Never touch the network: only cached files are used. */
  offline?: boolean;
  userAgent?: string;
}

export interface FetchedFile {
  /** The URL as asked for. */
  url: string;
  /** The file's name: the last element of the URL's path. */
  name: string;
  /** Where the bytes are, on the fetcher's filesystem. */
  path: string;
  size: number;
  /** `sha256:<hex>` */
  digest: string;
  /** `Last-Modified`, in seconds since the epoch, when the server sent a readable one. */
  lastModified?: number;
  /** True when no body was downloaded (a pinned checksum already cached, or a `304`). */
  fromCache: boolean;
}

export const REMOTE_FETCH_DEFAULTS = {
  maxBytes: 4 * 1024 ** 3,
  connectTimeoutMs: 30_000,
  stallTimeoutMs: 60_000,
  retries: 3,
  retryBaseDelayMs: 500,
  maxRetryDelayMs: 30_000,
  maxRedirects: 10,
} as const;

/** True for the sources sealer and buildah download: `http://…` and `https://…` (case-sensitive, as theirs). */
export function isHttpSource(source: string): boolean {
  return source.startsWith('http://') || source.startsWith('https://');
}

/**
 * The name a downloaded file gets: Go's `path.Base` of the URL's (decoded) path, as sealer's
 * `getFileFromURL` and buildah's `getURL` compute it. A URL whose path names no file (`/`, empty)
 * cannot be named: a FetchError.
 */
export function remoteFileName(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new FetchError(`${url} is not a URL`, { url, reason: 'invalid-url' });
  }
  let path: string;
  try {
    path = decodeURIComponent(parsed.pathname);
  } catch {
    throw new FetchError(`${url}: its path has an invalid %-escape`, { url, reason: 'invalid-url' });
  }
  const trimmed = path.replace(/\/+$/, '');
  const name = trimmed.slice(trimmed.lastIndexOf('/') + 1);
  if (name === '' || name === '.' || name === '..' || name.includes('\0')) {
    throw new FetchError(`${url} names no file (the last element of its path is ${JSON.stringify(name)}), so the download cannot be named`, {
      url,
      reason: 'no-file-name',
    });
  }
  return name;
}

const CHECKSUM_ALGORITHMS = new Set(['sha256', 'sha384', 'sha512']);

function parseChecksum(checksum: string): { algorithm: string; digest: string } {
  const m = /^([a-z0-9]+):([0-9a-f]+)$/.exec(checksum);
  if (!m || !CHECKSUM_ALGORITHMS.has(m[1])) throw new UsageError(`checksum ${JSON.stringify(checksum)} is not a sha256, sha384 or sha512 digest`);
  return { algorithm: m[1], digest: checksum };
}

/** `Last-Modified` as seconds (buildah parses RFC 1123); undefined when absent or unreadable. */
function lastModifiedSeconds(header: string | undefined): number | undefined {
  if (!header) return undefined;
  const ms = Date.parse(header);
  return Number.isFinite(ms) && ms >= 0 ? Math.floor(ms / 1000) : undefined;
}

function header(headers: Dispatcher.ResponseData['headers'], name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Why an attempt failed, and whether another attempt may help. */
interface AttemptFailure {
  error: Error;
  retry: boolean;
  retryAfterMs?: number;
}

const TIMEOUT_CODES: Record<string, 'connect' | 'headers' | 'body'> = {
  UND_ERR_CONNECT_TIMEOUT: 'connect',
  UND_ERR_HEADERS_TIMEOUT: 'headers',
  UND_ERR_BODY_TIMEOUT: 'body',
};

/** Failures another attempt cannot cure. */
const PERMANENT_CODES = new Set([
  'ENOTFOUND',
  'ERR_INVALID_URL',
  'CERT_HAS_EXPIRED',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

const pendingCleanup = new Set<string>();
let cleanupHooked = false;

/** Remove temporary download directories at exit (their files back lazy contents until then). */
function scheduleCleanup(dir: string): void {
  pendingCleanup.add(dir);
  if (cleanupHooked) return;
  cleanupHooked = true;
  process.once('exit', () => {
    for (const d of pendingCleanup) {
      try {
        nodeFs.rmSync(d, { recursive: true, force: true });
      } catch {
        // best effort at exit
      }
    }
  });
}

/** Downloads remote sources for one build (or many: give it a `cacheDir`). */
export class RemoteFetcher {
  private readonly options: RemoteFetchOptions & typeof REMOTE_FETCH_DEFAULTS;
  private readonly fs: FileSystem;
  private readonly inflight = new Map<string, Promise<FetchedFile>>();
  private cachePromise?: Promise<DownloadCache>;
  private tempDir?: string;
  private dispatcherPromise?: Promise<Dispatcher>;
  private ownDispatcher?: Dispatcher;

  constructor(options: RemoteFetchOptions = {}) {
    const defined = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
    this.options = { ...REMOTE_FETCH_DEFAULTS, ...defined };
    this.fs = options.fs ?? diskFs;
  }

  /** Download `url` (or reuse what the cache holds), checking `checksum` when given. */
  fetch(url: string, options: { checksum?: string } = {}): Promise<FetchedFile> {
    if (!isHttpSource(url)) throw new UsageError(`${url}: only http:// and https:// sources are downloaded`);
    const key = `${url}\n${options.checksum ?? ''}`;
    let p = this.inflight.get(key);
    if (!p) {
      p = this.fetchOnce(url, options.checksum);
      this.inflight.set(key, p);
      p.catch(() => this.inflight.delete(key));
    }
    return p;
  }

  /** Close connections and remove the temporary directory (a `cacheDir` stays). */
  async dispose(): Promise<void> {
    const dispatcher = this.ownDispatcher;
    this.ownDispatcher = undefined;
    this.dispatcherPromise = undefined;
    await dispatcher?.close().catch(() => undefined);
    if (this.tempDir) {
      const dir = this.tempDir;
      this.tempDir = undefined;
      this.cachePromise = undefined;
      pendingCleanup.delete(dir);
      await removeAll(this.fs, dir);
    }
  }

  private cache(): Promise<DownloadCache> {
    this.cachePromise ??= (async () => {
      if (this.options.cacheDir) return new DownloadCache(this.fs, this.options.cacheDir);
      const parent = isDiskFs(this.fs) ? tmpdir() : '/tmp';
      await this.fs.promises.mkdir(parent, { recursive: true });
      const dir = posix.join(parent, `cloudrootfs-downloads-${process.pid}-${createHash('sha256').update(`${Date.now()}${Math.random()}`).digest('hex').slice(0, 12)}`);
      await this.fs.promises.mkdir(dir, { recursive: true });
      this.tempDir = dir;
      if (isDiskFs(this.fs)) scheduleCleanup(dir);
      return new DownloadCache(this.fs, dir);
    })();
    return this.cachePromise;
  }

  private dispatcher(): Promise<Dispatcher> {
    if (this.options.dispatcher) return Promise.resolve(this.options.dispatcher);
    this.dispatcherPromise ??= (async () => {
      const undici = await import('undici');
      const env = this.options.env ?? process.env;
      const agentOptions = {
        connect: { timeout: this.options.connectTimeoutMs },
        headersTimeout: this.options.stallTimeoutMs,
        bodyTimeout: this.options.stallTimeoutMs,
      };
      const httpProxy = env.http_proxy ?? env.HTTP_PROXY ?? '';
      const httpsProxy = env.https_proxy ?? env.HTTPS_PROXY ?? '';
      // EnvHttpProxyAgent only when a proxy is set (it warns that it is experimental); the
      // values come from `env`, not from process.env behind the caller's back.
      const dispatcher =
        httpProxy || httpsProxy
          ? new undici.EnvHttpProxyAgent({ ...agentOptions, httpProxy, httpsProxy, noProxy: env.no_proxy ?? env.NO_PROXY ?? '' })
          : new undici.Agent(agentOptions);
      this.ownDispatcher = dispatcher;
      return dispatcher;
    })();
    return this.dispatcherPromise;
  }

  private async fetchOnce(url: string, checksum: string | undefined): Promise<FetchedFile> {
    const name = remoteFileName(url);
    const pin = checksum !== undefined ? parseChecksum(checksum) : undefined;
    const cache = await this.cache();
    const cached = await cache.lookup(url);
    const reuse = (entry: DownloadEntry): FetchedFile => {
      if (pin && entry.digests[pin.algorithm] !== undefined && entry.digests[pin.algorithm] !== pin.digest) {
        throw new DigestMismatchError(pin.digest, entry.digests[pin.algorithm], `download of ${url}`);
      }
      return this.result(url, name, cache, entry, true);
    };
    // A pinned checksum the cached bytes already have: nothing to ask the server.
    if (cached && pin && cached.digests[pin.algorithm] === pin.digest) return reuse(cached);
    if (this.options.offline) {
      if (cached && (!pin || cached.digests[pin.algorithm] !== undefined)) return reuse(cached);
      throw new FetchError(`${url} is not in the download cache (offline: nothing is downloaded)`, { url, reason: 'offline' });
    }
    const conditional = cached && !(pin && cached.digests[pin.algorithm] === undefined) ? cached : undefined;

    let last: AttemptFailure | undefined;
    for (let attempt = 0; attempt <= this.options.retries; attempt++) {
      if (attempt > 0) {
        const backoff = this.options.retryBaseDelayMs * 2 ** (attempt - 1);
        await sleep(Math.min(this.options.maxRetryDelayMs, Math.max(backoff, last?.retryAfterMs ?? 0)));
      }
      const outcome = await this.attempt(url, cache, pin, conditional).catch((err: unknown) => ({ failure: classify(err, url, this.options) }));
      if ('entry' in outcome) {
        if (outcome.notModified) return reuse(await cache.touch(outcome.entry));
        return this.result(url, name, cache, outcome.entry, false);
      }
      last = outcome.failure;
      if (!last.retry) break;
    }
    throw last!.error;
  }

  private result(url: string, name: string, cache: DownloadCache, entry: DownloadEntry, fromCache: boolean): FetchedFile {
    const lastModified = lastModifiedSeconds(entry.lastModified);
    return {
      url,
      name,
      path: cache.blobPath(entry.digests.sha256),
      size: entry.size,
      digest: entry.digests.sha256,
      ...(lastModified !== undefined ? { lastModified } : {}),
      fromCache,
    };
  }

  /** One request (following redirects) and, on 200, the body to the cache. */
  private async attempt(
    url: string,
    cache: DownloadCache,
    pin: { algorithm: string; digest: string } | undefined,
    conditional: DownloadEntry | undefined,
  ): Promise<{ entry: DownloadEntry; notModified: boolean } | { failure: AttemptFailure }> {
    const undici = await import('undici');
    const dispatcher = await this.dispatcher();
    const headers: Record<string, string> = { 'user-agent': this.options.userAgent ?? 'cloudrootfs', 'accept-encoding': 'identity' };
    if (conditional?.etag) headers['if-none-match'] = conditional.etag;
    if (conditional?.lastModified) headers['if-modified-since'] = conditional.lastModified;
    let current = url;
    for (let hop = 0; ; hop++) {
      const res = await undici.request(current, {
        method: 'GET',
        headers,
        dispatcher,
        headersTimeout: this.options.stallTimeoutMs,
        bodyTimeout: this.options.stallTimeoutMs,
      });
      const status = res.statusCode;
      if ([301, 302, 303, 307, 308].includes(status)) {
        await res.body.dump().catch(() => undefined);
        const location = header(res.headers, 'location');
        if (!location) throw new FetchError(`${url}: a ${status} redirect without a Location`, { url, status, reason: 'redirect' });
        if (hop >= this.options.maxRedirects) {
          throw new FetchError(`${url}: more than ${this.options.maxRedirects} redirects`, { url, status, reason: 'redirect-limit' });
        }
        const next = new URL(location, current).toString();
        if (!isHttpSource(next)) throw new FetchError(`${url} redirects to ${next}, which is not http:// or https://`, { url, status, reason: 'redirect' });
        current = next;
        continue;
      }
      if (status === 304 && conditional) {
        await res.body.dump().catch(() => undefined);
        return { entry: conditional, notModified: true };
      }
      if (status < 200 || status >= 300) {
        await res.body.dump().catch(() => undefined);
        const retry = status >= 500 || status === 408 || status === 429;
        const retryAfter = header(res.headers, 'retry-after');
        const retryAfterMs = retryAfter && /^\d+$/.test(retryAfter) ? Number(retryAfter) * 1000 : undefined;
        const where = current === url ? url : `${url} (redirected to ${current})`;
        return { failure: { error: new FetchError(`downloading ${where}: the server answered ${status}`, { url, status, reason: 'status' }), retry, retryAfterMs } };
      }
      const declared = header(res.headers, 'content-length');
      if (declared !== undefined && /^\d+$/.test(declared) && Number(declared) > this.options.maxBytes) {
        abandon(res.body);
        throw new LimitExceededError('maxBytes', this.options.maxBytes, `the download of ${url} (${declared} bytes declared)`);
      }
      const entry = await this.store(url, res.body, cache, pin);
      const etag = header(res.headers, 'etag');
      const lastModified = header(res.headers, 'last-modified');
      const recorded = await cache.record({
        url,
        digests: entry.digests,
        size: entry.size,
        ...(etag ? { etag } : {}),
        ...(lastModified ? { lastModified } : {}),
        fetchedAt: new Date().toISOString(),
      });
      return { entry: recorded, notModified: false };
    }
  }

  /** Stream a body into the cache's blobs, hashed and counted; the pin is checked before it gets its name. */
  private async store(url: string, body: Readable, cache: DownloadCache, pin: { algorithm: string; digest: string } | undefined) {
    const dir = await cache.blobDir();
    const sha256 = createHash('sha256');
    const pinned: Hash | undefined = pin && pin.algorithm !== 'sha256' ? createHash(pin.algorithm) : undefined;
    let size = 0;
    const max = this.options.maxBytes;
    let digests: Record<string, string> = {};
    await writeStreamAtomic(
      this.fs,
      posix.join(dir, 'download'),
      async (write) => {
        for await (const chunk of body) {
          const buf = chunk as Buffer;
          size += buf.length;
          if (size > max) {
            abandon(body);
            throw new LimitExceededError('maxBytes', max, `the download of ${url}`);
          }
          sha256.update(buf);
          pinned?.update(buf);
          await write(buf);
        }
      },
      () => {
        digests = { sha256: `sha256:${sha256.digest('hex')}` };
        if (pinned && pin) digests[pin.algorithm] = `${pin.algorithm}:${pinned.digest('hex')}`;
        if (pin && digests[pin.algorithm] !== pin.digest) throw new DigestMismatchError(pin.digest, digests[pin.algorithm], `download of ${url}`);
        return cache.blobPath(digests.sha256);
      },
    );
    return { digests, size };
  }
}

/** Stop reading a body we do not want (its abort error is expected, not a failure). */
function abandon(body: Readable): void {
  body.on('error', () => undefined);
  body.destroy();
}

/** A thrown error of one attempt, as the error to report and whether to try again. */
function classify(err: unknown, url: string, options: { connectTimeoutMs: number; stallTimeoutMs: number }): AttemptFailure {
  if (err instanceof FetchError || err instanceof DigestMismatchError || err instanceof LimitExceededError || err instanceof UsageError) {
    return { error: err, retry: false };
  }
  const code = (err as { code?: string } | undefined)?.code;
  const phase = code ? TIMEOUT_CODES[code] : undefined;
  if (phase) {
    const timeoutMs = phase === 'connect' ? options.connectTimeoutMs : options.stallTimeoutMs;
    const what = phase === 'connect' ? 'no connection' : phase === 'headers' ? 'no response' : 'no data';
    return { error: new FetchTimeoutError(`downloading ${url}: ${what} within ${timeoutMs} ms`, { url, phase, timeoutMs }), retry: true };
  }
  const message = err instanceof Error ? err.message : String(err);
  // A host that does not exist, or a certificate that is not trusted, will not change on retry.
  const retry = !(code && PERMANENT_CODES.has(code));
  return { error: new NetworkError(`downloading ${url} failed: ${code ? `${code}: ` : ''}${message}`, { url, code }, { cause: err }), retry };
}
