/**
 * Registry authentication state for one registry: which scheme its challenge asked for, the
 * credentials (if any), and bearer tokens cached per scope set until shortly before they expire
 * (distribution's token auth: docs/reference/oci.md#distribution-api).
 *
 * Requests start anonymous; the first 401 teaches us the scheme, and from then on every request
 * carries the right header up front, so a registry costs one extra round trip, not one per call.
 */
import { AuthError, CloudRootfsError } from '../errors';
import type { RegistryCredentials } from './auth-file';
import { parseChallenges, type AuthChallenge } from './challenge';
import { readCapped } from './http';
import type { RegistryResponse } from './transport';

/**
 * Largest token-server answer read (a JWT is a few KiB). The realm is whatever the registry's
 * challenge names, so its answer is as untrusted as the registry.
 */
const MAX_TOKEN_BODY_BYTES = 1 << 20;

export type RepositoryAction = 'pull' | 'push' | 'delete' | '*';

/** Access to one repository, as a token `scope` asks for it. */
export interface RepositoryScope {
  repository: string;
  actions: RepositoryAction[];
}

export function scopeString(scope: RepositoryScope): string {
  return `repository:${scope.repository}:${[...new Set(scope.actions)].join(',')}`;
}

/** Canonical scope strings: merged per repository, sorted, so equal requests share a cache key. */
export function scopeStrings(scopes: readonly RepositoryScope[]): string[] {
  const byRepo = new Map<string, Set<RepositoryAction>>();
  for (const s of scopes) {
    const set = byRepo.get(s.repository) ?? new Set<RepositoryAction>();
    for (const a of s.actions) set.add(a);
    byRepo.set(s.repository, set);
  }
  const order: RepositoryAction[] = ['pull', 'push', 'delete', '*'];
  return [...byRepo.entries()]
    .map(([repository, set]) => scopeString({ repository, actions: order.filter((a) => set.has(a)) }))
    .sort();
}

/** What the token server answered (distribution token spec). */
interface TokenResponse {
  token?: unknown;
  access_token?: unknown;
  expires_in?: unknown;
}

interface CachedToken {
  token: string;
  /** Epoch ms after which we fetch a new one (already shortened by a safety margin). */
  refreshAt: number;
}

/** Fetches a URL for the token flow (the client's retrying transport, without registry auth). */
export type TokenFetcher = (url: string, headers: Record<string, string>) => Promise<RegistryResponse>;

export interface RegistryAuthOptions {
  registry: string;
  /** Resolves the credentials lazily (an auth file is read only when a challenge needs it). */
  credentials: () => Promise<RegistryCredentials | undefined>;
  fetchToken: TokenFetcher;
  now?: () => number;
}

/** Default lifetime when the token server omits `expires_in` (token spec). */
const DEFAULT_TOKEN_SECONDS = 60;

/** A cache slot: the in-flight or finished token request, and its answer once known. */
interface TokenSlot {
  pending: Promise<CachedToken>;
  value?: CachedToken;
}

export class RegistryAuth {
  private challenge: AuthChallenge | undefined;
  private readonly tokens = new Map<string, TokenSlot>();
  private readonly now: () => number;
  /** How many times we asked the token server; tests and diagnostics read it. */
  tokenRequests = 0;

  constructor(private readonly options: RegistryAuthOptions) {
    this.now = options.now ?? Date.now;
  }

  /** The scheme the registry asked for, once known: `none` until a 401 says otherwise. */
  get scheme(): 'none' | 'basic' | 'bearer' {
    if (!this.challenge) return 'none';
    return this.challenge.scheme === 'bearer' ? 'bearer' : 'basic';
  }

  /** The `Authorization` value to send for these scopes, or undefined to go anonymous. */
  async authorization(scopes: readonly RepositoryScope[]): Promise<string | undefined> {
    const challenge = this.challenge;
    if (!challenge) return undefined;
    if (challenge.scheme === 'basic') {
      const creds = await this.options.credentials();
      return creds ? basicHeader(creds) : undefined;
    }
    return `Bearer ${await this.token(challenge, scopes)}`;
  }

