/**
 * Streaming request bodies over node:http(s), answering with a fetch `Response`.
 *
 * Why not fetch: undici's fetch (Node 20, undici 6.x) keeps every chunk of a streamed request
 * body alive until the request ends (nodejs/undici#4058, open), so a 500 MiB layer upload costs
 * 500 MiB of memory. node:http with `pipeline` holds one chunk at a time. Everything else
 * (small or bodiless requests) stays on fetch.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import { Readable, pipeline } from 'node:stream';

export interface StreamRequestInit {
  method: string;
  headers: Headers;
  body: AsyncIterable<Buffer>;
  signal?: AbortSignal;
}

export function streamRequest(url: string, init: StreamRequestInit): Promise<Response> {
  const target = new URL(url);
  const client = target.protocol === 'https:' ? https : http;
  const headers: Record<string, string> = {};
  init.headers.forEach((value, name) => (headers[name] = value));
  return new Promise<Response>((resolve, reject) => {
    let settled = false;
    const settle = (fn: () => void): void => {
      if (!settled) {
        settled = true;
        fn();
      }
    };
    const req = client.request(target, { method: init.method, headers, signal: init.signal });
    req.on('response', (res) => settle(() => resolve(toResponse(res, init.method))));
    req.on('error', (err) => settle(() => reject(err)));
    const body = Readable.from(init.body, { objectMode: false });
    pipeline(body, req, (err) => {
      // A body failure (source error, digest check) must abort the request, not end it cleanly.
      if (err) settle(() => reject(err));
    });
  });
}

function toResponse(res: http.IncomingMessage, method: string): Response {
  const headers = new Headers();
  for (const [name, value] of Object.entries(res.headers)) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) headers.append(name, v);
  }
  const status = res.statusCode ?? 502;
  const noBody = method === 'HEAD' || status === 204 || status === 304;
  if (noBody) res.resume();
  const body = noBody ? null : (Readable.toWeb(res) as unknown as ReadableStream<Uint8Array>);
  return new Response(body, { status, statusText: res.statusMessage, headers });
}
