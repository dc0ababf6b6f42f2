/**
 * Real registries for tests: Debian's `docker-registry` (distribution 2.8) on 127.0.0.1, a free
 * port and a temporary storage root, with no auth, htpasswd Basic auth, or token auth backed by a
 * token server written here (RS256 JWTs whose certificate, made with the `openssl` CLI, is the
 * registry's `rootcertbundle`). Plus a fault-injecting proxy for retry tests.
 *
 *   const reg = await startTestRegistry({ auth: 'basic', users: { alice: 'secret' } });
 *   …
 *   await reg.stop();
 *
 * With CLOUDROOTFS_TEST_REGISTRY=host:port set, `auth: 'none'` registries use that one instead
 * of starting a process (auth variants always start their own: their config is ours to choose).
 * Use `uniqueRepo()` for repository names so runs never collide in a shared registry.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createSign, randomBytes, randomUUID, X509Certificate } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { findTool, requireTool } from './tools';

const execFileAsync = promisify(execFile);

export type TestRegistryAuth = 'none' | 'basic' | 'token';

export interface StartRegistryOptions {
  auth?: TestRegistryAuth;
  /** username → password, for `basic` and `token` (default `{ tester: 'test-password' }`). */
  users?: Record<string, string>;
  /** Token-server behaviour (token auth only). */
  token?: Omit<TokenServerOptions, 'users' | 'service' | 'issuer' | 'keyPem' | 'certPem'>;
  /** Use CLOUDROOTFS_TEST_REGISTRY when set (default true; only for `auth: 'none'`). */
  allowExternal?: boolean;
  /**
   * Serve this existing storage root (`storage.filesystem.rootdirectory`; the driver appends
   * `/docker/registry/v2`) in read-only mode. It is left in place on stop.
   */
  storageRoot?: string;
  /** Serve HTTPS with this certificate and key (PEM files); `clientCas` requires client certificates (mTLS). */
  tls?: { certificate: string; key: string; clientCas?: string[] };
  /** Ports to try, in order (default: a free one); the first that binds is used. */
  ports?: number[];
}

export interface TestRegistry {
  /** `127.0.0.1:PORT`: what a RegistryClient takes as `registry`. */
  host: string;
  url: string;
  auth: TestRegistryAuth;
  users: Record<string, string>;
  /** The token server (token auth only). */
  tokenServer?: TestTokenServer;
  /** The storage root (undefined for an external registry). */
  storageRoot?: string;
  external: boolean;
  /** What the registry printed so far (for failure messages). */
  logs(): string;
  stop(): Promise<void>;
}

export const DEFAULT_TEST_USERS: Readonly<Record<string, string>> = { tester: 'test-password' };
export const TOKEN_SERVICE = 'cloudrootfs-test-registry';
export const TOKEN_ISSUER = 'cloudrootfs-test-issuer';

/** The externally provided registry (`host:port`), if any. */
export function externalRegistry(): string | undefined {
  return process.env.CLOUDROOTFS_TEST_REGISTRY?.trim() || undefined;
}

/** True when `startTestRegistry({ auth })` can work here (skip otherwise; CI fails instead). */
export function registryAvailable(auth: TestRegistryAuth = 'none'): boolean {
  if (auth === 'none' && externalRegistry()) return true;
  const tools = ['docker-registry'];
  if (auth === 'basic') tools.push('htpasswd');
  if (auth === 'token') tools.push('openssl');
  return requireTool(...tools);
}

/** `describe` that runs only when such a registry can be had. */
export function describeWithRegistry(auth: TestRegistryAuth, title: string, fn: () => void): void {
  // Reason for the skip: docker-registry (or htpasswd/openssl) is absent and tools are not required here.
  (registryAvailable(auth) ? describe : describe.skip)(`${title} [registry: ${auth}]`, fn);
}

/** A repository name no other test (or earlier run) uses. */
export function uniqueRepo(prefix = 'test'): string {
  return `cloudrootfs-spec/${prefix}-${randomBytes(5).toString('hex')}`;
}

