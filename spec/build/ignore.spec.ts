import { IgnoreRules } from '../../lib/build/ignore';
import { readBuildContext } from '../../lib/build/context';
import { listing, memfs, writeTree } from './helpers';

describe('ignore rules (.kubefileignore / .dockerignore)', () => {
  test('a pattern excludes the path and everything below a matched directory', () => {
    const r = IgnoreRules.parse('node_modules\n*.log\n');
    expect(r.ignores('node_modules')).toBe(true);
    expect(r.ignores('node_modules/a/b')).toBe(true);
    expect(r.ignores('x.log')).toBe(true);
    expect(r.ignores('dir/x.log')).toBe(false); // `*` does not cross `/`
    expect(r.ignores('etc/daemon.json')).toBe(false);
  });

  test('** matches any depth; comments, blanks, leading / and ./ are handled', () => {
    const r = IgnoreRules.parse('# comment\n\n  /build  \n./tmp/\n**/*.swp\n');
    expect(r.patterns).toEqual(['/build', './tmp/', '**/*.swp']);
    expect(r.ignores('build/out')).toBe(true);
    expect(r.ignores('tmp')).toBe(true);
    expect(r.ignores('a/b/c.swp')).toBe(true);
    expect(r.ignores('c.swp')).toBe(true);
    expect(r.ignores('src/build')).toBe(false);
  });

  test('! re-includes; the last matching rule wins', () => {
    const r = IgnoreRules.parse('*.md\n!README.md\nREADME.md\n!docs/README.md\n');
    expect(r.ignores('CHANGES.md')).toBe(true);
    expect(r.ignores('README.md')).toBe(true);
    const r2 = IgnoreRules.parse('docs\n!docs/keep.md\n');
    expect(r2.ignores('docs/other.md')).toBe(true);
    expect(r2.ignores('docs/keep.md')).toBe(false);
    expect(r2.hasExceptions).toBe(true);
  });

  test('character classes and escapes work; braces are literal (as in Go)', () => {
    const r = IgnoreRules.parse('[a-c]*.txt\n\\*star\n{x,y}\n');
    expect(r.ignores('b1.txt')).toBe(true);
    expect(r.ignores('d1.txt')).toBe(false);
    expect(r.ignores('*star')).toBe(true);
    expect(r.ignores('xstar')).toBe(false);
    expect(r.ignores('x')).toBe(false);
    expect(r.ignores('{x,y}')).toBe(true);
  });

  test('a pattern pointing outside the context is an error naming the line', () => {
    expect(() => IgnoreRules.parse('ok\n../secret\n', '.dockerignore')).toThrow(/\.dockerignore:2:.*outside the context/);
  });

  test('the context reader applies .kubefileignore before .dockerignore, and re-includes below excluded dirs', async () => {
    const fs = memfs();
    await writeTree(fs, '/ctx', {
      '.kubefileignore': 'cache\n!cache/keep\n*.tmp\n',
      '.dockerignore': 'etc\n',
      'etc/a': 'a',
      'cache/drop': 'x',
      'cache/keep': 'k',
      'x.tmp': 't',
      'y': 'y',
    });
    const ctx = await readBuildContext('/ctx', { fs });
    expect(ctx.ignoreFile).toBe('.kubefileignore');
    expect(listing(ctx.rootfs)).toEqual(['.dockerignore', '.kubefileignore', 'cache/', 'cache/keep', 'etc/', 'etc/a', 'y']);

    await fs.promises.rm('/ctx/.kubefileignore');
    const ctx2 = await readBuildContext('/ctx', { fs });
    expect(ctx2.ignoreFile).toBe('.dockerignore');
    expect(listing(ctx2.rootfs)).toEqual(['.dockerignore', 'cache/', 'cache/drop', 'cache/keep', 'x.tmp', 'y']);
  });
});

describe('the build context', () => {
  test('owners become 0:0, mtimes are clamped to the epoch, modes are kept', async () => {
    const fs = memfs();
    await writeTree(fs, '/ctx', { 'bin/tool': ['#!/bin/sh\n', 0o755], 'etc/conf': 'c' });
    await fs.promises.utimes('/ctx/etc/conf', 2000, 2000);
    const ctx = await readBuildContext('/ctx', { fs, sourceDateEpoch: 1000 });
    const tool = ctx.rootfs.get('bin/tool')!;
    expect([tool.mode, tool.uid, tool.gid]).toEqual([0o755, 0, 0]);
    expect(ctx.rootfs.get('etc/conf')!.mtime).toBe(1000);
    const zero = await readBuildContext('/ctx', { fs });
    expect(zero.rootfs.get('etc/conf')!.mtime).toBe(0);
  });

  test('a missing context or a file is a typed error', async () => {
    const fs = memfs();
    await writeTree(fs, '/ctx', { f: 'x' });
    await expect(readBuildContext('/nope', { fs })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(readBuildContext('/ctx/f', { fs })).rejects.toMatchObject({ code: 'UNSUPPORTED_ENTRY' });
  });
});
