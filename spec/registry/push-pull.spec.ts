/**
 * pushImage / pullImage / pullToLayout against a real docker-registry (no auth), judged by the
 * registry itself and by skopeo: digests survive the round trip, a second push sends no blob,
 * blobs are mounted across repositories, and what skopeo pushed we pull.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { DigestMismatchError } from '../../lib/errors';
import { diskFs } from '../../lib/fs';
import { Image, ImageIndex } from '../../lib/image/image';
import { OciLayout, readOciLayout, writeOciLayout } from '../../lib/formats/layout';
import { MEDIA_TYPES } from '../../lib/media-types';
import { RegistryClient } from '../../lib/registry/client';
import { pullImage, pullToLayout } from '../../lib/registry/pull';
import { pushImage } from '../../lib/registry/push';
import { RegistryClientPool } from '../../lib/registry/remote';
import { describeWithRegistry, startFaultProxy, startTestRegistry, uniqueRepo, type FaultProxy, type TestRegistry } from '../support/registry';
import { requireTool } from '../support/tools';
import { contentsOf, randomTag, sampleImage, sampleIndex, skopeo, skopeoRawDigest, tempDir } from './images';

const amd64 = { os: 'linux', architecture: 'amd64' };
const arm64 = { os: 'linux', architecture: 'arm64' };

/** Requests that move blob bytes or create blobs: what "a push uploads no blob" must not show. */
function blobWrites(proxy: FaultProxy): string[] {
  return proxy.log.filter((r) => r.method !== 'GET' && r.method !== 'HEAD' && r.path.includes('/blobs/')).map((r) => `${r.method} ${r.path}`);
}