export async function freePort(host = '127.0.0.1'): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, resolve);
  });
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export async function startTestRegistry(options: StartRegistryOptions = {}): Promise<TestRegistry> {
  const auth = options.auth ?? 'none';
  const users = options.users ?? { ...DEFAULT_TEST_USERS };
  const external = externalRegistry();
  if (auth === 'none' && external && options.allowExternal !== false && !options.storageRoot && !options.tls && !options.ports) {
    return { host: external, url: `http://${external}`, auth, users: {}, external: true, logs: () => '', stop: async () => undefined };
  }
  const binary = findTool('docker-registry');
  if (!binary) throw new Error('docker-registry is not installed (guard the suite with describeWithRegistry)');

  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'cloudrootfs-registry-'));
  let tokenServer: TestTokenServer | undefined;
  try {
    let authConfig = '';
    if (auth === 'basic') {
      const lines: string[] = [];
      for (const [user, pass] of Object.entries(users)) {
        const { stdout } = await execFileAsync('htpasswd', ['-Bbn', user, pass]);
        lines.push(stdout.trim());
      }
      const file = path.join(dir, 'htpasswd');
      await fsp.writeFile(file, lines.join('\n') + '\n');
      authConfig = `auth:\n  htpasswd:\n    realm: cloudrootfs-test\n    path: ${JSON.stringify(file)}\n`;
    } else if (auth === 'token') {
      const { keyPem, certPem, certFile } = await makeSigningCertificate(dir);
      tokenServer = await startTokenServer({ ...options.token, users, service: TOKEN_SERVICE, issuer: TOKEN_ISSUER, keyPem, certPem });
      authConfig =
        `auth:\n  token:\n    realm: ${JSON.stringify(tokenServer.realm)}\n    service: ${TOKEN_SERVICE}\n` +
        `    issuer: ${TOKEN_ISSUER}\n    rootcertbundle: ${JSON.stringify(certFile)}\n`;
    }

    const tlsConfig = options.tls
      ? [
          '  tls:',
          `    certificate: ${JSON.stringify(options.tls.certificate)}`,
          `    key: ${JSON.stringify(options.tls.key)}`,
          ...(options.tls.clientCas?.length ? ['    clientcas:', ...options.tls.clientCas.map((c) => `      - ${JSON.stringify(c)}`)] : []),
        ]
      : [];
    // A port picked by bind(0) can be taken before the registry binds it: try a few.
    let lastError: unknown;
    const attempts = options.ports?.length ?? 4;
    for (let attempt = 0; attempt < attempts; attempt++) {
      const port = options.ports ? options.ports[attempt] : await freePort();
      const storageRoot = options.storageRoot ?? path.join(dir, `storage-${attempt}`);
      const configFile = path.join(dir, `config-${attempt}.yml`);
      await fsp.writeFile(
        configFile,
        [
          'version: 0.1',
          'log:',
          '  level: warn',
          '  accesslog:',
          '    disabled: true',
          'storage:',
          '  filesystem:',
          `    rootdirectory: ${JSON.stringify(storageRoot)}`,
          '  delete:',
          '    enabled: true',
          '  maintenance:',
          '    uploadpurging:',
          '      enabled: false',
          ...(options.storageRoot ? ['    readonly:', '      enabled: true'] : []),
          'http:',
          `  addr: 127.0.0.1:${port}`,
          `  secret: ${randomBytes(16).toString('hex')}`,
          ...tlsConfig,
          authConfig,
        ].join('\n'),
      );
      // REGISTRY_* variables are configuration to the registry (REGISTRY_AUTH_FILE would break it).
      const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('REGISTRY_')));
      const child = spawn(binary, ['serve', configFile], { stdio: ['ignore', 'pipe', 'pipe'], env });
      // Never leave a registry behind, even when the test process ends without afterAll.
      const killOnExit = (): void => void child.kill('SIGKILL');
      process.once('exit', killOnExit);
      child.once('exit', () => process.removeListener('exit', killOnExit));
      let output = '';
      child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
      child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
      const host = `127.0.0.1:${port}`;
      try {
        if (options.tls) await waitUntilListening(port, child, () => output);
        else await waitUntilServing(`http://${host}/v2/`, child, () => output);
      } catch (err) {
        lastError = err;
        await stopProcess(child);
        continue;
      }
      const registry: TestRegistry = {
        host,
        url: `${options.tls ? 'https' : 'http'}://${host}`,
        auth,
        users,
        tokenServer,
        storageRoot,
        external: false,
        logs: () => output,
        stop: async () => {
          await stopProcess(child);
          await tokenServer?.stop();
          await fsp.rm(dir, { recursive: true, force: true });
        },
      };
      return registry;
    }
    throw lastError;
  } catch (err) {
    await tokenServer?.stop();
    await fsp.rm(dir, { recursive: true, force: true });
    throw err;
  }
}

