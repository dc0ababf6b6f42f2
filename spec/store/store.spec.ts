import { execFile } from 'node:child_process';
import * as nodeFs from 'node:fs';
import { tmpdir, hostname } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Volume, createFsFromVolume } from 'memfs';
import { FileSystem, diskFs } from '../../lib/fs';
import { Image, ImageIndex } from '../../lib/image/image';
import { Layer } from '../../lib/layer/layer';
import { ImageStore, defaultStoreRoot } from '../../lib/store';
import { withLock } from '../../lib/store/lock';
import { readOciLayout } from '../../lib/formats/layout';

const execFileAsync = promisify(execFile);

function memfs(): FileSystem {
  return createFsFromVolume(new Volume()) as unknown as FileSystem;
}

function image(text: string, arch = 'amd64'): Image {
  return Image.empty({ os: 'linux', architecture: arch })
    .withLayer(Layer.empty().withFile('etc/shared', 'shared\n'))
    .withLayer(Layer.empty().withFile('etc/own', text));
}

async function blobNames(fs: FileSystem, root: string): Promise<string[]> {
  return (await fs.promises.readdir(join(root, 'blobs', 'sha256'))).sort();
}

describe('ImageStore', () => {
  test('default root: $CLOUDROOTFS_STORE, then $XDG_DATA_HOME, then ~/.local/share', () => {
    expect(defaultStoreRoot({ CLOUDROOTFS_STORE: '/s', XDG_DATA_HOME: '/x', HOME: '/h' })).toBe('/s');
    expect(defaultStoreRoot({ XDG_DATA_HOME: '/x', HOME: '/h' })).toBe('/x/cloudrootfs/store');
    expect(defaultStoreRoot({ HOME: '/h' })).toBe('/h/.local/share/cloudrootfs/store');
  });

  test('put, lookup by familiar name, full name, digest, ID prefix; names normalized', async () => {
    const fs = memfs();
    const store = await ImageStore.open({ fs, root: '/store' });
    const d = await store.put(image('a'), 'kubernetes:v1.19.9');
    expect(await store.has('kubernetes:v1.19.9')).toBe(true);
    expect(await store.has('docker.io/library/kubernetes:v1.19.9')).toBe(true);
    expect(await store.has('index.docker.io/library/kubernetes:v1.19.9')).toBe(true);
    expect(await store.has('kubernetes')).toBe(false); // :latest
    expect(await store.has(d.digest)).toBe(true);
    expect(await store.has(`kubernetes@${d.digest}`)).toBe(true);
    const [entry] = await store.list();
    expect(entry).toMatchObject({
      name: 'docker.io/library/kubernetes',
      tag: 'v1.19.9',
      reference: 'docker.io/library/kubernetes:v1.19.9',
      familiar: 'kubernetes:v1.19.9',
      digest: d.digest,
      platforms: [{ os: 'linux', architecture: 'amd64' }],
    });
    expect(entry.id).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(entry.id).not.toBe(d.digest); // the ID is the config digest
    expect(await store.has(entry.id.slice(7, 19))).toBe(true);
    expect(entry.size).toBeGreaterThan(0);
    const loaded = await store.loadImage('kubernetes:v1.19.9');
    expect(await (await loaded.flatten()).readText('etc/own')).toBe('a');
    // index.json holds the full name in both annotations (see docs/store.md).
    const index = JSON.parse(await fs.promises.readFile('/store/index.json', 'utf8'));
    expect(index.manifests[0].annotations).toEqual({
      'io.containerd.image.name': 'docker.io/library/kubernetes:v1.19.9',
      'org.opencontainers.image.ref.name': 'docker.io/library/kubernetes:v1.19.9',
    });
    // The store is a plain OCI layout: readOciLayout finds images by full name.
    expect(await readOciLayout('/store', { fs, ref: 'docker.io/library/kubernetes:v1.19.9' })).toBeInstanceOf(Image);
    // Absent images are typed errors.
    await expect(store.loadTarget('nope:v1')).rejects.toMatchObject({ code: 'IMAGE_NOT_FOUND' });
    await expect(store.loadTarget('UPPER')).rejects.toMatchObject({ code: 'INVALID_REFERENCE' });
  });

  test('the same tag in two repositories does not collide; re-put replaces the tag', async () => {
    const store = await ImageStore.open({ fs: memfs(), root: '/s' });
    await store.put(image('a'), 'a:v1');
    await store.put(image('b'), 'b:v1');
    await store.put(image('c'), 'quay.io/org/a:v1');
    expect((await store.list()).map((e) => e.reference)).toEqual([
      'docker.io/library/a:v1',
      'docker.io/library/b:v1',
      'quay.io/org/a:v1',
    ]);
    await store.put(image('a2'), 'a:v1');
    const list = await store.list();
    expect(list).toHaveLength(3);
    expect(await (await (await store.loadImage('a:v1')).flatten()).readText('etc/own')).toBe('a2');
  });

  test('tag and rmi: blobs are shared and collected only when nothing uses them', async () => {
    const fs = memfs();
    const store = await ImageStore.open({ fs, root: '/s' });
    await store.put(image('a'), 'a:v1');
    const before = await blobNames(fs, '/s');
    await store.put(image('b'), 'b:v1');
    const afterB = await blobNames(fs, '/s');
    // Shared layer stored once: b adds its own layer, config and manifest.
    expect(afterB.length).toBe(before.length + 3);
    await store.tag('a:v1', 'a:copy');
    expect((await store.resolve('a:copy')).digest).toBe((await store.resolve('a:v1')).digest);
    expect((await store.remove('a:v1')).removedBlobs).toBe(0); // a:copy still uses them
    const r = await store.remove('a:copy');
    expect(r).toEqual({ removedBlobs: 3, untagged: ['docker.io/library/a:copy'] });
    // What is left is exactly b's blobs: the shared layer plus b's own three.
    const left = await blobNames(fs, '/s');
    expect(left.length).toBe(before.length);
    expect(left.every((n) => afterB.includes(n))).toBe(true);
    expect(await (await (await store.loadImage('b:v1')).flatten()).readText('etc/shared')).toBe('shared\n');
    // rmi by ID removes every tag of the image.
    await store.tag('b:v1', 'b:v2');
    const id = (await store.list())[0].id;
    expect((await store.remove(id.slice(7, 19))).untagged.sort()).toEqual(['docker.io/library/b:v1', 'docker.io/library/b:v2']);
    expect(await blobNames(fs, '/s')).toEqual([]);
    await expect(store.remove('b:v1')).rejects.toMatchObject({ code: 'IMAGE_NOT_FOUND' });
  });

  test('multi-platform indexes: one tag, platform chosen on load', async () => {
    const store = await ImageStore.open({ fs: memfs(), root: '/s' });
    await store.put(ImageIndex.of([image('amd', 'amd64'), image('arm', 'arm64')]), 'multi:v1');
    const [entry] = await store.list();
    expect(entry.platforms.map((p) => p.architecture)).toEqual(['amd64', 'arm64']);
    expect(entry.id).toBe(entry.digest);
    const arm = await store.loadImage('multi:v1', { os: 'linux', architecture: 'arm64' });
    expect(await (await arm.flatten()).readText('etc/own')).toBe('arm');
    await expect(store.loadImage('multi:v1', { os: 'linux', architecture: 's390x' })).rejects.toMatchObject({ code: 'PLATFORM_NOT_FOUND' });
  });

  test('gc sweeps leftovers of dead writers and keeps those of live ones', async () => {
    const fs = memfs();
    const store = await ImageStore.open({ fs, root: '/s' });
    await store.put(image('a'), 'a:v1');
    const deadPid = 2 ** 22 + 12345; // above pid_max on Linux: never alive
    await fs.promises.writeFile(`/s/blobs/sha256/.tmp-layer-${deadPid}-0123456789ab`, 'partial');
    await fs.promises.writeFile(`/s/.tmp-index.json-${deadPid}-0123456789ab`, 'partial');
    await fs.promises.writeFile(`/s/blobs/sha256/.tmp-layer-${process.pid}-0123456789ab`, 'in progress');
    await fs.promises.writeFile(`/s/blobs/sha256/${'0'.repeat(64)}`, 'orphan');
    await fs.promises.mkdir('/s/cache/keep', { recursive: true });
    const r = await store.gc();
    expect(r).toMatchObject({ removedBlobs: 1, removedTemp: 2, incomplete: false });
    const names = await fs.promises.readdir('/s/blobs/sha256');
    expect(names).toContain(`.tmp-layer-${process.pid}-0123456789ab`);
    expect(names).not.toContain('0'.repeat(64));
    expect(await fs.promises.readdir('/s/cache')).toEqual(['keep']);
    expect(await store.has('a:v1')).toBe(true);
  });

  test('the lock: serializes in-process callers, breaks a dead holder\'s lock, times out on a live one', async () => {
    const fs = memfs();
    await fs.promises.mkdir('/l');
    const order: string[] = [];
    await Promise.all(
      ['a', 'b', 'c'].map((n) =>
        withLock(fs, '/l/lock', async () => {
          order.push(`${n}+`);
          await new Promise((r) => setTimeout(r, 5));
          order.push(`${n}-`);
        }),
      ),
    );
    expect(order).toEqual(['a+', 'a-', 'b+', 'b-', 'c+', 'c-']);
    // A lock left by a dead process is taken over.
    await fs.promises.writeFile('/l/lock', JSON.stringify({ pid: 2 ** 22 + 1, host: hostname(), nonce: 'x', time: Date.now() }));
    expect(await withLock(fs, '/l/lock', async () => 'ran')).toBe('ran');
    await expect(fs.promises.stat('/l/lock')).rejects.toMatchObject({ code: 'ENOENT' });
    // A lock held by a live process (our parent) is waited for, then given up.
    await fs.promises.writeFile('/l/lock', JSON.stringify({ pid: process.ppid, host: hostname(), nonce: 'y', time: Date.now() }));
    await expect(withLock(fs, '/l/lock', async () => 'ran', { timeoutMs: 100 })).rejects.toMatchObject({ code: 'LOCK_TIMEOUT' });
    // …unless it is older than staleMs.
    expect(await withLock(fs, '/l/lock', async () => 'ran', { staleMs: 0 })).toBe('ran');
  });
});

