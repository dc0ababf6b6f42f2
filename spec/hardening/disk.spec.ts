/**
 * What the disk does to writes: owners and setuid bits on export as root, a full or read-only
 * filesystem under the store and under an export or save destination (a real tmpfs of a few
 * MiB), paths that are not what a command needs, and the user's own files next to a destination
 * that look like our temporary files.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as nodeFs from 'node:fs';
import { join } from 'node:path';
import { CloudRootfsError } from '../../lib/errors';
import { diskFs } from '../../lib/fs';
import { Image } from '../../lib/image/image';
import { Layer } from '../../lib/layer/layer';
import { readRootfsFromDirectory, writeRootfsToDirectory } from '../../lib/rootfs/io';
import { Rootfs } from '../../lib/rootfs/rootfs';
import { ImageStore } from '../../lib/store';
import { scratchDir } from '../support/umoci';
import { isRoot, requireRoot } from '../support/tools';
import { cli, expectCode, leftovers, outcome } from './support';

/** An image whose layer does not compress below 64 KiB (more than the room left on a full disk). */
const image = (marker = 'a') =>
  Image.empty({ os: 'linux', architecture: 'amd64' }).withLayer(Layer.fromRootfs(Rootfs.empty().withFile('etc/marker', marker).withFile('bin/tool', randomBytes(64 << 10))));

/** A typed error whose message names `path` and never one of our temporary names. */
function expectNamed(result: unknown, code: string, path: string): void {
  expectCode(result, code, `a typed ${code} naming ${path}`);
  const err = result as CloudRootfsError;
  expect(err.message).toContain(path);
  expect(err.message).not.toContain('.tmp-');
  expect(JSON.stringify(err.details)).not.toContain('.tmp-');
}

