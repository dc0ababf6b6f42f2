/**
 * Store garbage collection (lib/store/gc.ts) on its own: what it keeps (everything index.json
 * reaches, through nested indexes; anything it does not own), what it removes (unreferenced blobs,
 * temporary files of dead or day-old writers, stale lock leftovers), that it sweeps no blob when
 * reachability is unknown, and the documented safety against a writer between storing its blobs
 * and tagging them (ImageStore.put writes again what a collection swept).
 */
import { createHash } from 'node:crypto';
import { Volume, createFsFromVolume } from 'memfs';
import { FileSystem } from '../../lib/fs';
import { Image, ImageIndex } from '../../lib/image/image';
import { Layer } from '../../lib/layer/layer';
import { MEDIA_TYPES } from '../../lib/media-types';
import { ImageStore, collectGarbage } from '../../lib/store';
import { OciLayout } from '../../lib/formats/layout';

const ROOT = '/s';
const BLOBS = `${ROOT}/blobs/sha256`;
const DEAD_PID = 2 ** 22 + 12345; // above Linux's pid_max: never alive
const hex = (b: string | Buffer) => createHash('sha256').update(b).digest('hex');

function memfs(): FileSystem {
  return createFsFromVolume(new Volume()) as unknown as FileSystem;
}

function image(own: string, arch = 'amd64'): Image {
  return Image.empty({ os: 'linux', architecture: arch })
    .withLayer(Layer.empty().withFile('etc/shared', 'shared\n'))
    .withLayer(Layer.empty().withFile('etc/own', own));
}

async function blobs(fs: FileSystem, dir = BLOBS): Promise<string[]> {
  return (await fs.promises.readdir(dir)).sort();
}

/** Every blob an image in the store needs, read from the documents themselves. */
async function referenced(fs: FileSystem): Promise<string[]> {
  const out = new Set<string>();
  const visit = async (digest: string): Promise<void> => {
    const h = digest.slice('sha256:'.length);
    out.add(h);
    const doc = JSON.parse(await fs.promises.readFile(`${BLOBS}/${h}`, 'utf8'));
    if (doc.config) out.add(doc.config.digest.slice(7));
    for (const l of doc.layers ?? []) out.add(l.digest.slice(7));
    for (const m of doc.manifests ?? []) await visit(m.digest);
  };
  const index = JSON.parse(await fs.promises.readFile(`${ROOT}/index.json`, 'utf8'));
  for (const m of index.manifests) await visit(m.digest);
  return [...out].sort();
}

async function storeWith(fs: FileSystem): Promise<ImageStore> {
  const store = await ImageStore.open({ fs, root: ROOT });
  await store.put(image('a'), 'a:v1');
  await store.put(ImageIndex.of([image('m-amd', 'amd64'), image('m-arm', 'arm64')]), 'multi:v1');
  return store;
}

