/**
 * Authentication against real registries: htpasswd Basic auth, and token auth through a token
 * server issuing RS256 JWTs. Also login/logout, auth files (read by skopeo too), and redirects
 * that must not carry credentials to another host.
 */
import { execFile } from 'node:child_process';
import { promises as fsp, statSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { AuthError } from '../../lib/errors';
import { MEDIA_TYPES } from '../../lib/media-types';
import { RegistryClient } from '../../lib/registry/client';
import { login, logout } from '../../lib/registry/login';
import {
  describeWithRegistry,
  startFaultProxy,
  startTestRegistry,
  TOKEN_SERVICE,
  uniqueRepo,
  type TestRegistry,
} from '../support/registry';
import { findTool, requireTool } from '../support/tools';
import { bufferSource, buildTinyImage, randomData, readAll, sha256 } from './helpers';

const execFileAsync = promisify(execFile);

let tmp: string;
beforeAll(async () => {
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'cloudrootfs-auth-spec-'));
});
afterAll(async () => {
  if (tmp) await fsp.rm(tmp, { recursive: true, force: true });
});

async function pushTinyImage(c: RegistryClient, repo: string, tag: string) {
  const img = await buildTinyImage();
  await c.putBlob(repo, { ...bufferSource(img.layer), digest: img.layerDigest });
  await c.putBlob(repo, { ...bufferSource(img.config), digest: img.configDigest });
  await c.putManifest(repo, tag, img.manifest, MEDIA_TYPES.manifest);
  return img;
}

describeWithRegistry('basic', 'Basic auth (htpasswd)', () => {
  let registry: TestRegistry;
  const users = { alice: 'wonderland', bob: 'b:o:b with spaces' };
  beforeAll(async () => {
    registry = await startTestRegistry({ auth: 'basic', users });
  });
  afterAll(async () => {
    await registry?.stop();
  });

  it('pushes and pulls with good credentials, learning the scheme from the first 401', async () => {
    const c = new RegistryClient({ registry: registry.host, credentials: { username: 'bob', password: users.bob }, authFile: false });
    await expect(c.ping()).resolves.toEqual({ auth: 'basic' });
    const repo = uniqueRepo('basic');
    const img = await pushTinyImage(c, repo, 'v1');
    await expect(c.getManifest(repo, 'v1')).resolves.toMatchObject({ digest: img.manifestDigest });
  });

  it('rejects a wrong password and missing credentials with AUTH_FAILED', async () => {
    const wrong = new RegistryClient({ registry: registry.host, credentials: { username: 'alice', password: 'nope' }, authFile: false });
    const err = await wrong.ping().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthError);
    expect((err as AuthError).code).toBe('AUTH_FAILED');
    expect((err as AuthError).status).toBe(401);
    const anonymous = new RegistryClient({ registry: registry.host, authFile: false });
    await expect(anonymous.blobExists(uniqueRepo('x'), sha256('x'))).rejects.toBeInstanceOf(AuthError);
  });

  it('login verifies, writes a 0600 auth file that our client and skopeo read; logout removes it', async () => {
    const authFile = path.join(tmp, 'basic', 'auth.json');
    await expect(login({ registry: registry.host, username: 'alice', password: 'bad', authFile })).rejects.toBeInstanceOf(AuthError);
    await expect(fsp.access(authFile)).rejects.toMatchObject({ code: 'ENOENT' });

    const result = await login({ registry: registry.host, username: 'alice', password: users.alice, authFile });
    expect(result).toEqual({ authFile, auth: 'basic' });
    expect(statSync(authFile).mode & 0o777).toBe(0o600);
    const json = JSON.parse(await fsp.readFile(authFile, 'utf8'));
    expect(Buffer.from(json.auths[registry.host].auth, 'base64').toString()).toBe(`alice:${users.alice}`);

    const c = new RegistryClient({ registry: registry.host, authFile });
    const repo = uniqueRepo('authfile');
    const img = await pushTinyImage(c, repo, 'v1');

    if (requireTool('skopeo')) {
      const { stdout } = await execFileAsync(findTool('skopeo')!, [
        'inspect', '--authfile', authFile, '--tls-verify=false', `docker://${registry.host}/${repo}:v1`,
      ]);
      expect(JSON.parse(stdout).Digest).toBe(img.manifestDigest);
    }

    // The same file found through REGISTRY_AUTH_FILE instead of an explicit path.
    const viaEnv = new RegistryClient({ registry: registry.host, env: { REGISTRY_AUTH_FILE: authFile, HOME: tmp } });
    await expect(viaEnv.getManifest(repo, 'v1')).resolves.toMatchObject({ digest: img.manifestDigest });

    await expect(logout({ registry: registry.host, authFile })).resolves.toEqual({ authFile, removed: true });
    await expect(logout({ registry: registry.host, authFile })).resolves.toEqual({ authFile, removed: false });
    const after = new RegistryClient({ registry: registry.host, authFile });
    await expect(after.getManifest(repo, 'v1')).rejects.toBeInstanceOf(AuthError);
  });

  it('reads credentials that skopeo login wrote', async () => {
    if (!requireTool('skopeo')) return;
    const authFile = path.join(tmp, 'skopeo-login.json');
    await execFileAsync(findTool('skopeo')!, [
      'login', '--tls-verify=false', '--authfile', authFile, '-u', 'alice', '-p', users.alice, registry.host,
    ]);
    const c = new RegistryClient({ registry: registry.host, authFile });
    await expect(c.ping()).resolves.toEqual({ auth: 'basic' });
  });

  it('follows a blob redirect to another host without sending the Authorization header there', async () => {
    // "Blob storage" on another loopback address: a different origin.
    const seen: http.IncomingHttpHeaders[] = [];
    const blobs = new Map<string, Buffer>();
    const storage = http.createServer((req, res) => {
      seen.push(req.headers);
      const body = blobs.get(req.url ?? '');
      res.writeHead(body ? 200 : 404, { 'content-length': String(body?.length ?? 0) });
      res.end(body);
    });
    await new Promise<void>((resolve) => storage.listen(0, '127.0.0.2', resolve));
    const storageUrl = `http://127.0.0.2:${(storage.address() as AddressInfo).port}`;
    const proxy = await startFaultProxy(registry.host);
    try {
      const c = new RegistryClient({ registry: proxy.host, credentials: { username: 'alice', password: users.alice }, authFile: false });
      const repo = uniqueRepo('redirect');
      const data = randomData(50_000);
      await c.putBlob(repo, bufferSource(data, { digest: true }));
      blobs.set(`/data/${sha256(data)}`, data);
      proxy.inject({
        method: 'GET',
        path: /\/blobs\/sha256:/,
        fault: { kind: 'redirect', location: (p) => `${storageUrl}/data/${p.slice(p.lastIndexOf('/') + 1)}` },
      });
      const got = await readAll(await c.getBlob(repo, sha256(data)));
      expect(sha256(got)).toBe(sha256(data));
      const redirected = proxy.log.find((e) => e.fault === 'redirect')!;
      expect(redirected.headers.authorization).toMatch(/^Basic /);
      expect(seen).toHaveLength(1);
      expect(seen[0].authorization).toBeUndefined();
    } finally {
      await proxy.stop();
      storage.closeAllConnections();
      await new Promise((resolve) => storage.close(resolve));
    }
  });
});

