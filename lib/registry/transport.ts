/**
 * The HTTP client under the registry client: node:http(s) with keep-alive agents, so
 *
 * - any port works (Node's fetch refuses the Fetch standard's "bad ports": 5061, 6000, 10080…,
 *   which no registry client of the Go world does);
 * - TLS takes a registry's own CAs (added to the system's roots), a client certificate, or no
 *   verification, per registry;
 * - proxies work as Go programs use them: `CONNECT host:port` for https, an absolute-form request
 *   for http (proxy.ts decides which proxy, if any);
 * - a new connection has `connectTimeoutMs` for TCP, the tunnel and the TLS handshake, and every
 *   request is watched for stalls (StallWatch): waiting for an answer, reading a body, or sending
 *   one, it fails with TimeoutError when too little moves for `stallTimeoutMs`. Time the caller
 *   spends elsewhere (a slow consumer, a source still producing) does not count.
 *
 * Bodies are streamed both ways, one chunk at a time; responses are RegistryResponse, whose body
 * is read as Buffers straight from the socket. A caller-supplied fetch can stand in for all of it
 * (`fetchTransport`); it keeps the stall watch.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { readFileSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import { NetworkError, TimeoutError } from '../errors';
import type { ProxyResolver } from './proxy';

/** One request as the transport sends it. */
export interface TransportRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  /** Bytes (replayable), or a stream that can be sent once. */
  body?: Uint8Array | AsyncIterable<Buffer>;
  signal?: AbortSignal;
}

export type StallPhase = 'connect' | 'response' | 'body' | 'upload';

/** A response: status and headers now, the body as Buffers when read (once). */
export class RegistryResponse {
  readonly status: number;
  readonly statusText: string;
  readonly headers: Headers;
  private body: AsyncIterable<Buffer> | null;
  private readonly cancelBody: (() => void | Promise<void>) | undefined;
  private readonly watch: StallWatch | undefined;
  private readonly mapError: ((err: unknown) => unknown) | undefined;
  private used = false;

  constructor(init: {
    status: number;
    statusText?: string;
    headers: Headers;
    body: AsyncIterable<Buffer> | null;
    cancel?: () => void | Promise<void>;
    /** What a body failure is reported as (the caller's abort, rather than the reset it caused). */
    mapError?: (err: unknown) => unknown;
    watch?: StallWatch;
  }) {
    this.status = init.status;
    this.statusText = init.statusText ?? '';
    this.headers = init.headers;
    this.body = init.body;
    this.cancelBody = init.cancel;
    this.mapError = init.mapError;
    this.watch = init.watch;
    if (!init.body) init.watch?.stop();
  }

  get bodyUsed(): boolean {
    return this.used;
  }

  /** The body's chunks (once); the stall watch runs only while this waits for the next one. */
  async *chunks(): AsyncGenerator<Buffer> {
    if (this.used) throw new TypeError('the response body was already read');
    this.used = true;
    const body = this.body;
    this.body = null;
    if (!body) return;
    const watch = this.watch;
    const iterator = body[Symbol.asyncIterator]();
    let finished = false;
    try {
      for (;;) {
        watch?.waiting('body');
        let step: IteratorResult<Buffer>;
        try {
          step = await iterator.next();
        } catch (err) {
          finished = true; // the source is closed already
          throw this.mapError ? this.mapError(err) : err;
        }
        const { value, done } = step;
        watch?.busy();
        if (done) {
          finished = true;
          return;
        }
        watch?.progress(value.length);
        yield value;
      }
    } finally {
      watch?.stop();
      if (!finished) {
        await iterator.return?.();
        await this.cancelBody?.();
      }
    }
  }

  /** Drops the body unread (the connection is closed, not reused, when bytes were left). */
  async cancel(): Promise<void> {
    if (this.used) return;
    this.used = true;
    this.body = null;
    this.watch?.stop();
    await this.cancelBody?.();
  }
}

export interface StallSettings {
  /** Longest time without progress while waiting on the network. */
  stallTimeoutMs: number;
  /** Bytes that count as progress. */
  stallMinBytes: number;
}

