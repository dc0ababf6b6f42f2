/**
 * A loopback HTTP file server with faults, for remote build sources (APP https://…, ADD <url>):
 * files with ETag/Last-Modified and conditional requests, plus routes that fail on purpose
 * (404, stalls, redirects and redirect loops, oversize bodies, 5xx that recover or not). Every
 * request is logged so tests can tell a download from a revalidation. And a forward proxy (CONNECT
 * tunnels) to check that proxies from the environment are used.
 */
import { createHash } from 'node:crypto';
import * as http from 'node:http';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';

export interface ServedFile {
  body: Buffer;
  /** Seconds since the epoch (sent as Last-Modified). */
  lastModified?: number;
  /** Send no validators at all. */
  noValidators?: boolean;
  /** Send Last-Modified only (no ETag): revalidation by If-Modified-Since. */
  lastModifiedOnly?: boolean;
}

export interface RequestLog {
  path: string;
  status: number;
  /** Body bytes sent. */
  bytes: number;
  headers: http.IncomingHttpHeaders;
}

export interface FileServer {
  url: string;
  host: string;
  port: number;
  files: Map<string, ServedFile>;
  log: RequestLog[];
  /** Requests (and body bytes) for one path. */
  hits(path: string): RequestLog[];
  stop(): Promise<void>;
}

function etagOf(body: Buffer): string {
  return `"${createHash('sha256').update(body).digest('hex').slice(0, 16)}"`;
}

/**
 * Routes besides the files:
 * - `/missing/*` 404; `/fail500/*` always 500; `/flaky/N/*` 503 for the first N requests, then the file `*`
 * - `/redirect/*` 302 to `/files/*`; `/loop` 302 to itself
 * - `/stall-headers` never answers; `/stall-body` sends headers and 10 bytes of 1000, then nothing
 * - `/big/N` N bytes with Content-Length; `/chunked/N` N bytes without one
 */
export async function startFileServer(files: Record<string, ServedFile | string | Buffer> = {}): Promise<FileServer> {
  const served = new Map<string, ServedFile>();
  for (const [k, v] of Object.entries(files)) served.set(k, typeof v === 'string' || Buffer.isBuffer(v) ? { body: Buffer.from(v) } : v);
  const log: RequestLog[] = [];
  const flakyCounts = new Map<string, number>();
  const sockets = new Set<net.Socket>();

  const server = http.createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const entry: RequestLog = { path, status: 0, bytes: 0, headers: req.headers };
    log.push(entry);
    const send = (status: number, body: Buffer = Buffer.alloc(0), headers: http.OutgoingHttpHeaders = {}) => {
      entry.status = status;
      entry.bytes = body.length;
      res.writeHead(status, { 'content-length': body.length, ...headers });
      res.end(body);
    };
    const serveFile = (name: string) => {
      const f = served.get(name);
      if (!f) return send(404, Buffer.from('not found'));
      const etag = etagOf(f.body);
      const headers: http.OutgoingHttpHeaders = {};
      if (!f.noValidators) {
        if (!f.lastModifiedOnly) headers.etag = etag;
        if (f.lastModified !== undefined) headers['last-modified'] = new Date(f.lastModified * 1000).toUTCString();
        if (!f.lastModifiedOnly && req.headers['if-none-match'] === etag) return send(304, Buffer.alloc(0), headers);
        const since = req.headers['if-modified-since'];
        if (f.lastModifiedOnly && since && f.lastModified !== undefined && Date.parse(since) >= f.lastModified * 1000) {
          return send(304, Buffer.alloc(0), headers);
        }
      }
      return send(200, f.body, headers);
    };
    let m: RegExpMatchArray | null;
    if ((m = path.match(/^\/files\/(.+)$/))) return serveFile(m[1]);
    if (path.startsWith('/missing/')) return send(404, Buffer.from('no such file'));
    if (path.startsWith('/fail500/')) return send(500, Buffer.from('boom'));
    if ((m = path.match(/^\/flaky\/(\d+)\/(.+)$/))) {
      const n = (flakyCounts.get(path) ?? 0) + 1;
      flakyCounts.set(path, n);
      if (n <= Number(m[1])) return send(503, Buffer.from('busy'), { 'retry-after': '0' });
      return serveFile(m[2]);
    }
    if ((m = path.match(/^\/redirect\/(.+)$/))) return send(302, Buffer.alloc(0), { location: `/files/${m[1]}` });
    if (path === '/loop') return send(302, Buffer.alloc(0), { location: '/loop' });
    if (path === '/stall-headers') return; // never answered
    if (path === '/stall-body') {
      entry.status = 200;
      entry.bytes = 10;
      res.writeHead(200, { 'content-length': 1000 });
      res.write(Buffer.alloc(10, 1));
      return; // never finished
    }
    if ((m = path.match(/^\/big\/(\d+)$/))) return send(200, Buffer.alloc(Number(m[1]), 7));
    if ((m = path.match(/^\/chunked\/(\d+)$/))) {
      const total = Number(m[1]);
      entry.status = 200;
      res.writeHead(200); // no Content-Length: chunked
      let sent = 0;
      const chunk = Buffer.alloc(64 * 1024, 9);
      const pump = () => {
        while (sent < total) {
          const part = chunk.subarray(0, Math.min(chunk.length, total - sent));
          sent += part.length;
          entry.bytes = sent;
          if (!res.write(part)) return res.once('drain', pump);
        }
        res.end();
      };
      return pump();
    }
    return send(404);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    host: '127.0.0.1',
    port,
    files: served,
    log,
    hits: (p) => log.filter((l) => l.path === p),
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface ForwardProxy {
  url: string;
  /** `host:port` of every CONNECT it served. */
  connects: string[];
  stop(): Promise<void>;
}

/** A proxy that tunnels every CONNECT to `target` (whatever host was asked for), logging what was asked. */
export async function startForwardProxy(target: { host: string; port: number }): Promise<ForwardProxy> {
  const connects: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = http.createServer((_req, res) => {
    res.writeHead(405);
    res.end();
  });
  server.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    connects.push(req.url ?? '');
    sockets.add(client);
    const upstream = net.connect(target.port, target.host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    sockets.add(upstream);
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    upstream.on('error', close);
    client.on('error', close);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    connects,
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
