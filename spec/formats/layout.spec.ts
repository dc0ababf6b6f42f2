import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Volume, createFsFromVolume } from 'memfs';
import { FileSystem } from '../../lib/fs';
import { Image, ImageIndex } from '../../lib/image/image';
import { Layer } from '../../lib/layer/layer';
import { diff } from '../../lib/layer/diff';
import { Rootfs } from '../../lib/rootfs/rootfs';
import { readOciLayout, readOciImage, writeOciLayout, OciLayout } from '../../lib/formats/layout';
import { readRootfsFromDirectory, writeRootfsToDirectory } from '../../lib/rootfs/io';
import { readContent } from '../../lib/content';
import { requireTool } from '../support/tools';

function memfs(): FileSystem {
  return createFsFromVolume(new Volume()) as unknown as FileSystem;
}

async function sampleImage(): Promise<Image> {
  const base = Rootfs.empty()
    .withFile('bin/kubeadm', Buffer.alloc(50000, 1), { mode: 0o755 })
    .withFile('etc/daemon.json', '{"log-driver":"json-file"}\n')
    .withFile('statics/audit-policy.yml', 'apiVersion: audit.k8s.io/v1\n')
    .withSymlink('bin/kubectl', 'kubeadm');
  const child = base.withFile('etc/daemon.json', '{"registry-mirrors":[]}\n').without('statics/audit-policy.yml');
  return Image.empty({ os: 'linux', architecture: 'amd64' })
    .withLayer(await diff(Rootfs.empty(), base), { created_by: 'COPY . .' })
    .withLayer(await diff(base, child), { created_by: 'COPY daemon.json etc/' })
    .withLabel('cluster.alpha.sealer.io/cluster-runtime-version', 'v1.19.9');
}

