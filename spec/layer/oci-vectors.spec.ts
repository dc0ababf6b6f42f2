/** Every layer-merge vector of docs/reference/oci.md#test-vectors, as data. */
import { LayerStack } from '../../lib/layer/stack';
import { applyLayer } from '../../lib/layer/apply';
import { Rootfs } from '../../lib/rootfs/rootfs';
import { L, listing, fileText } from '../support/layers';
import { diff } from '../../lib/layer/diff';

const flat = (...layers: ReturnType<typeof L>[]) => LayerStack.of(...layers).flatten();

describe('image-spec layer.md vectors', () => {
  test('(a) whiteouts of files, nested files and directories', () => {
    const r = flat(L('file1', 'a/', 'a/file2', 'b/', 'c/', 'c/file3'), L('.wh.file1', 'a/.wh.file2', '.wh.b', 'file4'));
    expect(listing(r)).toEqual(['a/', 'c/', 'c/file3', 'file4']);
  });

  test('(b) opaque directory empties bin/', () => {
    const r = flat(
      L('etc/', 'etc/my-app-config', 'bin/', 'bin/my-app-binary', 'bin/my-app-tools', 'bin/tools/', 'bin/tools/my-app-tool-one'),
      L('bin/.wh..wh..opq'),
    );
    expect(listing(r)).toEqual(['bin/', 'etc/', 'etc/my-app-config']);
  });

  test.each([
    ['opaque first', ['a/', 'a/.wh..wh..opq', 'a/b/', 'a/b/c/', 'a/b/c/foo']],
    ['opaque last', ['a/', 'a/b/', 'a/b/c/', 'a/b/c/foo', 'a/.wh..wh..opq']],
  ])('(c) an opaque marker hides only lower layers (%s)', (_name, upper) => {
    const r = flat(L('a/', 'a/b/', 'a/b/c/', 'a/b/c/bar'), L(...upper));
    expect(listing(r)).toEqual(['a/', 'a/b/', 'a/b/c/', 'a/b/c/foo']);
  });

  test('(d) diff direction: add, modify, delete', async () => {
    const lower = flat(L('etc/', 'etc/my-app-config', 'bin/', 'bin/my-app-binary', 'bin/my-app-tools=v1'));
    const upper = lower
      .withFile('etc/my-app.d/default.cfg', 'cfg')
      .withFile('bin/my-app-tools', 'v2')
      .without('etc/my-app-config');
    const layer = await diff(lower, upper);
    const names = [...layer.steps()].map((s) =>
      s.kind === 'whiteout' ? `wh:${s.path}` : s.kind === 'opaque' ? `opq:${s.path}` : s.path,
    );
    expect(names.sort()).toEqual(['bin', 'bin/my-app-tools', 'etc', 'etc/my-app.d', 'etc/my-app.d/default.cfg', 'wh:etc/my-app-config'].sort());
    expect(listing(applyLayer(lower, layer))).toEqual(listing(upper));
  });
});

describe('go-containerregistry vectors', () => {
  test('go-containerregistry#2191: whiteout then re-add', () => {
    expect(listing(flat(L('a/', 'a/foo', 'b/', 'b/bar'), L('.wh.a'), L('a/', 'a/baz')))).toEqual(['a/', 'a/baz', 'b/', 'b/bar']);
  });
  test('opaque with a same-layer file', () => {
    expect(listing(flat(L('d/', 'd/a.txt', 'd/b.txt'), L('d/', 'd/c.txt', 'd/.wh..wh..opq')))).toEqual(['d/', 'd/c.txt']);
  });
  test('go-containerregistry#1897: opaque without entries', () => {
    expect(listing(flat(L('a/', 'a/b/', 'a/b/foo'), L('a/.wh..wh..opq')))).toEqual(['a/']);
  });
  test('whiteout_image / whiteout_dir / overwritten_file', async () => {
    expect(listing(flat(L('foo.txt', 'bar.txt'), L('.wh.foo.txt')))).toEqual(['bar.txt']);
    expect(listing(flat(L('a/', 'a/b/', 'a/b/c'), L('.wh.a')))).toEqual([]);
    const r = flat(L('f=old'), L('f=new'));
    expect(await fileText(r, 'f')).toBe('new');
  });
});

describe('umoci tar_extract vectors', () => {
  test('UpperWhiteout: same-layer entries survive their own whiteouts in any order', () => {
    const r = flat(L('fileC'), L('.wh.fileB', 'fileA', 'fileB', '.wh.fileA', '.wh.fileC'));
    expect(listing(r)).toEqual(['fileA', 'fileB']);
  });
  test('UpperDirWhiteout', () => {
    const r = flat(
      L('file', 'dir1/', 'dir1/link -> ../file', 'dir1/verybadlink2 -> /../../x', 'dir2/', 'dir2/link -> x'),
      L('.wh.dir2', 'dir1/', 'dir1/file', 'dir1/verybadlink -> /../../../x', '.wh.dir1', 'dir2/', 'dir2/file', '.wh..wh..opq'),
    );
    expect(listing(r)).toEqual(['dir1/', 'dir1/file', 'dir1/verybadlink -> /../../../x', 'dir2/', 'dir2/file']);
  });
  test('MissingUpperAncestor: unlisted ancestors keep the lower attributes', () => {
    const lower = Rootfs.empty().withDirectory('a', { mode: 0o700, uid: 7 }).withFile('a/x', 'x');
    const r = applyLayer(lower, L('a/b/', 'a/b/c'));
    expect(r.get('a')).toMatchObject({ mode: 0o700, uid: 7 });
    expect(listing(r)).toEqual(['a/', 'a/b/', 'a/b/c', 'a/x']);
  });
  test('bare .wh. is an error, at the root and nested', () => {
    expect(() => L('.wh.')).toThrow(expect.objectContaining({ code: 'INVALID_WHITEOUT' }));
    expect(() => L('a/', 'a/.wh.')).toThrow(expect.objectContaining({ code: 'INVALID_WHITEOUT' }));
    expect(() => L('.wh..')).toThrow(expect.objectContaining({ code: 'INVALID_WHITEOUT' }));
    expect(() => L('.wh...')).toThrow(expect.objectContaining({ code: 'INVALID_WHITEOUT' }));
  });
});