describeWithRegistry('none', 'push and pull', () => {
  let registry: TestRegistry;
  let proxy: FaultProxy;
  let work: string;
  beforeAll(async () => {
    registry = await startTestRegistry();
    proxy = await startFaultProxy(registry.host);
    work = await tempDir('push-pull');
  });
  afterAll(async () => {
    await proxy?.stop();
    await registry?.stop();
    if (work) await fsp.rm(work, { recursive: true, force: true });
  });
  beforeEach(() => proxy.clear());

  const opts = { authFile: false as const, retryBaseDelayMs: 5 };

  it('pushes an image built in memory, pulls it back with the same digests and files, and a second push uploads no blob', async () => {
    const image = sampleImage(amd64, 'single', { seed: randomTag() });
    const ref = `docker://${proxy.host}/${uniqueRepo('single')}:v1`;

    const first = await pushImage(image, ref, opts);
    expect(first.descriptor.mediaType).toBe(MEDIA_TYPES.manifest);
    expect(first.stats).toMatchObject({ uploaded: 3, existing: 0, mounted: 0, manifests: 1 });
    // Layers were streamed (one PATCH each, digest known only at the end), the config sent whole.
    const writes = blobWrites(proxy);
    expect(writes.filter((w) => w.startsWith('PATCH'))).toHaveLength(2);
    // The tag came last, after every blob was committed.
    const last = proxy.log[proxy.log.length - 1];
    expect(`${last.method} ${last.path}`).toMatch(/^PUT \/v2\/.+\/manifests\/v1$/);

    const pulled = await pullImage(ref, opts);
    expect(pulled).toBeInstanceOf(Image);
    expect((pulled as Image).stored?.manifestDescriptor.digest).toBe(first.digest);
    expect(await contentsOf(pulled as Image)).toEqual(await contentsOf(image));

    proxy.clear();
    const second = await pushImage(image, ref, opts);
    expect(second.digest).toBe(first.digest);
    expect(second.stats).toMatchObject({ uploaded: 0, bytesUploaded: 0 });
    expect(blobWrites(proxy)).toEqual([]);

    // The pulled image pushed elsewhere in the same registry: every blob mounted, none sent.
    proxy.clear();
    const copy = await pushImage(pulled, `docker://${proxy.host}/${uniqueRepo('copy')}:v1`, opts);
    expect(copy.digest).toBe(first.digest);
    expect(copy.stats).toMatchObject({ uploaded: 0, mounted: 3 });
    expect(blobWrites(proxy).every((w) => /^POST .*mount=sha256:/.test(w))).toBe(true);
  });

  it('pushes a multi-platform index and pulls all of it, or one platform, with identical digests', async () => {
    const index = sampleIndex(randomTag());
    const ref = `docker://${registry.host}/${uniqueRepo('multi')}:v2`;
    const pushed = await pushImage(index, ref, opts);
    expect(pushed.descriptor.mediaType).toBe(MEDIA_TYPES.index);
    // Both platforms share the base layer: stored once.
    expect(pushed.stats.uploaded).toBe(5);

    const all = await pullImage(ref, opts);
    expect(all).toBeInstanceOf(ImageIndex);
    expect((all as ImageIndex).stored?.descriptor.digest).toBe(pushed.digest);
    const children = (all as ImageIndex).images();
    expect(children.map((c) => c.platform?.architecture)).toEqual(['amd64', 'arm64']);

    const arm = await pullImage(ref, { ...opts, platform: 'linux/arm64' });
    expect(arm).toBeInstanceOf(Image);
    expect((arm as Image).platform.architecture).toBe('arm64');
    expect((arm as Image).stored?.manifestDescriptor.digest).toBe(children[1].image.stored?.manifestDescriptor.digest);
    expect(await contentsOf(arm as Image)).toEqual(await contentsOf(index.select(arm64)));

    await expect(pullImage(ref, { ...opts, platform: 'linux/s390x' })).rejects.toMatchObject({ code: 'PLATFORM_NOT_FOUND' });
  });

  it('pullToLayout downloads the chosen platform into an OCI layout, every blob verified, digests kept', async () => {
    const index = sampleIndex(randomTag());
    const ref = `docker://${registry.host}/${uniqueRepo('to-layout')}:v1`;
    const pushed = await pushImage(index, ref, opts);
    const child = (await pullImage(ref, { ...opts, platform: arm64 })) as Image;

    const dir = path.join(work, 'layout-arm64');
    const layout = await OciLayout.create(diskFs, dir);
    const events: string[] = [];
    const result = await pullToLayout(ref, layout, { ...opts, platform: 'linux/arm64', tag: 'arm', onProgress: (e) => events.push(e.phase) });
    expect(result.descriptor.digest).toBe(child.stored?.manifestDescriptor.digest);
    const back = (await readOciLayout(dir, { fs: diskFs, ref: 'arm' })) as Image;
    expect(back.stored?.manifestDescriptor.digest).toBe(child.stored?.manifestDescriptor.digest);
    for (const layer of back.layers) expect(await layout.has((layer as { descriptor: { digest: string; size: number } }).descriptor)).toBe(true);
    expect(events).toContain('bytes');
    expect(events.filter((e) => e === 'layer')).toHaveLength(2);

    // 'all' keeps the whole index, byte for byte.
    const allDir = path.join(work, 'layout-all');
    const all = await pullToLayout(ref, await OciLayout.create(diskFs, allDir), { ...opts, platforms: 'all' });
    expect(all.descriptor.digest).toBe(pushed.digest);
  });

  it('refuses a digest-pinned destination the image does not hash to, and writes no tag', async () => {
    const repo = uniqueRepo('pinned');
    const image = sampleImage(amd64, 'pinned');
    const wrong = 'sha256:' + 'ab'.repeat(32);
    await expect(pushImage(image, `docker://${registry.host}/${repo}@${wrong}`, opts)).rejects.toBeInstanceOf(DigestMismatchError);
    const client = new RegistryClient({ registry: registry.host, authFile: false });
    expect(await client.headManifest(repo, 'latest')).toBeUndefined();
    expect(await client.listTags(repo).catch(() => [])).toEqual([]);
    // Pushed by its own digest, it is there by digest and under no tag.
    const right = await pushImage(image, `docker://${registry.host}/${repo}:tmp`, opts);
    const repo2 = uniqueRepo('pinned2');
    const byDigest = await pushImage(image, `docker://${registry.host}/${repo2}@${right.digest}`, opts);
    expect(byDigest.digest).toBe(right.digest);
    expect(await client.headManifest(repo2, right.digest)).toBeDefined();
  });

  it('shares token caches and clients through a pool', async () => {
    const pool = new RegistryClientPool(opts);
    expect(pool.get(registry.host)).toBe(pool.get(registry.host));
    const ref = `docker://${registry.host}/${uniqueRepo('pool')}:v1`;
    const pushed = await pushImage(sampleImage(amd64, 'pool'), ref, { clients: pool });
    const pulled = (await pullImage(ref, { clients: pool })) as Image;
    expect(pulled.stored?.manifestDescriptor.digest).toBe(pushed.digest);
  });

  describe('with skopeo as the referee', () => {
    const haveSkopeo = requireTool('skopeo');

    it('skopeo inspects and copies what we pushed, getting our digests', async () => {
      if (!haveSkopeo) return;
      const index = sampleIndex(randomTag());
      const ref = `docker://${registry.host}/${uniqueRepo('skopeo-in')}:v1`;
      const pushed = await pushImage(index, ref, opts);

      expect(await skopeoRawDigest(ref)).toBe(pushed.digest);
      const inspected = JSON.parse(await skopeo('inspect', '--tls-verify=false', '--override-arch', 'arm64', ref)) as { Digest: string; Architecture: string; Layers: string[] };
      const armImage = index.select(arm64);
      expect(inspected.Architecture).toBe('arm64');

      const dir = path.join(work, 'skopeo-copy');
      await skopeo('copy', '--all', '--preserve-digests', '--src-tls-verify=false', ref, `oci:${dir}:copied`);
      const copied = (await readOciLayout(dir, { fs: diskFs, ref: 'copied' })) as ImageIndex;
      expect(copied.stored?.descriptor.digest).toBe(pushed.digest);
      expect(await contentsOf(copied.select(arm64))).toEqual(await contentsOf(armImage));
      expect(inspected.Layers).toEqual(copied.select(arm64).layers.map((l) => (l as { descriptor: { digest: string } }).descriptor.digest));
    });

    it('pulls what skopeo pushed, OCI and Docker schema 2 alike', async () => {
      if (!haveSkopeo) return;
      const image = sampleImage(amd64, 'from-skopeo', { seed: randomTag() });
      const dir = path.join(work, 'for-skopeo');
      await writeOciLayout(image, dir, { fs: diskFs, tag: 'src' });

      for (const format of ['oci', 'v2s2']) {
        const ref = `docker://${registry.host}/${uniqueRepo(`skopeo-${format}`)}:v1`;
        await skopeo('copy', '--dest-tls-verify=false', '--format', format, `oci:${dir}:src`, ref);
        const digest = await skopeoRawDigest(ref);
        const pulled = (await pullImage(ref, opts)) as Image;
        expect(pulled.stored?.manifestDescriptor.digest).toBe(digest);
        expect(pulled.stored?.manifestDescriptor.mediaType).toBe(format === 'oci' ? MEDIA_TYPES.manifest : MEDIA_TYPES.dockerManifest);
        expect(await contentsOf(pulled)).toEqual(await contentsOf(image));
        // And back up elsewhere, unchanged: the same digest, blobs mounted.
        const again = await pushImage(pulled, `docker://${registry.host}/${uniqueRepo('again')}:v1`, opts);
        expect(again.digest).toBe(digest);
        expect(again.stats.uploaded).toBe(0);
      }
    });
  });
});
