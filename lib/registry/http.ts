/**
 * Small helpers around HTTP responses and registry URLs: bounded body reads, the registry's
 * error bodies, media types, Link pagination, and which scheme a host gets.
 */
import { CloudRootfsError, LimitExceededError, NetworkError, TimeoutError, type RegistryErrorEntry } from '../errors';
import { describeNetworkFailure, isAbortError } from './retry';
import type { RegistryResponse } from './transport';

const MAX_ERROR_BODY_BYTES = 64 * 1024;

/** Adds a query parameter without re-encoding the ones already there (`_state` is opaque). */
export function withQuery(url: string, name: string, value: string): string {
  const hash = url.indexOf('#');
  const base = hash >= 0 ? url.slice(0, hash) : url;
  return `${base}${base.includes('?') ? '&' : '?'}${name}=${encodeURIComponent(value)}`;
}

export function isRedirect(status: number): boolean {
  return status === 301 || status === 302 || status === 303 || status === 307 || status === 308;
}

/** Bodies up to this size are read to the end by `discard`, so their connection is reused. */
const DRAIN_BYTES = 64 * 1024;

/** Drops a response's body: read to the end when it is small (the connection is kept), else cut. */
export async function discard(res: RegistryResponse): Promise<void> {
  if (res.bodyUsed) return;
  const length = contentLength(res);
  if (length !== undefined && length <= DRAIN_BYTES) {
    try {
      for await (const chunk of res.chunks()) void chunk;
    } catch {
      // nobody wanted these bytes
    }
    return;
  }
  await res.cancel().catch(() => undefined);
}

export function contentLength(res: Pick<RegistryResponse, 'headers'>): number | undefined {
  const value = res.headers.get('content-length');
  if (value === null || !/^\d+$/.test(value)) return undefined;
  return Number(value);
}

/** The body's chunks as Buffers (no copies). */
export function bodyChunks(res: RegistryResponse): AsyncGenerator<Buffer> {
  return res.chunks();
}

/** Reads a small body, refusing more than `max` bytes (checked before and while reading). */
export async function readCapped(res: RegistryResponse, max: number, what: string, limit = 'maxManifestBytes'): Promise<Buffer> {
  const declared = contentLength(res);
  if (declared !== undefined && declared > max) {
    await discard(res);
    throw new LimitExceededError(limit, max, `${what} (${declared} bytes)`);
  }
  const parts: Buffer[] = [];
  let total = 0;
  const reader = bodyChunks(res);
  try {
    for await (const chunk of reader) {
      total += chunk.length;
      if (total > max) throw new LimitExceededError(limit, max, what);
      parts.push(chunk);
    }
  } catch (err) {
    // Our own limit, or the caller's abort: not a transport failure (and never worth a retry).
    // A stall is retried like a dropped connection, and keeps its type.
    if ((err instanceof CloudRootfsError && !(err instanceof TimeoutError)) || isAbortError(err)) {
      await discard(res);
      throw err;
    }
    if (err instanceof TimeoutError) throw new TimeoutError(`reading ${what}: ${err.message}`, { ...err.details, phase: 'body' }, { cause: err });
    throw new NetworkError(`reading ${what} failed: ${describeNetworkFailure(err)}`, { phase: 'body' }, { cause: err });
  }
  return Buffer.concat(parts, total);
}

/** The registry's `{"errors":[…]}` from an error response, or [] when there is none. */
export async function readRegistryErrors(res: RegistryResponse): Promise<RegistryErrorEntry[]> {
  let text: string;
  try {
    text = (await readCapped(res, MAX_ERROR_BODY_BYTES, 'error body')).toString('utf8');
  } catch {
    return [];
  }
  try {
    const json = JSON.parse(text) as { errors?: unknown };
    if (!Array.isArray(json.errors)) return [];
    return json.errors
      .filter((e): e is Record<string, unknown> => typeof e === 'object' && e !== null)
      .map((e) => ({
        code: typeof e.code === 'string' ? e.code : 'UNKNOWN',
        ...(typeof e.message === 'string' ? { message: e.message } : {}),
        ...(e.detail !== undefined ? { detail: e.detail } : {}),
      }));
  } catch {
    return [];
  }
}

export function baseMediaType(contentType: string | null): string | undefined {
  const base = contentType?.split(';')[0].trim().toLowerCase();
  return base || undefined;
}

/** The Content-Type, unless it is a generic one; then the document's own `mediaType`. */
export function manifestMediaType(contentType: string | null, bytes: Buffer): string {
  const base = baseMediaType(contentType);
  if (base && !['application/json', 'text/plain', 'application/octet-stream'].includes(base)) return base;
  try {
    const json = JSON.parse(bytes.toString('utf8')) as { mediaType?: unknown };
    if (typeof json.mediaType === 'string') return json.mediaType;
  } catch {
    // not JSON: keep whatever the header said
  }
  return base ?? '';
}

/** The `rel="next"` target of a Link header, resolved against the current URL. */
export function nextLink(header: string | null, current: string): string | undefined {
  if (!header) return undefined;
  for (const link of header.split(/,(?=\s*<)/)) {
    const m = /^\s*<([^>]*)>(.*)$/.exec(link);
    if (!m) continue;
    const rels = m[2]
      .split(';')
      .map((p) => /^\s*rel\s*=\s*"?([^"]*)"?\s*$/i.exec(p)?.[1])
      .filter((v): v is string => v !== undefined);
    if (rels.some((v) => v.toLowerCase().split(/\s+/).includes('next'))) return new URL(m[1], current).toString();
  }
  return undefined;
}

/** Docker Hub's API lives on another host than its name. */
export function apiHost(registry: string): string {
  return registry === 'docker.io' || registry === 'index.docker.io' ? 'registry-1.docker.io' : registry;
}

/** The host without port or brackets. */
function hostOnly(registry: string): string {
  if (registry.startsWith('[')) return registry.slice(1, registry.indexOf(']'));
  const colon = registry.lastIndexOf(':');
  return colon >= 0 ? registry.slice(0, colon) : registry;
}

export function isLoopbackHost(registry: string): boolean {
  const host = hostOnly(registry).toLowerCase();
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

export function useHttp(registry: string, insecure: boolean | undefined): boolean {
  if (insecure !== undefined) return insecure;
  return isLoopbackHost(registry);
}

/** Upload URLs carry opaque state; keep messages short and free of it. */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  return q >= 0 ? `${url.slice(0, q)}?…` : url;
}