describe('OCI image layout', () => {
  test('the whole chain on memfs: directory → Rootfs → layers → layout → read back → flatten', async () => {
    const mfs = memfs();
    await mfs.promises.mkdir('/ctx/etc', { recursive: true });
    await mfs.promises.writeFile('/ctx/etc/daemon.json', '{"a":1}');
    await mfs.promises.mkdir('/ctx/bin', { recursive: true });
    await mfs.promises.writeFile('/ctx/bin/kubelet', Buffer.alloc(300000, 9));
    await mfs.promises.symlink('kubelet', '/ctx/bin/kl');
    const rootfs = await readRootfsFromDirectory('/ctx', { fs: mfs, owner: { uid: 0, gid: 0 } });
    const image = Image.empty({ os: 'linux', architecture: 'amd64' }).withLayer(await diff(Rootfs.empty(), rootfs));
    const desc = await writeOciLayout(image, '/out', { fs: mfs, tag: 'v1' });
    expect(desc.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    const back = await readOciImage('/out', { fs: mfs, ref: 'v1', platform: { os: 'linux', architecture: 'amd64' } });
    const flat = await back.flatten();
    expect(flat.get('bin/kl')).toMatchObject({ type: 'symlink', target: 'kubelet' });
    const kubelet = flat.get('bin/kubelet');
    expect(kubelet?.type === 'file' && (await readContent(kubelet.content)).equals(Buffer.alloc(300000, 9))).toBe(true);
    await writeRootfsToDirectory(flat, '/exported', { fs: mfs });
    expect((await mfs.promises.readFile('/exported/etc/daemon.json', 'utf8'))).toBe('{"a":1}');
    // Writing what was read gives the same digest (stored bytes are reused).
    const again = await writeOciLayout(back, '/out2', { fs: mfs, tag: 'v1' });
    expect(again.digest).toBe(desc.digest);
  });

  test('reproducible: same image, same digest, twice', async () => {
    const a = await writeOciLayout(await sampleImage(), '/a', { fs: memfs(), tag: 't' });
    const b = await writeOciLayout(await sampleImage(), '/b', { fs: memfs(), tag: 't' });
    expect(b.digest).toBe(a.digest);
  });

  test('a multi-platform index round-trips and selects by platform', async () => {
    const mfs = memfs();
    const amd = (await sampleImage()).withPlatform({ os: 'linux', architecture: 'amd64' });
    const arm = (await sampleImage()).withPlatform({ os: 'linux', architecture: 'arm64' }).withLabel('arch', 'arm64');
    await writeOciLayout(ImageIndex.of([amd, arm]), '/multi', { fs: mfs, tag: 'latest' });
    const back = await readOciLayout('/multi', { fs: mfs, ref: 'latest' });
    expect(back).toBeInstanceOf(ImageIndex);
    const picked = (back as ImageIndex).select({ os: 'linux', architecture: 'arm64' });
    expect(picked.labels.arch).toBe('arm64');
    expect(() => (back as ImageIndex).select({ os: 'linux', architecture: 's390x' })).toThrow(expect.objectContaining({ code: 'PLATFORM_NOT_FOUND' }));
  });

  test('bad layouts give typed errors', async () => {
    const mfs = memfs();
    await writeOciLayout(await sampleImage(), '/l', { fs: mfs, tag: 't' });
    await expect(readOciLayout('/l', { fs: mfs, ref: 'nope' })).rejects.toMatchObject({ code: 'IMAGE_NOT_FOUND' });
    await expect(readOciLayout('/missing', { fs: mfs })).rejects.toMatchObject({ code: 'IMAGE_NOT_FOUND' });
    // A corrupted layer blob is caught when the layer is read.
    const layout = await OciLayout.open(mfs, '/l');
    const image = (await layout.load(await layout.resolve('t'))) as Image;
    const layerDesc = image.layers[0].kind === 'blob' ? image.layers[0].descriptor : undefined;
    const path = layout.blobPath(layerDesc!.digest);
    const bytes = await mfs.promises.readFile(path);
    bytes[bytes.length - 20] ^= 0xff;
    await mfs.promises.writeFile(path, bytes);
    const reread = (await layout.load(await layout.resolve('t'))) as Image;
    await expect(reread.flatten()).rejects.toMatchObject({ code: expect.stringMatching(/DIGEST_MISMATCH|CORRUPT_ARCHIVE/) });
    // A missing blob.
    await mfs.promises.unlink(path);
    const again = (await layout.load(await layout.resolve('t'))) as Image;
    await expect(again.flatten()).rejects.toMatchObject({ code: 'BLOB_NOT_FOUND' });
    // A digest that tries to escape the layout.
    expect(() => layout.blobPath('sha256:../../../etc/passwd')).toThrow(expect.objectContaining({ code: 'INVALID_IMAGE' }));
    // Writing into a non-empty non-layout directory is refused and leaves it alone.
    await mfs.promises.mkdir('/busy');
    await mfs.promises.writeFile('/busy/x', 'keep');
    await expect(writeOciLayout(await sampleImage(), '/busy', { fs: mfs })).rejects.toMatchObject({ code: 'DESTINATION_EXISTS' });
    expect(await mfs.promises.readdir('/busy')).toEqual(['x']);
  });

  test('an image without layers is written and read back (layers: [], diff_ids: [])', async () => {
    // Valid OCI: the spec's prose says only that layers SHOULD have an entry; sealer builds such images.
    const mfs = memfs();
    const image = Image.empty({ os: 'linux', architecture: 'amd64' }).withLabel('only', 'metadata');
    await writeOciLayout(image, '/out', { fs: mfs, tag: 'v1' });
    const back = await readOciImage('/out', { fs: mfs, ref: 'v1', platform: { os: 'linux', architecture: 'amd64' } });
    expect(back.layers).toEqual([]);
    expect(JSON.parse(back.stored!.config.toString('utf8')).rootfs).toEqual({ type: 'layers', diff_ids: [] });
    expect(back.labels).toEqual({ only: 'metadata' });
    expect((await back.flatten()).size).toBe(0);
  });

  test('a second write reuses the first blob, and encodes again when that blob is gone', async () => {
    const mfs = memfs();
    const image = await sampleImage();
    const first = await writeOciLayout(image, '/one', { fs: mfs, tag: 't' });
    await mfs.promises.rm('/one', { recursive: true });
    const second = await writeOciLayout(image, '/two', { fs: mfs, tag: 't' });
    expect(second.digest).toBe(first.digest);
  });

  test('a failed write leaves no partial layout', async () => {
    const mfs = memfs();
    const broken = Image.empty().withLayer(
      Layer.empty().withFile('x', { size: 10, open: () => { throw new Error('boom'); } } as never),
    );
    await expect(writeOciLayout(broken, '/out', { fs: mfs })).rejects.toThrow('boom');
    expect(await mfs.promises.readdir('/')).toEqual([]);
  });
});

describe('third-party referees', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(join(tmpdir(), 'crfs-layout-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('oci-image-tool validate accepts what we write', async () => {
    if (!requireTool('oci-image-tool')) return;
    await writeOciLayout(await sampleImage(), join(dir, 'v'), { fs: fs as unknown as FileSystem, tag: 'v1.19.9' });
    const out = execFileSync('oci-image-tool', ['validate', '--type', 'image', '--ref', 'name=v1.19.9', join(dir, 'v')], { encoding: 'utf8' });
    expect(out).toMatch(/Validation succeeded/);
  });

  test('umoci unpack gives the tree our flatten gives', async () => {
    if (!requireTool('umoci')) return;
    const image = await sampleImage();
    await writeOciLayout(image, join(dir, 'u'), { fs: fs as unknown as FileSystem, tag: 't' });
    execFileSync('umoci', ['unpack', '--rootless', '--image', `${join(dir, 'u')}:t`, join(dir, 'bundle')], { stdio: 'pipe' });
    const theirs = await readRootfsFromDirectory(join(dir, 'bundle', 'rootfs'), { fs: fs as unknown as FileSystem });
    const ours = await image.flatten();
    const list = (r: Rootfs) => [...r.walk()].map((e) => `${e.path}:${e.entry.type}:${(e.entry.mode & 0o777).toString(8)}`);
    expect(list(theirs)).toEqual(list(ours));
    expect(fs.readFileSync(join(dir, 'bundle', 'rootfs', 'etc', 'daemon.json'), 'utf8')).toBe('{"registry-mirrors":[]}\n');
    expect(fs.existsSync(join(dir, 'bundle', 'rootfs', 'statics', 'audit-policy.yml'))).toBe(false);
  });
});

