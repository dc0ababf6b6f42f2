/**
 * lib/entry.ts: entries are frozen values with checked attributes (permission bits only: type
 * bits are refused here and masked off where entries are read from outside), metadata equality,
 * and a FileEntry object as an inode — the same object at two paths is one file with two names,
 * which survives a layer written as a tar and read back.
 */
import { Readable } from 'node:stream';
import {
  DEFAULT_DIR_MODE,
  DEFAULT_FILE_MODE,
  DEFAULT_SYMLINK_MODE,
  Entry,
  IMPLICIT_DIRECTORY,
  directoryEntry,
  fileEntry,
  hardlinkEntry,
  isLinked,
  sameMetadata,
  sameXattrs,
  symlinkEntry,
  withAttributes,
} from '../lib/entry';
import { bufferContent } from '../lib/content';
import { applyLayer } from '../lib/layer/apply';
import { diff } from '../lib/layer/diff';
import { Layer } from '../lib/layer/layer';
import { Rootfs } from '../lib/rootfs/rootfs';
import { readLayerTar } from '../lib/tar/read';
import { layerTarEntries, layerTarStream } from '../lib/tar/write';
import { dir, file, tar } from './hardening/corpus';

const everyKind = (): Entry[] => [
  fileEntry('x', { xattrs: { 'user.a': '1' } }),
  directoryEntry(),
  symlinkEntry('../t'),
  hardlinkEntry('t'),
  withAttributes(fileEntry('x'), { mode: 0o600 }),
  IMPLICIT_DIRECTORY,
];

/** A layer written as a tar and read back. */
async function throughTar(layer: Layer): Promise<Layer> {
  const chunks: Buffer[] = [];
  for await (const c of layerTarStream(layer)) chunks.push(c as Buffer);
  const bytes = Buffer.concat(chunks);
  return (await readLayerTar(() => Readable.from([bytes]))).layer;
}

describe('entries are frozen values', () => {
  test.each(everyKind().map((e) => [e.type, e] as const))('%s: frozen, attributes and xattrs', (_, entry) => {
    expect(Object.isFrozen(entry)).toBe(true);
    if (entry.xattrs) expect(Object.isFrozen(entry.xattrs)).toBe(true);
    // Assignments fail (modules run in strict mode) and change nothing.
    const before = entry.mode;
    expect(() => {
      (entry as { mode: number }).mode = before ^ 1;
    }).toThrow(TypeError);
    expect(entry.mode).toBe(before);
  });

  test('xattrs are copied in: changing the caller\'s object later changes no entry', () => {
    const xattrs: Record<string, string> = { 'user.a': '1' };
    const e = fileEntry('x', { xattrs });
    xattrs['user.a'] = '2';
    xattrs['user.b'] = '3';
    expect(e.xattrs).toEqual({ 'user.a': '1' });
  });

  test('no xattrs and empty xattrs are the same: the field is left out', () => {
    expect('xattrs' in fileEntry('x')).toBe(false);
    expect('xattrs' in fileEntry('x', { xattrs: {} })).toBe(false);
    expect(sameMetadata(fileEntry('x'), fileEntry('x', { xattrs: {} }))).toBe(true);
  });

  test('defaults: 0644 files, 0755 directories, 0777 symlinks, root-owned, mtime 0', () => {
    expect([DEFAULT_FILE_MODE, DEFAULT_DIR_MODE, DEFAULT_SYMLINK_MODE]).toEqual([0o644, 0o755, 0o777]);
    expect(fileEntry('x')).toMatchObject({ mode: 0o644, uid: 0, gid: 0, mtime: 0 });
    expect(directoryEntry()).toMatchObject({ mode: 0o755, uid: 0, gid: 0, mtime: 0 });
    expect(symlinkEntry('t')).toMatchObject({ mode: 0o777, uid: 0, gid: 0, mtime: 0 });
    expect(hardlinkEntry('t')).toMatchObject({ mode: 0o644, target: 't' });
    expect(IMPLICIT_DIRECTORY).toMatchObject({ type: 'directory', mode: 0o755, uid: 0, gid: 0 });
  });

  test('content: a string or Buffer becomes in-memory content, a Content object is kept as it is', () => {
    expect(fileEntry('héllo').content).toMatchObject({ size: 6, source: 'memory' });
    expect(fileEntry(Buffer.from([1, 2, 3])).content.size).toBe(3);
    const c = bufferContent('x');
    expect(fileEntry(c).content).toBe(c);
  });

  test('mtime: whole seconds, from a number or a Date, rounded down', () => {
    expect(fileEntry('x', { mtime: 1.9 }).mtime).toBe(1);
    expect(fileEntry('x', { mtime: new Date(1_700_000_000_999) }).mtime).toBe(1_700_000_000);
    expect(fileEntry('x', { mtime: -1.5 }).mtime).toBe(-2);
    for (const bad of [NaN, Infinity, new Date(NaN)]) expect(() => fileEntry('x', { mtime: bad })).toThrow(expect.objectContaining({ code: 'INVALID_ATTRIBUTE' }));
  });
});