describe('collectGarbage: what it keeps and what it removes', () => {
  test('keeps every blob index.json reaches (nested indexes included) and removes the rest, counting bytes', async () => {
    const fs = memfs();
    const store = await storeWith(fs);
    const needed = await referenced(fs);
    expect(await blobs(fs)).toEqual(needed);
    // Orphans: a blob nothing lists, and the blobs of an image whose tag was dropped by hand.
    await fs.promises.writeFile(`${BLOBS}/${hex('orphan')}`, 'orphan');
    const dropped = await store.put(image('dropped'), 'dropped:v1');
    const index = JSON.parse(await fs.promises.readFile(`${ROOT}/index.json`, 'utf8'));
    index.manifests = index.manifests.filter((m: { digest: string }) => m.digest !== dropped.digest);
    await fs.promises.writeFile(`${ROOT}/index.json`, JSON.stringify(index));
    const extra = (await blobs(fs)).filter((b) => !needed.includes(b));
    expect(extra.length).toBe(1 + 3); // the orphan; dropped's manifest, config and own layer
    let extraBytes = 0;
    for (const b of extra) extraBytes += (await fs.promises.stat(`${BLOBS}/${b}`)).size;

    const result = await store.gc();
    expect(result).toEqual({ removedBlobs: 4, removedBytes: extraBytes, removedTemp: 0, incomplete: false });
    expect(await blobs(fs)).toEqual(needed);
    // What is kept still reads: every platform of the index, every layer.
    const arm = await store.loadImage('multi:v1', { os: 'linux', architecture: 'arm64' });
    expect(await (await arm.flatten()).readText('etc/own')).toBe('m-arm');
    // A second collection finds nothing.
    expect(await store.gc()).toEqual({ removedBlobs: 0, removedBytes: 0, removedTemp: 0, incomplete: false });
  });

  test('keeps what it does not own: odd names, directories, other algorithms, other top-level files', async () => {
    const fs = memfs();
    const store = await storeWith(fs);
    const before = await blobs(fs);
    const kept = [
      `${BLOBS}/README`,
      `${BLOBS}/${hex('x').toUpperCase()}`, // not lowercase hex: not a blob name
      `${BLOBS}/${hex('x').slice(0, 63)}`, // too short
      `${BLOBS}/.tmp-no-pid-in-this-name`, // a temp name that carries no writer: not ours to judge
      `${ROOT}/blobs/blake3/${hex('x')}`, // an algorithm gc does not sweep
      `${ROOT}/cache/steps/record.json`,
      `${ROOT}/notes.txt`,
    ];
    for (const p of kept) {
      await fs.promises.mkdir(p.slice(0, p.lastIndexOf('/')), { recursive: true });
      await fs.promises.writeFile(p, 'x');
    }
    await fs.promises.mkdir(`${BLOBS}/${hex('a directory')}`); // a hex name that is no file
    expect(await store.gc()).toMatchObject({ removedBlobs: 0, removedTemp: 0, incomplete: false });
    for (const p of kept) expect(await fs.promises.readFile(p, 'utf8')).toBe('x');
    expect((await fs.promises.stat(`${BLOBS}/${hex('a directory')}`)).isDirectory()).toBe(true);
    expect((await blobs(fs)).filter((b) => before.includes(b))).toEqual(before);
  });

  test('sha512 blobs are swept like sha256 ones', async () => {
    const fs = memfs();
    const store = await storeWith(fs);
    await fs.promises.mkdir(`${ROOT}/blobs/sha512`);
    const name = createHash('sha512').update('orphan').digest('hex');
    await fs.promises.writeFile(`${ROOT}/blobs/sha512/${name}`, 'orphan');
    expect(await store.gc()).toMatchObject({ removedBlobs: 1, removedBytes: 6 });
    expect(await blobs(fs, `${ROOT}/blobs/sha512`)).toEqual([]);
  });

  test('temporary files: dead writers\' and day-old ones go, a live writer\'s recent ones stay', async () => {
    const fs = memfs();
    const store = await storeWith(fs);
    const gone = [
      `${BLOBS}/.tmp-layer-${DEAD_PID}-0123456789ab`,
      `${ROOT}/.tmp-index.json-${DEAD_PID}-0123456789ab`,
      `${ROOT}/index.lock.stale-${DEAD_PID}-0123456789ab`, // what a lock breaker that died leaves
      `${BLOBS}/.tmp-old-${process.pid}-0123456789ab`, // ours, but a day old: whoever wrote it is gone
    ];
    const stay = [`${BLOBS}/.tmp-layer-${process.pid}-0123456789ab`, `${ROOT}/.tmp-x-${process.ppid}-0123456789ab`];
    for (const p of [...gone, ...stay]) await fs.promises.writeFile(p, 'partial');
    // A dead writer's temporary directory (a layout being built) goes too, contents and all.
    await fs.promises.mkdir(`${ROOT}/.tmp-dir-${DEAD_PID}-0123456789ab/sub`, { recursive: true });
    await fs.promises.writeFile(`${ROOT}/.tmp-dir-${DEAD_PID}-0123456789ab/sub/f`, 'x');
    const dayAgo = (Date.now() - 25 * 3600_000) / 1000;
    await fs.promises.utimes(`${BLOBS}/.tmp-old-${process.pid}-0123456789ab`, dayAgo, dayAgo);

    expect(await store.gc()).toMatchObject({ removedBlobs: 0, removedTemp: gone.length + 1, incomplete: false });
    for (const p of gone) await expect(fs.promises.stat(p)).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(fs.promises.stat(`${ROOT}/.tmp-dir-${DEAD_PID}-0123456789ab`)).rejects.toMatchObject({ code: 'ENOENT' });
    for (const p of stay) expect(await fs.promises.readFile(p, 'utf8')).toBe('partial');
  });

  test.each([
    ['a manifest blob is missing', async (fs: FileSystem, manifest: string) => fs.promises.unlink(`${BLOBS}/${manifest}`)],
    ['a manifest blob is not JSON', async (fs: FileSystem, manifest: string) => fs.promises.writeFile(`${BLOBS}/${manifest}`, '{not json')],
    ['a manifest blob is JSON null', async (fs: FileSystem, manifest: string) => fs.promises.writeFile(`${BLOBS}/${manifest}`, 'null')],
  ])('reachability unknown (%s): no blob is swept, leftovers of dead writers still are', async (_, damage) => {
    const fs = memfs();
    const store = await storeWith(fs);
    const top = (await store.resolve('a:v1')).digest.slice(7);
    await damage(fs, top);
    const orphan = `${BLOBS}/${hex('orphan')}`;
    await fs.promises.writeFile(orphan, 'orphan');
    await fs.promises.writeFile(`${BLOBS}/.tmp-layer-${DEAD_PID}-0123456789ab`, 'partial');
    const before = await blobs(fs);
    expect(await store.gc()).toEqual({ removedBlobs: 0, removedBytes: 0, removedTemp: 1, incomplete: true });
    expect(await blobs(fs)).toEqual(before.filter((b) => !b.startsWith('.tmp-')));
  });

  test('an index nested deeper than any reader follows makes reachability unknown', async () => {
    const fs = memfs();
    const store = await storeWith(fs);
    const layout = await OciLayout.open(fs, ROOT);
    // 18 levels of index above a.v1's manifest, the top one listed in index.json.
    let child = await store.resolve('a:v1');
    for (let i = 0; i < 18; i++) {
      const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.index, manifests: [{ mediaType: child.mediaType, digest: child.digest, size: child.size }] }));
      await fs.promises.writeFile(`${BLOBS}/${hex(bytes)}`, bytes);
      child = { mediaType: MEDIA_TYPES.index, digest: `sha256:${hex(bytes)}`, size: bytes.length };
    }
    const index = await layout.readIndex();
    await layout.writeIndex({ ...index, manifests: [child] });
    await fs.promises.writeFile(`${BLOBS}/${hex('orphan')}`, 'orphan');
    expect(await collectGarbage(layout)).toMatchObject({ removedBlobs: 0, incomplete: true });
    expect(await blobs(fs)).toContain(hex('orphan'));
  });

  test('a store with no blobs directory for an algorithm, or none at all, collects without error', async () => {
    const fs = memfs();
    const store = await ImageStore.open({ fs, root: ROOT });
    await fs.promises.rmdir(BLOBS);
    expect(await store.gc()).toEqual({ removedBlobs: 0, removedBytes: 0, removedTemp: 0, incomplete: false });
  });
});

