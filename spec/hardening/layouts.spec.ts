/**
 * Layouts and the store as someone else may have left them: a blob (or the blobs directory) that
 * is a symlink is refused, never followed out of the layout; a name given to two different images
 * is AMBIGUOUS_IMAGE wherever it is read (a layout, an archive, load, the store); one broken image
 * does not hide the others from `images`.
 */
import { execFileSync } from 'node:child_process';
import * as nodeFs from 'node:fs';
import { join } from 'node:path';
import { readOciImage, writeOciLayout } from '../../lib/formats/layout';
import { diskFs } from '../../lib/fs';
import { Image } from '../../lib/image/image';
import { Layer } from '../../lib/layer/layer';
import { Rootfs } from '../../lib/rootfs/rootfs';
import { ImageStore } from '../../lib/store';
import { makeTar } from '../formats/archive-support';
import { scratchDir } from '../support/umoci';
import { cli, expectCode, outcome, snapshot } from './support';

const image = (marker: string) => Image.empty({ os: 'linux', architecture: 'amd64' }).withLayer(Layer.fromRootfs(Rootfs.empty().withFile('etc/marker', marker)));

function blobPaths(layout: string): string[] {
  return nodeFs.readdirSync(join(layout, 'blobs', 'sha256')).map((n) => join(layout, 'blobs', 'sha256', n));
}

/** The layer blob of the only image of `layout` (the one that is gzip). */
function layerBlob(layout: string): string {
  return blobPaths(layout).find((p) => nodeFs.readFileSync(p).subarray(0, 2).equals(Buffer.from([0x1f, 0x8b])))!;
}

describe('blobs that are symlinks', () => {
  let dir: string;
  beforeEach(() => {
    dir = scratchDir('crfs-symlink-blob-');
  });
  afterEach(() => nodeFs.rmSync(dir, { recursive: true, force: true }));

  test('a blob symlinked to its own bytes elsewhere, inside or outside the layout: INVALID_IMAGE, not followed', async () => {
    for (const where of ['outside', 'inside']) {
      const layout = join(dir, `layout-${where}`);
      await writeOciLayout(image(where), layout, { fs: diskFs, tag: 'v1' });
      const blob = layerBlob(layout);
      const elsewhere = where === 'outside' ? join(dir, `copy-${where}`) : join(layout, 'copy');
      nodeFs.renameSync(blob, elsewhere);
      nodeFs.symlinkSync(elsewhere, blob);
      const result = await outcome(async () => (await readOciImage(layout, { fs: diskFs, ref: 'v1' })).flatten());
      expectCode(result, 'INVALID_IMAGE', `a symlinked blob (${where})`);
      expect((result as Error).message).toContain('symlink');
      const r = await cli(['ls', `oci:${layout}:v1`], diskFs);
      expect(r.stderr).toMatch(/symlink.*\[INVALID_IMAGE\]\n$/);
    }
  });

  test('a symlink to a fifo outside: refused at once (a reader that followed it would block forever)', async () => {
    const layout = join(dir, 'layout');
    await writeOciLayout(image('fifo'), layout, { fs: diskFs, tag: 'v1' });
    const blob = layerBlob(layout);
    nodeFs.rmSync(blob);
    execFileSync('mkfifo', [join(dir, 'fifo')]);
    nodeFs.symlinkSync(join(dir, 'fifo'), blob);
    expectCode(await outcome(async () => (await readOciImage(layout, { fs: diskFs, ref: 'v1' })).flatten()), 'INVALID_IMAGE', 'a symlink to a fifo');
  });

  test('a blobs/sha256 directory symlinked out of the layout: INVALID_IMAGE for every blob', async () => {
    const layout = join(dir, 'layout');
    await writeOciLayout(image('dir'), layout, { fs: diskFs, tag: 'v1' });
    nodeFs.renameSync(join(layout, 'blobs', 'sha256'), join(dir, 'elsewhere'));
    nodeFs.symlinkSync(join(dir, 'elsewhere'), join(layout, 'blobs', 'sha256'));
    const r = await cli(['ls', `oci:${layout}:v1`], diskFs);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/blobs\/sha256 is a symlink.*\[INVALID_IMAGE\]\n$/);
  });
});