/**
 * Watches one request for stalls. The clock runs only while we wait on the network (`waiting`),
 * not while the caller is busy (`busy`), and restarts when `stallMinBytes` have moved: so a
 * registry that stops, or drips a few bytes at a time, times out; a slow consumer does not.
 */
export class StallWatch {
  private waitedMs = 0;
  private waitStart: number | undefined;
  private phase: StallPhase = 'response';
  private bytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private fired = false;

  constructor(
    private readonly settings: StallSettings,
    private readonly onStall: (phase: StallPhase, waitedMs: number) => void,
  ) {
    if (Number.isFinite(settings.stallTimeoutMs) && settings.stallTimeoutMs > 0) {
      // A coarse periodic check (a tenth of the limit): no timer is set per chunk.
      this.timer = setInterval(() => this.check(), Math.max(10, Math.min(1000, settings.stallTimeoutMs / 10)));
      this.timer.unref();
    }
  }

  /** We now wait on the network (for an answer, a body chunk, or the socket to take data). */
  waiting(phase: StallPhase): void {
    this.phase = phase;
    if (this.waitStart === undefined) this.waitStart = Date.now();
  }

  /** The wait is over: the caller has the data, or is producing more. */
  busy(): void {
    if (this.waitStart !== undefined) this.waitedMs += Date.now() - this.waitStart;
    this.waitStart = undefined;
  }

  progress(n: number): void {
    this.bytes += n;
    if (this.bytes >= this.settings.stallMinBytes) {
      this.bytes = 0;
      this.waitedMs = 0;
      if (this.waitStart !== undefined) this.waitStart = Date.now();
    }
  }

  /** The answer's head arrived: progress, whatever its size. */
  answered(): void {
    this.bytes = 0;
    this.waitedMs = 0;
    this.waitStart = this.waitStart === undefined ? undefined : Date.now();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private check(): void {
    if (this.fired || this.waitStart === undefined) return;
    const waited = this.waitedMs + (Date.now() - this.waitStart);
    if (waited >= this.settings.stallTimeoutMs) {
      this.fired = true;
      this.stop();
      this.onStall(this.phase, waited);
    }
  }
}

/** How a transport connects: TLS material, proxy choice, timeouts. */
export interface TransportSettings extends StallSettings {
  tls: TlsConnectOptions;
  proxy: ProxyResolver;
  connectTimeoutMs: number;
}

/** TLS options for connections to one registry. */
export interface TlsConnectOptions {
  /** Replaces Node's roots: the system's roots plus the registry's CAs (undefined: Node's defaults). */
  ca?: string[];
  cert?: string[];
  key?: string[];
  rejectUnauthorized: boolean;
}

export interface Transport {
  request(req: TransportRequest): Promise<RegistryResponse>;
  /** Closes idle connections. */
  close(): void;
}

let systemRootsCache: string[] | undefined;

/**
 * Node's trust store as a list: the bundled roots plus `NODE_EXTRA_CA_CERTS`, which Node adds at
 * start. Passing `ca` replaces that store, so a registry's own CAs are appended to this list.
 */
export function systemRoots(): string[] {
  if (!systemRootsCache) {
    const roots = [...tls.rootCertificates];
    const extra = process.env.NODE_EXTRA_CA_CERTS;
    if (extra) {
      try {
        roots.push(readFileSync(extra, 'utf8'));
      } catch {
        // Node warned about it at start and ignores it; so do we
      }
    }
    systemRootsCache = roots;
  }
  return systemRootsCache;
}

/** The TLS options for `tls.connect` / agents from a registry's material. */
export function tlsConnectOptions(material: { ca: readonly string[]; certs: readonly string[]; keys: readonly string[] }, verify: boolean): TlsConnectOptions {
  return {
    ...(material.ca.length > 0 ? { ca: [...systemRoots(), ...material.ca] } : {}),
    ...(material.certs.length > 0 ? { cert: [...material.certs], key: [...material.keys] } : {}),
    rejectUnauthorized: verify,
  };
}

function connectTimeoutError(host: string, ms: number, via?: URL): TimeoutError {
  return new TimeoutError(`connecting to ${host}${via ? ` through the proxy ${via.host}` : ''} took longer than ${ms} ms`, {
    phase: 'connect',
    host,
    timeoutMs: ms,
  });
}

/** Fails `socket` when it is not ready (connected, tunnelled, handshaken) within `ms`. */
function guardConnect(socket: Duplex, readyEvent: string, ms: number, error: () => Error): void {
  if (!Number.isFinite(ms) || ms <= 0) return;
  const timer = setTimeout(() => socket.destroy(error()), ms);
  const clear = (): void => clearTimeout(timer);
  socket.once(readyEvent, clear);
  socket.once('close', clear);
}

type ConnectCallback = (err: Error | null, socket: Duplex) => void;
/* eslint-disable @typescript-eslint/no-explicit-any -- the agents' connection options are Node's own */

/** http.Agent whose new connections have a connect timeout. */
class HttpAgent extends http.Agent {
  constructor(private readonly connectTimeoutMs: number) {
    super({ keepAlive: true });
  }