describe('modes: permission bits only', () => {
  test.each([0, 0o644, 0o755, 0o4755, 0o2755, 0o1777, 0o7777])('accepts %o', (mode) => {
    expect(fileEntry('x', { mode }).mode).toBe(mode);
    expect(directoryEntry({ mode }).mode).toBe(mode);
  });

  test.each([0o10000, 0o100644, 0o040755, 0o120777, -1, 0.5, NaN])('refuses %o (type bits, negative, fractional)', (mode) => {
    expect(() => fileEntry('x', { mode })).toThrow(expect.objectContaining({ code: 'INVALID_ATTRIBUTE' }));
    expect(() => directoryEntry({ mode })).toThrow(expect.objectContaining({ code: 'INVALID_ATTRIBUTE' }));
    expect(() => withAttributes(fileEntry('x'), { mode })).toThrow(expect.objectContaining({ code: 'INVALID_ATTRIBUTE' }));
  });

  test.each([-1, 1.5, NaN])('refuses uid and gid %s', (id) => {
    expect(() => fileEntry('x', { uid: id })).toThrow(expect.objectContaining({ code: 'INVALID_ATTRIBUTE' }));
    expect(() => fileEntry('x', { gid: id })).toThrow(expect.objectContaining({ code: 'INVALID_ATTRIBUTE' }));
  });

  test('type bits in a tar header are masked off when the entry is read (old Go writers set them)', async () => {
    const bytes = tar([
      dir('d', { mode: 0o040755 }),
      file('d/f', 'x', { mode: 0o100755 }),
      file('d/suid', 'x', { mode: 0o104755 }),
      dir('t', { mode: 0o041777 }),
    ]);
    const { layer } = await readLayerTar(() => Readable.from([bytes]));
    expect(layer.get('d')?.mode).toBe(0o755);
    expect(layer.get('d/f')?.mode).toBe(0o755);
    expect(layer.get('d/suid')?.mode).toBe(0o4755);
    expect(layer.get('t')?.mode).toBe(0o1777);
  });

  test.each(['', 'a\0b'])('refuses the symlink target %j', (target) => {
    expect(() => symlinkEntry(target)).toThrow(expect.objectContaining({ code: 'INVALID_ATTRIBUTE' }));
  });
});

describe('withAttributes', () => {
  test('replaces what it is given, keeps the rest, and makes a new frozen object', () => {
    const e = fileEntry('x', { mode: 0o600, uid: 5, gid: 6, mtime: 7, xattrs: { 'user.a': '1' } });
    const f = withAttributes(e, { uid: 9 });
    expect(f).not.toBe(e);
    expect(Object.isFrozen(f)).toBe(true);
    expect(f).toMatchObject({ type: 'file', mode: 0o600, uid: 9, gid: 6, mtime: 7, xattrs: { 'user.a': '1' } });
    expect(f.content).toBe(e.content);
    expect(withAttributes(symlinkEntry('t'), { mode: 0o755 })).toMatchObject({ type: 'symlink', target: 't', mode: 0o755 });
  });
});

describe('sameMetadata and sameXattrs', () => {
  const base = fileEntry('abc', { mode: 0o644, uid: 1, gid: 2, mtime: 3, xattrs: { 'user.a': '1' } });
  test.each([
    ['mode', withAttributes(base, { mode: 0o600 })],
    ['uid', withAttributes(base, { uid: 9 })],
    ['gid', withAttributes(base, { gid: 9 })],
    ['mtime', withAttributes(base, { mtime: 9 })],
    ['xattr value', withAttributes(base, { xattrs: { 'user.a': '2' } })],
    ['xattr key', withAttributes(base, { xattrs: { 'user.b': '1' } })],
    ['size', fileEntry('abcd', { mode: 0o644, uid: 1, gid: 2, mtime: 3, xattrs: { 'user.a': '1' } })],
    ['type', directoryEntry({ mode: 0o644, uid: 1, gid: 2, mtime: 3, xattrs: { 'user.a': '1' } })],
  ])('a different %s is different metadata', (_, other) => {
    expect(sameMetadata(base, other)).toBe(false);
    expect(sameMetadata(other, base)).toBe(false);
  });

  test('equal metadata whatever the bytes: bytes are compared separately', () => {
    const sameSize = fileEntry('xyz', { mode: 0o644, uid: 1, gid: 2, mtime: 3, xattrs: { 'user.a': '1' } });
    expect(sameMetadata(base, sameSize)).toBe(true);
  });

  test('link targets count', () => {
    expect(sameMetadata(symlinkEntry('a'), symlinkEntry('a'))).toBe(true);
    expect(sameMetadata(symlinkEntry('a'), symlinkEntry('b'))).toBe(false);
    expect(sameMetadata(hardlinkEntry('a'), hardlinkEntry('b'))).toBe(false);
  });

  test('xattrs: order does not matter; absent equals empty', () => {
    expect(sameXattrs({ a: '1', b: '2' }, { b: '2', a: '1' })).toBe(true);
    expect(sameXattrs(undefined, {})).toBe(true);
    expect(sameXattrs({ a: '1' }, undefined)).toBe(false);
    expect(sameXattrs(undefined, { a: '1' })).toBe(false);
    expect(sameXattrs({ a: '1' }, { a: '1', b: '2' })).toBe(false);
  });
});