describe('two processes writing the store at once', () => {
  let root: string;
  beforeAll(() => {
    root = nodeFs.mkdtempSync(join(tmpdir(), 'crfs-store-'));
  });
  afterAll(() => nodeFs.rmSync(root, { recursive: true, force: true }));

  test('lose no tag and corrupt no blob', async () => {
    const count = 25;
    const runner = join(__dirname, 'fixtures', 'run-ts.js');
    const script = join(__dirname, 'fixtures', 'tagger.ts');
    const started = Date.now();
    const [p, q] = await Promise.all(
      ['p', 'q'].map((prefix) => execFileAsync(process.execPath, [runner, script, root, prefix, String(count)], { maxBuffer: 1 << 20 })),
    );
    const elapsed = Date.now() - started;
    expect(p.stdout.trim().split('\n')).toHaveLength(count);
    expect(q.stdout.trim().split('\n')).toHaveLength(count);
    const store = await ImageStore.open({ root });
    const refs = new Set((await store.list()).map((e) => e.familiar));
    for (const prefix of ['p', 'q']) {
      for (let i = 0; i < count; i++) {
        expect(refs.has(`${prefix}-${i}:v1`)).toBe(true);
        const hasExtra = i % 2 === 0 && i % 5 !== 4;
        expect(refs.has(`${prefix}-${i}:extra`)).toBe(hasExtra);
      }
    }
    expect(refs.size).toBe(2 * count + 2 * [...Array(count).keys()].filter((i) => i % 2 === 0 && i % 5 !== 4).length);
    // Every blob is intact (its bytes hash to its name) and every image reads back.
    for (const name of await blobNames(diskFs, root)) {
      expect(name).toMatch(/^[0-9a-f]{64}$/);
      const bytes = nodeFs.readFileSync(join(root, 'blobs', 'sha256', name));
      expect(require('node:crypto').createHash('sha256').update(bytes).digest('hex')).toBe(name);
    }
    for (const prefix of ['p', 'q']) {
      const img = await store.loadImage(`${prefix}-7:v1`);
      expect(await (await img.flatten()).readText(`own/${prefix}-7`)).toBe(`${prefix} 7\n`);
    }
    // Nothing referenced is missing and nothing unreferenced is left: a gc removes nothing.
    expect(await store.gc()).toMatchObject({ removedBlobs: 0, incomplete: false });
    expect(nodeFs.readdirSync(root).filter((n) => n.startsWith('.tmp-') || n.endsWith('.lock'))).toEqual([]);
    // eslint-disable-next-line no-console
    console.log(`two processes stored ${2 * count} images (+tags, removals, GCs) in ${elapsed} ms`);
  }, 120_000);
});