describe('edge cases as peers behave (docs/reference/oci.md#edge-cases-as-the-peers-behave)', () => {
  test('whiteout of a missing path is a no-op', () => {
    expect(listing(flat(L('a'), L('.wh.nothere', 'x/', 'x/.wh.y')))).toEqual(['a', 'x/']);
  });
  test('.wh.d plus d/new: lower d gone, d/new exists', () => {
    expect(listing(flat(L('d/', 'd/old'), L('.wh.d', 'd/new')))).toEqual(['d/', 'd/new']);
  });
  test('dir over dir merges; type change replaces the subtree', () => {
    expect(listing(flat(L('d/', 'd/a'), L('d/', 'd/b')))).toEqual(['d/', 'd/a', 'd/b']);
    expect(listing(flat(L('d/', 'd/a'), L('d')))).toEqual(['d']);
    expect(listing(flat(L('d'), L('d/', 'd/b')))).toEqual(['d/', 'd/b']);
    expect(listing(flat(L('d/', 'd/a'), L('d -> elsewhere')))).toEqual(['d -> elsewhere']);
  });
  test('.wh.link removes the link, not its target', () => {
    expect(listing(flat(L('t/', 't/f', 'l -> t'), L('.wh.l')))).toEqual(['t/', 't/f']);
  });
  test('whiteouts and entries resolve symlinked parents inside the root', () => {
    const lower = L('etc/', 'etc/x', 'etc/y', 'localetc -> /etc');
    expect(listing(flat(lower, L('localetc/.wh.x')))).toEqual(['etc/', 'etc/y', 'localetc -> /etc']);
    expect(listing(flat(lower, L('localetc/z')))).toEqual(['etc/', 'etc/x', 'etc/y', 'etc/z', 'localetc -> /etc']);
    // A symlink pointing far above the root stays inside it.
    expect(listing(flat(L('up -> ../../../..'), L('up/f')))).toEqual(['f', 'up -> ../../../..']);
    // Dangling parent: created inside the root.
    expect(listing(flat(L('dl -> missing/deeper'), L('dl/f')))).toEqual(['dl -> missing/deeper', 'missing/', 'missing/deeper/', 'missing/deeper/f']);
  });
  test('.wh.etc/somefile is refused as a real entry name', () => {
    expect(() => L('.wh.etc/', '.wh.etc/somefile')).toThrow(expect.objectContaining({ code: 'INVALID_WHITEOUT' }));
  });
  test('entry under a regular file is a conflict', () => {
    expect(() => flat(L('f'), L('f/x'))).toThrow(expect.objectContaining({ code: 'LAYER_CONFLICT' }));
  });
  test('a non-directory root entry is refused', () => {
    expect(() => L('./=x')).toThrow(expect.objectContaining({ code: 'LAYER_CONFLICT' }));
  });
  test('traversal names are refused', () => {
    expect(() => L('../evil')).toThrow(expect.objectContaining({ code: 'CORRUPT_ARCHIVE' }));
    expect(() => L('a/../../evil')).toThrow(expect.objectContaining({ code: 'CORRUPT_ARCHIVE' }));
    expect(() => L('h => ../../etc/passwd')).toThrow(expect.objectContaining({ code: 'INVALID_PATH' }));
  });
});

describe('hardlinks resolve root-relative', () => {
  test('link to a lower file shares the inode', () => {
    const r = flat(L('bin/', 'bin/a=A'), L('usr/', 'usr/b => bin/a'));
    expect(r.get('usr/b')).toBe(r.get('bin/a'));
  });
  test('link through a symlinked parent', () => {
    const r = flat(L('real/', 'real/f=F', 'sym -> real'), L('h => sym/f'));
    expect(r.get('h')).toBe(r.get('real/f'));
  });
  test('missing target and directory target are errors', () => {
    expect(() => flat(L('h => nope'))).toThrow(expect.objectContaining({ code: 'HARDLINK_TARGET' }));
    expect(() => flat(L('d/', 'h => d'))).toThrow(expect.objectContaining({ code: 'HARDLINK_TARGET' }));
  });
  test('a link keeps the old inode when its target is replaced later', async () => {
    const r = flat(L('a=one', 'b => a'), L('a=two'));
    expect(await fileText(r, 'b')).toBe('one');
    expect(await fileText(r, 'a')).toBe('two');
  });
});

describe('squash', () => {
  test('one layer with the same effect as the stack', async () => {
    const stack = LayerStack.of(L('a/', 'a/x', 'b'), L('.wh.b', 'a/y'), L('a/.wh..wh..opq', 'a/z'));
    const squashed = await stack.squash();
    expect(listing(LayerStack.of(squashed).flatten())).toEqual(listing(stack.flatten()));
    expect(squashed.whiteouts()).toEqual([]);
  });
});