describe('collection racing a writer (ImageStore.put)', () => {
  /**
   * A filesystem that runs a collection each time a blob lands under its final name, while the
   * writer has not tagged it yet: the worst moment, made certain instead of left to timing.
   */
  function sweepingFs(collections: number): { fs: FileSystem; bind: (store: ImageStore) => void; swept: () => number } {
    const inner = memfs();
    let store: ImageStore | undefined;
    let left = collections;
    let swept = 0;
    const promises = new Proxy(inner.promises, {
      get(target, prop, receiver) {
        if (prop !== 'rename') return Reflect.get(target, prop, receiver);
        return async (from: string, to: string) => {
          await target.rename(from, to);
          if (store && left > 0 && /\/blobs\/sha256\/[0-9a-f]{64}$/.test(to)) {
            left--;
            swept += (await store.gc()).removedBlobs;
          }
        };
      },
    });
    const fs = new Proxy(inner, { get: (target, prop, receiver) => (prop === 'promises' ? promises : Reflect.get(target, prop, receiver)) });
    return { fs, bind: (s) => (store = s), swept: () => swept };
  }

  test('a blob collected before its image is tagged is written again; the image is whole', async () => {
    const { fs, bind, swept } = sweepingFs(2);
    const store = await ImageStore.open({ fs, root: ROOT });
    bind(store);
    await store.put(image('raced'), 'raced:v1');
    expect(swept()).toBeGreaterThan(0); // the race happened: a collection took blobs of the writer
    expect(await blobs(fs)).toEqual(await referenced(fs));
    expect(await (await (await store.loadImage('raced:v1')).flatten()).readText('etc/own')).toBe('raced');
    expect(await store.gc()).toMatchObject({ removedBlobs: 0, incomplete: false });
  });

  test('a writer whose blobs keep being collected gives up with LOCK_TIMEOUT after three attempts, leaving no tag', async () => {
    const { fs, bind } = sweepingFs(Infinity);
    const store = await ImageStore.open({ fs, root: ROOT });
    await store.put(image('kept'), 'kept:v1');
    bind(store);
    await expect(store.put(image('starved'), 'starved:v1')).rejects.toMatchObject({ code: 'LOCK_TIMEOUT' });
    expect((await store.list()).map((e) => e.familiar)).toEqual(['kept:v1']);
    expect(await (await (await store.loadImage('kept:v1')).flatten()).readText('etc/own')).toBe('kept');
  });
});