async function waitUntilServing(url: string, child: ChildProcess, logs: () => string): Promise<void> {
  const deadline = Date.now() + 20_000;
  let exited: number | null | undefined;
  child.once('exit', (code) => (exited = code));
  while (Date.now() < deadline) {
    if (exited !== undefined) throw new Error(`docker-registry exited (${exited}): ${logs()}`);
    // node:http, not fetch: fetch refuses the "bad ports" a test registry may listen on.
    const status = await new Promise<number | undefined>((resolve) => {
      const req = http.get(url, { agent: false }, (res) => {
        res.resume();
        resolve(res.statusCode);
      });
      req.on('error', () => resolve(undefined)); // not listening yet
    });
    if (status === 200 || status === 401) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`docker-registry did not answer ${url} within 20s: ${logs()}`);
}

/** For a TLS registry (whose handshake may want a client certificate): the port accepts connections. */
async function waitUntilListening(port: number, child: ChildProcess, logs: () => string): Promise<void> {
  const deadline = Date.now() + 20_000;
  let exited: number | null | undefined;
  child.once('exit', (code) => (exited = code));
  while (Date.now() < deadline) {
    if (exited !== undefined) throw new Error(`docker-registry exited (${exited}): ${logs()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (ok) {
      // Someone listens; make sure it is this registry (one that lost the port to another exits).
      await new Promise((r) => setTimeout(r, 300));
      if (exited === undefined) return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`docker-registry did not listen on ${port} within 20s: ${logs()}`);
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/** A self-signed RSA certificate made with the openssl CLI: the token issuer's identity. */
async function makeSigningCertificate(dir: string): Promise<{ keyPem: string; certPem: string; certFile: string }> {
  const keyFile = path.join(dir, 'token-key.pem');
  const certFile = path.join(dir, 'token-cert.pem');
  await execFileAsync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '2',
    '-subj', '/CN=cloudrootfs-test-token-issuer', '-keyout', keyFile, '-out', certFile,
  ]);
  return { keyPem: await fsp.readFile(keyFile, 'utf8'), certPem: await fsp.readFile(certFile, 'utf8'), certFile };
}

// ------------------------------------------------------------------ token server

export interface TokenAccess {
  type: string;
  name: string;
  actions: string[];
}

export interface TokenServerOptions {
  service: string;
  issuer: string;
  keyPem: string;
  certPem: string;
  users: Record<string, string>;
  /** Token lifetime in seconds (default 300). */
  expiresIn?: number;
  /** Which field carries the token (default `token`; `access_token` or both are allowed by the spec). */
  tokenField?: 'token' | 'access_token' | 'both';
  /**
   * What a caller gets for one requested scope (default: authenticated users get what they ask for,
   * anonymous callers get `pull` only).
   */
  grant?: (user: string | undefined, requested: TokenAccess) => string[];
}

export interface TokenRequestLog {
  scopes: string[];
  service: string | null;
  account: string | null;
  /** The authenticated user, undefined for anonymous requests. */
  user: string | undefined;
  status: number;
}

export interface TestTokenServer {
  realm: string;
  requests: TokenRequestLog[];
  stop(): Promise<void>;
}

export async function startTokenServer(options: TokenServerOptions): Promise<TestTokenServer> {
  const certDer = new X509Certificate(options.certPem).raw.toString('base64');
  const requests: TokenRequestLog[] = [];
  const grant = options.grant ?? ((user, requested) => (user ? requested.actions : requested.actions.filter((a) => a === 'pull')));

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://token.invalid');
    const scopes = url.searchParams.getAll('scope');
    const log: TokenRequestLog = {
      scopes,
      service: url.searchParams.get('service'),
      account: url.searchParams.get('account'),
      user: undefined,
      status: 200,
    };
    requests.push(log);
    const reply = (status: number, body: unknown): void => {
      log.status = status;
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (url.pathname !== '/token') return reply(404, { error: 'not found' });
    const authz = req.headers.authorization;
    if (authz) {
      const m = /^Basic\s+(.+)$/i.exec(authz);
      const decoded = m ? Buffer.from(m[1], 'base64').toString('utf8') : '';
      const colon = decoded.indexOf(':');
      const user = decoded.slice(0, colon);
      if (colon <= 0 || options.users[user] !== decoded.slice(colon + 1)) return reply(401, { error: 'bad credentials' });
      log.user = user;
    }
    const access: TokenAccess[] = [];
    for (const scope of scopes) {
      for (const item of scope.split(' ')) {
        const parts = item.split(':');
        if (parts.length < 3) continue;
        const requested: TokenAccess = { type: parts[0], name: parts.slice(1, -1).join(':'), actions: parts[parts.length - 1].split(',') };
        const actions = grant(log.user, requested);
        if (actions.length) access.push({ ...requested, actions });
      }
    }
    const now = Math.floor(Date.now() / 1000);
    const expiresIn = options.expiresIn ?? 300;
    const token = signJwt(
      { alg: 'RS256', typ: 'JWT', x5c: [certDer] },
      {
        iss: options.issuer,
        sub: log.user ?? '',
        aud: options.service,
        exp: now + expiresIn,
        nbf: now - 10,
        iat: now,
        jti: randomUUID(),
        access,
      },
      options.keyPem,
    );
    const field = options.tokenField ?? 'token';
    const body: Record<string, unknown> = { expires_in: expiresIn, issued_at: new Date(now * 1000).toISOString() };
    if (field === 'token' || field === 'both') body.token = token;
    if (field === 'access_token' || field === 'both') body.access_token = token;
    reply(200, body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    realm: `http://127.0.0.1:${port}/token`,
    requests,
    stop: () => closeServer(server),
  };
}

function base64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

function signJwt(header: object, claims: object, keyPem: string): string {
  const input = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
  const signature = createSign('RSA-SHA256').update(input).sign(keyPem);
  return `${input}.${base64url(signature)}`;
}

async function closeServer(server: http.Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

// ------------------------------------------------------------------ fault-injecting proxy

export type Fault =
  /** Answer with this status instead of forwarding (the request body is drained first). */
  | { kind: 'status'; status: number; headers?: Record<string, string>; body?: string }
  /** Read this many bytes of the request body, then cut the connection. */
  | { kind: 'drop-request'; afterBytes: number }
  /** Forward, then cut the connection after this many bytes of the response body. */
  | { kind: 'drop-response'; afterBytes: number }
  /** Forward, flipping every bit of the response-body byte at `offset`. */
  | { kind: 'corrupt-response'; offset: number }
  /** Answer with a redirect to `location(path)` (default 307). */
  | { kind: 'redirect'; location: (path: string) => string; status?: number };

export interface FaultRule {
  method?: string;
  path?: RegExp;
  /** How many matching requests get the fault (default 1). */
  times?: number;
  fault: Fault;
}

export interface ProxyLogEntry {
  method: string;
  path: string;
  /** The fault applied, if any. */
  fault?: Fault['kind'];
  /** The status sent to the client (undefined when the connection was cut first). */
  status?: number;
  headers: http.IncomingHttpHeaders;
}

export interface FaultProxy {
  host: string;
  url: string;
  log: ProxyLogEntry[];
  inject(rule: FaultRule): void;
  clear(): void;
  /** Faults not yet used up. */
  pending(): number;
  stop(): Promise<void>;
}

/** An HTTP proxy on 127.0.0.1 in front of `upstreamHost` that keeps `Host` so Locations point back at it. */
export async function startFaultProxy(upstreamHost: string): Promise<FaultProxy> {
  const [upHost, upPort] = splitHostPort(upstreamHost);
  const rules: Array<FaultRule & { left: number }> = [];
  const log: ProxyLogEntry[] = [];
  const agent = new http.Agent({ keepAlive: false });

  const server = http.createServer((req, res) => {
    const entry: ProxyLogEntry = { method: req.method ?? 'GET', path: req.url ?? '/', headers: req.headers };
    log.push(entry);
    res.on('finish', () => (entry.status = res.statusCode));
    const rule = rules.find((r) => r.left > 0 && (!r.method || r.method === req.method) && (!r.path || r.path.test(req.url ?? '')));
    if (rule) rule.left--;
    const fault = rule?.fault;
    if (fault) entry.fault = fault.kind;

    if (fault?.kind === 'status' || fault?.kind === 'redirect') {
      req.resume();
      req.on('end', () => {
        if (fault.kind === 'status') {
          res.writeHead(fault.status, { 'content-type': 'application/json', ...(fault.headers ?? {}) });
          res.end(fault.body ?? JSON.stringify({ errors: [{ code: 'UNAVAILABLE', message: 'injected fault' }] }));
        } else {
          res.writeHead(fault.status ?? 307, { location: fault.location(req.url ?? '/') });
          res.end();
        }
      });
      return;
    }
    if (fault?.kind === 'drop-request') {
      let seen = 0;
      const cut = (): void => {
        req.socket.destroy();
      };
      req.on('data', (chunk: Buffer) => {
        seen += chunk.length;
        if (seen >= fault.afterBytes) cut();
      });
      req.on('end', cut);
      return;
    }

    const upstream = http.request(
      { host: upHost, port: upPort, method: req.method, path: req.url, headers: req.headers, agent },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        let offset = 0;
        upRes.on('data', (chunk: Buffer) => {
          let out = chunk;
          if (fault?.kind === 'corrupt-response' && fault.offset >= offset && fault.offset < offset + chunk.length) {
            out = Buffer.from(chunk);
            out[fault.offset - offset] ^= 0xff;
          }
          if (fault?.kind === 'drop-response' && offset + chunk.length >= fault.afterBytes) {
            const keep = out.subarray(0, Math.max(0, fault.afterBytes - offset));
            offset += chunk.length;
            upRes.destroy();
            res.write(keep, () => res.socket?.destroy());
            return;
          }
          offset += chunk.length;
          res.write(out);
        });
        upRes.on('end', () => res.end());
      },
    );
    upstream.on('error', () => res.socket?.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    host: `127.0.0.1:${port}`,
    url: `http://127.0.0.1:${port}`,
    log,
    inject: (rule) => rules.push({ ...rule, left: rule.times ?? 1 }),
    clear: () => {
      rules.length = 0;
      log.length = 0;
    },
    pending: () => rules.reduce((n, r) => n + r.left, 0),
    stop: async () => {
      await closeServer(server);
      agent.destroy();
    },
  };
}

function splitHostPort(hostPort: string): [string, number] {
  const colon = hostPort.lastIndexOf(':');
  return [hostPort.slice(0, colon), Number(hostPort.slice(colon + 1))];
}
