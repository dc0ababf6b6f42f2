/**
 * The build cache is only worth having if it is never wrong. These builds go through buildImage
 * (and the builder) with a store, change one thing at a time, and compare every result with a
 * cold build of the same inputs in a store that never had a cache.
 */
import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import { buildImage, type BuildImageResult } from '../../lib/build/build-image';
import { ImageBuilder } from '../../lib/build/builder';
import { builtinRunExecutor } from '../../lib/build/run';
import { BuildCache, CACHE_DIR } from '../../lib/cache';
import type { FileSystem } from '../../lib/fs';
import { ImageStore } from '../../lib/store';
import { memfs, writeTree } from '../build/helpers';

const KUBEFILE = `FROM scratch
COPY bin bin
COPY etc etc
COPY --chmod=0755 scripts scripts
RUN mkdir -p var/lib && touch var/lib/marker
COPY registry registry
`;

/** A little CloudRootfs; the registry blob is big enough to be stored, not deflated. */
function files(): Record<string, string | [string, number]> {
  const blob = Buffer.alloc(200 * 1024);
  for (let i = 0; i < blob.length; i++) blob[i] = (i * 7919) & 0xff;
  return {
    Kubefile: KUBEFILE,
    'bin/kubectl': ['kubectl binary '.repeat(500), 0o755],
    'bin/kubeadm': ['kubeadm binary '.repeat(300), 0o755],
    'etc/daemon.json': '{"registry-mirrors":[]}\n',
    'etc/kubeadm.yaml': 'kind: ClusterConfiguration\nkubernetesVersion: v1.28.2\n',
    'scripts/init.sh': '#!/bin/sh\necho init\n',
    'registry/docker/registry/v2/blobs/sha256/aa/data': '\x1f\x8b\x08' + blob.toString('latin1'),
  };
}

async function setup(fs: FileSystem = memfs(), dir = '/ctx'): Promise<FileSystem> {
  await writeTree(fs, dir, files());
  return fs;
}

interface Build {
  result: BuildImageResult;
  cache: BuildCache;
}

/** A build into `storeRoot` with the store's cache; `later` moves the cache's clock ahead. */
async function build(fs: FileSystem, storeRoot: string, options: { dir?: string; later?: boolean; level?: number; tag?: string; kubefile?: string } = {}): Promise<Build> {
  const store = await ImageStore.open({ fs, root: storeRoot });
  const cache = BuildCache.open(store, options.later ? { now: () => Date.now() + 60_000 } : {});
  const result = await buildImage({
    context: options.dir ?? '/ctx',
    fs,
    store,
    tag: options.tag ?? 'demo:v1',
    platforms: ['linux/amd64'],
    runExecutor: builtinRunExecutor(),
    cache,
    ...(options.kubefile ? { kubefileText: options.kubefile } : {}),
    ...(options.level ? { encoding: { level: options.level } } : {}),
  });
  return { result, cache };
}

/** The same inputs built with no cache at all, in a store of their own. */
async function coldDigest(fs: FileSystem, options: { dir?: string; level?: number; kubefile?: string } = {}): Promise<string> {
  const store = await ImageStore.open({ fs, root: `/cold-${Math.random().toString(36).slice(2)}` });
  const r = await buildImage({
    context: options.dir ?? '/ctx',
    fs,
    store,
    tag: 'cold:v1',
    platforms: ['linux/amd64'],
    runExecutor: builtinRunExecutor(),
    cache: false,
    ...(options.kubefile ? { kubefileText: options.kubefile } : {}),
    ...(options.level ? { encoding: { level: options.level } } : {}),
  });
  expect(r.cacheStats).toBeUndefined();
  return r.digest;
}

const outcomes = (b: Build) => b.result.images[0].cache;

