import { humanSize, table } from '../../lib/cli/common';
import { ProgressLine } from '../../lib/cli/progress';
import type { FileSystem } from '../../lib/fs';
import { ImageStore } from '../../lib/store';
import { Image } from '../../lib/image/image';
import { Layer } from '../../lib/layer/layer';
import { cloudImage, memfs, multiArch } from '../formats/archive-support';
import { Capture, runCaptured } from '../support/cli';

const cli = (fs: FileSystem, argv: string[], options: { tty?: boolean } = {}) =>
  runCaptured(fs, argv, { CLOUDROOTFS_STORE: '/store', HOME: '/home/u' }, options);

async function seeded(): Promise<FileSystem> {
  const fs = memfs();
  const store = await ImageStore.open({ fs, root: '/store' });
  await store.put((await cloudImage()).withConfig(() => ({ created: '2024-05-01T12:00:00Z' })), 'kubernetes:v1.19.9');
  return fs;
}

describe('CLI: store commands', () => {
  test('images: table, -q, --json; --store picks another store', async () => {
    const fs = await seeded();
    const { code, out } = await cli(fs, ['images']);
    expect(code).toBe(0);
    const lines = out.trim().split('\n');
    expect(lines[0]).toMatch(/^REPOSITORY\s+TAG\s+IMAGE ID\s+PLATFORM\s+CREATED\s+SIZE$/);
    expect(lines[1]).toMatch(/^docker\.io\/library\/kubernetes\s+v1\.19\.9\s+[0-9a-f]{12}\s+linux\/amd64\s+2024-05-01 12:00:00\s+\d+(\.\d+)?kB$/);
    const ids = (await cli(fs, ['images', '-q'])).out.trim().split('\n');
    expect(ids).toHaveLength(1);
    expect(ids[0]).toMatch(/^[0-9a-f]{12}$/);
    const json = JSON.parse((await cli(fs, ['images', '--json'])).out);
    expect(json[0]).toMatchObject({ familiar: 'kubernetes:v1.19.9', id: expect.stringMatching(/^sha256:/) });
    expect(json[0].id.slice(7, 19)).toBe(ids[0]);
    // An empty store elsewhere.
    expect((await cli(fs, ['images', '--store', '/other'])).out.trim().split('\n')).toHaveLength(1);
  });

  test('inspect prints sealer\'s shape; images without the extension inspect too', async () => {
    const fs = await seeded();
    const { code, out } = await cli(fs, ['inspect', 'kubernetes:v1.19.9']);
    expect(code).toBe(0);
    expect(out).toContain('\n    "id": '); // four-space indent, as sealer prints
    const spec = JSON.parse(out);
    expect(Object.keys(spec)).toEqual(['id', 'name', 'digest', 'manifestv1', 'ociv1', 'imageExtension', 'containerImageList']);
    expect(spec.id).toMatch(/^[0-9a-f]{64}$/);
    expect(spec.manifestv1.annotations).toBeUndefined(); // the two sealer annotations are decoded, not repeated
    expect(spec.ociv1.config.Labels).toBeUndefined(); // moved into the extension
    expect(spec.imageExtension.labels).toEqual({ 'io.sealer.version': 'v0.11.0', 'cluster.alpha.sealer.io/kube-cni': '["calico"]' });
    expect(spec.imageExtension.applications[0].name).toBe('nginx');
    expect(spec.containerImageList).toEqual([{ image: 'docker.io/library/nginx:1.25', appName: 'nginx' }]);
    const store = await ImageStore.open({ fs, root: '/store' });
    await store.put(Image.empty({ os: 'linux', architecture: 'amd64' }).withLayer(Layer.empty().withFile('a', 'a')).withLabel('k', 'v'), 'plain:v1');
    const plain = JSON.parse((await cli(fs, ['inspect', 'plain:v1'])).out);
    expect(plain.imageExtension).toBeNull();
    expect(plain.ociv1.config.Labels).toEqual({ k: 'v' });
    expect(plain.containerImageList).toBeUndefined();
  });

  test('inspect of a multi-platform index: one platform, plus the list', async () => {
    const fs = memfs();
    await (await ImageStore.open({ fs, root: '/store' })).put(await multiArch(), 'multi:v1');
    const spec = JSON.parse((await cli(fs, ['inspect', 'multi:v1', '--platform', 'linux/arm64'])).out);
    expect(spec.ociv1.architecture).toBe('arm64');
    expect(spec.index.manifests.map((m: { platform: { architecture: string } }) => m.platform.architecture)).toEqual(['amd64', 'arm64']);
    const bad = await cli(fs, ['inspect', 'multi:v1', '--platform', 'linux/s390x']);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/\[PLATFORM_NOT_FOUND\]/);
  });

  test('save → load → save through the CLI is byte-identical (both formats)', async () => {
    const fs = await seeded();
    for (const format of ['oci-archive', 'docker-archive']) {
      expect((await cli(fs, ['save', 'kubernetes:v1.19.9', '-o', `/a-${format}.tar`, '--format', format])).code).toBe(0);
      const loaded = await cli(fs, ['load', `/a-${format}.tar`, '--store', `/s-${format}`]);
      expect(loaded.out).toBe('Loaded image: docker.io/library/kubernetes:v1.19.9\n');
      expect((await cli(fs, ['save', 'kubernetes:v1.19.9', '-o', `/b-${format}.tar`, '--format', format, '--store', `/s-${format}`])).code).toBe(0);
      expect((await fs.promises.readFile(`/b-${format}.tar`)).equals(await fs.promises.readFile(`/a-${format}.tar`))).toBe(true);
    }
    const usage = await cli(fs, ['save', 'kubernetes:v1.19.9']);
    expect(usage.code).toBe(2);
    expect((await cli(fs, ['save', 'kubernetes:v1.19.9', '-o', '/x', '--format', 'zip'])).code).toBe(2);
  });

  test('tag, tag-as-import, rmi', async () => {
    const fs = await seeded();
    expect((await cli(fs, ['tag', 'kubernetes:v1.19.9', 'registry.example.com/k8s:v1'])).out).toBe('tagged registry.example.com/k8s:v1\n');
    expect((await cli(fs, ['save', 'kubernetes:v1.19.9', '-o', '/k.tar'])).code).toBe(0);
    expect((await cli(fs, ['tag', 'oci-archive:/k.tar', 'imported:v1'])).code).toBe(0);
    const names = JSON.parse((await cli(fs, ['images', '--json'])).out).map((e: { familiar: string }) => e.familiar);
    expect(names).toEqual(['kubernetes:v1.19.9', 'registry.example.com/k8s:v1', 'imported:v1']);
    const rmi = await cli(fs, ['rmi', 'kubernetes:v1.19.9', 'imported:v1']);
    expect(rmi.out).toBe('Untagged: docker.io/library/kubernetes:v1.19.9\nUntagged: docker.io/library/imported:v1\nDeleted 0 blobs\n');
    const last = await cli(fs, ['rmi', 'registry.example.com/k8s:v1']);
    expect(last.out).toMatch(/Deleted [1-9]\d* blobs\n$/);
    expect((await fs.promises.readdir('/store/blobs/sha256')).length).toBe(0);
    const missing = await cli(fs, ['rmi', 'nope:v1']);
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/\[IMAGE_NOT_FOUND\]/);
  });

  test('diff: an image with itself is empty; a child shows A/D/C with sizes; --json', async () => {
    const fs = await seeded();
    const store = await ImageStore.open({ fs, root: '/store' });
    const same = await cli(fs, ['diff', 'kubernetes:v1.19.9', 'kubernetes:v1.19.9']);
    expect(same).toMatchObject({ code: 0, out: '' });
    const base = await store.loadImage('kubernetes:v1.19.9');
    const rootfs = await base.flatten();
    const changed = rootfs.withFile('etc/daemon.json', 'x'.repeat(2000)).withFile('etc/new.conf', 'new\n').without('scripts');
    const { diff } = await import('../../lib/layer/diff');
    await store.put(base.withLayer(await diff(rootfs, changed)), 'kubernetes:child');
    const out = (await cli(fs, ['diff', 'kubernetes:v1.19.9', 'kubernetes:child'])).out.trim().split('\n');
    expect(out).toEqual([
      expect.stringMatching(/^C\s+24B -> 2kB\s+etc\/daemon\.json \(content\)$/),
      expect.stringMatching(/^A\s+4B\s+etc\/new\.conf$/),
      expect.stringMatching(/^D\s+0B\s+scripts\/$/),
      expect.stringMatching(/^D\s+\d+B\s+scripts\/init-link\.sh$/),
      expect.stringMatching(/^D\s+\d+B\s+scripts\/init\.sh$/),
      expect.stringMatching(/^1 added \(4B\), 3 removed \(\d+B\), 1 changed; size [+-]/),
    ]);
    const json = JSON.parse((await cli(fs, ['diff', 'kubernetes:v1.19.9', 'kubernetes:child', '--json'])).out);
    expect(json.added).toEqual([{ path: 'etc/new.conf', type: 'file', size: 4 }]);
    expect(json.changed[0]).toMatchObject({ path: 'etc/daemon.json', before: { size: 24 }, after: { size: 2000 } });
    expect(json.removed.map((r: { path: string }) => r.path)).toEqual(['scripts', 'scripts/init-link.sh', 'scripts/init.sh']);
  });

  test('ls and export read from --store', async () => {
    const fs = await seeded();
    await cli(fs, ['tag', 'kubernetes:v1.19.9', 'k:v1']);
    const ls = await cli(fs, ['ls', 'k:v1', 'etc', '--store', '/store']);
    expect(ls.out).toMatch(/etc\/daemon\.json/);
    const exp = await cli(fs, ['export', 'k:v1', '/out']);
    expect(exp.code).toBe(0);
    expect(await fs.promises.readFile('/out/etc/daemon.json', 'utf8')).toContain('registry-mirrors');
  });

  test('progress: drawn on a terminal, silent with -q or without a terminal', async () => {
    const fs = await seeded();
    const tty = await cli(fs, ['save', 'kubernetes:v1.19.9', '-o', '/p.tar'], { tty: true });
    expect(tty.err).toMatch(/\r\x1b\[Ksaving \/p\.tar: \[=+\s*\] 100%/);
    expect(tty.err.endsWith('\r\x1b[K')).toBe(true); // the line is cleared before results print
    expect((await cli(fs, ['save', 'kubernetes:v1.19.9', '-o', '/p.tar', '-q'], { tty: true })).err).toBe('');
    expect((await cli(fs, ['save', 'kubernetes:v1.19.9', '-o', '/p.tar'])).err).toBe('');
    const load = await cli(fs, ['load', '/p.tar', '--store', '/q'], { tty: true });
    expect(load.err).toMatch(/verifying layers \[=+\] 100% 3\/3/);
  });

  test('helpers: sizes and tables', () => {
    expect([0, 999, 1000, 1234, 309760, 999999, 1_000_000, 12_345_678].map(humanSize)).toEqual(['0B', '999B', '1kB', '1.23kB', '310kB', '1MB', '1MB', '12.3MB']);
    expect(table(['A', 'BB'], [['xyz', '1']])).toBe('A     BB\nxyz   1');
    const out = new Capture();
    const line = new ProgressLine(out, false, 'x');
    line.onProgress({ phase: 'archive', done: 1, total: 2 });
    line.done();
    expect(out.text).toBe('');
  });
});