describe('writeTarget on failure', () => {
  test('no layer write starts after one fails, and the error comes only after running writes settle', async () => {
    const { writeTarget } = await import('../../lib/image/write');
    const events: string[] = [];
    let running = 0;
    const layers = ['a', 'b', 'c', 'd', 'e'].map((n) => Layer.empty().withFile(n, n));
    const image = layers.reduce((img, l) => img.withLayer(l), Image.empty());
    const target = {
      has: async () => false,
      putBytes: async () => undefined,
      putContent: async () => undefined,
      putLayer: async (layer: Layer) => {
        const name = [...layer.entries()][0].path;
        running++;
        events.push(`start ${name}`);
        await new Promise((r) => setTimeout(r, name === 'a' ? 5 : 40));
        running--;
        events.push(`end ${name}`);
        if (name === 'a') throw new Error('a failed');
        return { encoded: { diffId: 'sha256:' + '0'.repeat(64), digest: 'sha256:' + '1'.repeat(64), size: 1, mediaType: 'x', uncompressedSize: 1, compression: 'gzip' as const } };
      },
    };
    await expect(writeTarget(image, target, { layerConcurrency: 2 })).rejects.toThrow('a failed');
    expect(running).toBe(0);
    expect(events).toEqual(['start a', 'start b', 'end a', 'end b']);
  });
});