  override createConnection(options: any, callback?: ConnectCallback): Duplex {
    const socket = net.createConnection(options as net.NetConnectOpts);
    guardConnect(socket, 'connect', this.connectTimeoutMs, () => connectTimeoutError(hostPort(options), this.connectTimeoutMs));
    void callback;
    return socket;
  }
}

/** https.Agent with a connect timeout covering TCP and the handshake, and the registry's TLS options. */
class HttpsAgent extends https.Agent {
  constructor(
    private readonly connectTimeoutMs: number,
    tlsOptions: TlsConnectOptions,
  ) {
    super({ keepAlive: true, ...tlsOptions });
  }

  override createConnection(options: any, callback?: ConnectCallback): Duplex {
    const socket = tls.connect(options as tls.ConnectionOptions);
    guardConnect(socket, 'secureConnect', this.connectTimeoutMs, () => connectTimeoutError(hostPort(options), this.connectTimeoutMs));
    void callback;
    return socket;
  }
}

/** An https.Agent reaching its targets through `CONNECT` at an HTTP(S) proxy. */
class TunnelAgent extends https.Agent {
  constructor(
    private readonly proxy: URL,
    private readonly connectTimeoutMs: number,
    tlsOptions: TlsConnectOptions,
  ) {
    super({ keepAlive: true, ...tlsOptions });
  }

