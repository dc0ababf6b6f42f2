/**
 * Issue 2's differential check: layered images made by umoci itself (unpack, change the bundle,
 * repack; insert, insert --whiteout, insert --opaque) are flattened by our code and by
 * `umoci unpack`, and the two trees must be identical (see spec/support/umoci.ts for what is
 * compared). Every whiteout case of docs/reference/oci.md#whiteouts appears in at least one tag.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readOciImage } from '../../lib/formats/layout';
import { diskFs } from '../../lib/fs';
import { Rootfs } from '../../lib/rootfs/rootfs';
import { describeWithTools } from '../support/tools';
import { UmociImageBuilder, readUnpacked, treeDifferences, umociMode, unpackTags } from '../support/umoci';

const mode = umociMode();

function write(path: string, content: string | Buffer, fileMode = 0o644): void {
  fs.mkdirSync(join(path, '..'), { recursive: true });
  fs.writeFileSync(path, content);
  fs.chmodSync(path, fileMode);
}

/** chown only where owners are applied and compared (privileged umoci). */
function chown(path: string, uid: number, gid: number): void {
  if (mode.owners) fs.lchownSync(path, uid, gid);
}

function pseudoRandom(size: number, seed: number): Buffer {
  const out = Buffer.alloc(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** The base filesystem: every kind of entry, attribute and link the later layers change. */
function populate(r: string): void {
  write(join(r, 'etc/passwd'), 'root:x:0:0::/root:/bin/sh\n');
  write(join(r, 'etc/shadow'), 'root:*::0:::::\n', 0o640);
  chown(join(r, 'etc/shadow'), 0, 42);
  write(join(r, 'etc/conf.d/a.conf'), 'a=1\n');
  write(join(r, 'etc/conf.d/b.conf'), 'b=2\n');
  write(join(r, 'bin/tool'), '#!/bin/sh\necho tool\n', 0o755);
  write(join(r, 'bin/suid'), 'suid', 0o4755);
  write(join(r, 'bin/sgid'), 'sgid', 0o2711);
  write(join(r, 'bin/empty'), '');
  write(join(r, 'bin/big'), pseudoRandom(2 * 1024 * 1024 + 123, 7), 0o755);
  fs.mkdirSync(join(r, 'tmp'));
  fs.chmodSync(join(r, 'tmp'), 0o1777);
  write(join(r, 'private/secret'), 'secret', 0o600);
  fs.chmodSync(join(r, 'private'), 0o700);
  chown(join(r, 'private/secret'), 1000, 1000);
  chown(join(r, 'private'), 1000, 1000);
  if (mode.owners) {
    // Unreadable to anyone but root; only meaningful when umoci runs privileged.
    write(join(r, 'bin/nomode'), 'nomode', 0o000);
    write(join(r, 'bin/bigid'), 'pax uid', 0o644);
    chown(join(r, 'bin/bigid'), 3_000_000, 2_500_000);
  }
  write(join(r, 'usr/lib/libx.so'), 'libx');
  fs.symlinkSync('usr/lib', join(r, 'lib'));
  fs.symlinkSync('/etc/passwd', join(r, 'abs'));
  fs.symlinkSync('../../..', join(r, 'up'));
  fs.symlinkSync('nowhere/file', join(r, 'dangling'));
  fs.symlinkSync('tool', join(r, 'bin/tool-link'));
  chown(join(r, 'bin/tool-link'), 7, 8);
  write(join(r, 'hard/a'), 'shared inode');
  fs.linkSync(join(r, 'hard/a'), join(r, 'hard/b'));
  fs.linkSync(join(r, 'hard/a'), join(r, 'etc/hard-c'));
  write(join(r, 'data/x/y/z/file'), 'deep');
  write(join(r, 'data/x/other'), 'other');
  write(join(r, 'data/keep'), 'keep');
  write(join(r, 'dir2file/child'), 'child');
  write(join(r, 'file2dir'), 'was a file');
  fs.symlinkSync('etc', join(r, 'sym2dir'));
  write(join(r, 'dir2sym/child'), 'child');
  write(join(r, 'rmrf/old1'), 'old1');
  write(join(r, 'rmrf/sub/old2'), 'old2');
  write(join(r, 'opq/old'), 'old');
  write(join(r, 'opq/sub/old'), 'old');
  fs.utimesSync(join(r, 'etc/passwd'), 1_000_000_000, 1_000_000_000);
}

/** Deletions, type changes and attribute changes: umoci writes the whiteouts. */
function change(r: string): void {
  fs.rmSync(join(r, 'etc/shadow')); // file whiteout
  fs.rmSync(join(r, 'etc/conf.d/a.conf')); // nested file whiteout
  fs.rmSync(join(r, 'data/x'), { recursive: true }); // directory whiteout (its subtree goes too)
  fs.rmSync(join(r, 'dir2file'), { recursive: true });
  write(join(r, 'dir2file'), 'now a file'); // directory replaced by a file
  fs.rmSync(join(r, 'file2dir'));
  write(join(r, 'file2dir/child'), 'now a dir'); // file replaced by a directory
  fs.rmSync(join(r, 'sym2dir'));
  write(join(r, 'sym2dir/child'), 'now a dir'); // symlink replaced by a directory
  fs.rmSync(join(r, 'dir2sym'), { recursive: true });
  fs.symlinkSync('etc/conf.d', join(r, 'dir2sym')); // directory replaced by a symlink
  fs.rmSync(join(r, 'rmrf'), { recursive: true });
  write(join(r, 'rmrf/new'), 'new'); // rm -rf and recreate
  fs.chmodSync(join(r, 'private'), 0o750); // directory attributes only
  chown(join(r, 'private'), 1001, 1002);
  fs.appendFileSync(join(r, 'hard/b'), 'changed through b\n'); // content of a hardlinked inode
  fs.rmSync(join(r, 'hard/a')); // one name of a hardlink group goes
  fs.linkSync(join(r, 'bin/tool'), join(r, 'bin/tool-hard')); // new name for a lower inode
  write(join(r, 'new/pair1'), 'pair');
  fs.linkSync(join(r, 'new/pair1'), join(r, 'new/pair2')); // hardlink inside one layer
  fs.rmSync(join(r, 'lib'));
  fs.symlinkSync('/usr/lib', join(r, 'lib')); // symlink retargeted
  fs.rmSync(join(r, 'dangling')); // symlink whiteout
  fs.chmodSync(join(r, 'bin/tool'), 0o700); // mode change of a hardlinked file
  write(join(r, 'etc/passwd'), 'root:x:0:0::/root:/bin/bash\n'); // content change
  fs.utimesSync(join(r, 'etc/passwd'), 1_100_000_000, 1_100_000_000);
}

/** Paths deleted in the layer below come back, some with another type. */
function recreate(r: string): void {
  write(join(r, 'data/x/again'), 'back'); // whited-out directory re-added
  write(join(r, 'etc/shadow/inside'), 'now a dir'); // whited-out file re-added as a directory
  fs.symlinkSync('../bin/tool', join(r, 'etc/conf.d/a.conf')); // whited-out file re-added as a symlink
  fs.rmSync(join(r, 'rmrf'), { recursive: true });
  fs.mkdirSync(join(r, 'rmrf'), { mode: 0o711 }); // recreated again, empty, new mode
  fs.rmSync(join(r, 'tmp'), { recursive: true });
  fs.symlinkSync('/var/tmp', join(r, 'tmp'));
}

describeWithTools(['umoci'], 'images made by umoci flatten as umoci unpacks them', () => {
  let dir: string;
  let layout: string;
  const tags: string[] = [];
  let ours: Map<string, Rootfs | Error>;
  let theirs: Map<string, Rootfs | Error>;

  beforeAll(async () => {
    dir = fs.mkdtempSync(join(tmpdir(), 'crfs-umoci-made-'));
    layout = join(dir, 'layout');
    const b = new UmociImageBuilder(layout, join(dir, 'work')).init('base');
    const src = join(dir, 'src');
    write(join(src, 'app/bin/app'), 'app', 0o755);
    write(join(src, 'app/conf/app.conf'), 'conf');
    write(join(src, 'opq/fresh'), 'fresh');
    write(join(src, 'libnew.so'), 'libnew');
    write(join(src, 'passwd'), 'inserted passwd\n');

    await b.edit('base', 'populated', populate);
    await b.edit('populated', 'changed', change);
    await b.edit('changed', 'recreated', recreate);
    b.insert('recreated', 'ins-dir', join(src, 'app'), '/opt/app'); // a new tree, parents implied
    b.insert('ins-dir', 'ins-file', join(src, 'passwd'), '/etc/passwd'); // file over file
    b.insert('ins-file', 'ins-opaque', join(src, 'opq'), '/opq', { opaque: true }); // opaque directory
    b.whiteout('ins-opaque', 'wh-file', '/etc/passwd'); // whiteout of a file
    b.whiteout('wh-file', 'wh-dir', '/private'); // whiteout of a directory
    b.whiteout('wh-dir', 'wh-missing', '/does/not/exist'); // whiteout of a missing path: no-op
    b.insert('wh-file', 'wh-readd', join(src, 'passwd'), '/etc/passwd'); // whiteout then re-add
    b.insert('wh-missing', 'ins-through-symlink', join(src, 'libnew.so'), '/lib/libnew.so'); // parent is a symlink
    b.whiteout('ins-through-symlink', 'wh-through-symlink', '/lib/libx.so'); // whiteout through a symlinked parent
    b.whiteout('wh-through-symlink', 'wh-symlink', '/lib'); // whiteout of the symlink, not its target
    b.whiteout('wh-symlink', 'wh-link-name', '/bin/tool-hard'); // one name of a hardlink group
    b.insert('wh-link-name', 'opaque-root', join(src, 'opq'), '/', { opaque: true }); // opaque root: only this layer stays
    tags.push(
      'populated',
      'changed',
      'recreated',
      'ins-dir',
      'ins-file',
      'ins-opaque',
      'wh-file',
      'wh-dir',
      'wh-missing',
      'wh-readd',
      'ins-through-symlink',
      'wh-through-symlink',
      'wh-symlink',
      'wh-link-name',
      'opaque-root',
    );

    const unpacked = await unpackTags(layout, tags, join(dir, 'unpacked'));
    ours = new Map();
    theirs = new Map();
    for (const tag of tags) {
      const u = unpacked.get(tag)!;
      theirs.set(tag, u.ok ? await readUnpacked(u.rootfs) : new Error(u.error));
      try {
        ours.set(tag, await (await readOciImage(layout, { fs: diskFs, ref: tag })).flatten());
      } catch (err) {
        ours.set(tag, err as Error);
      }
    }
  }, 120_000);

  afterAll(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('every tag: our flatten equals umoci unpack', async () => {
    const failures: string[] = [];
    for (const tag of tags) {
      const a = ours.get(tag)!;
      const b = theirs.get(tag)!;
      if (a instanceof Error || b instanceof Error) {
        failures.push(`${tag}: ours ${a instanceof Error ? `failed: ${a.message}` : 'ok'}; umoci ${b instanceof Error ? `failed: ${b.message}` : 'ok'}`);
        continue;
      }
      const diffs = await treeDifferences(a, b, { owners: mode.owners, mtimes: true });
      if (diffs.length > 0) failures.push(`${tag}:\n  ${diffs.join('\n  ')}`);
    }
    expect(failures).toEqual([]);
  });

  test('the cases really happened (guards against a builder that silently did nothing)', () => {
    const get = (tag: string) => ours.get(tag) as Rootfs;
    expect(get('populated').get('hard/b')).toBe(get('populated').get('hard/a'));
    expect(get('changed').has('etc/shadow')).toBe(false);
    expect(get('changed').has('data/x')).toBe(false);
    expect(get('changed').get('dir2file')?.type).toBe('file');
    expect(get('changed').get('file2dir')?.type).toBe('directory');
    expect(get('changed').get('dir2sym')).toMatchObject({ type: 'symlink', target: 'etc/conf.d' });
    expect(get('changed').list('rmrf')).toEqual(['new']);
    expect(get('changed').get('new/pair2')).toBe(get('changed').get('new/pair1'));
    expect(get('recreated').list('data/x')).toEqual(['again']);
    expect(get('recreated').get('etc/shadow')?.type).toBe('directory');
    expect(get('recreated').list('rmrf')).toEqual([]);
    expect(get('ins-opaque').list('opq')).toEqual(['fresh']);
    expect(get('wh-file').has('etc/passwd')).toBe(false);
    expect(get('wh-dir').has('private')).toBe(false);
    expect(get('wh-readd').has('etc/passwd')).toBe(true);
    expect(get('ins-through-symlink').has('usr/lib/libnew.so')).toBe(true);
    expect(get('ins-through-symlink').get('lib')?.type).toBe('symlink');
    expect(get('wh-through-symlink').has('usr/lib/libx.so')).toBe(false);
    expect(get('wh-symlink').has('lib')).toBe(false);
    expect(get('wh-symlink').has('usr/lib/libnew.so')).toBe(true);
    expect(get('wh-link-name').has('bin/tool')).toBe(true);
    expect(get('opaque-root').list('')).toEqual(['fresh']);
  });

  test('the comparison notices what it claims to compare', async () => {
    const base = ours.get('populated') as Rootfs;
    const seen = async (changed: Rootfs) => (await treeDifferences(changed, base, { owners: true, mtimes: true })).join('\n');
    const passwd = base.get('etc/passwd')!;
    expect(await seen(base.withFile('etc/passwd', 'other'))).toMatch(/etc\/passwd.*sha256/);
    expect(await seen(base.with('etc/passwd', { ...passwd, mode: 0o600 }))).toMatch(/etc\/passwd.*mode/);
    expect(await seen(base.with('etc/passwd', { ...passwd, uid: 5 }))).toMatch(/etc\/passwd.*uid/);
    expect(await seen(base.with('etc/passwd', { ...passwd, mtime: 5 }))).toMatch(/etc\/passwd.*mtime/);
    expect(await seen(base.withSymlink('lib', 'elsewhere'))).toMatch(/lib.*target/);
    const b = base.get('hard/b')!;
    expect(await seen(base.with('hard/b', { ...b }))).toMatch(/hard\/b.*linkGroup/);
    expect(await seen(base.without('data/keep'))).toMatch(/only theirs: "data\/keep"/);
  });

  test('a fifo: umoci creates it, we refuse it with a typed error (documented difference)', async () => {
    const fifoLayout = join(dir, 'fifo-layout');
    const b = new UmociImageBuilder(fifoLayout, join(dir, 'fifo-work')).init('base');
    await b.edit('base', 'fifo', (r) => {
      write(join(r, 'ok'), 'ok');
      execFileSync('mkfifo', [join(r, 'pipe')]);
    });
    const unpacked = (await unpackTags(fifoLayout, ['fifo'], join(dir, 'fifo-unpacked'))).get('fifo')!;
    expect(unpacked.ok).toBe(true);
    if (unpacked.ok) expect(fs.lstatSync(join(unpacked.rootfs, 'pipe')).isFIFO()).toBe(true);
    await expect((await readOciImage(fifoLayout, { fs: diskFs, ref: 'fifo' })).flatten()).rejects.toMatchObject({ code: 'UNSUPPORTED_ENTRY' });
  });
});
