/** `cloudrootfs build` and the cache: `hit` layers on a rebuild, `--no-cache`, the JSON report. */
import { PassThrough } from 'node:stream';
import { runCli } from '../../lib/cli/main';
import type { FileSystem } from '../../lib/fs';
import { memfs, writeTree } from '../build/helpers';

async function cli(argv: string[], fs: FileSystem) {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (c) => (out += c));
  stderr.on('data', (c) => (err += c));
  const code = await runCli(argv, { stdout, stderr, fs, env: { CLOUDROOTFS_STORE: '/store' } });
  return { code, out, err };
}

describe('cloudrootfs build with the cache', () => {
  test('a rebuild marks its layers hit, --no-cache makes them new again, --json reports the cache', async () => {
    const fs = memfs();
    await writeTree(fs, '/ctx', { Kubefile: 'FROM scratch\nCOPY bin bin\nCOPY etc etc\n', 'bin/k': 'k', 'etc/a': 'a' });
    const build = (...extra: string[]) => cli(['build', '-t', 'demo:v1', '--platform', 'linux/amd64', ...extra, '/ctx'], fs);
    const first = await build();
    expect(first.code).toBe(0);
    expect(first.out.match(/ new  sha256:/g)).toHaveLength(2);
    const second = await build();
    expect(second.out.match(/ hit  sha256:/g)).toHaveLength(2);
    const none = await build('--no-cache');
    expect(none.out.match(/ new  sha256:/g)).toHaveLength(2);
    expect(none.out.split('\n')[0]).toBe(first.out.split('\n')[0]);
    const json = JSON.parse((await build('--json')).out);
    expect(json.images[0].cache).toEqual(['hit', 'hit']);
    expect(json.cache).toMatchObject({ stepHits: 2, misses: 0 });
    const fast = JSON.parse((await build('--json', '--level', '1')).out);
    expect(fast.images[0].cache).toEqual(['miss', 'miss']);
    expect((await build('--level', 'fast')).code).toBe(2);
  });
});