  override createConnection(options: any, callback?: ConnectCallback): undefined {
    const done = callback as (err: Error | null, socket?: Duplex) => void;
    const target = hostPort(options);
    let settled = false;
    const finish = (err: Error | null, socket?: Duplex): void => {
      if (settled) {
        socket?.destroy();
        return;
      }
      settled = true;
      clearTimeout(timer);
      done(err, socket);
    };
    const timer = setTimeout(() => {
      finish(connectTimeoutError(target, this.connectTimeoutMs, this.proxy));
      connect.destroy();
    }, this.connectTimeoutMs > 0 && Number.isFinite(this.connectTimeoutMs) ? this.connectTimeoutMs : 2 ** 31 - 1);
    const connect = proxyRequest(this.proxy, { method: 'CONNECT', path: target, headers: { host: target } });
    connect.once('connect', (res: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
      if (res.statusCode !== 200) {
        socket.destroy();
        finish(proxyError(this.proxy, target, res.statusCode));
        return;
      }
      if (head.length > 0) {
        socket.destroy();
        finish(new NetworkError(`the proxy ${this.proxy.host} sent data before the tunnel to ${target} was open`, { proxy: this.proxy.host }));
        return;
      }
      const host = options.host ?? 'localhost';
      const secure = tls.connect({ ...options, socket, host, servername: net.isIP(host) ? undefined : (options.servername ?? host) });
      secure.once('secureConnect', () => finish(null, secure));
      secure.once('error', (err) => finish(err));
    });
    connect.once('error', (err) => finish(err));
    connect.end();
    return undefined;
  }
}

/* eslint-enable @typescript-eslint/no-explicit-any */

/** A request to the proxy itself (CONNECT, or an absolute-form request), with its credentials. */
function proxyRequest(proxy: URL, options: Omit<http.RequestOptions, 'headers'> & { headers: http.OutgoingHttpHeaders }, agent?: http.Agent): http.ClientRequest {
  const headers: http.OutgoingHttpHeaders = { ...options.headers };
  if (proxy.username || proxy.password) {
    const user = decodeURIComponent(proxy.username);
    const pass = decodeURIComponent(proxy.password);
    headers['proxy-authorization'] = `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
  }
  const client = proxy.protocol === 'https:' ? https : http;
  return client.request({
    ...options,
    host: proxy.hostname.replace(/^\[|\]$/g, ''),
    port: proxy.port || (proxy.protocol === 'https:' ? 443 : 80),
    headers,
    agent: agent ?? false,
  });
}

function proxyError(proxy: URL, target: string, status: number | undefined): NetworkError {
  return new NetworkError(`the proxy ${proxy.host} answered ${status} to CONNECT ${target}`, {
    proxy: proxy.host,
    proxyStatus: status,
    // 407 (credentials), 403 (policy): a retry would be refused the same way.
    transient: status === undefined || status >= 500,
  });
}

function hostPort(options: { host?: string | null; port?: number | string | null }): string {
  const host = options.host ?? 'localhost';
  return `${net.isIPv6(host) ? `[${host}]` : host}:${options.port}`;
}

/** The transport over node:http(s), for one registry's settings. */
export class NodeTransport implements Transport {
  private readonly httpAgent: HttpAgent;
  private readonly httpsAgent: HttpsAgent;
  private readonly proxyAgents = new Map<string, http.Agent>();

  constructor(private readonly settings: TransportSettings) {
    this.httpAgent = new HttpAgent(settings.connectTimeoutMs);
    this.httpsAgent = new HttpsAgent(settings.connectTimeoutMs, settings.tls);
  }

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
    for (const agent of this.proxyAgents.values()) agent.destroy();
    this.proxyAgents.clear();
  }

  request(req: TransportRequest): Promise<RegistryResponse> {
    const url = new URL(req.url);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      return Promise.reject(new NetworkError(`only http(s) URLs are fetched, not ${url.protocol}`, { url: url.origin }));
    }
    const proxy = this.settings.proxy(url);
    const headers: http.OutgoingHttpHeaders = { ...req.headers };
    if (req.body instanceof Uint8Array && headers['content-length'] === undefined) headers['content-length'] = String(req.body.length);
    let outgoing: http.ClientRequest;
    const base: http.RequestOptions = { method: req.method, headers, signal: req.signal };
    if (!proxy) {
      const client = url.protocol === 'https:' ? https : http;
      const agent: http.Agent = url.protocol === 'https:' ? this.httpsAgent : this.httpAgent;
      outgoing = client.request(url, { ...base, agent });
    } else if (url.protocol === 'https:') {
      outgoing = https.request(url, { ...base, agent: this.proxyAgent(proxy, 'tunnel') });
    } else {
      // Plain http through a proxy: the absolute URL as the request target (RFC 9112 3.2.2).
      outgoing = proxyRequest(proxy, { ...base, path: url.href, headers: { ...headers, host: url.host } as http.OutgoingHttpHeaders }, this.proxyAgent(proxy, 'forward'));
    }
    return this.exchange(outgoing, req, url);
  }

  private proxyAgent(proxy: URL, kind: 'tunnel' | 'forward'): http.Agent {
    const key = `${kind} ${proxy.href}`;
    let agent = this.proxyAgents.get(key);
    if (!agent) {
      agent =
        kind === 'tunnel'
          ? new TunnelAgent(proxy, this.settings.connectTimeoutMs, this.settings.tls)
          : proxy.protocol === 'https:'
            ? new HttpsAgent(this.settings.connectTimeoutMs, { rejectUnauthorized: true })
            : new HttpAgent(this.settings.connectTimeoutMs);
      this.proxyAgents.set(key, agent);
    }
    return agent;
  }

  /** Sends `req`'s body on `outgoing`, watching for stalls; resolves with the answer's head. */
  private exchange(outgoing: http.ClientRequest, req: TransportRequest, url: URL): Promise<RegistryResponse> {
    let current: http.IncomingMessage | undefined;
    const watch = new StallWatch(this.settings, (phase, waited) => {
      const err = new TimeoutError(`${req.method} ${url.origin}${url.pathname}: ${stallText(phase)} for ${waited} ms`, {
        phase,
        timeoutMs: this.settings.stallTimeoutMs,
      });
      current?.destroy(err);
      outgoing.destroy(err);
    });
    // An abort surfaces as the caller's abort, not as the connection error it causes.
    const mapError = (err: unknown): unknown => (req.signal?.aborted ? (req.signal.reason ?? err) : err);
    const streamed = req.body !== undefined && !(req.body instanceof Uint8Array);
    return new Promise<RegistryResponse>((resolve, reject) => {
      let settled = false;
      const fail = (err: unknown): void => {
        if (settled) return;
        settled = true;
        watch.stop();
        reject(mapError(err));
      };
      // Kept for the request's whole life: later errors (a stall, an abort) reach the body reader.
      outgoing.on('error', fail);
      outgoing.once('response', (res) => {
        current = res;
        res.on('error', () => undefined); // reported through the body's iterator
        if (settled) {
          res.destroy();
          return;
        }
        settled = true;
        watch.answered();
        watch.busy();
        const noBody = req.method === 'HEAD' || res.statusCode === 204 || res.statusCode === 304;
        if (noBody) res.resume();
        resolve(
          new RegistryResponse({
            status: res.statusCode ?? 502,
            statusText: res.statusMessage,
            headers: headersOf(res),
            body: noBody ? null : (res as AsyncIterable<Buffer>),
            cancel: () => {
              // Bytes left unread: this connection cannot carry another request.
              if (!res.complete) res.destroy();
              else res.resume();
            },
            mapError,
            watch,
          }),
        );
      });
      watch.waiting('connect');
      outgoing.once('socket', (socket: net.Socket) => {
        const ready = (): void => {
          if (!streamed) watch.waiting('response');
        };
        if (socket.connecting) socket.once(socket instanceof tls.TLSSocket ? 'secureConnect' : 'connect', ready);
        else ready();
      });
      if (req.body === undefined) outgoing.end();
      else if (req.body instanceof Uint8Array) outgoing.end(req.body);
      else {
        pump(req.body, outgoing, watch).catch((err: unknown) => {
          // A source that failed (a digest check, a read error) aborts the request: the
          // registry must not take a half body as the whole.
          const error = err instanceof Error ? err : new Error(String(err));
          outgoing.destroy(error);
          fail(error);
        });
      }
    });
  }
}

/**
 * Writes the source to the request with backpressure. The stall clock runs while the connection
 * is being made, while the socket does not take more, and after the last byte until the answer;
 * not while the source produces.
 */
async function pump(source: AsyncIterable<Buffer>, outgoing: http.ClientRequest, watch: StallWatch): Promise<void> {
  const iterator = source[Symbol.asyncIterator]();
  const closed = (): Error => outgoing.errored ?? new Error('the request was closed while its body was sent');
  try {
    for (;;) {
      if (outgoing.socket && !outgoing.socket.connecting) watch.busy();
      const { value: chunk, done } = await iterator.next();
      if (done) break;
      if (outgoing.destroyed) throw closed();
      if (!outgoing.write(chunk)) {
        watch.waiting('upload');
        await new Promise<void>((resolve, reject) => {
          const onDrain = (): void => {
            outgoing.off('close', onClose);
            resolve();
          };
          const onClose = (): void => {
            outgoing.off('drain', onDrain);
            reject(closed());
          };
          outgoing.once('drain', onDrain);
          outgoing.once('close', onClose);
        });
      }
      watch.progress(chunk.length);
    }
  } catch (err) {
    await iterator.return?.(undefined);
    throw err;
  }
  watch.waiting('response');
  outgoing.end();
}

function stallText(phase: StallPhase): string {
  switch (phase) {
    case 'connect':
      return 'no connection';
    case 'response':
      return 'no answer';
    case 'body':
      return 'the body made no progress';
    case 'upload':
      return 'the upload made no progress';
  }
}

function headersOf(res: http.IncomingMessage): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(res.headers)) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) headers.append(name, v);
  }
  return headers;
}

/**
 * A caller-supplied fetch as a Transport. Its own client decides TLS, proxies and connection
 * timeouts; the stall watch still applies (an abort when too little moves).
 */
export function fetchTransport(fetchImpl: typeof fetch, stall: StallSettings): Transport {
  return {
    close: () => undefined,
    async request(req) {
      const controller = new AbortController();
      const outer = req.signal;
      const onOuterAbort = (): void => controller.abort(outer?.reason);
      if (outer?.aborted) onOuterAbort();
      else outer?.addEventListener('abort', onOuterAbort, { once: true });
      const url = new URL(req.url);
      let timedOut: TimeoutError | undefined;
      const watch = new StallWatch(stall, (phase, waited) => {
        timedOut = new TimeoutError(`${req.method} ${url.origin}${url.pathname}: ${stallText(phase)} for ${waited} ms`, {
          phase,
          timeoutMs: stall.stallTimeoutMs,
        });
        controller.abort(timedOut);
      });
      const streamed = req.body !== undefined && !(req.body instanceof Uint8Array);
      let body: ReadableStream<Uint8Array> | Uint8Array | undefined;
      if (streamed) {
        const source = req.body as AsyncIterable<Buffer>;
        body = pullStream(
          (async function* counted() {
            for await (const chunk of source) {
              watch.progress(chunk.length);
              yield chunk;
            }
          })(),
        );
      } else body = req.body as Uint8Array | undefined;
      watch.waiting(streamed ? 'upload' : 'response');
      let res: Response;
      try {
        res = await fetchImpl(req.url, {
          method: req.method,
          headers: req.headers,
          body,
          redirect: 'manual',
          signal: controller.signal,
          ...(streamed ? { duplex: 'half' } : {}),
        } as RequestInit);
      } catch (err) {
        watch.stop();
        outer?.removeEventListener('abort', onOuterAbort);
        throw timedOut ?? err;
      }
      watch.answered();
      watch.busy();
      const webBody = res.body;
      const chunks = webBody
        ? (async function* (): AsyncGenerator<Buffer> {
            try {
              for await (const chunk of webBody as unknown as AsyncIterable<Uint8Array>) {
                yield Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
              }
            } catch (err) {
              throw timedOut ?? err;
            } finally {
              outer?.removeEventListener('abort', onOuterAbort);
            }
          })()
        : null;
      if (!webBody) outer?.removeEventListener('abort', onOuterAbort);
      return new RegistryResponse({
        status: res.status,
        statusText: res.statusText,
        headers: res.headers,
        body: chunks,
        cancel: async () => {
          outer?.removeEventListener('abort', onOuterAbort);
          if (webBody && !webBody.locked) await webBody.cancel().catch(() => undefined);
          else await chunks?.return(undefined);
        },
        watch,
      });
    },
  };
}

/** A pull-based web stream: one chunk in flight at a time (for a caller-supplied fetch). */
function pullStream(source: AsyncIterable<Buffer>): ReadableStream<Uint8Array> {
  const iterator = source[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const { value, done } = await iterator.next();
          if (done) controller.close();
          else controller.enqueue(value);
        } catch (err) {
          controller.error(err);
        }
      },
      async cancel() {
        await iterator.return?.(undefined);
      },
    },
    { highWaterMark: 0 },
  );
}
