/**
 * The CLI when its surroundings misbehave: a reader that stops early (`ls REF | head -1`), paths
 * that do not exist or are not what they must be (a missing lint directory, a fifo as Kubefile),
 * and arguments that are wrong — all checked before any work starts.
 */
import { spawnSync } from 'node:child_process';
import * as nodeFs from 'node:fs';
import { join } from 'node:path';
import { buildImage } from '../../lib/build/build-image';
import { readAuthFile } from '../../lib/registry/auth-file';
import { diskFs } from '../../lib/fs';
import { Image } from '../../lib/image/image';
import { Layer } from '../../lib/layer/layer';
import { Rootfs } from '../../lib/rootfs/rootfs';
import { ImageStore } from '../../lib/store';
import { compileCli } from '../hardening/child';
import { cli, expectCode, outcome } from '../hardening/support';
import { scratchDir } from '../support/umoci';

let dir: string;
let store: string;
beforeAll(async () => {
  dir = scratchDir('crfs-cli-robust-');
  store = join(dir, 'store');
  let tree = Rootfs.empty();
  for (let i = 0; i < 4000; i++) tree = tree.withFile(`d/f${String(i).padStart(5, '0')}`, 'x');
  await (await ImageStore.open({ fs: diskFs, root: store })).put(Image.empty({ os: 'linux', architecture: 'amd64' }).withLayer(Layer.fromRootfs(tree)), 'many:v1');
}, 60_000);
afterAll(() => nodeFs.rmSync(dir, { recursive: true, force: true }));

describe('a reader that stops early', () => {
  test('`cloudrootfs ls REF | head -1`: one line out, nothing on stderr, the status of SIGPIPE (141)', () => {
    const main = compileCli(join(dir, 'build'));
    const script = `node "$1" ls many:v1 --store "$2" 2>"$3" | head -1; echo "\${PIPESTATUS[0]}" >"$4"`;
    for (let i = 0; i < 3; i++) {
      const err = join(dir, `err${i}`);
      const status = join(dir, `status${i}`);
      const run = spawnSync('bash', ['-c', script, 'bash', main, store, err, status], {
        env: { ...process.env, NODE_PATH: join(__dirname, '..', '..', 'node_modules') },
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(run.stdout.split('\n').filter(Boolean)).toHaveLength(1);
      expect(nodeFs.readFileSync(err, 'utf8')).toBe('');
      expect(nodeFs.readFileSync(status, 'utf8').trim()).toBe('141');
    }
  }, 60_000);
});

describe('paths that are not there, or not files', () => {
  test('lint of a missing directory says the directory is missing', async () => {
    for (const target of ['/missing/dir', './missing', '../missing-too', 'Not_A_Reference!']) {
      const r = await cli(['lint', target], diskFs);
      expect([target, r.code, r.stderr]).toEqual([target, 1, expect.stringMatching(/not found \[NOT_FOUND\]\n$/)]);
      expect(r.stderr).not.toContain('INVALID_REFERENCE');
    }
  });

  test('build -f FIFO, --image-list FIFO, an auth file that is a fifo: NOT_A_FILE at once, never a read that blocks', async () => {
    const ctx = join(dir, 'ctx');
    nodeFs.mkdirSync(ctx, { recursive: true });
    nodeFs.writeFileSync(join(ctx, 'Kubefile'), 'FROM scratch\nCOPY Kubefile .\n');
    const fifo = join(dir, 'fifo');
    spawnSync('mkfifo', [fifo]);
    try {
      const timeout = new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 5000).unref());
      for (const argv of [
        ['build', '-f', fifo, ctx],
        ['build', '--image-list', fifo, ctx],
        ['build', '-f', dir, ctx],
      ]) {
        const r = await Promise.race([cli([...argv, '--store', store], diskFs), timeout]);
        expect(r).not.toBe('hung');
        const { code, stderr } = r as { code: number; stderr: string };
        expect([argv.join(' '), code, stderr]).toEqual([argv.join(' '), 1, expect.stringMatching(/is (not a regular file|a directory).*\[NOT_A_FILE\]\n$/)]);
      }
      const viaApi = await Promise.race([outcome(() => buildImage({ fs: diskFs, context: ctx, kubefile: fifo, platforms: ['linux/amd64'] })), timeout]);
      expectCode(viaApi, 'NOT_A_FILE', 'buildImage with a fifo as Kubefile');
      expectCode(await Promise.race([outcome(() => readAuthFile(diskFs, fifo)), timeout]), 'NOT_A_FILE', 'an auth file that is a fifo');
    } finally {
      // Should a reader be blocked on the fifo (the bug), let it go so the test process can end.
      try {
        nodeFs.closeSync(nodeFs.openSync(fifo, nodeFs.constants.O_WRONLY | nodeFs.constants.O_NONBLOCK));
      } catch {
        // no reader waiting: nothing to release
      }
    }
  });
});

describe('arguments are checked before any work', () => {
  test('build: a bad -t, --level, --compression or --platform fails before a step runs or the Kubefile is read', async () => {
    const ctx = join(dir, 'ctx-args');
    nodeFs.mkdirSync(ctx, { recursive: true });
    // A Kubefile that would fail when run: the argument error must come first.
    nodeFs.writeFileSync(join(ctx, 'Kubefile'), 'FROM scratch\nCOPY missing-source .\n');
    for (const [args, pattern] of [
      [['-t', 'BAD TAG'], /invalid reference.*\[INVALID_REFERENCE\]\n$/],
      [['-t', 'name@sha256:' + '0'.repeat(64)], /\[INVALID_REFERENCE\]\n$/],
      [['--level', '99'], /level must be an integer from 0 to 9.*\[USAGE\]\n$/],
      [['--compression', 'zstd', '--level', '0'], /\[(USAGE|UNSUPPORTED)\]\n$/],
      [['--compression', 'none', '--level', '1'], /\[USAGE\]\n$/],
      [['--platform', 'linux/bogus'], /invalid platform.*\[USAGE\]\n$/],
      [['--limit', 'entries=0'], /\[USAGE\]\n$/],
    ] as [string[], RegExp][]) {
      const r = await cli(['build', ...args, '--store', join(dir, 'unused-store'), ctx], diskFs);
      expect([args.join(' '), r.stderr]).toEqual([args.join(' '), expect.stringMatching(pattern)]);
      expect(r.stderr).not.toContain('STEP');
      expect(r.stderr).not.toContain('missing-source');
    }
    // Nothing was opened or created for the build.
    expect(nodeFs.existsSync(join(dir, 'unused-store'))).toBe(false);
    // The API checks them first too.
    for (const options of [{ tag: 'BAD TAG' }, { encoding: { level: 42 } }, { platforms: ['bogus'] }]) {
      const result = await outcome(() => buildImage({ fs: diskFs, context: ctx, kubefile: join(ctx, 'nope'), ...options }));
      expect(result).toBeInstanceOf(Error);
      expect((result as { code?: string }).code).not.toBe('NOT_FOUND');
    }
  });
});