describe('export as root keeps setuid and setgid (owner first, then mode, as tar -xp)', () => {
  const special = Rootfs.empty()
    .withFile('bin/su', 'su', { mode: 0o4755, uid: 1000, gid: 1000 })
    .withFile('bin/wall', 'wall', { mode: 0o2755, uid: 0, gid: 5 })
    .withFile('bin/both', 'both', { mode: 0o6750, uid: 7, gid: 8 })
    .withDirectory('shared', { mode: 0o2775, uid: 1000, gid: 1000 })
    .withFile('shared/f', 'f', { mode: 0o640, uid: 1000, gid: 1000 })
    .withDirectory('tmp', { mode: 0o1777 })
    .withSymlink('bin/link', 'su', { uid: 1000, gid: 1000 });

  const expected: Record<string, [number, number, number]> = {
    'bin/su': [0o4755, 1000, 1000],
    'bin/wall': [0o2755, 0, 5],
    'bin/both': [0o6750, 7, 8],
    shared: [0o2775, 1000, 1000],
    'shared/f': [0o640, 1000, 1000],
    tmp: [0o1777, 0, 0],
  };

  function check(out: string): void {
    for (const [path, [mode, uid, gid]] of Object.entries(expected)) {
      const st = nodeFs.lstatSync(join(out, path));
      expect([path, (st.mode & 0o7777).toString(8), st.uid, st.gid]).toEqual([path, mode.toString(8), uid, gid]);
    }
    const link = nodeFs.lstatSync(join(out, 'bin/link'));
    expect([link.uid, link.gid]).toEqual([1000, 1000]);
  }

  test('writeRootfsToDirectory and `cloudrootfs export`', async () => {
    if (!requireRoot('owners are applied only as root')) return;
    const dir = scratchDir('crfs-setuid-');
    try {
      await writeRootfsToDirectory(special, join(dir, 'api'), { fs: diskFs });
      check(join(dir, 'api'));
      // Read back as it is on disk: the same modes and owners.
      const back = await readRootfsFromDirectory(join(dir, 'api'), { fs: diskFs });
      expect(back.get('bin/su')).toMatchObject({ mode: 0o4755, uid: 1000 });

      const store = await ImageStore.open({ fs: diskFs, root: join(dir, 'store') });
      await store.put(Image.empty({ os: 'linux', architecture: 'amd64' }).withLayer(Layer.fromRootfs(special)), 'special:v1');
      const r = await cli(['export', 'special:v1', join(dir, 'cli'), '--store', join(dir, 'store')], diskFs);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      check(join(dir, 'cli'));
    } finally {
      nodeFs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** Mounts a tmpfs of `bytes` at a fresh directory (root only); `fill` uses up every free page. */
class SmallFilesystem {
  readonly dir = scratchDir('crfs-small-fs-');
  private readonly filler = join(this.dir, 'filler');

  constructor(bytes: number) {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', this.dir]);
  }

  /** Write the filler until the filesystem is full, then give back `spareBytes` (whole pages). */
  fill(spareBytes = 0): void {
    const fd = nodeFs.openSync(this.filler, 'w');
    const page = Buffer.alloc(4096, 0x55);
    try {
      for (;;) nodeFs.writeSync(fd, page);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
    } finally {
      nodeFs.closeSync(fd);
    }
    if (spareBytes > 0) nodeFs.truncateSync(this.filler, Math.max(0, nodeFs.statSync(this.filler).size - spareBytes));
  }

  free(): void {
    nodeFs.rmSync(this.filler, { force: true });
  }

  readOnly(on: boolean): void {
    execFileSync('mount', ['-o', `remount,${on ? 'ro' : 'rw'}`, this.dir]);
  }

  unmount(): void {
    execFileSync('umount', [this.dir]);
    nodeFs.rmSync(this.dir, { recursive: true, force: true });
  }
}

describe('a full or read-only filesystem', () => {
  let small: SmallFilesystem | undefined;
  beforeEach(() => {
    if (isRoot()) small = new SmallFilesystem(4 << 20);
  });
  afterEach(() => {
    small?.unmount();
    small = undefined;
  });

  test('tag and rmi: NO_SPACE naming the store, the lock taken back, and the next writer goes straight on', async () => {
    if (!requireRoot('mounts a small tmpfs')) return;
    const fsys = small!;
    const root = join(fsys.dir, 'store');
    // A short lock timeout: a lock left behind would make the later writes fail, not wait 30 s.
    const store = await ImageStore.open({ fs: diskFs, root, lock: { timeoutMs: 2000 } });
    await store.put(image(), 'a:v1');
    const indexBefore = nodeFs.readFileSync(join(root, 'index.json'));

    // Not a page left: the lock file is created, its holder cannot be written.
    fsys.fill();
    expectNamed(await outcome(() => store.tag('a:v1', 'b:v1')), 'NO_SPACE', root);
    expectNamed(await outcome(() => store.remove('a:v1')), 'NO_SPACE', root);
    const tag = await cli(['tag', 'a:v1', 'c:v1', '--store', root], diskFs);
    expect(tag.code).toBe(1);
    expect(tag.stderr).toMatch(/\[NO_SPACE\]\n$/);
    expect(tag.stderr).toContain(root);
    expect(tag.stderr).not.toContain('.tmp-');
    expect(leftovers(root)).toEqual([]);

    // One page left: the lock is taken, index.json cannot be written.
    fsys.free();
    fsys.fill(4096);
    expectNamed(await outcome(() => store.tag('a:v1', 'b:v1')), 'NO_SPACE', join(root, 'index.json'));
    const rmi = await cli(['rmi', 'a:v1', '--store', root], diskFs);
    expect(rmi.code).toBe(1);
    expect(rmi.stderr).toMatch(/\[NO_SPACE\]\n$/);
    expect(rmi.stderr).not.toContain('.tmp-');
    expect(leftovers(root)).toEqual([]);
    expect(nodeFs.readFileSync(join(root, 'index.json')).equals(indexBefore)).toBe(true);

    // Space again: the next writers neither wait for a stale lock nor find anything broken.
    fsys.free();
    await store.tag('a:v1', 'b:v1');
    await store.remove('a:v1');
    expect((await store.list()).map((e) => e.familiar)).toEqual(['b:v1']);
    expect(leftovers(root)).toEqual([]);
  });

  test('a read-only filesystem: READ_ONLY_FILESYSTEM naming the store', async () => {
    if (!requireRoot('mounts a small tmpfs')) return;
    const fsys = small!;
    const root = join(fsys.dir, 'store');
    const store = await ImageStore.open({ fs: diskFs, root, lock: { timeoutMs: 2000 } });
    await store.put(image(), 'a:v1');
    fsys.readOnly(true);
    try {
      expectNamed(await outcome(() => store.tag('a:v1', 'b:v1')), 'READ_ONLY_FILESYSTEM', root);
      const r = await cli(['export', 'a:v1', join(fsys.dir, 'out'), '--store', root], diskFs);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/\[READ_ONLY_FILESYSTEM\]\n$/);
      expect(r.stderr).toContain(join(fsys.dir, 'out'));
    } finally {
      fsys.readOnly(false);
    }
    expect(leftovers(root)).toEqual([]);
  });

  test('export and save into a full filesystem: NO_SPACE naming the destination, nothing left behind', async () => {
    if (!requireRoot('mounts a small tmpfs')) return;
    const fsys = small!;
    const storeDir = scratchDir('crfs-full-store-');
    try {
      const store = await ImageStore.open({ fs: diskFs, root: storeDir });
      await store.put(image(), 'a:v1');
      fsys.fill(4096);
      const out = join(fsys.dir, 'out');
      expectNamed(await outcome(async () => writeRootfsToDirectory(await (await store.loadImage('a:v1')).flatten(), out, { fs: diskFs })), 'NO_SPACE', out);
      const exported = await cli(['export', 'a:v1', out, '--store', storeDir], diskFs);
      expect(exported.code).toBe(1);
      expect(exported.stderr).toMatch(/\[NO_SPACE\]\n$/);
      expect(exported.stderr).toContain(out);
      expect(exported.stderr).not.toContain('.tmp-');

      fsys.free();
      fsys.fill(4096);
      const archive = join(fsys.dir, 'a.tar');
      const saved = await cli(['save', 'a:v1', '-o', archive, '--store', storeDir], diskFs);
      expect(saved.code).toBe(1);
      expect(saved.stderr).toMatch(/\[NO_SPACE\]\n$/);
      expect(saved.stderr).toContain(archive);
      expect(saved.stderr).not.toContain('.tmp-');
      expect(nodeFs.readdirSync(fsys.dir)).toEqual(['filler']);
    } finally {
      nodeFs.rmSync(storeDir, { recursive: true, force: true });
    }
  });
  test('load into a store on a full filesystem: NO_SPACE, the store as it was, no blob cut short', async () => {
    if (!requireRoot('mounts a small tmpfs')) return;
    const fsys = small!;
    const root = join(fsys.dir, 'store');
    const other = scratchDir('crfs-full-src-');
    try {
      const store = await ImageStore.open({ fs: diskFs, root, lock: { timeoutMs: 2000 } });
      await store.put(image('first'), 'first:v1');
      const src = await ImageStore.open({ fs: diskFs, root: join(other, 'store') });
      await src.put(image('second'), 'second:v1');
      const archive = join(other, 'second.tar');
      expect((await cli(['save', 'second:v1', '-o', archive, '--store', join(other, 'store')], diskFs)).code).toBe(0);
      const before = snapshotNames(root);
      fsys.fill(8192);
      const loaded = await cli(['load', archive, '--store', root], diskFs);
      expect(loaded.code).toBe(1);
      expect(loaded.stderr).toMatch(/\[NO_SPACE\]\n$/);
      expect(loaded.stderr).toContain(root);
      expect(loaded.stderr).not.toContain('.tmp-');
      expect(snapshotNames(root)).toEqual(before);
      fsys.free();
      // Every blob the store names is whole: it reads and verifies.
      for (const e of await store.list()) expect(e.broken).toBeUndefined();
      expect((await cli(['load', archive, '--store', root], diskFs)).code).toBe(0);
      expect(await (await (await store.loadImage('second:v1')).flatten()).readText('etc/marker')).toBe('second');
    } finally {
      nodeFs.rmSync(other, { recursive: true, force: true });
    }
  });
});

/** Every path under `root` with its size (what a failed write must not change). */
function snapshotNames(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of nodeFs.readdirSync(dir).sort()) {
      const p = join(dir, name);
      const st = nodeFs.lstatSync(p);
      out.push(`${p} ${st.isDirectory() ? 'dir' : st.size}`);
      if (st.isDirectory()) walk(p);
    }
  };
  walk(root);
  return out;
}

describe('paths that are not what a command needs: typed errors naming them', () => {
  let dir: string;
  let store: string;
  beforeAll(async () => {
    dir = scratchDir('crfs-paths-');
    store = join(dir, 'store');
    await (await ImageStore.open({ fs: diskFs, root: store })).put(image(), 'a:v1');
  });
  afterAll(() => nodeFs.rmSync(dir, { recursive: true, force: true }));

  test('--store /dev/null (a file, not a directory): NOT_A_DIRECTORY', async () => {
    for (const argv of [['images'], ['ls', 'a:v1'], ['tag', 'a:v1', 'b:v1']]) {
      const r = await cli([...argv, '--store', '/dev/null'], diskFs);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/\/dev\/null.*\[NOT_A_DIRECTORY\]\n$/);
    }
    expectNamed(await outcome(() => ImageStore.open({ fs: diskFs, root: '/dev/null' })), 'NOT_A_DIRECTORY', '/dev/null');
  });

  test('export into /proc: a typed error naming the destination, not a temporary name', async () => {
    const r = await cli(['export', 'a:v1', '/proc/x', '--store', store], diskFs);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/\/proc\/x.*\[[A-Z_]+\]\n$/);
    expect(r.stderr).not.toContain('.tmp-');
    expect(r.stderr).not.toMatch(/^cloudrootfs: error: E[A-Z]+:/);
  });

  test('save -o DIR (a directory): NOT_A_FILE, before any image is read', async () => {
    const out = join(dir, 'outdir');
    nodeFs.mkdirSync(out, { recursive: true });
    for (const ref of ['a:v1', 'missing:v1']) {
      const r = await cli(['save', ref, '-o', out, '--store', store], diskFs);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(out);
      expect(r.stderr).toMatch(/\[NOT_A_FILE\]\n$/);
    }
    expect(nodeFs.readdirSync(out)).toEqual([]);
    expect(nodeFs.readdirSync(dir).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
  });

  test('export below a file: NOT_A_DIRECTORY, before the image is read', async () => {
    nodeFs.writeFileSync(join(dir, 'plain'), 'x');
    for (const ref of ['a:v1', 'missing:v1']) {
      const r = await cli(['export', ref, join(dir, 'plain', 'out'), '--store', store], diskFs);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/\[NOT_A_DIRECTORY\]\n$/);
    }
  });
});