describe('a FileEntry object is an inode', () => {
  test('withHardlink puts the target\'s own object at the new path and marks it linked', () => {
    const r = Rootfs.empty().withFile('a', 'data').withHardlink('b', 'a');
    expect(r.get('b')).toBe(r.get('a'));
    expect(isLinked(r.get('a')!)).toBe(true);
    expect(isLinked(fileEntry('x'))).toBe(false);
  });

  test('hardlinks to a missing path or a directory are refused with HARDLINK_TARGET', () => {
    const r = Rootfs.empty().withDirectory('d');
    expect(() => r.withHardlink('b', 'nope')).toThrow(expect.objectContaining({ code: 'HARDLINK_TARGET' }));
    expect(() => r.withHardlink('b', 'd')).toThrow(expect.objectContaining({ code: 'HARDLINK_TARGET' }));
  });

  test('a changed attribute is a new object, so a new inode', () => {
    const r = Rootfs.empty().withFile('a', 'data').withHardlink('b', 'a');
    const changed = r.with('b', withAttributes(r.get('b')!, { mode: 0o600 }));
    expect(changed.get('b')).not.toBe(changed.get('a'));
    expect(changed.get('a')?.mode).toBe(0o644);
  });

  test('the exporter writes the second path of an inode as a tar hardlink to the first', () => {
    const r = Rootfs.empty().withFile('z', 'data').withHardlink('a', 'z').withFile('m', 'other');
    const headers = [...layerTarEntries(Layer.fromRootfs(r))].map((e) => e.header);
    // Byte order puts `a` first: it carries the bytes, `z` links to it.
    expect(headers.map((h) => [h.name, h.type, h.linkname])).toEqual([
      ['./', 'directory', ''],
      ['a', 'file', ''],
      ['m', 'file', ''],
      ['z', 'link', 'a'],
    ]);
  });

  test('an inode survives a layer written as a tar and read back', async () => {
    const r = Rootfs.empty().withFile('d/z', 'data').withHardlink('d/a', 'd/z');
    const back = applyLayer(Rootfs.empty(), await throughTar(Layer.fromRootfs(r)));
    expect(back.get('d/a')).toBe(back.get('d/z'));
    expect(await back.readText('d/a')).toBe('data');
  });

  test('in an archive, a link names an entry written earlier; one listed before its target is refused (as umoci does)', async () => {
    const read = async (bytes: Buffer) => applyLayer(Rootfs.empty(), (await readLayerTar(() => Readable.from([bytes]))).layer);
    const inOrder = await read(tar([dir('d'), file('d/z', 'data'), { name: 'd/a', type: '1', linkname: 'd/z' }]));
    expect(inOrder.get('d/a')).toBe(inOrder.get('d/z'));
    const early = read(tar([dir('d'), { name: 'd/a', type: '1', linkname: 'd/z' }, file('d/z', 'data')]));
    await expect(early).rejects.toMatchObject({ code: 'HARDLINK_TARGET' });
  });

  test('Rootfs.copy: the copy is a new inode, and hardlinks inside the copy stay one inode, through diff and tar', async () => {
    const base = Rootfs.empty().withFile('src/a', 'data').withHardlink('src/b', 'src/a');
    const copied = base.copy('src', 'dst');
    expect(copied.get('dst/a')).not.toBe(copied.get('src/a'));
    expect(copied.get('dst/b')).toBe(copied.get('dst/a'));
    // Re-adding one name of the copied inode next to its untouched other name: a hardlink.
    const lower = copied.without('dst/b');
    const layer = await diff(lower, copied);
    expect(layer.get('dst/b')).toMatchObject({ type: 'hardlink', target: 'dst/a' });
    const back = applyLayer(lower, await throughTar(layer));
    expect(back.get('dst/b')).toBe(back.get('dst/a'));
  });

  test('diff against a lower that holds the inode at an untouched path emits a hardlink to it', async () => {
    const lower = Rootfs.empty().withFile('a', 'data').withHardlink('b', 'a');
    const upper = lower.without('b').withHardlink('c', 'a');
    const layer = await diff(lower, upper);
    expect(layer.get('c')).toMatchObject({ type: 'hardlink', target: 'a' });
    const back = applyLayer(lower, await throughTar(layer));
    expect(back.get('c')).toBe(back.get('a'));
    expect(back.has('b')).toBe(false);
  });
});
