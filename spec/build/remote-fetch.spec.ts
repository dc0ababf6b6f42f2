/**
 * The fetcher of remote build sources against a loopback HTTP server with faults: the file lands
 * on disk named as sealer names it, a rebuild revalidates instead of downloading again, and each
 * fault gives its typed error (404, stall, wrong checksum, redirect loop, oversize), with retries
 * where they help (5xx) and proxies taken from the environment.
 */
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { RemoteFetcher, remoteFileName } from '../../lib/build/remote-fetch';
import { CloudRootfsError } from '../../lib/errors';
import { startFileServer, startForwardProxy, type FileServer } from '../support/file-server';

const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const sha512 = (b: Buffer | string) => `sha512:${createHash('sha512').update(b).digest('hex')}`;

const APP = Buffer.from('apiVersion: v1\nkind: Namespace\nmetadata:\n  name: demo\n');
const MODIFIED = 1_600_000_000;

async function failure(p: Promise<unknown>): Promise<CloudRootfsError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof CloudRootfsError) return err;
    throw err;
  }
  throw new Error('expected a failure');
}

describe('remoteFileName: path.Base of the URL path, as sealer and buildah name downloads', () => {
  // name := path.Base(url.Path): https://github.com/sealerio/sealer/blob/v0.11.0/build/kubefile/parser/file_fetcher.go#L44-L48
  it.each([
    ['https://example.com/charts/app.yaml', 'app.yaml'],
    ['https://example.com/a/b.tgz?token=x#frag', 'b.tgz'],
    ['https://example.com/a/dir/', 'dir'],
    ['https://example.com/my%20file.yaml', 'my file.yaml'],
  ])('%s → %s', (url, name) => expect(remoteFileName(url)).toBe(name));

  it.each(['https://example.com/', 'https://example.com', 'https://example.com/%2e%2e'])('%s names no file', (url) => {
    expect(() => remoteFileName(url)).toThrow(expect.objectContaining({ code: 'FETCH_FAILED' }));
  });
});

