/** RegistryClient against a real distribution registry (docker-registry 2.8), no auth. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import {
  BlobNotFoundError,
  DigestMismatchError,
  ImageNotFoundError,
  InvalidReferenceError,
  LimitExceededError,
  SizeMismatchError,
} from '../../lib/errors';
import { MEDIA_TYPES } from '../../lib/media-types';
import { RegistryClient } from '../../lib/registry/client';
import { describeWithRegistry, startTestRegistry, uniqueRepo, type TestRegistry } from '../support/registry';
import { findTool, requireTool } from '../support/tools';
import { bufferSource, buildTinyImage, randomData, readAll, recordingFetch, sha256 } from './helpers';

const execFileAsync = promisify(execFile);
const MiB = 1024 * 1024;

describeWithRegistry('none', 'RegistryClient', () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startTestRegistry();
  });
  afterAll(async () => {
    await registry?.stop();
  });

  // `insecure: true`: straight to plain http, so the recorded requests are exactly the API calls.
  const client = (extra: Partial<ConstructorParameters<typeof RegistryClient>[0]> = {}) =>
    new RegistryClient({ registry: registry.host, authFile: false, retryBaseDelayMs: 10, ...(extra.fetch ? { insecure: true } : {}), ...extra });

  it('tries https on a loopback host first, and stays on http once the registry answers in plain HTTP', async () => {
    const c = client();
    expect(c.baseUrl).toBe(`https://${registry.host}`);
    await expect(c.ping()).resolves.toEqual({ auth: 'none' });
    expect(c.baseUrl).toBe(`http://${registry.host}`);
    const rec = recordingFetch();
    const viaFetch = client({ fetch: rec.fetch, insecure: undefined });
    await viaFetch.ping();
    await viaFetch.ping();
    // One https attempt (refused by the plain-HTTP server), then http for good.
    expect(rec.requests.map((r) => `${new URL(r.url).protocol} ${r.status ?? 'failed'}`)).toEqual(['https: failed', 'http: 200', 'http: 200']);
  });

  describe('blobs', () => {
    it('pushes monolithically (POST + PUT) when the digest is known, then HEAD-skips a second push', async () => {
      const repo = uniqueRepo('mono');
      const data = randomData(300 * 1024 + 7);
      const rec = recordingFetch();
      const c = client({ fetch: rec.fetch });
      const source = bufferSource(data, { digest: true, size: true });

      const first = await c.putBlob(repo, source);
      expect(first).toEqual({ digest: sha256(data), size: data.length, outcome: 'uploaded', attempts: 1 });
      const methods = rec.requests.map((r) => r.method);
      expect(methods).toEqual(['HEAD', 'POST', 'PUT']);
      const put = rec.requests[2];
      expect(new URL(put.url).searchParams.get('digest')).toBe(sha256(data));
      expect(put.headers['content-length']).toBe(String(data.length));

      rec.requests.length = 0;
      const second = await c.putBlob(repo, source);
      expect(second.outcome).toBe('exists');
      expect(rec.requests.map((r) => r.method)).toEqual(['HEAD']);
      expect(source.opens).toBe(1);

      await expect(c.blobExists(repo, sha256(data))).resolves.toEqual({ size: data.length });
      expect(sha256(await readAll(await c.getBlob(repo, sha256(data), { expectedSize: data.length })))).toBe(sha256(data));
    });

    it('streams one PATCH without Content-Range and commits with the digest it measured', async () => {
      const repo = uniqueRepo('stream');
      const data = randomData(3 * MiB + 123);
      const rec = recordingFetch();
      const c = client({ fetch: rec.fetch });
      const result = await c.putBlob(repo, bufferSource(data));
      expect(result).toMatchObject({ digest: sha256(data), size: data.length, outcome: 'uploaded' });
      const patch = rec.requests.filter((r) => r.method === 'PATCH');
      expect(patch).toHaveLength(1);
      expect(patch[0].headers['content-range']).toBeUndefined();
      const put = rec.requests.find((r) => r.method === 'PUT');
      expect(new URL(put!.url).searchParams.get('digest')).toBe(sha256(data));
      expect(sha256(await readAll(await c.getBlob(repo, sha256(data))))).toBe(sha256(data));
    });

    it.each([false, true])('accepts a digest known only at the end (digestAfter) and refuses to commit a wrong one (verifyUploads: %s)', async (verifyUploads) => {
      const repo = uniqueRepo('after');
      const data = randomData(200 * 1024);
      const c = client({ verifyUploads });
      let ended = false;
      const good = { ...bufferSource(data), digestAfter: () => (ended ? sha256(data) : undefined) };
      const open = good.open;
      good.open = () => open().on('end', () => (ended = true));
      await expect(c.putBlob(repo, good)).resolves.toMatchObject({ digest: sha256(data), outcome: 'uploaded' });

      const other = randomData(1000);
      const wrong = { ...bufferSource(other), digestAfter: () => sha256('something else') };
      await expect(c.putBlob(repo, wrong)).rejects.toBeInstanceOf(DigestMismatchError);
      // A declared digest and a digestAfter that disagree: refused whichever is right.
      const torn = { ...bufferSource(other, { digest: true }), digestAfter: () => sha256('yet another') };
      await expect(c.putBlob(repo, torn, { streaming: true })).rejects.toBeInstanceOf(DigestMismatchError);
      await expect(c.blobExists(repo, sha256(other))).resolves.toBeUndefined();
    });

    // Without verifyUploads the registry's own check refuses the bytes (DIGEST_INVALID); with it, we do first.
    it.each([false, true])('rejects a source whose declared size or digest is wrong, without committing (verifyUploads: %s)', async (verifyUploads) => {
      const repo = uniqueRepo('lying');
      const data = randomData(5000);
      const c = client({ verifyUploads });
      for (const size of [4999, 5001]) {
        const wrongSize = { ...bufferSource(data), size };
        await expect(c.putBlob(repo, wrongSize)).rejects.toBeInstanceOf(SizeMismatchError);
        await expect(c.putBlob(repo, wrongSize, { chunkSize: 1024 })).rejects.toBeInstanceOf(SizeMismatchError);
      }
      const wrongChunked = { ...bufferSource(data), digest: sha256('chunked lie') };
      await expect(c.putBlob(repo, wrongChunked, { chunkSize: 1024 })).rejects.toBeInstanceOf(DigestMismatchError);
      await expect(c.putBlob(repo, wrongChunked)).rejects.toBeInstanceOf(DigestMismatchError);
      const wrongDigest = { ...bufferSource(data), digest: sha256('not the data') };
      await expect(c.putBlob(repo, wrongDigest, { streaming: true })).rejects.toBeInstanceOf(DigestMismatchError);
      // Who found it shows in the error: our hash, or the registry's.
      const found = await c.putBlob(repo, wrongDigest).catch((err: DigestMismatchError) => err);
      expect((found as DigestMismatchError).actual).toEqual(verifyUploads ? sha256(data) : expect.stringContaining('computed another digest'));
      await expect(c.blobExists(repo, sha256(data))).resolves.toBeUndefined();
      await expect(c.blobExists(repo, sha256('not the data'))).resolves.toBeUndefined();
    });

    it('uploads in Content-Range chunks when asked', async () => {
      const repo = uniqueRepo('chunked');
      const data = randomData(2.5 * MiB);
      const rec = recordingFetch();
      const c = client({ fetch: rec.fetch });
      const result = await c.putBlob(repo, bufferSource(data, { digest: true }), { chunkSize: MiB });
      expect(result).toMatchObject({ digest: sha256(data), size: data.length, outcome: 'uploaded' });
      const ranges = rec.requests.filter((r) => r.method === 'PATCH').map((r) => r.headers['content-range']);
      expect(ranges).toEqual([`0-${MiB - 1}`, `${MiB}-${2 * MiB - 1}`, `${2 * MiB}-${data.length - 1}`]);
      const put = rec.requests.filter((r) => r.method === 'PUT');
      expect(put).toHaveLength(1);
      expect(put[0].headers['content-length']).toBe('0');
      expect(sha256(await readAll(await c.getBlob(repo, sha256(data))))).toBe(sha256(data));
    });

    it('raises the chunk size to OCI-Chunk-Min-Length', async () => {
      const repo = uniqueRepo('minchunk');
      const data = randomData(MiB + 10);
      // distribution 2.8 never sends the header: add it to the POST answer.
      const rec = recordingFetch((req, res) => {
        if (req.method !== 'POST') return res;
        const headers = new Headers(res.headers);
        headers.set('oci-chunk-min-length', String(MiB));
        return new Response(res.body, { status: res.status, headers });
      });
      const c = client({ fetch: rec.fetch });
      await c.putBlob(repo, bufferSource(data), { chunkSize: 64 * 1024 });
      const ranges = rec.requests.filter((r) => r.method === 'PATCH').map((r) => r.headers['content-range']);
      expect(ranges).toEqual([`0-${MiB - 1}`, `${MiB}-${MiB + 9}`]);
      expect(sha256(await readAll(await c.getBlob(repo, sha256(data))))).toBe(sha256(data));
    });

    it('pushes the empty blob in every mode', async () => {
      const repo = uniqueRepo('empty');
      const c = client();
      const empty = Buffer.alloc(0);
      await expect(c.putBlob(repo, bufferSource(empty))).resolves.toMatchObject({ digest: sha256(empty), size: 0 });
      const repo2 = uniqueRepo('empty');
      await expect(c.putBlob(repo2, bufferSource(empty, { digest: true }), { chunkSize: 1024 })).resolves.toMatchObject({ size: 0 });
      expect(await readAll(await c.getBlob(repo2, sha256(empty)))).toHaveLength(0);
    });

    it('mounts across repositories, and reports when the registry started an upload instead', async () => {
      const from = uniqueRepo('mount-src');
      const to = uniqueRepo('mount-dst');
      const data = randomData(10_000);
      const c = client();
      await c.putBlob(from, bufferSource(data, { digest: true }));
      await expect(c.mountBlob(to, sha256(data), from)).resolves.toBe(true);
      await expect(c.blobExists(to, sha256(data))).resolves.toEqual({ size: data.length });

      const missing = sha256('nowhere to be found');
      await expect(c.mountBlob(uniqueRepo('mount-dst'), missing, from)).resolves.toBe(false);

      const rec = recordingFetch();
      const c2 = client({ fetch: rec.fetch });
      const third = uniqueRepo('mount-dst');
      const result = await c2.putBlob(third, bufferSource(data, { digest: true }), { mountFrom: [from] });
      expect(result.outcome).toBe('mounted');
      expect(result.size).toBe(data.length);
      const post = rec.requests.find((r) => r.method === 'POST')!;
      const q = new URL(post.url).searchParams;
      expect([q.get('mount'), q.get('from')]).toEqual([sha256(data), from]);
      expect(rec.requests.some((r) => r.method === 'PUT' || r.method === 'PATCH')).toBe(false);
    });

    it('falls back to an upload (reusing the session) when the mount source lacks the blob', async () => {
      const data = randomData(4096);
      const rec = recordingFetch();
      const c = client({ fetch: rec.fetch });
      const repo = uniqueRepo('mount-fallback');
      const result = await c.putBlob(repo, bufferSource(data, { digest: true }), { mountFrom: uniqueRepo('empty-src') });
      expect(result.outcome).toBe('uploaded');
      expect(rec.requests.map((r) => r.method)).toEqual(['HEAD', 'POST', 'PUT']);
      expect(sha256(await readAll(await c.getBlob(repo, sha256(data))))).toBe(sha256(data));
    });

    it('types missing blobs, wrong sizes and bad input', async () => {
      const repo = uniqueRepo('errors');
      const c = client();
      const data = randomData(1000);
      await c.putBlob(repo, bufferSource(data, { digest: true }));
      await expect(c.getBlob(repo, sha256('missing'))).rejects.toBeInstanceOf(BlobNotFoundError);
      await expect(c.getBlob(repo, sha256(data), { expectedSize: 999 })).rejects.toBeInstanceOf(SizeMismatchError);
      await expect(c.blobExists('Upper/Case', sha256(data))).rejects.toBeInstanceOf(InvalidReferenceError);
      await expect(c.blobExists(repo, 'sha256:abc')).rejects.toBeInstanceOf(InvalidReferenceError);
      expect(() => new RegistryClient({ registry: 'http://x' })).toThrow(InvalidReferenceError);
    });
  });

  describe('manifests and tags', () => {
    it('puts and gets an OCI manifest and index with their media types and digests', async () => {
      const repo = uniqueRepo('manifest');
      const c = client();
      const img = await buildTinyImage();
      await c.putBlob(repo, { digest: img.layerDigest, size: img.layer.length, open: () => bufferSource(img.layer).open() });
      await c.putBlob(repo, { digest: img.configDigest, size: img.config.length, open: () => bufferSource(img.config).open() });
      await expect(c.putManifest(repo, 'v1', img.manifest, MEDIA_TYPES.manifest)).resolves.toBe(img.manifestDigest);

      const byTag = await c.getManifest(repo, 'v1');
      expect(byTag).toEqual({ bytes: img.manifest, mediaType: MEDIA_TYPES.manifest, digest: img.manifestDigest });
      const byDigest = await c.getManifest(repo, img.manifestDigest);
      expect(byDigest.bytes).toEqual(img.manifest);
      await expect(c.headManifest(repo, 'v1')).resolves.toEqual({
        digest: img.manifestDigest,
        mediaType: MEDIA_TYPES.manifest,
        size: img.manifest.length,
      });
      await expect(c.headManifest(repo, 'nope')).resolves.toBeUndefined();

      const index = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MEDIA_TYPES.index,
          manifests: [
            {
              mediaType: MEDIA_TYPES.manifest,
              digest: img.manifestDigest,
              size: img.manifest.length,
              platform: { architecture: 'amd64', os: 'linux' },
            },
          ],
        }),
      );
      await expect(c.putManifest(repo, 'multi', index, MEDIA_TYPES.index)).resolves.toBe(sha256(index));
      const gotIndex = await c.getManifest(repo, 'multi');
      expect(gotIndex.mediaType).toBe(MEDIA_TYPES.index);
      expect(gotIndex.bytes).toEqual(index);

      // Pushing by digest stores the bytes under that digest only.
      await expect(c.putManifest(repo, sha256(index), index, MEDIA_TYPES.index)).resolves.toBe(sha256(index));
    });

    it('keeps Docker schema 2 media types', async () => {
      const repo = uniqueRepo('docker');
      const c = client();
      const img = await buildTinyImage('docker flavour\n');
      await c.putBlob(repo, { ...bufferSource(img.layer), digest: img.layerDigest });
      await c.putBlob(repo, { ...bufferSource(img.config), digest: img.configDigest });
      const manifest = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MEDIA_TYPES.dockerManifest,
          config: { mediaType: MEDIA_TYPES.dockerConfig, digest: img.configDigest, size: img.config.length },
          layers: [{ mediaType: MEDIA_TYPES.dockerLayerGzip, digest: img.layerDigest, size: img.layer.length }],
        }),
      );
      await c.putManifest(repo, 'latest', manifest, MEDIA_TYPES.dockerManifest);
      const got = await c.getManifest(repo, 'latest');
      expect(got.mediaType).toBe(MEDIA_TYPES.dockerManifest);
      expect(got.digest).toBe(sha256(manifest));
    });

    it('refuses manifests whose bytes do not match the digest asked for, and oversized ones', async () => {
      const repo = uniqueRepo('mverify');
      const c = client();
      const img = await buildTinyImage();
      await expect(c.putManifest(repo, sha256('other'), img.manifest, MEDIA_TYPES.manifest)).rejects.toBeInstanceOf(
        DigestMismatchError,
      );
      await c.putBlob(repo, { ...bufferSource(img.layer), digest: img.layerDigest });
      await c.putBlob(repo, { ...bufferSource(img.config), digest: img.configDigest });
      await c.putManifest(repo, 'v1', img.manifest, MEDIA_TYPES.manifest);

      const small = client({ maxManifestBytes: 100 });
      await expect(small.getManifest(repo, 'v1')).rejects.toBeInstanceOf(LimitExceededError);
      await expect(small.putManifest(repo, 'v2', img.manifest, MEDIA_TYPES.manifest)).rejects.toBeInstanceOf(LimitExceededError);
      await expect(c.getManifest(repo, 'missing')).rejects.toBeInstanceOf(ImageNotFoundError);
      await expect(c.getManifest(repo, 'bad tag!')).rejects.toBeInstanceOf(InvalidReferenceError);
    });

    // distribution 2.8 ignores `n` for tags (pagination is covered with a stub in units.spec.ts).
    it('lists tags', async () => {
      const repo = uniqueRepo('tags');
      const img = await buildTinyImage();
      const c = client();
      await c.putBlob(repo, { ...bufferSource(img.layer), digest: img.layerDigest });
      await c.putBlob(repo, { ...bufferSource(img.config), digest: img.configDigest });
      const tags = ['a', 'b', 'c', 'd', 'v1.0.0'];
      for (const t of tags) await c.putManifest(repo, t, img.manifest, MEDIA_TYPES.manifest);
      expect((await c.listTags(repo, { pageSize: 2 })).sort()).toEqual(tags);
      expect((await c.listTags(repo)).sort()).toEqual(tags);
      await expect(c.listTags(uniqueRepo('no-such'))).rejects.toBeInstanceOf(ImageNotFoundError);
    });
  });

  describe('cross-check with skopeo', () => {
    it('skopeo reads an image pushed by hand', async () => {
      if (!requireTool('skopeo')) return;
      const repo = uniqueRepo('skopeo');
      const c = client();
      const img = await buildTinyImage();
      await c.putBlob(repo, { ...bufferSource(img.layer), digest: img.layerDigest, size: img.layer.length });
      await c.putBlob(repo, { ...bufferSource(img.config), digest: img.configDigest, size: img.config.length });
      await c.putManifest(repo, 'v1', img.manifest, MEDIA_TYPES.manifest);
      const ref = `docker://${registry.host}/${repo}:v1`;
      const { stdout } = await execFileAsync(findTool('skopeo')!, ['inspect', '--tls-verify=false', ref]);
      const info = JSON.parse(stdout) as { Digest: string; Layers: string[]; Architecture: string; Os: string };
      expect(info.Digest).toBe(img.manifestDigest);
      expect(info.Layers).toEqual([img.layerDigest]);
      expect([info.Architecture, info.Os]).toEqual(['amd64', 'linux']);
      const raw = await execFileAsync(findTool('skopeo')!, ['inspect', '--raw', '--tls-verify=false', ref], { encoding: 'buffer' });
      expect(Buffer.from(raw.stdout)).toEqual(img.manifest);
    });
  });
});
