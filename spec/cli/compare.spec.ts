import { compareImages, compareRootfs, isEmptyComparison } from '../../lib/compare';
import { Rootfs } from '../../lib/rootfs/rootfs';
import { cloudImage } from '../formats/archive-support';

const base = () =>
  Rootfs.empty()
    .withFile('etc/a.conf', 'a\n')
    .withFile('etc/b.conf', 'bb\n', { mode: 0o600 })
    .withSymlink('etc/current', 'a.conf')
    .withFile('d/x', 'x')
    .withFile('d/sub/y', 'yy')
    .withFile('f', 'file');

describe('compareRootfs (the library behind `diff`)', () => {
  test('identical trees (and an image with itself) compare empty', async () => {
    expect(isEmptyComparison(await compareRootfs(base(), base()))).toBe(true);
    const image = await cloudImage();
    const c = await compareImages(image, image);
    expect(c).toEqual({ added: [], removed: [], changed: [], totals: { addedBytes: 0, removedBytes: 0, deltaBytes: 0 } });
  });

  test('added, removed (whole subtrees), changed with what changed and sizes', async () => {
    const after = base()
      .withFile('etc/a.conf', 'a longer file\n')
      .withFile('etc/b.conf', 'bb\n', { mode: 0o644 })
      .withSymlink('etc/current', 'b.conf')
      .without('d')
      .withFile('new/z', 'zzz');
    const c = await compareRootfs(base(), after);
    expect(c.added).toEqual([
      { path: 'new', type: 'directory', size: 0 },
      { path: 'new/z', type: 'file', size: 3 },
    ]);
    expect(c.removed.map((r) => r.path)).toEqual(['d', 'd/sub', 'd/sub/y', 'd/x']);
    expect(c.changed.map((x) => [x.path, x.what])).toEqual([
      ['etc/a.conf', ['content']],
      ['etc/b.conf', ['mode']],
      ['etc/current', ['target']],
    ]);
    expect(c.changed[0]).toMatchObject({ before: { size: 2 }, after: { size: 14 } });
    expect(c.totals).toEqual({ addedBytes: 3, removedBytes: 3, deltaBytes: 3 - 3 + 12 });
  });

  test('a type change replaces the subtree: old children are removed, new ones added', async () => {
    const after = base().without('d').withFile('d', 'now a file').without('f').withFile('f/inside', 'i');
    const c = await compareRootfs(base(), after);
    expect(c.changed.map((x) => [x.path, x.before.type, x.after.type, x.what])).toEqual([
      ['d', 'directory', 'file', ['type']],
      ['f', 'file', 'directory', ['type']],
    ]);
    expect(c.removed.map((r) => r.path)).toEqual(['d/sub', 'd/sub/y', 'd/x']);
    expect(c.added.map((r) => r.path)).toEqual(['f/inside']);
  });

  test('same bytes in a new file object is no change; different bytes of equal size is', async () => {
    const same = base().withFile('etc/a.conf', 'a\n');
    expect(isEmptyComparison(await compareRootfs(base(), same))).toBe(true);
    const c = await compareRootfs(base(), base().withFile('etc/a.conf', 'b\n'));
    expect(c.changed).toEqual([expect.objectContaining({ path: 'etc/a.conf', what: ['content'] })]);
  });
});
