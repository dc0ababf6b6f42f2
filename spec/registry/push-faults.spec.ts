/**
 * Push and pull through a fault-injecting proxy: transient failures are retried, permanent ones
 * end in a typed error, and no manifest or tag is ever written while one of its blobs is missing.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { DigestMismatchError } from '../../lib/errors';
import { diskFs } from '../../lib/fs';
import { Image } from '../../lib/image/image';
import { OciLayout, readOciLayout, writeOciLayout } from '../../lib/formats/layout';
import { RegistryClient } from '../../lib/registry/client';
import { pullImage, pullToLayout } from '../../lib/registry/pull';
import { pushImage } from '../../lib/registry/push';
import { describeWithRegistry, startFaultProxy, startTestRegistry, uniqueRepo, type FaultProxy, type TestRegistry } from '../support/registry';
import { contentsOf, randomTag, sampleImage, tempDir } from './images';

const amd64 = { os: 'linux', architecture: 'amd64' };
const MiB = 1024 * 1024;

describeWithRegistry('none', 'push and pull under faults', () => {
  let registry: TestRegistry;
  let proxy: FaultProxy;
  let work: string;
  beforeAll(async () => {
    registry = await startTestRegistry();
    proxy = await startFaultProxy(registry.host);
    work = await tempDir('push-faults');
  });
  afterAll(async () => {
    await proxy?.stop();
    await registry?.stop();
    if (work) await fsp.rm(work, { recursive: true, force: true });
  });
  beforeEach(() => proxy.clear());

  const opts = { authFile: false as const, retryBaseDelayMs: 5, retries: 3 };
  const direct = () => new RegistryClient({ registry: registry.host, authFile: false });
  const manifestPuts = () => proxy.log.filter((r) => r.method === 'PUT' && r.path.includes('/manifests/'));

  /** An image read back from a layout: its layers are stored blobs, pushed monolithically with `?digest=`. */
  async function storedImage(marker: string): Promise<Image> {
    const dir = path.join(work, `src-${marker}`);
    await writeOciLayout(sampleImage(amd64, marker, { seed: randomTag(), bigFile: 3 * MiB }), dir, { fs: diskFs, tag: 'src' });
    return (await readOciLayout(dir, { fs: diskFs, ref: 'src' })) as Image;
  }

  it('survives 500s, a 429 with Retry-After and a connection cut mid-upload', async () => {
    const image = sampleImage(amd64, 'flaky', { seed: randomTag(), bigFile: 3 * MiB });
    proxy.inject({ method: 'POST', path: /\/blobs\/uploads\/$/, fault: { kind: 'status', status: 500 } });
    proxy.inject({ method: 'PATCH', fault: { kind: 'drop-request', afterBytes: 256 * 1024 } });
    proxy.inject({ method: 'PUT', path: /\/manifests\//, fault: { kind: 'status', status: 429, headers: { 'retry-after': '0' } } });
    proxy.inject({ method: 'HEAD', fault: { kind: 'status', status: 503 } });
    const ref = `docker://${proxy.host}/${uniqueRepo('flaky')}:v1`;
    const pushed = await pushImage(image, ref, opts);
    expect(proxy.pending()).toBe(0);
    const pulled = (await pullImage(ref, opts)) as Image;
    expect(pulled.stored?.manifestDescriptor.digest).toBe(pushed.digest);
    expect(await contentsOf(pulled)).toEqual(await contentsOf(image));
  });

  it('never writes the manifest or the tag when one blob fails for good (monolithic upload)', async () => {
    const image = await storedImage('doomed');
    const repo = uniqueRepo('doomed');
    const bad = (image.layers[0] as { descriptor: { digest: string } }).descriptor.digest;
    proxy.inject({ method: 'PUT', path: new RegExp(`digest=${bad.replace(':', '(:|%3A)')}`), times: 1000, fault: { kind: 'status', status: 500 } });
    await expect(pushImage(image, `docker://${proxy.host}/${repo}:v1`, opts)).rejects.toMatchObject({ code: 'REGISTRY_ERROR', status: 500 });
    expect(manifestPuts()).toEqual([]);
    expect(await direct().headManifest(repo, 'v1')).toBeUndefined();
    expect(await direct().headManifest(repo, image.stored!.manifestDescriptor.digest)).toBeUndefined();
    // The other blobs may be there; the one that failed is not.
    expect(await direct().blobExists(repo, bad)).toBeUndefined();
  });

  it('never writes the manifest or the tag when a streamed layer upload keeps dropping', async () => {
    const image = sampleImage(amd64, 'dropped', { seed: randomTag(), bigFile: 3 * MiB });
    const repo = uniqueRepo('dropped');
    proxy.inject({ method: 'PATCH', times: 1000, fault: { kind: 'drop-request', afterBytes: 64 * 1024 } });
    await expect(pushImage(image, `docker://${proxy.host}/${repo}:v1`, opts)).rejects.toMatchObject({ code: 'NETWORK_ERROR' });
    expect(manifestPuts()).toEqual([]);
    expect(await direct().headManifest(repo, 'v1')).toBeUndefined();
  });

  it('pulls through a connection cut mid-blob (resumed with Range), into a layout', async () => {
    const image = await storedImage('resume');
    const ref = `docker://${registry.host}/${uniqueRepo('resume')}:v1`;
    const pushed = await pushImage(image, ref, opts);
    const big = (image.layers[0] as { descriptor: { digest: string } }).descriptor.digest;
    proxy.inject({ method: 'GET', path: new RegExp(`/blobs/${big}`), fault: { kind: 'drop-response', afterBytes: 1 * MiB } });
    const dir = path.join(work, 'resumed');
    const result = await pullToLayout(ref.replace(registry.host, proxy.host), await OciLayout.create(diskFs, dir), { ...opts, tag: 'v1' });
    expect(proxy.pending()).toBe(0);
    expect(proxy.log.some((r) => r.headers.range === `bytes=${1 * MiB}-`)).toBe(true);
    expect(result.descriptor.digest).toBe(pushed.digest);
    const back = (await readOciLayout(dir, { fs: diskFs, ref: 'v1' })) as Image;
    expect(await contentsOf(back)).toEqual(await contentsOf(image));
  });

  it('refuses a blob corrupted in transit: DigestMismatchError, and the layout gets neither the blob nor the tag', async () => {
    const image = await storedImage('corrupt');
    const ref = `docker://${registry.host}/${uniqueRepo('corrupt')}:v1`;
    await pushImage(image, ref, opts);
    const big = (image.layers[0] as { descriptor: { digest: string; size: number } }).descriptor;
    proxy.inject({ method: 'GET', path: new RegExp(`/blobs/${big.digest}`), fault: { kind: 'corrupt-response', offset: 12345 } });
    const dir = path.join(work, 'corrupt');
    const layout = await OciLayout.create(diskFs, dir);
    await expect(pullToLayout(ref.replace(registry.host, proxy.host), layout, { ...opts, tag: 'v1' })).rejects.toBeInstanceOf(DigestMismatchError);
    expect(await layout.has(big)).toBe(false);
    expect((await layout.readIndex()).manifests).toEqual([]);
  });
});