describe('a name given to two different images', () => {
  let dir: string;
  beforeEach(() => {
    dir = scratchDir('crfs-ambiguous-');
  });
  afterEach(() => nodeFs.rmSync(dir, { recursive: true, force: true }));

  /** A layout holding images `a` and `b`, both named `v1` (and docker.io/x/y:v1). */
  async function twoUnderOneTag(layout: string, same = false): Promise<void> {
    await writeOciLayout(image('a'), layout, { fs: diskFs, tag: 'first' });
    await writeOciLayout(image(same ? 'a' : 'b'), layout, { fs: diskFs, tag: 'second' });
    const indexPath = join(layout, 'index.json');
    const index = JSON.parse(nodeFs.readFileSync(indexPath, 'utf8'));
    for (const m of index.manifests) m.annotations = { 'org.opencontainers.image.ref.name': 'v1', 'io.containerd.image.name': 'docker.io/x/y:v1' };
    nodeFs.writeFileSync(indexPath, JSON.stringify(index));
  }

  async function archiveOf(layout: string, file: string): Promise<void> {
    const members: { name: string; data?: Buffer; type?: 'directory' }[] = [];
    const walk = (rel: string) => {
      for (const name of nodeFs.readdirSync(join(layout, rel))) {
        const r = rel ? `${rel}/${name}` : name;
        if (nodeFs.statSync(join(layout, r)).isDirectory()) walk(r);
        else members.push({ name: r, data: nodeFs.readFileSync(join(layout, r)) });
      }
    };
    walk('');
    nodeFs.writeFileSync(file, await makeTar(members));
  }

  test('a layout, an archive, load: AMBIGUOUS_IMAGE, the store untouched; the same image twice is one image', async () => {
    const layout = join(dir, 'layout');
    await twoUnderOneTag(layout);
    const archive = join(dir, 'a.tar');
    await archiveOf(layout, archive);
    const store = join(dir, 'store');
    await (await ImageStore.open({ fs: diskFs, root: store })).put(image('kept'), 'kept:v1');
    const before = snapshot(store);
    for (const argv of [['ls', `oci:${layout}:v1`], ['ls', `oci-archive:${archive}:v1`], ['load', archive]]) {
      const r = await cli([...argv, '--store', store], diskFs);
      expect([argv.join(' '), r.code, r.stderr]).toEqual([argv.join(' '), 1, expect.stringMatching(/2 different images .*\[AMBIGUOUS_IMAGE\]\n$/)]);
    }
    expectCode(await outcome(() => readOciImage(layout, { fs: diskFs, ref: 'v1' })), 'AMBIGUOUS_IMAGE', 'readOciImage');
    expect(snapshot(store)).toEqual(before);

    const same = join(dir, 'same');
    await twoUnderOneTag(same, true);
    const sameArchive = join(dir, 'same.tar');
    await archiveOf(same, sameArchive);
    expect((await cli(['ls', `oci:${same}:v1`, '--store', store], diskFs)).stdout).toContain('etc/marker');
    expect((await cli(['load', sameArchive, '--store', store], diskFs)).code).toBe(0);
  });

  test('a store whose index.json names two images alike (another tool wrote it): AMBIGUOUS_IMAGE', async () => {
    const root = join(dir, 'store');
    const store = await ImageStore.open({ fs: diskFs, root });
    await store.put(image('a'), 'x/y:v1');
    await store.put(image('b'), 'other:v1');
    const index = JSON.parse(nodeFs.readFileSync(join(root, 'index.json'), 'utf8'));
    index.manifests[1].annotations = { ...index.manifests[0].annotations };
    nodeFs.writeFileSync(join(root, 'index.json'), JSON.stringify(index));
    expectCode(await outcome(() => store.loadImage('x/y:v1')), 'AMBIGUOUS_IMAGE', 'the store');
    const r = await cli(['ls', 'x/y:v1', '--store', root], diskFs);
    expect(r.stderr).toMatch(/\[AMBIGUOUS_IMAGE\]\n$/);
  });
});

describe('images with one broken image', () => {
  test('the others are listed; the broken one is listed and marked, the reason on stderr', async () => {
    const dir = scratchDir('crfs-broken-');
    try {
      const root = join(dir, 'store');
      const store = await ImageStore.open({ fs: diskFs, root });
      await store.put(image('good'), 'good:v1');
      const broken = await store.put(image('broken'), 'broken:v1');
      await store.put(image('also-good'), 'also-good:v1');
      // Remove the broken image's manifest blob.
      nodeFs.rmSync(join(root, 'blobs', 'sha256', broken.digest.slice(7)));

      const list = await store.list();
      expect(list.map((e) => [e.familiar, e.broken?.code])).toEqual([
        ['good:v1', undefined],
        ['broken:v1', 'BLOB_NOT_FOUND'],
        ['also-good:v1', undefined],
      ]);
      const table = await cli(['images', '--store', root], diskFs);
      expect(table.code).toBe(0);
      const lines = table.stdout.trim().split('\n');
      expect(lines).toHaveLength(4);
      expect(lines.find((l) => l.includes('broken'))).toMatch(/BROKEN \(BLOB_NOT_FOUND\)$/);
      expect(lines.filter((l) => /good/.test(l))).toHaveLength(2);
      expect(table.stderr).toMatch(/broken:v1 cannot be read: .*\[BLOB_NOT_FOUND\]\n$/);
      const json = JSON.parse((await cli(['images', '--json', '--store', root], diskFs)).stdout);
      expect(json.map((e: { broken?: { code: string } }) => e.broken?.code ?? null)).toEqual([null, 'BLOB_NOT_FOUND', null]);
      expect((await cli(['images', '-q', '--store', root], diskFs)).stdout.trim().split('\n')).toHaveLength(3);
      // And it can be removed.
      expect((await cli(['rmi', 'broken:v1', '--store', root], diskFs)).code).toBe(0);
      expect((await store.list()).map((e) => e.familiar)).toEqual(['good:v1', 'also-good:v1']);
    } finally {
      nodeFs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
