/**
 * Retries, resumption and verification, with a fault-injecting proxy in front of a real
 * registry: 5xx, 429 + Retry-After, connections cut mid-body, a corrupted byte.
 */
import { DigestMismatchError, NetworkError, RegistryError } from '../../lib/errors';
import { MEDIA_TYPES } from '../../lib/media-types';
import { RegistryClient } from '../../lib/registry/client';
import {
  describeWithRegistry,
  freePort,
  startFaultProxy,
  startTestRegistry,
  uniqueRepo,
  type FaultProxy,
  type TestRegistry,
} from '../support/registry';
import { bufferSource, buildTinyImage, randomData, readAll, sha256 } from './helpers';

const MiB = 1024 * 1024;

describeWithRegistry('none', 'RegistryClient under faults', () => {
  let registry: TestRegistry;
  let proxy: FaultProxy;
  beforeAll(async () => {
    registry = await startTestRegistry();
    proxy = await startFaultProxy(registry.host);
  });
  afterAll(async () => {
    await proxy?.stop();
    await registry?.stop();
  });
  beforeEach(() => proxy.clear());

  const client = (extra: Partial<ConstructorParameters<typeof RegistryClient>[0]> = {}) =>
    new RegistryClient({ registry: proxy.host, authFile: false, retryBaseDelayMs: 5, ...extra });

  async function pushTinyImage(c: RegistryClient, repo: string, tag: string) {
    const img = await buildTinyImage();
    await c.putBlob(repo, { ...bufferSource(img.layer), digest: img.layerDigest });
    await c.putBlob(repo, { ...bufferSource(img.config), digest: img.configDigest });
    await c.putManifest(repo, tag, img.manifest, MEDIA_TYPES.manifest);
    return img;
  }

  it('retries 500s on reads and succeeds', async () => {
    const c = client();
    const repo = uniqueRepo('r500');
    const img = await pushTinyImage(c, repo, 'v1');
    proxy.clear();
    proxy.inject({ method: 'GET', path: /\/manifests\/v1$/, times: 2, fault: { kind: 'status', status: 500 } });
    const got = await c.getManifest(repo, 'v1');
    expect(got.digest).toBe(img.manifestDigest);
    expect(proxy.log.filter((e) => e.path.endsWith('/manifests/v1')).map((e) => e.status)).toEqual([500, 500, 200]);
  });

  it('retries a blob upload whose POST and PUT fail with 503', async () => {
    const c = client();
    const repo = uniqueRepo('u503');
    const data = randomData(100_000);
    const source = bufferSource(data, { digest: true, size: true });
    proxy.inject({ method: 'POST', times: 1, fault: { kind: 'status', status: 503 } });
    proxy.inject({ method: 'PUT', times: 1, fault: { kind: 'status', status: 502 } });
    const result = await c.putBlob(repo, source);
    expect(result).toMatchObject({ outcome: 'uploaded', attempts: 3 });
    expect(source.opens).toBe(2); // the failed POST never opened the source
    expect(proxy.pending()).toBe(0);
    await expect(c.blobExists(repo, sha256(data))).resolves.toEqual({ size: data.length });
  });

  it('waits for Retry-After on 429', async () => {
    const c = client();
    const repo = uniqueRepo('r429');
    await pushTinyImage(c, repo, 'v1');
    proxy.clear();
    proxy.inject({ method: 'GET', path: /manifests/, fault: { kind: 'status', status: 429, headers: { 'retry-after': '1' } } });
    const started = Date.now();
    await c.getManifest(repo, 'v1');
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    expect(proxy.log.map((e) => e.status)).toEqual([429, 200]);
  });

  it('restarts an upload from source.open() when the connection drops mid-body', async () => {
    const c = client();
    const data = randomData(2 * MiB);
    for (const [mode, options, method] of [
      ['monolithic', {}, 'PUT'],
      ['streaming', { streaming: true }, 'PATCH'],
      ['chunked', { chunkSize: MiB }, 'PATCH'],
    ] as const) {
      proxy.clear();
      const repo = uniqueRepo(`drop-${mode}`);
      const source = bufferSource(data, { digest: true, size: true });
      proxy.inject({ method, path: /blobs\/uploads/, fault: { kind: 'drop-request', afterBytes: 300_000 } });
      const result = await c.putBlob(repo, source, options);
      expect({ mode, outcome: result.outcome, attempts: result.attempts }).toEqual({ mode, outcome: 'uploaded', attempts: 2 });
      expect(source.opens).toBe(2);
      expect(proxy.log.filter((e) => e.fault === 'drop-request')).toHaveLength(1);
      expect(sha256(await readAll(await c.getBlob(repo, sha256(data))))).toBe(sha256(data));
    }
  });

  it('resumes a download cut mid-body with a Range request', async () => {
    const c = client();
    const repo = uniqueRepo('resume');
    const data = randomData(3 * MiB);
    await c.putBlob(repo, bufferSource(data, { digest: true }));
    proxy.clear();
    proxy.inject({ method: 'GET', path: /\/blobs\/sha256:/, fault: { kind: 'drop-response', afterBytes: MiB + 17 } });
    const got = await readAll(await c.getBlob(repo, sha256(data), { expectedSize: data.length }));
    expect(sha256(got)).toBe(sha256(data));
    const gets = proxy.log.filter((e) => e.method === 'GET');
    expect(gets).toHaveLength(2);
    expect(gets[0].fault).toBe('drop-response');
    expect(gets[1].headers.range).toMatch(/^bytes=\d+-$/);
    expect(Number(/=(\d+)-/.exec(gets[1].headers.range!)![1])).toBeGreaterThan(0);
  });

  it('fails with DigestMismatchError when a byte of a blob is corrupted in transit', async () => {
    const c = client();
    const repo = uniqueRepo('corrupt');
    const data = randomData(256 * 1024);
    await c.putBlob(repo, bufferSource(data, { digest: true }));
    proxy.inject({ method: 'GET', path: /\/blobs\/sha256:/, fault: { kind: 'corrupt-response', offset: 12345 } });
    const stream = await c.getBlob(repo, sha256(data));
    const failure = await readAll(stream).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(failure).toBeInstanceOf(DigestMismatchError);
    expect((failure as DigestMismatchError).expected).toBe(sha256(data));
    // Corruption is not a transport failure: no second GET.
    expect(proxy.log.filter((e) => e.method === 'GET')).toHaveLength(1);
  });

  it('fails with DigestMismatchError when a corrupted manifest comes back by digest', async () => {
    const c = client();
    const repo = uniqueRepo('mcorrupt');
    const img = await pushTinyImage(c, repo, 'v1');
    proxy.inject({ method: 'GET', path: /manifests\/sha256:/, fault: { kind: 'corrupt-response', offset: 5 } });
    await expect(c.getManifest(repo, img.manifestDigest)).rejects.toBeInstanceOf(DigestMismatchError);
    // By tag, the registry's Docker-Content-Digest catches it.
    proxy.inject({ method: 'GET', path: /manifests\/v1$/, fault: { kind: 'corrupt-response', offset: 5 } });
    await expect(c.getManifest(repo, 'v1')).rejects.toBeInstanceOf(DigestMismatchError);
  });

  it('never retries a 4xx other than 408/429', async () => {
    const c = client();
    const repo = uniqueRepo('r400');
    const img = await buildTinyImage();
    proxy.inject({ method: 'PUT', path: /manifests/, times: 3, fault: { kind: 'status', status: 400 } });
    const err = await c.putManifest(repo, 'v1', img.manifest, MEDIA_TYPES.manifest).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegistryError);
    expect((err as RegistryError).status).toBe(400);
    expect((err as RegistryError).errors[0]?.code).toBe('UNAVAILABLE');
    expect(proxy.log).toHaveLength(1);
  });

  it('gives up after the configured retries with the last status', async () => {
    const c = client({ retries: 2 });
    const repo = uniqueRepo('giveup');
    proxy.inject({ method: 'GET', times: 10, fault: { kind: 'status', status: 500 } });
    const err = await c.getManifest(repo, 'v1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegistryError);
    expect((err as RegistryError).status).toBe(500);
    expect(proxy.log).toHaveLength(3);
  });

  it('reports NETWORK_ERROR when nothing listens, after retrying', async () => {
    const port = await freePort();
    const c = new RegistryClient({ registry: `127.0.0.1:${port}`, authFile: false, retries: 2, retryBaseDelayMs: 1 });
    const err = await c.ping().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NetworkError);
    expect((err as NetworkError).code).toBe('NETWORK_ERROR');
    expect((err as NetworkError).details.attempts).toBe(3);
  });
});
