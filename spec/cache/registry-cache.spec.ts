/**
 * A build cache shared through a real docker-registry: one machine exports, another (a fresh
 * store, another checkout) imports and builds without compressing anything. Forged records are
 * refused, and an image that is not a cache is not imported.
 */
import { Readable } from 'node:stream';
import { buildImage } from '../../lib/build/build-image';
import { builtinRunExecutor } from '../../lib/build/run';
import { BUILD_CACHE_CONFIG_MEDIA_TYPE, BuildCache, exportBuildCache, importBuildCache } from '../../lib/cache';
import { DigestCounter } from '../../lib/compress';
import { canonicalJsonBytes } from '../../lib/image/json';
import { MEDIA_TYPES } from '../../lib/media-types';
import { RegistryClient } from '../../lib/registry/client';
import { pushImage } from '../../lib/registry/push';
import { ImageStore } from '../../lib/store';
import { memfs, writeTree } from '../build/helpers';
import { describeWithRegistry, startTestRegistry, uniqueRepo, type TestRegistry } from '../support/registry';

const KUBEFILE = 'FROM scratch\nCOPY bin bin\nCOPY etc etc\nRUN mkdir -p var/run\n';
const FILES = {
  Kubefile: KUBEFILE,
  'bin/kubectl': ['kubectl '.repeat(4000), 0o755] as [string, number],
  'etc/daemon.json': '{}\n',
};
const access = { authFile: false as const, retryBaseDelayMs: 5 };

describeWithRegistry('none', 'build cache export and import', () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startTestRegistry();
  });
  afterAll(async () => {
    await registry?.stop();
  });

  async function machine(dir: string) {
    const fs = memfs();
    await writeTree(fs, dir, FILES);
    const store = await ImageStore.open({ fs, root: '/store' });
    const build = (extra: Record<string, unknown> = {}) =>
      buildImage({ context: dir, fs, store, tag: 'demo:v1', platforms: ['linux/amd64'], runExecutor: builtinRunExecutor(), registry: access, ...extra });
    return { fs, store, build };
  }

  it('exports the records and blobs; another machine imports them and compresses nothing', async () => {
    const ref = `docker://${registry.host}/${uniqueRepo('cache')}:buildcache`;
    const a = await machine('/checkout-a');
    const built = await a.build();
    const exported = await exportBuildCache(a.store, ref, access);
    expect(exported).toMatchObject({ steps: 2, blobs: 3 });
    expect(exported.stats.uploaded).toBe(4); // three layers and the records

    const b = await machine('/elsewhere/checkout-b');
    const imported = await importBuildCache(b.store, ref, access);
    expect(imported).toMatchObject({ steps: 2, blobs: 3, downloaded: 3, digest: exported.digest });
    const rebuilt = await b.build();
    expect(rebuilt.digest).toBe(built.digest);
    expect(rebuilt.images[0].cache).toEqual(['hit', 'hit', 'hit']);
    expect(rebuilt.cacheStats?.misses).toBe(0);

    // Exporting again uploads nothing new.
    const again = await exportBuildCache(a.store, ref, access);
    expect(again.stats.uploaded).toBe(0);
    expect(again.digest).toBe(exported.digest);
  });

  it('works through buildImage cacheTo / cacheFrom, and a missing cache is only a warning', async () => {
    const ref = `docker://${registry.host}/${uniqueRepo('cache')}:main`;
    const a = await machine('/a');
    const first = await a.build({ cacheTo: ref });
    expect(first.cacheExport).toMatchObject({ steps: 2, blobs: 3 });
    const b = await machine('/b');
    const missing = `docker://${registry.host}/${uniqueRepo('nothing')}:none`;
    const second = await b.build({ cacheFrom: [missing, ref] });
    expect(second.warnings.map((w) => w.code)).toEqual(['CACHE_IMPORT_FAILED']);
    expect(second.images[0].cache).toEqual(['hit', 'hit', 'hit']);
    expect(second.digest).toBe(first.digest);
    await expect(b.build({ cache: false, cacheTo: ref })).rejects.toMatchObject({ code: 'USAGE' });
  });

  it('refuses records whose blobs are not what they claim, and images that are not caches', async () => {
    const repo = uniqueRepo('forged');
    const a = await machine('/a');
    await a.build();
    const cache = BuildCache.open(a.store);
    const { steps, blobs } = await cache.records();
    // Every blob record now claims another layer's diff_id.
    const diffIds = blobs.map((b) => b.diffId);
    const forged = {
      version: 1,
      steps: steps.map((s) => ({ key: s.key, diffId: s.diffId, instruction: s.instruction, stats: s.stats })),
      blobs: blobs.map((b, i) => ({ ...b, checked: undefined, created: undefined, version: undefined, diffId: diffIds[(i + 1) % diffIds.length] })),
    };
    const client = new RegistryClient({ registry: registry.host, ...access });
    const configBytes = canonicalJsonBytes(JSON.parse(JSON.stringify(forged)));
    const config = { mediaType: BUILD_CACHE_CONFIG_MEDIA_TYPE, digest: new DigestCounter().update(configBytes).digest(), size: configBytes.length };
    await client.putBlob(repo, { digest: config.digest, size: config.size, open: () => Readable.from([configBytes]) });
    const layers = [];
    for (const b of blobs) {
      const d = { mediaType: b.mediaType, digest: b.digest, size: b.size };
      await client.putBlob(repo, { digest: d.digest, size: d.size, open: () => a.store.layout.blob(d).open() });
      layers.push(d);
    }
    const manifest = canonicalJsonBytes({ schemaVersion: 2, mediaType: MEDIA_TYPES.manifest, config, layers });
    await client.putManifest(repo, 'forged', manifest, MEDIA_TYPES.manifest);

    const b = await machine('/b');
    const imported = await importBuildCache(b.store, `docker://${registry.host}/${repo}:forged`, access);
    expect(imported).toMatchObject({ steps: 0, blobs: 0, downloaded: 3 });
    const built = await b.build();
    expect(built.images[0].cache).toEqual(['miss', 'miss', 'miss']);

    // An ordinary image is not a cache.
    const imageRef = `docker://${registry.host}/${repo}:image`;
    await pushImage(built.target, imageRef, access);
    await expect(importBuildCache(b.store, imageRef, access)).rejects.toMatchObject({ code: 'INVALID_IMAGE' });
  });
});