describe('the temporary-file sweep spares the user\'s own files', () => {
  test('files and directories named like ours next to an export or save destination stay, whoever wrote them', async () => {
    const dir = scratchDir('crfs-lookalike-');
    try {
      const store = join(dir, 'store');
      await (await ImageStore.open({ fs: diskFs, root: store })).put(image(), 'a:v1');
      // A pid that is surely dead (above Linux's pid_max) and one that is not ours but alive.
      const names = [
        `.tmp-out-${2 ** 22 + 7}-0123456789ab`,
        `.tmp-out.tar-${2 ** 22 + 7}-abcdef012345`,
        `.tmp-notes-${process.ppid}-0123456789ab`,
        `.tmp-out-${2 ** 22 + 7}-0123456789ab-0badcafe`,
      ];
      const work = join(dir, 'work');
      nodeFs.mkdirSync(work);
      for (const n of names.slice(1)) nodeFs.writeFileSync(join(work, n), 'mine');
      nodeFs.mkdirSync(join(work, names[0], 'keep'), { recursive: true });
      const old = new Date(Date.now() - 3 * 24 * 3600_000);
      for (const n of names) nodeFs.utimesSync(join(work, n), old, old);

      expect((await cli(['export', 'a:v1', join(work, 'out'), '--store', store], diskFs)).code).toBe(0);
      expect((await cli(['save', 'a:v1', '-o', join(work, 'out.tar'), '--store', store], diskFs)).code).toBe(0);
      expect((await cli(['export', 'a:v1', join(work, 'out'), '--force', '--store', store], diskFs)).code).toBe(0);
      expect(nodeFs.readdirSync(work).sort()).toEqual([...names, 'out', 'out.tar'].sort());
      expect(nodeFs.readdirSync(join(work, names[0]))).toEqual(['keep']);
    } finally {
      nodeFs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
