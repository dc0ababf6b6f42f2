/**
 * A tiny registry written in the test (node:http on 127.0.0.1, a free port) that serves whatever
 * it is told — including what no real registry would: documents whose bytes do not match their
 * digests, lying `Content-Length`s, endless bodies, redirects to other hosts, unknown media types.
 * For the hostile-registry corpus (spec/hardening/pull.spec.ts) and for crash tests that need a
 * registry in another process's reach.
 *
 *   const reg = await startFakeRegistry();
 *   reg.putManifest('team/app', 'v1', bytes, mediaType);     // by tag, and by its digest
 *   reg.putBlob(bytes);                                       // by its digest
 *   reg.intercept((req) => req.path.endsWith('/blobs/' + d) ? { status: 307, headers: { location } } : undefined);
 *   … reg.requests (every request, with headers) …
 *   await reg.stop();
 *
 * Without an interceptor it behaves like distribution: `GET /v2/`, manifests by tag or digest
 * (`Docker-Content-Digest`, `Content-Type`), blobs with `Range` support, 404 with an error body.
 */
import { createHash } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface FakeRequest {
  method: string;
  /** Path and query, as sent. */
  path: string;
  headers: http.IncomingHttpHeaders;
}

export interface FakeResponse {
  status?: number;
  headers?: Record<string, string>;
  /** The body: bytes, or chunks produced as the client reads (endless bodies, slow bodies). */
  body?: Buffer | string | (() => AsyncIterable<Buffer>);
  /** Instead of an HTTP response: write these raw bytes on the socket, then close it (lying headers). */
  raw?: Buffer | string;
  /** Wait this long before answering. */
  delayMs?: number;
}

export type Interceptor = (req: FakeRequest) => FakeResponse | undefined;

export interface FakeRegistry {
  /** `127.0.0.1:PORT`. */
  host: string;
  port: number;
  requests: FakeRequest[];
  /** Serve `bytes` as the manifest `repo:tag` (and `repo@digest`); returns its digest. */
  putManifest(repo: string, tag: string | undefined, bytes: Buffer, mediaType: string): string;
  /** Serve `bytes` as a blob (any repository) under its digest, or under `digest` when given. */
  putBlob(bytes: Buffer, digest?: string): string;
  /** Answer requests the interceptor returns a response for (the latest interceptor first). */
  intercept(fn: Interceptor): void;
  /** Require `Authorization: Basic` with these credentials on `/v2/…` (401 + challenge otherwise). */
  requireBasicAuth(username: string, password: string): void;
  /** Forget interceptors, recorded requests and the auth requirement (documents stay). */
  reset(): void;
  /** Close every connection (so a client's pooled sockets, and bodies it stopped reading, go away). */
  closeConnections(): void;
  stop(): Promise<void>;
}

export const sha256 = (b: Buffer | string) => 'sha256:' + createHash('sha256').update(b).digest('hex');

export async function startFakeRegistry(): Promise<FakeRegistry> {
  const manifests = new Map<string, { bytes: Buffer; mediaType: string; digest: string }>();
  const blobs = new Map<string, Buffer>();
  let interceptors: Interceptor[] = [];
  let auth: string | undefined;
  const requests: FakeRequest[] = [];
  const sockets = new Set<Socket>();

  const server = http.createServer((req, res) => {
    const request: FakeRequest = { method: req.method ?? 'GET', path: req.url ?? '/', headers: req.headers };
    requests.push(request);
    req.resume();
    const respond = (r: FakeResponse) => send(req, res, r);
    if (auth && request.path.startsWith('/v2/') && req.headers.authorization !== auth) {
      return respond({ status: 401, headers: { 'www-authenticate': 'Basic realm="fake"', 'content-type': 'application/json' }, body: '{"errors":[{"code":"UNAUTHORIZED"}]}' });
    }
    for (const fn of interceptors) {
      const answer = fn(request);
      if (answer) return respond(answer);
    }
    respond(route(request));
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  function route(req: FakeRequest): FakeResponse {
    const url = new URL(req.path, 'http://fake');
    if (url.pathname === '/v2/' || url.pathname === '/v2') return { status: 200, headers: { 'content-type': 'application/json' }, body: '{}' };
    const m = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(url.pathname);
    const notFound = (code: string): FakeResponse => ({ status: 404, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ errors: [{ code }] }) });
    if (!m) return notFound('NOT_FOUND');
    const [, repo, kind, ref] = m;
    if (kind === 'manifests') {
      const found = manifests.get(`${repo}:${ref}`) ?? manifests.get(`${repo}@${ref}`);
      if (!found) return notFound('MANIFEST_UNKNOWN');
      return {
        status: 200,
        headers: { 'content-type': found.mediaType, 'docker-content-digest': found.digest, 'content-length': String(found.bytes.length) },
        body: req.method === 'HEAD' ? undefined : found.bytes,
      };
    }
    const blob = blobs.get(ref);
    if (!blob) return notFound('BLOB_UNKNOWN');
    const range = /^bytes=(\d+)-$/.exec(String(req.headers.range ?? ''));
    if (range && req.method !== 'HEAD') {
      const from = Number(range[1]);
      return {
        status: 206,
        headers: { 'content-range': `bytes ${from}-${blob.length - 1}/${blob.length}`, 'content-length': String(blob.length - from), 'docker-content-digest': ref },
        body: blob.subarray(from),
      };
    }
    return { status: 200, headers: { 'content-length': String(blob.length), 'docker-content-digest': ref, 'content-type': 'application/octet-stream' }, body: req.method === 'HEAD' ? undefined : blob };
  }

  function send(req: http.IncomingMessage, res: http.ServerResponse, r: FakeResponse): void {
    const go = async () => {
      if (r.raw !== undefined) {
        // Bypass node's HTTP writer, which would refuse to lie.
        const socket = req.socket;
        socket.write(r.raw, () => socket.end());
        return;
      }
      res.writeHead(r.status ?? 200, r.headers ?? {});
      if (r.body === undefined || req.method === 'HEAD') return void res.end();
      if (typeof r.body === 'function') {
        try {
          for await (const chunk of r.body()) {
            if (res.destroyed) return;
            if (!res.write(chunk)) await new Promise<void>((resolve) => {
              res.once('drain', resolve);
              res.once('close', resolve);
            });
          }
          res.end();
        } catch {
          res.destroy();
        }
        return;
      }
      res.end(r.body);
    };
    if (r.delayMs) setTimeout(() => void go(), r.delayMs);
    else void go();
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  return {
    host: `127.0.0.1:${port}`,
    port,
    requests,
    putManifest(repo, tag, bytes, mediaType) {
      const digest = sha256(bytes);
      const value = { bytes, mediaType, digest };
      if (tag !== undefined) manifests.set(`${repo}:${tag}`, value);
      manifests.set(`${repo}@${digest}`, value);
      return digest;
    },
    putBlob(bytes, digest = sha256(bytes)) {
      blobs.set(digest, bytes);
      return digest;
    },
    intercept(fn) {
      interceptors = [fn, ...interceptors];
    },
    requireBasicAuth(username, password) {
      auth = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
    },
    reset() {
      interceptors = [];
      requests.length = 0;
      auth = undefined;
    },
    closeConnections() {
      for (const s of sockets) s.destroy();
    },
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
