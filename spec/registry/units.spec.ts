/** The registry module's pure parts: challenges, scopes, retry timing, links, auth files, transport rules. */
import { Volume, createFsFromVolume } from 'memfs';
import { AuthError, DigestMismatchError, UsageError } from '../../lib/errors';
import type { FileSystem } from '../../lib/fs';
import { scopeStrings } from '../../lib/registry/auth';
import {
  authFileCandidates,
  authFileForWrite,
  authKeyHost,
  decodeAuthEntry,
  findCredentials,
  removeCredentials,
  storeCredentials,
} from '../../lib/registry/auth-file';
import { parseChallenges } from '../../lib/registry/challenge';
import { bufferContent } from '../../lib/content';
import { registryBlobContent } from '../../lib/registry/blob-content';
import { RegistryClient, isLoopbackHost, nextLink, type BlobSource, type PutBlobOptions, type PutBlobResult } from '../../lib/registry/client';
import { RegistryTarget } from '../../lib/registry/target';
import { backoffDelay, isNetworkFailure, isRetryableStatus, parseRetryAfter, retryDelay } from '../../lib/registry/retry';

function memfs(): FileSystem {
  return createFsFromVolume(new Volume()) as unknown as FileSystem;
}

describe('parseChallenges', () => {
  it.each([
    [
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull,push"',
      [{ scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/nginx:pull,push' } }],
    ],
    ['Basic realm="Registry Realm"', [{ scheme: 'basic', params: { realm: 'Registry Realm' } }]],
    [
      'Basic realm="r", Bearer realm="https://t/x",service="s"',
      [
        { scheme: 'basic', params: { realm: 'r' } },
        { scheme: 'bearer', params: { realm: 'https://t/x', service: 's' } },
      ],
    ],
    // unquoted URL, odd spacing, upper-case names, escaped quote, missing comma
    [
      'BEARER  Realm = https://t.example/token , Service="a\\"b"  scope="x"',
      [{ scheme: 'bearer', params: { realm: 'https://t.example/token', service: 'a"b', scope: 'x' } }],
    ],
    ['Bearer realm="https://t/x",error="insufficient_scope"', [{ scheme: 'bearer', params: { realm: 'https://t/x', error: 'insufficient_scope' } }]],
    ['Negotiate', [{ scheme: 'negotiate', params: {} }]],
    ['', []],
    [',,,  ', []],
  ])('%s', (header, expected) => {
    expect(parseChallenges(header)).toEqual(expected);
  });

  it('never throws on junk', () => {
    for (const junk of ['"', '=', 'a=', '===', 'Bearer realm="unterminated', '\u0000\u00ff', 'Bearer ,=,']) {
      expect(() => parseChallenges(junk)).not.toThrow();
    }
  });
});

describe('scopes', () => {
  it('merges actions per repository and sorts, so equal requests share a cache key', () => {
    expect(
      scopeStrings([
        { repository: 'b/x', actions: ['push'] },
        { repository: 'a/y', actions: ['pull'] },
        { repository: 'b/x', actions: ['pull', 'push'] },
      ]),
    ).toEqual(['repository:a/y:pull', 'repository:b/x:pull,push']);
  });
});

describe('retry timing', () => {
  it('retries 408, 429 and 5xx except 501/505', () => {
    expect([408, 429, 500, 502, 503, 504, 599].every(isRetryableStatus)).toBe(true);
    expect([400, 401, 403, 404, 409, 413, 416, 501, 505].some(isRetryableStatus)).toBe(false);
  });

  it('reads Retry-After as seconds or an HTTP date', () => {
    const now = Date.parse('2024-01-01T00:00:00Z');
    expect(parseRetryAfter('3', now)).toBe(3000);
    expect(parseRetryAfter('Mon, 01 Jan 2024 00:00:10 GMT', now)).toBe(10_000);
    expect(parseRetryAfter('Sun, 31 Dec 2023 00:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(null, now)).toBeUndefined();
  });

  it('backs off exponentially with jitter, within bounds, capped', () => {
    const policy = { retries: 5, baseDelayMs: 100, maxDelayMs: 1000 };
    expect(backoffDelay(0, policy, () => 0)).toBe(50);
    expect(backoffDelay(0, policy, () => 1)).toBe(100);
    expect(backoffDelay(3, policy, () => 0)).toBe(400);
    expect(backoffDelay(3, policy, () => 1)).toBe(800);
    expect(backoffDelay(10, policy, () => 1)).toBe(1000);
    expect(retryDelay(0, policy, 5000)).toBe(1000); // Retry-After is capped too
    expect(retryDelay(0, policy, 200)).toBe(200);
  });
});

describe('isNetworkFailure', () => {
  const fetchFailed = (cause: unknown) => Object.assign(new TypeError('fetch failed'), { cause });
  it('knows transport failures from our own errors and programming errors', () => {
    expect(isNetworkFailure(fetchFailed(Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' })))).toBe(true);
    expect(isNetworkFailure(fetchFailed(Object.assign(new Error('connect'), { code: 'ECONNREFUSED' })))).toBe(true);
    expect(isNetworkFailure(new TypeError('terminated'))).toBe(true);
    expect(isNetworkFailure(Object.assign(new Error('reset'), { code: 'ECONNRESET' }))).toBe(true);
    expect(isNetworkFailure(fetchFailed(Object.assign(new Error('len'), { code: 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH' })))).toBe(false);
    expect(isNetworkFailure(Object.assign(new TypeError('bad arg'), { code: 'ERR_INVALID_ARG_TYPE' }))).toBe(false);
    expect(isNetworkFailure(new TypeError('Headers.append: invalid header value'))).toBe(false);
    expect(isNetworkFailure(new DigestMismatchError('a', 'b'))).toBe(false);
    expect(isNetworkFailure(Object.assign(new Error('aborted'), { name: 'AbortError' }))).toBe(false);
  });
});

describe('nextLink', () => {
  const current = 'http://r:5000/v2/a/tags/list?n=2';
  it.each([
    ['</v2/a/tags/list?n=2&last=b>; rel="next"', 'http://r:5000/v2/a/tags/list?n=2&last=b'],
    ['<http://other/v2/a/tags/list?last=b>; rel=next', 'http://other/v2/a/tags/list?last=b'],
    ['</prev>; rel="prev", </v2/x?last=z>; rel="next"', 'http://r:5000/v2/x?last=z'],
    ['</v2/x>; rel="nextish"', undefined],
    ['</v2/x>; title="next"', undefined],
    [null, undefined],
  ])('%s', (header, expected) => {
    expect(nextLink(header, current)).toBe(expected);
  });
});

describe('transport rules', () => {
  it('starts on https (loopback hosts may fall back to http later), plain http only when told', () => {
    expect(['localhost:5000', '127.0.0.1', '127.3.2.1:80', '[::1]:5000', 'LOCALHOST'].every(isLoopbackHost)).toBe(true);
    expect(['10.0.0.1:5000', 'quay.io', '128.0.0.1', 'localhost.example.com'].some(isLoopbackHost)).toBe(false);
    expect(new RegistryClient({ registry: '127.0.0.1:5000' }).baseUrl).toBe('https://127.0.0.1:5000');
    expect(new RegistryClient({ registry: '127.0.0.1:5000', insecure: false }).baseUrl).toBe('https://127.0.0.1:5000');
    expect(new RegistryClient({ registry: 'reg.lan:5000', insecure: true }).baseUrl).toBe('http://reg.lan:5000');
    expect(new RegistryClient({ registry: 'quay.io' }).baseUrl).toBe('https://quay.io');
    expect(new RegistryClient({ registry: 'docker.io' }).baseUrl).toBe('https://registry-1.docker.io');
  });

  it('follows Link pages when listing tags', async () => {
    const pages: Record<string, { tags: string[]; link?: string }> = {
      '/v2/a/b/tags/list?n=2': { tags: ['1', '2'], link: '</v2/a/b/tags/list?n=2&last=2>; rel="next"' },
      '/v2/a/b/tags/list?n=2&last=2': { tags: ['3', '4'], link: '<http://reg.test/v2/a/b/tags/list?n=2&last=4>; rel="next"' },
      '/v2/a/b/tags/list?n=2&last=4': { tags: ['5'] },
    };
    const asked: string[] = [];
    const stub = (async (input: string | URL | Request) => {
      const url = new URL(String(input));
      asked.push(url.pathname + url.search);
      const page = pages[url.pathname + url.search];
      if (!page) return new Response('{}', { status: 404 });
      return new Response(JSON.stringify({ name: 'a/b', tags: page.tags }), {
        status: 200,
        headers: page.link ? { link: page.link } : {},
      });
    }) as typeof fetch;
    const c = new RegistryClient({ registry: 'reg.test', insecure: true, authFile: false, fetch: stub });
    await expect(c.listTags('a/b', { pageSize: 2 })).resolves.toEqual(['1', '2', '3', '4', '5']);
    expect(asked).toEqual(Object.keys(pages));
  });

  it('reports an abort while a body is read as the abort, not as a network failure to retry', async () => {
    let requests = 0;
    const stub = (async () => {
      requests++;
      const aborted = new DOMException('This operation was aborted', 'AbortError');
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(new TextEncoder().encode('{"schemaVersion":'));
        },
        pull(controller) {
          controller.error(aborted);
        },
      });
      return new Response(body, { status: 200, headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' } });
    }) as typeof fetch;
    const c = new RegistryClient({ registry: 'reg.test', insecure: true, authFile: false, fetch: stub, retries: 2, retryBaseDelayMs: 1 });
    const failure = await c.getManifest('a/b', 'v1').catch((err: unknown) => err);
    expect(failure).toMatchObject({ name: 'AbortError' });
    expect(requests).toBe(1);
  });
});

describe('auth files', () => {
  const env = { HOME: '/home/u' };

  it('searches REGISTRY_AUTH_FILE, the containers auth.json files, then the docker config', () => {
    const run = `/run/containers/${process.getuid!()}/auth.json`;
    expect(authFileCandidates({ env })).toEqual([run, '/home/u/.config/containers/auth.json', '/home/u/.docker/config.json']);
    expect(authFileCandidates({ env: { ...env, DOCKER_CONFIG: '/etc/dc', XDG_CONFIG_HOME: '/xdg' } })).toEqual([run, '/xdg/containers/auth.json', '/etc/dc/config.json']);
    expect(authFileCandidates({ env: { ...env, REGISTRY_AUTH_FILE: '/a.json', XDG_RUNTIME_DIR: '/run/user/1' } })).toEqual([
      '/a.json',
      '/run/user/1/containers/auth.json',
      '/home/u/.config/containers/auth.json',
      '/home/u/.docker/config.json',
    ]);
    expect(authFileCandidates({ env, authFile: '/only.json' })).toEqual(['/only.json']);
    expect(authFileForWrite({ env: { ...env, REGISTRY_AUTH_FILE: '/a.json' } })).toBe('/a.json');
    expect(authFileForWrite({ env })).toBe('/home/u/.docker/config.json');
  });

  it('normalizes auth keys to hosts, ignoring namespace-scoped keys', () => {
    expect(authKeyHost('https://index.docker.io/v1/')).toBe('docker.io');
    expect(authKeyHost('registry-1.docker.io')).toBe('docker.io');
    expect(authKeyHost('http://Reg.Example:5000/v2/')).toBe('reg.example:5000');
    expect(authKeyHost('quay.io')).toBe('quay.io');
    expect(authKeyHost('quay.io/some-org')).toBeUndefined();
  });

  it('decodes auth and username/password entries, skipping helpers and tokens', () => {
    const auth = Buffer.from('user:pa:ss').toString('base64');
    expect(decodeAuthEntry({ auth })).toEqual({ username: 'user', password: 'pa:ss' });
    expect(decodeAuthEntry({ username: 'u', password: 'p' })).toEqual({ username: 'u', password: 'p' });
    expect(decodeAuthEntry({ identitytoken: 'x' })).toBeUndefined();
    expect(decodeAuthEntry({ auth: Buffer.from('nocolon').toString('base64') })).toBeUndefined();
    expect(decodeAuthEntry(null)).toBeUndefined();
  });

  it('finds credentials in the first file that has the host, in any key form', async () => {
    const fs = memfs();
    await fs.promises.mkdir('/home/u/.docker', { recursive: true });
    await fs.promises.mkdir('/run/containers', { recursive: true });
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    await fs.promises.writeFile(
      '/home/u/.docker/config.json',
      JSON.stringify({
        auths: {
          'https://index.docker.io/v1/': { auth: b64('hub:h') },
          'http://reg.lan:5000': { auth: b64('lan:l') },
          'quay.io/org': { auth: b64('scoped:s') },
        },
      }),
    );
    await fs.promises.writeFile('/run/containers/auth.json', JSON.stringify({ auths: { 'reg.lan:5000': { username: 'first', password: 'f' } } }));
    const opts = { fs, env: { ...env, XDG_RUNTIME_DIR: '/run' } };
    expect(await findCredentials('docker.io', opts)).toEqual({ username: 'hub', password: 'h', file: '/home/u/.docker/config.json' });
    expect(await findCredentials('reg.lan:5000', opts)).toMatchObject({ username: 'first', file: '/run/containers/auth.json' });
    expect(await findCredentials('reg.lan:5000', { fs, env })).toMatchObject({ username: 'lan' });
    expect(await findCredentials('quay.io', opts)).toBeUndefined();
    expect(await findCredentials('nowhere.io', { fs, env: { HOME: '/missing' } })).toBeUndefined();
  });

  it('stores and removes credentials, keeping everything else in the file', async () => {
    const fs = memfs();
    const file = '/cfg/config.json';
    await fs.promises.mkdir('/cfg', { recursive: true });
    await fs.promises.writeFile(file, JSON.stringify({ auths: { 'https://reg.lan/': { auth: 'b2xkOm9sZA==' }, 'other.io': { auth: 'eDp5' } }, psFormat: 'x' }));
    await expect(storeCredentials('reg.lan', { username: 'new', password: 'p' }, { fs, authFile: file })).resolves.toBe(file);
    let json = JSON.parse(await fs.promises.readFile(file, 'utf8'));
    expect(Object.keys(json.auths).sort()).toEqual(['other.io', 'reg.lan']);
    expect(json.psFormat).toBe('x');
    expect(await findCredentials('reg.lan', { fs, authFile: file })).toMatchObject({ username: 'new', password: 'p' });

    await storeCredentials('index.docker.io', { username: 'hub', password: 'h' }, { fs, authFile: file });
    json = JSON.parse(await fs.promises.readFile(file, 'utf8'));
    expect(json.auths['https://index.docker.io/v1/']).toBeDefined();

    await expect(removeCredentials('reg.lan', { fs, authFile: file })).resolves.toBe(true);
    await expect(removeCredentials('reg.lan', { fs, authFile: file })).resolves.toBe(false);
    json = JSON.parse(await fs.promises.readFile(file, 'utf8'));
    expect(Object.keys(json.auths).sort()).toEqual(['https://index.docker.io/v1/', 'other.io']);
    expect((await fs.promises.readdir('/cfg')).filter((n) => n !== 'config.json')).toEqual([]); // no temp files left
  });

  it('creates the file (and its directory) when missing, and refuses bad usernames', async () => {
    const fs = memfs();
    await storeCredentials('reg.lan', { username: 'u', password: 'p' }, { fs, env: { HOME: '/h' } });
    expect(JSON.parse(await fs.promises.readFile('/h/.docker/config.json', 'utf8')).auths['reg.lan']).toBeDefined();
    await expect(storeCredentials('reg.lan', { username: 'a:b', password: 'p' }, { fs, authFile: '/x.json' })).rejects.toBeInstanceOf(UsageError);
  });

  it('reports an unreadable auth file as AuthError', async () => {
    const fs = memfs();
    await fs.promises.writeFile('/bad.json', '{ not json');
    await expect(findCredentials('reg.lan', { fs, authFile: '/bad.json' })).rejects.toBeInstanceOf(AuthError);
    await fs.promises.writeFile('/arr.json', '{"auths": []}');
    await expect(findCredentials('reg.lan', { fs, authFile: '/arr.json' })).rejects.toBeInstanceOf(AuthError);
  });
});

describe('RegistryTarget mount sources', () => {
  /** A client that records what putBlob was asked to mount from, and says it mounted. */
  function recordingClient(registry: string): { client: RegistryClient; mounts: string[][] } {
    const mounts: string[][] = [];
    const client = {
      registry,
      async putBlob(_repo: string, source: BlobSource, options: PutBlobOptions = {}): Promise<PutBlobResult> {
        mounts.push([...((options.mountFrom as string[] | undefined) ?? [])]);
        return { digest: source.digest!, size: source.size!, outcome: 'mounted', attempts: 0 };
      },
    } as unknown as RegistryClient;
    return { client, mounts };
  }
  const blob = bufferContent('layer bytes');
  const descriptor = { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: blob.digest!, size: blob.size };

  it('tries the origin repository first when the blob comes from the same registry, then mountFrom, each once', async () => {
    const { client, mounts } = recordingClient('dest.example:5000');
    const target = new RegistryTarget(client, 'team/app', { mountFrom: ['team/base', 'team/origin', 'team/app', 'team/base'] });
    const origin = registryBlobContent(new RegistryClient({ registry: 'dest.example:5000', authFile: false }), 'team/origin', descriptor);
    await target.putContent(origin, descriptor);
    expect(mounts).toEqual([['team/origin', 'team/base']]);
  });

  it('keeps a mountFrom repository that shares its name with an origin on another registry', async () => {
    const { client, mounts } = recordingClient('dest.example:5000');
    const target = new RegistryTarget(client, 'team/app', { mountFrom: ['team/origin'] });
    const elsewhere = registryBlobContent(new RegistryClient({ registry: 'other.example:5000', authFile: false }), 'team/origin', descriptor);
    await target.putContent(elsewhere, descriptor);
    expect(mounts).toEqual([['team/origin']]);
  });
});