describe('RemoteFetcher against a loopback server', () => {
  let server: FileServer;
  let dir: string;
  const fetcher = (extra: ConstructorParameters<typeof RemoteFetcher>[0] = {}) =>
    new RemoteFetcher({ cacheDir: path.join(dir, 'cache'), env: {}, retryBaseDelayMs: 10, stallTimeoutMs: 300, ...extra });

  beforeAll(async () => {
    server = await startFileServer({ 'app.yaml': { body: APP, lastModified: MODIFIED }, 'plain.yaml': { body: APP, noValidators: true } });
  });
  afterAll(async () => server.stop());
  beforeEach(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'cloudrootfs-fetch-'));
    server.log.length = 0;
  });
  afterEach(async () => fsp.rm(dir, { recursive: true, force: true }));

  test('streams the file to disk, named after the URL; a rebuild revalidates (304) instead of downloading', async () => {
    const url = `${server.url}/files/app.yaml`;
    const first = await fetcher().fetch(url);
    expect(first).toMatchObject({ name: 'app.yaml', size: APP.length, digest: sha256(APP), lastModified: MODIFIED, fromCache: false });
    expect(await fsp.readFile(first.path)).toEqual(APP);
    expect(first.path.startsWith(path.join(dir, 'cache'))).toBe(true);
    // Another build, another fetcher: a conditional request, answered 304, no body.
    const second = await fetcher().fetch(url);
    expect(second).toMatchObject({ digest: first.digest, path: first.path, fromCache: true });
    expect(server.hits('/files/app.yaml').map((h) => [h.status, h.bytes])).toEqual([
      [200, APP.length],
      [304, 0],
    ]);
    expect(server.hits('/files/app.yaml')[1].headers['if-none-match']).toMatch(/^"/);
    // One fetcher asks once per URL.
    const f = fetcher();
    await Promise.all([f.fetch(url), f.fetch(url)]);
    expect(server.hits('/files/app.yaml')).toHaveLength(3);
  });

  test('a changed file is downloaded again; without validators every build downloads', async () => {
    const url = `${server.url}/files/changing.yaml`;
    server.files.set('changing.yaml', { body: Buffer.from('v1\n') });
    const a = await fetcher().fetch(url);
    server.files.set('changing.yaml', { body: Buffer.from('v2\n') });
    const b = await fetcher().fetch(url);
    expect(b.digest).toBe(sha256('v2\n'));
    expect(b.fromCache).toBe(false);
    expect(b.digest).not.toBe(a.digest);
    // The old bytes were the URL's only: they are gone from the cache.
    await expect(fsp.access(a.path)).rejects.toThrow();
    await fetcher().fetch(`${server.url}/files/plain.yaml`);
    await fetcher().fetch(`${server.url}/files/plain.yaml`);
    expect(server.hits('/files/plain.yaml').map((h) => h.status)).toEqual([200, 200]);
    // A server with Last-Modified only: If-Modified-Since revalidates.
    server.files.set('dated.yaml', { body: APP, lastModified: MODIFIED, lastModifiedOnly: true });
    await fetcher().fetch(`${server.url}/files/dated.yaml`);
    expect((await fetcher().fetch(`${server.url}/files/dated.yaml`)).fromCache).toBe(true);
    expect(server.hits('/files/dated.yaml').map((h) => [h.status, h.headers['if-modified-since'] ?? null])).toEqual([
      [200, null],
      [304, new Date(MODIFIED * 1000).toUTCString()],
    ]);
  });

  test('a checksum pin: checked before the file gets its name; once cached, no request at all', async () => {
    const url = `${server.url}/files/app.yaml`;
    const wrong = `sha256:${'0'.repeat(64)}`;
    const err = await failure(fetcher().fetch(url, { checksum: wrong }));
    expect(err.code).toBe('DIGEST_MISMATCH');
    expect(err.details).toMatchObject({ expected: wrong, actual: sha256(APP) });
    expect(await fsp.readdir(path.join(dir, 'cache', 'blobs'))).toEqual([]);
    const ok = await fetcher().fetch(url, { checksum: sha256(APP) });
    expect(ok.digest).toBe(sha256(APP));
    const before = server.log.length;
    expect((await fetcher().fetch(url, { checksum: sha256(APP) })).fromCache).toBe(true);
    expect(server.log.length).toBe(before);
    // sha512 pins work too; the cached entry learns that digest.
    expect((await fetcher().fetch(url, { checksum: sha512(APP) })).digest).toBe(sha256(APP));
    expect((await failure(fetcher().fetch(url, { checksum: `sha512:${'1'.repeat(128)}` }))).code).toBe('DIGEST_MISMATCH');
  });

  test('404 fails at once with the status; 5xx is retried, then reported', async () => {
    const missing = await failure(fetcher().fetch(`${server.url}/missing/app.yaml`));
    expect(missing.code).toBe('FETCH_FAILED');
    expect(missing.details).toMatchObject({ status: 404 });
    expect(server.hits('/missing/app.yaml')).toHaveLength(1);
    const flaky = await fetcher({ retries: 3 }).fetch(`${server.url}/flaky/2/app.yaml`);
    expect(flaky.digest).toBe(sha256(APP));
    expect(server.hits('/flaky/2/app.yaml').map((h) => h.status)).toEqual([503, 503, 200]);
    const down = await failure(fetcher({ retries: 2 }).fetch(`${server.url}/fail500/app.yaml`));
    expect(down.code).toBe('FETCH_FAILED');
    expect(down.details).toMatchObject({ status: 500 });
    expect(server.hits('/fail500/app.yaml')).toHaveLength(3);
  });

  test('a stall (no headers, or a body that stops) is a timeout after the retries', async () => {
    const headers = await failure(fetcher({ retries: 1 }).fetch(`${server.url}/stall-headers`));
    expect(headers.code).toBe('FETCH_TIMEOUT');
    expect(headers.details).toMatchObject({ phase: 'headers', timeoutMs: 300 });
    expect(server.hits('/stall-headers')).toHaveLength(2);
    const body = await failure(fetcher({ retries: 0 }).fetch(`${server.url}/stall-body`));
    expect(body.code).toBe('FETCH_TIMEOUT');
    expect(body.details).toMatchObject({ phase: 'body' });
    // Nothing half-written is left in the cache.
    expect(await fsp.readdir(path.join(dir, 'cache', 'blobs'))).toEqual([]);
  });

  test('redirects are followed (the file keeps the original URL\'s name); a loop is an error', async () => {
    const moved = await fetcher().fetch(`${server.url}/redirect/app.yaml`);
    expect(moved).toMatchObject({ name: 'app.yaml', digest: sha256(APP) });
    expect(server.log.map((l) => l.path)).toEqual(['/redirect/app.yaml', '/files/app.yaml']);
    const loop = await failure(fetcher({ maxRedirects: 5 }).fetch(`${server.url}/loop`));
    expect(loop.code).toBe('FETCH_FAILED');
    expect(loop.details).toMatchObject({ reason: 'redirect-limit' });
    expect(server.hits('/loop')).toHaveLength(6);
  });

  test('oversize: refused from Content-Length, or cut off while streaming; nothing is kept', async () => {
    const declared = await failure(fetcher({ maxBytes: 1000 }).fetch(`${server.url}/big/5000`));
    expect(declared.code).toBe('LIMIT_EXCEEDED');
    // 256 MiB offered, 1 MiB allowed: the download stops long before the end.
    const streamed = await failure(fetcher({ maxBytes: 1 << 20 }).fetch(`${server.url}/chunked/${256 << 20}`));
    expect(streamed.code).toBe('LIMIT_EXCEEDED');
    expect(streamed.details).toMatchObject({ limit: 'maxBytes', max: 1 << 20 });
    await new Promise((r) => setTimeout(r, 100));
    expect(server.hits(`/chunked/${256 << 20}`)[0].bytes).toBeLessThan(64 << 20);
    expect(await fsp.readdir(path.join(dir, 'cache', 'blobs'))).toEqual([]);
    const fits = await fetcher({ maxBytes: 1_000_000 }).fetch(`${server.url}/chunked/1000000`);
    expect(fits.size).toBe(1_000_000);
  });

  test('offline: the cache answers, nothing else', async () => {
    const url = `${server.url}/files/app.yaml`;
    const missing = await failure(fetcher({ offline: true }).fetch(url));
    expect(missing.code).toBe('FETCH_FAILED');
    expect(server.log).toHaveLength(0);
    await fetcher().fetch(url);
    expect((await fetcher({ offline: true }).fetch(url)).fromCache).toBe(true);
    expect(server.log).toHaveLength(1);
  });

  test('without a cache directory, the download lives in a temporary directory until dispose()', async () => {
    const f = new RemoteFetcher({ env: {} });
    const got = await f.fetch(`${server.url}/files/app.yaml`);
    expect(await fsp.readFile(got.path)).toEqual(APP);
    await f.dispose();
    await expect(fsp.access(got.path)).rejects.toThrow();
  });

  test('proxies come from the environment (HTTP_PROXY), NO_PROXY bypasses them', async () => {
    const proxy = await startForwardProxy({ host: server.host, port: server.port });
    try {
      // The host does not resolve: only the proxy can reach it.
      const viaProxy = new RemoteFetcher({ env: { HTTP_PROXY: proxy.url }, retries: 0 });
      const got = await viaProxy.fetch(`http://files.invalid:${server.port}/files/app.yaml`);
      expect(got.digest).toBe(sha256(APP));
      expect(proxy.connects).toEqual([`files.invalid:${server.port}`]);
      await viaProxy.dispose();
      const bypass = new RemoteFetcher({ env: { http_proxy: proxy.url, NO_PROXY: '127.0.0.1' }, retries: 0 });
      await bypass.fetch(`${server.url}/files/app.yaml`);
      expect(proxy.connects).toHaveLength(1);
      await bypass.dispose();
    } finally {
      await proxy.stop();
    }
  });
});
