/**
 * When and how long to wait before trying a registry request again. Transient failures are
 * 429/408 and most 5xx statuses plus dropped or refused connections; every other 4xx is the
 * caller's mistake and is never retried.
 */
import { CloudRootfsError, NetworkError, TimeoutError } from '../errors';

export interface RetryPolicy {
  /** Extra attempts after the first one. */
  retries: number;
  /** First backoff step; doubles on every attempt. */
  baseDelayMs: number;
  /** Upper bound for one wait, backoff or `Retry-After`. */
  maxDelayMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { retries: 4, baseDelayMs: 250, maxDelayMs: 30_000 };

export function isRetryableStatus(status: number): boolean {
  if (status === 408 || status === 429) return true;
  // 501 (not implemented) and 505 (version not supported) will not change on a second try.
  return status >= 500 && status <= 599 && status !== 501 && status !== 505;
}

/** `Retry-After` in milliseconds (delta-seconds or an HTTP date), or undefined when absent/unreadable. */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

/** Exponential backoff with "equal jitter": half fixed, half random, so retries spread out. */
export function backoffDelay(attempt: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const step = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** attempt);
  return Math.round(step / 2 + random() * (step / 2));
}

/** The wait before attempt `attempt + 1`: the server's `Retry-After` when given, else backoff; capped. */
export function retryDelay(attempt: number, policy: RetryPolicy, retryAfterMs?: number): number {
  const delay = retryAfterMs ?? backoffDelay(attempt, policy);
  return Math.min(delay, policy.maxDelayMs);
}

export function isAbortError(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { name?: unknown }).name === 'AbortError';
}

/** errno-style socket/DNS codes and undici's own; not Node's `ERR_*` programming errors. */
const NETWORK_CODE = /^(?:E(?!RR_)[A-Z0-9_]+|UND_ERR_[A-Z_]+|ERR_STREAM_PREMATURE_CLOSE)$/;
/** undici codes that mean our request was wrong: a retry would fail the same way. */
const NOT_TRANSIENT_CODES = new Set(['UND_ERR_REQ_CONTENT_LENGTH_MISMATCH', 'UND_ERR_INVALID_ARG', 'UND_ERR_NOT_SUPPORTED']);

/**
 * True for failures of the transport itself (fetch's `TypeError: fetch failed`, `terminated`
 * mid-body, ECONNRESET…), which a new attempt may cure. Our own typed errors, aborts and
 * programming errors (a bad header value) are not.
 */
export function isNetworkFailure(err: unknown): boolean {
  // A stall is retried like a dropped connection; a proxy that refuses the tunnel for good is not.
  if (err instanceof TimeoutError) return true;
  if (err instanceof NetworkError) return err.details.transient !== false;
  if (err instanceof CloudRootfsError || isAbortError(err)) return false;
  if (isTlsFailure(err)) return false;
  let transport = false;
  let current: unknown = err;
  // fetch wraps the real reason in `cause`: look at the whole chain before deciding.
  for (let depth = 0; depth < 5 && typeof current === 'object' && current !== null; depth++) {
    const e = current as { code?: unknown; message?: unknown; cause?: unknown };
    if (typeof e.code === 'string' && NOT_TRANSIENT_CODES.has(e.code)) return false;
    if (typeof e.code === 'string' && NETWORK_CODE.test(e.code)) transport = true;
    // By name, not instanceof: the TypeError may come from another realm (undici in a vm/jest context).
    const name = (current as { name?: unknown }).name;
    if (name === 'TypeError' && (e.message === 'fetch failed' || e.message === 'terminated')) transport = true;
    current = e.cause;
  }
  return transport;
}

/** OpenSSL's and Node's certificate and handshake failures: a retry meets the same certificate. */
const TLS_CODE = /^(?:ERR_SSL_|ERR_TLS_|CERT_|UNABLE_TO_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|HOSTNAME_MISMATCH|INVALID_CA|PATH_LENGTH_EXCEEDED|INVALID_PURPOSE)/;

/** True when the failure is the TLS handshake refusing a certificate (ours or the registry's). */
export function isTlsFailure(err: unknown): boolean {
  let current: unknown = err;
  for (let depth = 0; depth < 5 && typeof current === 'object' && current !== null; depth++) {
    const e = current as { code?: unknown; cause?: unknown };
    if (typeof e.code === 'string' && TLS_CODE.test(e.code) && !isPlainHttpAnswer(current)) return true;
    current = e.cause;
  }
  return false;
}

/**
 * True when a TLS handshake failed because the server answered in plain HTTP (OpenSSL reads
 * `HTTP/1.1 400` as a record with a wrong version): the registry does not speak TLS at all.
 */
export function isPlainHttpAnswer(err: unknown): boolean {
  let current: unknown = err;
  for (let depth = 0; depth < 5 && typeof current === 'object' && current !== null; depth++) {
    const e = current as { code?: unknown; message?: unknown; reason?: unknown; cause?: unknown };
    const text = `${typeof e.message === 'string' ? e.message : ''} ${typeof e.reason === 'string' ? e.reason : ''}`;
    if (/wrong version number|packet length too long|http request|unknown protocol/i.test(text)) return true;
    current = e.cause;
  }
  return false;
}

/** A short description of a transport failure, digging into fetch's `cause`. */
export function describeNetworkFailure(err: unknown): string {
  const parts: string[] = [];
  let current: unknown = err;
  for (let depth = 0; depth < 4 && current; depth++) {
    if (typeof current === 'object' && current !== null) {
      const e = current as { message?: unknown; code?: unknown; cause?: unknown };
      const text = [e.code, e.message].filter((x) => typeof x === 'string' && x).join(' ');
      if (text && !parts.includes(text)) parts.push(text);
      current = e.cause;
    } else {
      parts.push(String(current));
      break;
    }
  }
  return parts.join(': ') || 'network failure';
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