describe('the build cache through buildImage', () => {
  test('a rebuild of unchanged sources reuses every layer and gives the same digests', async () => {
    const fs = await setup();
    const first = await build(fs, '/store', { later: true });
    expect(outcomes(first)).toEqual(['miss', 'miss', 'miss', 'miss', 'miss']);
    expect(first.cache.stats.files.hashed).toBe(6);

    const second = await build(fs, '/store', { later: true });
    expect(second.result.digest).toBe(first.result.digest);
    expect(outcomes(second)).toEqual(['hit', 'hit', 'hit', 'hit', 'hit']);
    expect(second.cache.stats.stepHits).toBe(4);
    expect(second.cache.stats.blobHits).toBe(1); // the RUN layer, found by its diff_id
    expect(second.cache.stats.misses).toBe(0);
    // The digest memo answered for every file: nothing was read to compute the keys.
    expect(second.cache.stats.files.hashed).toBe(0);
    expect(second.cache.stats.files.memoHits).toBe(6);
    expect(first.result.digest).toBe(await coldDigest(fs));
  });

  test('a changed file (same size) invalidates its step; the unchanged layers above it are found again by diff_id', async () => {
    const fs = await setup();
    await build(fs, '/store', { later: true });
    // Same length, different bytes: only the content digest can tell.
    await fs.promises.writeFile('/ctx/etc/daemon.json', '{"registry-mirrors":[1]}');
    expect((await fs.promises.readFile('/ctx/etc/daemon.json')).length).toBe(String(files()['etc/daemon.json']).length);
    const again = await build(fs, '/store', { later: true });
    // COPY bin hits; COPY etc misses; the later steps have a new chain: they are new layers
    // (the RUN layer and COPY registry give the same diff_ids, so their blobs are found again).
    expect(outcomes(again)).toEqual(['hit', 'miss', 'hit', 'hit', 'hit']);
    expect(again.cache.stats.misses).toBe(1);
    expect(again.result.digest).toBe(await coldDigest(fs));
  });

  test('a changed mode invalidates; a touched but identical file still hits', async () => {
    const fs = await setup();
    const first = await build(fs, '/store', { later: true });
    await fs.promises.utimes('/ctx/bin/kubectl', new Date('2030-01-01T00:00:00Z'), new Date('2030-01-01T00:00:00Z'));
    const touched = await build(fs, '/store', { later: true });
    expect(outcomes(touched)).toEqual(['hit', 'hit', 'hit', 'hit', 'hit']);
    expect(touched.result.digest).toBe(first.result.digest);
    // The memo saw a new stamp, so it read the file again rather than trusting it.
    expect(touched.cache.stats.files.hashed).toBe(1);

    await fs.promises.chmod('/ctx/bin/kubeadm', 0o700);
    const chmodded = await build(fs, '/store', { later: true });
    expect(outcomes(chmodded)?.[0]).toBe('miss');
    expect(chmodded.result.digest).not.toBe(first.result.digest);
    expect(chmodded.result.digest).toBe(await coldDigest(fs));
  });

  test('a changed owner (--chown) or chmod in the instruction invalidates', async () => {
    const fs = await setup();
    const kubefile = (chown: string) => `FROM scratch\nCOPY ${chown} etc etc\n`;
    const a = await build(fs, '/store', { kubefile: kubefile('--chown=0:0') });
    const b = await build(fs, '/store', { kubefile: kubefile('--chown=1000:1000') });
    expect(outcomes(b)).toEqual(['miss']);
    expect(b.result.digest).not.toBe(a.result.digest);
    expect(b.result.digest).toBe(await coldDigest(fs, { kubefile: kubefile('--chown=1000:1000') }));
    const c = await build(fs, '/store', { kubefile: kubefile('--chown=1000:1000 --chmod=600') });
    expect(outcomes(c)).toEqual(['miss']);
    const again = await build(fs, '/store', { kubefile: kubefile('--chown=1000:1000') });
    expect(outcomes(again)).toEqual(['hit']);
    expect(again.result.digest).toBe(b.result.digest);
  });

  test('an owner, mode or content change in a batched edit changes the chain above it', async () => {
    const fs = await setup();
    const store = await ImageStore.open({ fs, root: '/store' });
    const make = (uid: number) =>
      ImageBuilder.from('scratch', { fs, context: '/ctx', store, platform: 'linux/amd64' })
        .file('etc/owned', 'x', { uid })
        .copy('etc', 'etc')
        .build();
    const put = async (uid: number) => (await store.put(await make(uid), `edit:${uid}`)).digest;
    const cache = BuildCache.open(store);
    const d0 = await put(0);
    const d0again = await put(0);
    expect(d0again).toBe(d0);
    const d1 = await put(1);
    expect(d1).not.toBe(d0);
    // Both were encoded from scratch in a store without a cache: the same digests.
    const plain = await ImageStore.open({ fs, root: '/plain' });
    const plainMake = (uid: number) =>
      ImageBuilder.from('scratch', { fs, context: '/ctx', store: plain, platform: 'linux/amd64', cache: false }).file('etc/owned', 'x', { uid }).copy('etc', 'etc').build();
    expect((await plain.put(await plainMake(1), 'x:1')).digest).toBe(d1);
    expect((await cache.records()).steps.length).toBe(2);
  });

  test('a deleted cache rebuilds the same digests', async () => {
    const fs = await setup();
    const first = await build(fs, '/store');
    const cache = BuildCache.open(await ImageStore.open({ fs, root: '/store' }));
    await cache.clear();
    expect(await fs.promises.readdir('/store')).not.toContain(CACHE_DIR);
    const again = await build(fs, '/store');
    expect(outcomes(again)).toEqual(['miss', 'miss', 'miss', 'miss', 'miss']);
    expect(again.result.digest).toBe(first.result.digest);
  });

  test('a corrupted cached blob (same size) is detected, rebuilt, and the store is repaired', async () => {
    const fs = await setup();
    const first = await build(fs, '/store');
    const store = await ImageStore.open({ fs, root: '/store' });
    const victim = first.result.layers[0].digest; // COPY bin
    const path = store.layout.blobPath(victim);
    const bytes = await fs.promises.readFile(path);
    bytes[bytes.length >> 1] ^= 0xff;
    await fs.promises.writeFile(path, bytes);

    const again = await build(fs, '/store');
    expect(again.cache.stats.rejected).toBe(1);
    expect(outcomes(again)?.[0]).toBe('miss');
    expect(again.result.digest).toBe(first.result.digest);
    const repaired = await fs.promises.readFile(path);
    expect('sha256:' + createHash('sha256').update(repaired).digest('hex')).toBe(victim);
  });

  test('a missing cached blob is detected and rebuilt', async () => {
    const fs = await setup();
    const first = await build(fs, '/store');
    const store = await ImageStore.open({ fs, root: '/store' });
    await store.remove('demo:v1');
    const layer = first.result.layers[4].digest;
    expect(await store.layout.has({ digest: layer, size: first.result.layers[4].size })).toBe(false);
    const again = await build(fs, '/store');
    expect(again.cache.stats.rejected).toBeGreaterThanOrEqual(1);
    expect(outcomes(again)).toEqual(['miss', 'miss', 'miss', 'miss', 'miss']);
    expect(again.result.digest).toBe(first.result.digest);
  });

  test('another compression level is another blob: the step is known, the blob is encoded', async () => {
    const fs = await setup();
    await build(fs, '/store');
    const fast = await build(fs, '/store', { level: 1 });
    expect(outcomes(fast)).toEqual(['miss', 'miss', 'miss', 'miss', 'miss']);
    expect(fast.result.digest).toBe(await coldDigest(fs, { level: 1 }));
    const fastAgain = await build(fs, '/store', { level: 1 });
    expect(outcomes(fastAgain)).toEqual(['hit', 'hit', 'hit', 'hit', 'hit']);
  });

  test('a second checkout of the same files (new stamps) hits, after hashing them', async () => {
    const fs = await setup(memfs(), '/a');
    await setup(fs, '/b');
    const a = await build(fs, '/store', { dir: '/a' });
    const b = await build(fs, '/store', { dir: '/b' });
    expect(outcomes(b)).toEqual(['hit', 'hit', 'hit', 'hit', 'hit']);
    expect(b.cache.stats.files.hashed).toBe(6);
    expect(b.result.digest).toBe(a.result.digest);
  });

  test('without a tag the digests come from the cache too, and --no-cache ignores it', async () => {
    const fs = await setup();
    const first = await build(fs, '/store');
    const store = await ImageStore.open({ fs, root: '/store' });
    const untagged = await buildImage({ context: '/ctx', fs, store, platforms: ['linux/amd64'], runExecutor: builtinRunExecutor() });
    expect(untagged.stored).toBe(false);
    expect(untagged.images[0].cache).toEqual(['hit', 'hit', 'hit', 'hit', 'hit']);
    expect(untagged.digest).toBe(first.result.digest);
    const off = await buildImage({ context: '/ctx', fs, store, tag: 'demo:v2', platforms: ['linux/amd64'], runExecutor: builtinRunExecutor(), cache: false });
    expect(off.images[0].cache).toBeUndefined();
    expect(off.digest).toBe(first.result.digest);
  });

  test('the records live under <store>/cache/v1; torn records are misses, never errors', async () => {
    const fs = await setup();
    const first = await build(fs, '/store');
    const cache = BuildCache.open(await ImageStore.open({ fs, root: '/store' }));
    const { steps, blobs } = await cache.records();
    expect(steps).toHaveLength(4);
    expect(blobs).toHaveLength(5);
    const record = (kind: string, key: string) => posix.join('/store', CACHE_DIR, 'v1', kind, key.slice(0, 2), `${key}.json`);
    // Without step records, layers are still found by diff_id (their tar hashed, not compressed).
    for (const s of steps) await fs.promises.writeFile(record('steps', s.key), '{"version":1,"key":');
    const again = await build(fs, '/store');
    expect(outcomes(again)).toEqual(['hit', 'hit', 'hit', 'hit', 'hit']);
    expect(again.cache.stats.stepHits).toBe(0);
    expect(again.cache.stats.blobHits).toBe(5);
    // …and the step records are written again.
    expect((await cache.records()).steps).toHaveLength(4);
    // Without blob records nothing can be reused.
    for (const b of blobs) await fs.promises.writeFile(record('blobs', b.key), 'not json');
    const third = await build(fs, '/store');
    expect(outcomes(third)).toEqual(['miss', 'miss', 'miss', 'miss', 'miss']);
    expect(third.result.digest).toBe(first.result.digest);
  });
});