describeWithRegistry('token', 'Bearer token auth', () => {
  let registry: TestRegistry;
  const users = { alice: 'wonderland', reader: 'read-only' };
  beforeAll(async () => {
    registry = await startTestRegistry({
      auth: 'token',
      users,
      token: {
        // `reader` may only pull; everyone else gets what they ask for; anonymous callers pull.
        grant: (user, requested) =>
          user && user !== 'reader' ? requested.actions : requested.actions.filter((a) => a === 'pull'),
      },
    });
  });
  afterAll(async () => {
    await registry?.stop();
  });
  const tokenLog = () => registry.tokenServer!.requests;

  it('fetches a token per scope, with service, account and Basic credentials, and caches it', async () => {
    const start = tokenLog().length;
    const c = new RegistryClient({ registry: registry.host, credentials: { username: 'alice', password: users.alice }, authFile: false });
    await expect(c.ping()).resolves.toEqual({ auth: 'bearer' });
    const before = tokenLog().length;
    const repo = uniqueRepo('token');
    const img = await pushTinyImage(c, repo, 'v1');
    const pushRequests = tokenLog().slice(before);
    // HEAD (pull) and uploads/manifest (pull,push): two scope sets, each asked for once.
    expect(pushRequests.map((r) => r.scopes)).toEqual([[`repository:${repo}:pull`], [`repository:${repo}:pull,push`]]);
    expect(pushRequests.every((r) => r.service === TOKEN_SERVICE && r.account === 'alice' && r.user === 'alice')).toBe(true);
    expect(c.tokenRequests).toBe(tokenLog().length - start);

    const n = tokenLog().length;
    await c.getManifest(repo, 'v1');
    await c.getManifest(repo, img.manifestDigest);
    await c.blobExists(repo, img.layerDigest);
    expect(tokenLog().length).toBe(n); // all served from the cache
  });

  it('shares one token request among concurrent requests that all start anonymous', async () => {
    const writer = new RegistryClient({ registry: registry.host, credentials: { username: 'alice', password: users.alice }, authFile: false });
    const repo = uniqueRepo('concurrent');
    const img = await pushTinyImage(writer, repo, 'v1');
    const c = new RegistryClient({ registry: registry.host, credentials: { username: 'alice', password: users.alice }, authFile: false });
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => (i % 2 ? c.blobExists(repo, img.layerDigest) : c.blobExists(repo, img.configDigest))),
    );
    expect(results.every((r) => r !== undefined)).toBe(true);
    expect(c.tokenRequests).toBe(1);
  });

  it('asks for repository:<from>:pull too when mounting', async () => {
    const c = new RegistryClient({ registry: registry.host, credentials: { username: 'alice', password: users.alice }, authFile: false });
    const from = uniqueRepo('from');
    const to = uniqueRepo('to');
    const data = randomData(3000);
    await c.putBlob(from, bufferSource(data, { digest: true }));
    const n = tokenLog().length;
    await expect(c.mountBlob(to, sha256(data), from)).resolves.toBe(true);
    expect(tokenLog().slice(n).map((r) => r.scopes)).toEqual([[`repository:${from}:pull`, `repository:${to}:pull,push`]]);
  });

  it('refreshes a token once the client clock says it expired', async () => {
    let clock = Date.now();
    const c = new RegistryClient({
      registry: registry.host,
      credentials: { username: 'alice', password: users.alice },
      authFile: false,
      now: () => clock,
    });
    const repo = uniqueRepo('expiry');
    await pushTinyImage(c, repo, 'v1');
    const n = c.tokenRequests;
    await c.getManifest(repo, 'v1');
    expect(c.tokenRequests).toBe(n);
    clock += 301_000; // the token server issues 300 s tokens
    await c.getManifest(repo, 'v1');
    expect(c.tokenRequests).toBe(n + 1);
  });

  it('accepts access_token instead of token', async () => {
    const other = await startTestRegistry({ auth: 'token', users, token: { tokenField: 'access_token' } });
    try {
      const c = new RegistryClient({ registry: other.host, credentials: { username: 'alice', password: users.alice }, authFile: false });
      const repo = uniqueRepo('access-token');
      const img = await pushTinyImage(c, repo, 'v1');
      await expect(c.getManifest(repo, 'v1')).resolves.toMatchObject({ digest: img.manifestDigest });
    } finally {
      await other.stop();
    }
  });

  it('lets anonymous and read-only callers pull but not push', async () => {
    const writer = new RegistryClient({ registry: registry.host, credentials: { username: 'alice', password: users.alice }, authFile: false });
    const repo = uniqueRepo('public');
    const img = await pushTinyImage(writer, repo, 'v1');

    const anonymous = new RegistryClient({ registry: registry.host, authFile: false });
    await expect(anonymous.getManifest(repo, 'v1')).resolves.toMatchObject({ digest: img.manifestDigest });
    expect(tokenLog().at(-1)!.user).toBeUndefined();
    const denied = await anonymous.putBlob(repo, bufferSource(randomData(100))).catch((e: unknown) => e);
    expect(denied).toBeInstanceOf(AuthError);

    const reader = new RegistryClient({ registry: registry.host, credentials: { username: 'reader', password: users.reader }, authFile: false });
    await expect(reader.getManifest(repo, 'v1')).resolves.toMatchObject({ digest: img.manifestDigest });
    const err = await reader.putManifest(repo, 'v2', img.manifest, MEDIA_TYPES.manifest).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthError);
    expect((err as AuthError).status).toBe(401);
  });

  it('turns a token server refusal into AuthError, and login stores nothing', async () => {
    const c = new RegistryClient({ registry: registry.host, credentials: { username: 'alice', password: 'wrong' }, authFile: false });
    const err = await c.ping().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthError);
    expect((err as AuthError).status).toBe(401);

    const authFile = path.join(tmp, 'token-login.json');
    await expect(login({ registry: registry.host, username: 'alice', password: 'wrong', authFile })).rejects.toBeInstanceOf(AuthError);
    await expect(fsp.access(authFile)).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(login({ registry: registry.host, username: 'alice', password: users.alice, authFile })).resolves.toEqual({
      authFile,
      auth: 'bearer',
    });
  });

  it('skopeo pulls what we pushed through the token flow', async () => {
    if (!requireTool('skopeo')) return;
    const c = new RegistryClient({ registry: registry.host, credentials: { username: 'alice', password: users.alice }, authFile: false });
    const repo = uniqueRepo('skopeo-token');
    const img = await pushTinyImage(c, repo, 'v1');
    const dest = path.join(tmp, 'oci-copy');
    await execFileAsync(findTool('skopeo')!, [
      'copy', '--src-tls-verify=false', '--src-creds', `alice:${users.alice}`,
      `docker://${registry.host}/${repo}:v1`, `oci:${dest}:v1`,
    ]);
    const index = JSON.parse(await fsp.readFile(path.join(dest, 'index.json'), 'utf8'));
    expect(index.manifests[0].digest).toBe(img.manifestDigest);
  });
});