  /**
   * Called on a 401. Learns the challenge and forgets the token that failed; returns true when a
   * second attempt can send something better, false when it would only fail the same way.
   */
  async onUnauthorized(response: RegistryResponse, scopes: readonly RepositoryScope[], sent: string | undefined): Promise<boolean> {
    const challenges = parseChallenges(response.headers.get('www-authenticate'));
    const bearer = challenges.find((c) => c.scheme === 'bearer' && c.params.realm);
    const basic = challenges.find((c) => c.scheme === 'basic');
    if (bearer) {
      this.challenge = bearer;
      // Forget the token only if it is the one that failed: concurrent requests that went out
      // anonymously must not throw away a token another request has just fetched.
      const key = this.cacheKey(bearer, scopes);
      const slot = this.tokens.get(key);
      if (slot?.value && sent === `Bearer ${slot.value.token}`) this.tokens.delete(key);
      return true;
    }
    if (basic) {
      this.challenge = basic;
      const creds = await this.options.credentials();
      // Resending the same Basic header cannot help.
      return creds !== undefined && sent !== basicHeader(creds);
    }
    if (challenges.length > 0) {
      throw new AuthError(
        `${this.options.registry} asks for unsupported authentication: ${challenges.map((c) => c.scheme).join(', ')}`,
        response.status,
      );
    }
    return false;
  }

  private cacheKey(challenge: AuthChallenge, scopes: readonly RepositoryScope[]): string {
    return [challenge.params.realm, challenge.params.service ?? '', ...scopeStrings(scopes)].join('\n');
  }

  private async token(challenge: AuthChallenge, scopes: readonly RepositoryScope[]): Promise<string> {
    const key = this.cacheKey(challenge, scopes);
    let slot = this.tokens.get(key);
    if (slot?.value && this.now() >= slot.value.refreshAt) {
      this.tokens.delete(key);
      slot = undefined;
    }
    if (!slot) {
      // One request per scope set, shared by every concurrent caller.
      const fresh: TokenSlot = { pending: this.fetchToken(challenge, scopes) };
      fresh.pending.then(
        (value) => (fresh.value = value),
        () => {
          if (this.tokens.get(key) === fresh) this.tokens.delete(key); // failures are not cached
        },
      );
      this.tokens.set(key, fresh);
      slot = fresh;
    }
    return (await slot.pending).token;
  }

  private async fetchToken(challenge: AuthChallenge, scopes: readonly RepositoryScope[]): Promise<CachedToken> {
    const url = new URL(challenge.params.realm);
    if (challenge.params.service) url.searchParams.set('service', challenge.params.service);
    const wanted = scopeStrings(scopes);
    // With no scope of our own (ping), echo the one the registry asked for, if any.
    if (wanted.length === 0 && challenge.params.scope) wanted.push(...challenge.params.scope.split(' ').filter(Boolean));
    for (const s of wanted) url.searchParams.append('scope', s);
    const creds = await this.options.credentials();
    const headers: Record<string, string> = { accept: 'application/json' };
    if (creds) {
      url.searchParams.set('account', creds.username);
      headers.authorization = basicHeader(creds);
    }
    this.tokenRequests++;
    const started = this.now();
    const res = await this.options.fetchToken(url.toString(), headers);
    if (res.status === 401 || res.status === 403) {
      await res.cancel().catch(() => undefined);
      throw new AuthError(
        creds
          ? `the token server for ${this.options.registry} rejected the credentials of ${JSON.stringify(creds.username)}`
          : `the token server for ${this.options.registry} refused anonymous access`,
        res.status,
        [],
        { realm: url.origin + url.pathname },
      );
    }
    if (res.status !== 200) {
      const text = (await readCapped(res, 64 << 10, 'token server error body', 'maxTokenBytes').catch(() => Buffer.alloc(0))).toString('utf8');
      throw new AuthError(`the token server for ${this.options.registry} answered ${res.status}`, res.status, [], {
        realm: url.origin + url.pathname,
        body: text.slice(0, 500),
      });
    }
    let body: TokenResponse;
    try {
      body = JSON.parse((await readCapped(res, MAX_TOKEN_BODY_BYTES, `the token from ${url.origin}`, 'maxTokenBytes')).toString('utf8')) as TokenResponse;
    } catch (err) {
      if (err instanceof CloudRootfsError) throw err;
      throw new AuthError(`the token server for ${this.options.registry} sent a body that is not JSON`, res.status);
    }
    if (!body || typeof body !== 'object') throw new AuthError(`the token server for ${this.options.registry} sent no token`, res.status);
    const token = typeof body.token === 'string' && body.token ? body.token : body.access_token;
    if (typeof token !== 'string' || token === '') {
      throw new AuthError(`the token server for ${this.options.registry} sent no token`, res.status);
    }
    const seconds =
      typeof body.expires_in === 'number' && Number.isFinite(body.expires_in) && body.expires_in > 0
        ? body.expires_in
        : DEFAULT_TOKEN_SECONDS;
    // Refresh a little early so a token never expires between our check and the registry's.
    const margin = Math.min(10_000, (seconds * 1000) / 4);
    return { token, refreshAt: started + seconds * 1000 - margin };
  }
}

export function basicHeader(creds: RegistryCredentials): string {
  return `Basic ${Buffer.from(`${creds.username}:${creds.password}`, 'utf8').toString('base64')}`;
}
