import { gzipSync } from 'node:zlib';
import { Image, ImageIndex } from '../../lib/image/image';
import { Layer } from '../../lib/layer/layer';
import { layerTarStream } from '../../lib/tar/write';
import { readContent } from '../../lib/content';
import { openImageArchive } from '../../lib/formats/archive';
import { TarArchive } from '../../lib/formats/archive-io';
import { readOciArchive, writeOciArchive, writeOciArchiveImages } from '../../lib/formats/oci-archive';
import { readDockerArchive, writeDockerArchive } from '../../lib/formats/docker-archive';
import { ImageStore, loadArchiveIntoStore } from '../../lib/store';
import { copyImage, loadTarget, saveTarget } from '../../lib/transports';
import { getImageExtension } from '../../lib/sealer';
import { listing } from '../support/layers';
import { classicDockerArchive, cloudImage, makeTar, memfs, multiArch, sha256 } from './archive-support';
import type { FileSystem } from '../../lib/fs';

async function tarOf(layer: Layer): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of layerTarStream(layer)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function members(fs: FileSystem, file: string): Promise<string[]> {
  const a = await TarArchive.open(file, { fs });
  return a.members.map((m) => `${m.name}${m.type === 'directory' ? '/' : ''}`);
}

describe('oci-archive', () => {
  test('write → read keeps digests, names, the sealer extension and the tree', async () => {
    const fs = memfs();
    const image = await cloudImage();
    const d = await writeOciArchive(image, '/k.tar', { fs, name: 'kubernetes:v1.19.9' });
    // Fixed order: blobs by digest, then index.json, oci-layout; no wrapping directory.
    const names = await members(fs, '/k.tar');
    expect(names.slice(0, 2)).toEqual(['blobs/', 'blobs/sha256/']);
    expect(names.slice(-2)).toEqual(['index.json', 'oci-layout']);
    const index = JSON.parse((await (await TarArchive.open('/k.tar', { fs })).read('index.json')).toString());
    expect(index.manifests[0].annotations).toEqual({
      'io.containerd.image.name': 'docker.io/library/kubernetes:v1.19.9',
      'org.opencontainers.image.ref.name': 'v1.19.9',
    });
    for (const ref of [undefined, 'v1.19.9', 'kubernetes:v1.19.9', 'docker.io/library/kubernetes:v1.19.9', d.digest]) {
      const back = (await readOciArchive('/k.tar', { fs, ref })) as Image;
      expect(back.stored?.manifestDescriptor.digest).toBe(d.digest);
    }
    await expect(readOciArchive('/k.tar', { fs, ref: 'other:v1' })).rejects.toMatchObject({ code: 'IMAGE_NOT_FOUND' });
    const back = (await readOciArchive('/k.tar', { fs })) as Image;
    expect(getImageExtension(back)).toEqual(getImageExtension(image));
    expect(listing(await back.flatten())).toEqual(listing(await image.flatten()));
  });

  test('writing twice gives byte-identical archives; several images list in order', async () => {
    const fs = memfs();
    await writeOciArchive(await cloudImage(), '/a.tar', { fs, name: 'x:1' });
    await writeOciArchive(await cloudImage(), '/b.tar', { fs, name: 'x:1' });
    expect((await fs.promises.readFile('/a.tar')).equals(await fs.promises.readFile('/b.tar'))).toBe(true);
    await writeOciArchiveImages(
      [
        { target: await cloudImage('amd64', 'one'), name: 'one:v1' },
        { target: await cloudImage('amd64', 'two'), name: 'two:v1' },
      ],
      '/two.tar',
      { fs },
    );
    const archive = await openImageArchive('/two.tar', { fs });
    expect(archive.images.map((i) => i.names)).toEqual([['docker.io/library/one:v1'], ['docker.io/library/two:v1']]);
    await expect(readOciArchive('/two.tar', { fs })).rejects.toMatchObject({ code: 'AMBIGUOUS_IMAGE' });
  });

  test('a multi-platform index round-trips; any member order and gzip compression are read', async () => {
    const fs = memfs();
    const index = await multiArch();
    const d = await writeOciArchive(index, '/m.tar', { fs, name: 'multi:v1' });
    const back = await readOciArchive('/m.tar', { fs });
    expect(back).toBeInstanceOf(ImageIndex);
    expect((back as ImageIndex).stored?.descriptor.digest).toBe(d.digest);
    // Reversed member order, gzip-compressed: what a hand-made `tar cz` might give.
    const archive = await TarArchive.open('/m.tar', { fs });
    const reversed = await makeTar(
      await Promise.all(
        [...archive.members].reverse().map(async (m) => (m.type === 'directory' ? { name: `${m.name}/`, type: 'directory' as const } : { name: `./${m.name}`, data: await readContent(archive.content(m.name)) })),
      ),
    );
    await fs.promises.writeFile('/m.tar.gz', gzipSync(reversed));
    const gz = await readOciArchive('/m.tar.gz', { fs, ref: 'v1' });
    expect((gz as ImageIndex).stored?.descriptor.digest).toBe(d.digest);
    const arm = (gz as ImageIndex).select({ os: 'linux', architecture: 'arm64' });
    expect(await (await arm.flatten()).readText('Metadata')).toContain('"arch":"arm64"');
  });
});

describe('docker-archive', () => {
  test('writes the Docker 25 hybrid: OCI layout + manifest.json + repositories', async () => {
    const fs = memfs();
    const image = await cloudImage();
    const d = await writeDockerArchive(image, '/d.tar', { fs, names: ['kubernetes:v1.19.9', 'registry.example.com/sealer/kubernetes:v1.19.9'] });
    expect(await members(fs, '/d.tar')).toEqual(expect.arrayContaining(['index.json', 'manifest.json', 'oci-layout', 'repositories']));
    const archive = await TarArchive.open('/d.tar', { fs });
    const manifest = JSON.parse((await archive.read('manifest.json')).toString());
    expect(manifest).toHaveLength(1);
    expect(Object.keys(manifest[0])).toEqual(['Config', 'RepoTags', 'Layers']);
    expect(manifest[0].RepoTags).toEqual(['kubernetes:v1.19.9', 'registry.example.com/sealer/kubernetes:v1.19.9']);
    expect(manifest[0].Layers).toHaveLength(3);
    for (const p of [manifest[0].Config, ...manifest[0].Layers]) expect(archive.has(p)).toBe(true);
    const repositories = JSON.parse((await archive.read('repositories')).toString());
    expect(repositories.kubernetes['v1.19.9']).toBe(manifest[0].Layers[2].slice('blobs/sha256/'.length));
    // Read back through the OCI side: same manifest digest, names from both sides.
    const opened = await openImageArchive('/d.tar', { fs });
    expect(opened.format).toBe('docker-hybrid');
    expect(opened.images[0].names).toEqual(['docker.io/library/kubernetes:v1.19.9', 'registry.example.com/sealer/kubernetes:v1.19.9']);
    const back = (await readDockerArchive('/d.tar', { fs, ref: 'registry.example.com/sealer/kubernetes:v1.19.9' })) as Image;
    expect(back.stored?.manifestDescriptor.digest).toBe(d.digest);
  });

  test('an index needs a platform for manifest.json (the host default), else a clear error', async () => {
    const fs = memfs();
    const index = await multiArch();
    await writeDockerArchive(index, '/d.tar', { fs, names: ['m:v1'], platform: { os: 'linux', architecture: 'arm64' } });
    const manifest = JSON.parse((await (await TarArchive.open('/d.tar', { fs })).read('manifest.json')).toString());
    const config = JSON.parse((await (await TarArchive.open('/d.tar', { fs })).read(manifest[0].Config)).toString());
    expect(config.architecture).toBe('arm64');
    await expect(writeDockerArchive(index, '/e.tar', { fs, platform: { os: 'linux', architecture: 's390x' } })).rejects.toMatchObject({ code: 'PLATFORM_NOT_FOUND' });
    expect(await fs.promises.readdir('/')).toEqual(['d.tar']); // nothing left behind
  });

  test('reads classic archives (containers/image layout: symlinked layer.tar, plain or gzip layers)', async () => {
    const fs = memfs();
    const layer = Layer.empty().withFile('etc/hello', 'hello\n').withSymlink('etc/link', 'hello');
    const tar = await tarOf(layer);
    await fs.promises.writeFile('/c.tar', await classicDockerArchive({ layerTar: tar }));
    const image = (await readDockerArchive('/c.tar', { fs, ref: 'classic:v1' })) as Image;
    expect(image.layers[0].kind === 'blob' && image.layers[0].descriptor.digest).toBe(`sha256:${sha256(tar)}`);
    expect(await (await image.flatten()).readText('etc/hello')).toBe('hello\n');
    expect(image.labels).toEqual({ a: 'b' });
    // The manifest we make is canonical: reading twice gives the same digest.
    const again = (await readDockerArchive('/c.tar', { fs })) as Image;
    expect(again.stored?.manifestDescriptor.digest).toBe(image.stored?.manifestDescriptor.digest);
    // gzip layer (digest computed), and the whole archive gzipped.
    const gz = gzipSync(tar);
    await fs.promises.writeFile('/cg.tar.gz', gzipSync(await classicDockerArchive({ layerTar: gz, diffId: `sha256:${sha256(tar)}` })));
    const gzImage = (await readDockerArchive('/cg.tar.gz', { fs })) as Image;
    expect(gzImage.layers[0].kind === 'blob' && gzImage.layers[0].descriptor).toMatchObject({
      digest: `sha256:${sha256(gz)}`,
      mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
    });
    expect(await (await gzImage.flatten()).readText('etc/hello')).toBe('hello\n');
  });
});

describe('save → load → save', () => {
  test.each(['oci-archive', 'docker-archive'] as const)('%s: byte-identical, through two stores', async (format) => {
    const fs = memfs();
    const storeA = await ImageStore.open({ fs, root: '/a' });
    await storeA.put(await cloudImage(), 'kubernetes:v1.19.9');
    await copyImage('kubernetes:v1.19.9', `${format}:/one.tar`, { fs, store: storeA });
    const storeB = await ImageStore.open({ fs, root: '/b' });
    const loaded = await loadArchiveIntoStore(storeB, '/one.tar', { fs });
    expect(loaded.images[0].names).toEqual(['docker.io/library/kubernetes:v1.19.9']);
    await copyImage('kubernetes:v1.19.9', `${format}:/two.tar`, { fs, store: storeB });
    const one = await fs.promises.readFile('/one.tar');
    const two = await fs.promises.readFile('/two.tar');
    expect(two.equals(one)).toBe(true);
    expect((await storeB.resolve('kubernetes:v1.19.9')).digest).toBe((await storeA.resolve('kubernetes:v1.19.9')).digest);
  });

  test('transports: every reference kind loads and saves', async () => {
    const fs = memfs();
    const store = await ImageStore.open({ fs, root: '/s' });
    const image = await cloudImage();
    const d = await saveTarget(image, 'oci:/layout:v1', { fs });
    await saveTarget(await loadTarget('oci:/layout:v1', { fs }), 'oci-archive:/x.tar:v1', { fs, name: 'k8s:v1' });
    await copyImage('oci-archive:/x.tar:v1', 'docker-archive:/y.tar:k8s:v2', { fs });
    await copyImage('docker-archive:/y.tar:k8s:v2', 'k8s:v3', { fs, store });
    const fromStore = (await loadTarget('k8s:v3', { fs, store })) as Image;
    expect(fromStore.stored?.manifestDescriptor.digest).toBe(d.digest);
    // docker:// goes to the registry transport: nothing listens on port 1, so the network fails.
    const registry = { retries: 0 };
    await expect(loadTarget('docker://127.0.0.1:1/a:b', { fs, registry })).rejects.toMatchObject({ code: 'NETWORK_ERROR' });
    await expect(saveTarget(image, 'docker://127.0.0.1:1/a:b', { fs, registry })).rejects.toMatchObject({ code: 'NETWORK_ERROR' });
  });
});

describe('bad archives give typed errors and leave the store as it was', () => {
  async function storeSnapshot(fs: FileSystem, root: string): Promise<string> {
    const blobs = (await fs.promises.readdir(`${root}/blobs/sha256`)).sort();
    return JSON.stringify({ blobs, index: await fs.promises.readFile(`${root}/index.json`, 'utf8') });
  }

  async function expectLoadFails(archive: Buffer, code: string | RegExp): Promise<void> {
    const fs = memfs();
    const store = await ImageStore.open({ fs, root: '/s' });
    await store.put(await cloudImage(), 'existing:v1');
    const before = await storeSnapshot(fs, '/s');
    await fs.promises.writeFile('/bad.tar', archive);
    await expect(loadArchiveIntoStore(store, '/bad.tar', { fs })).rejects.toMatchObject({ code });
    expect(await storeSnapshot(fs, '/s')).toBe(before);
  }

  const layerTar = () => tarOf(Layer.empty().withFile('f', 'data\n'));

  test('manifest.json naming members that are not there', async () => {
    await expectLoadFails(await classicDockerArchive({ layerTar: await layerTar(), layerPath: 'missing/layer.tar' }), 'BLOB_NOT_FOUND');
    const noConfig = await makeTar([{ name: 'manifest.json', data: JSON.stringify([{ Config: 'nope.json', RepoTags: [], Layers: [] }]) }]);
    await expectLoadFails(noConfig, 'BLOB_NOT_FOUND');
    await expectLoadFails(await makeTar([{ name: 'manifest.json', data: '{"not":"a list"}' }]), 'INVALID_IMAGE');
  });

  test('a layer that does not match its diff_id (classic and OCI)', async () => {
    await expectLoadFails(await classicDockerArchive({ layerTar: await layerTar(), diffId: `sha256:${'1'.repeat(64)}` }), 'DIGEST_MISMATCH');
    // An OCI archive whose config lies about a gzip layer's diff_id: the blob digest matches the manifest.
    const fs = memfs();
    const image = await cloudImage();
    await writeOciArchive(image, '/ok.tar', { fs });
    const archive = await TarArchive.open('/ok.tar', { fs });
    const loaded = (await readOciArchive('/ok.tar', { fs })) as Image;
    const configDigest = loaded.stored!.configDescriptor.digest;
    const config = JSON.parse((await archive.read(`blobs/sha256/${configDigest.slice(7)}`)).toString());
    config.rootfs.diff_ids[1] = `sha256:${'2'.repeat(64)}`;
    const configBytes = Buffer.from(JSON.stringify(config));
    const manifest = JSON.parse((await archive.read(`blobs/sha256/${loaded.stored!.manifestDescriptor.digest.slice(7)}`)).toString());
    manifest.config = { ...manifest.config, digest: `sha256:${sha256(configBytes)}`, size: configBytes.length };
    const manifestBytes = Buffer.from(JSON.stringify(manifest));
    const index = { schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${sha256(manifestBytes)}`, size: manifestBytes.length }] };
    const layers = await Promise.all(
      loaded.layers.map(async (l) => ({ name: `blobs/sha256/${l.kind === 'blob' ? l.descriptor.digest.slice(7) : ''}`, data: await readContent(l.kind === 'blob' ? l.blob : (undefined as never)) })),
    );
    const lying = await makeTar([
      { name: 'oci-layout', data: '{"imageLayoutVersion":"1.0.0"}' },
      { name: 'index.json', data: JSON.stringify(index) },
      { name: `blobs/sha256/${sha256(manifestBytes)}`, data: manifestBytes },
      { name: `blobs/sha256/${sha256(configBytes)}`, data: configBytes },
      ...layers,
    ]);
    await expectLoadFails(lying, 'DIGEST_MISMATCH');
  });

  test('unknown media types', async () => {
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${sha256('{}')}`, size: 2 }, layers: [{ mediaType: 'application/x-unknown-layer', digest: `sha256:${sha256('x')}`, size: 1 }] }));
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [`sha256:${sha256('x')}`] } }));
    const fixed = Buffer.from(manifest.toString().replace(sha256('{}'), sha256(config)).replace('"size":2', `"size":${config.length}`));
    const entries = (indexMediaType: string) => [
      { name: 'oci-layout', data: '{"imageLayoutVersion":"1.0.0"}' },
      { name: 'index.json', data: JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: indexMediaType, digest: `sha256:${sha256(fixed)}`, size: fixed.length }] }) },
      { name: `blobs/sha256/${sha256(fixed)}`, data: fixed },
      { name: `blobs/sha256/${sha256(config)}`, data: config },
      { name: `blobs/sha256/${sha256('x')}`, data: 'x' },
    ];
    await expectLoadFails(await makeTar(entries('application/vnd.oci.image.manifest.v1+json')), 'UNSUPPORTED_MEDIA_TYPE');
    await expectLoadFails(await makeTar(entries('application/x-unknown-manifest')), 'UNSUPPORTED_MEDIA_TYPE');
  });

  test('truncated tars and things that are not tars', async () => {
    const fs = memfs();
    await writeOciArchive(await cloudImage(), '/ok.tar', { fs });
    const whole = await fs.promises.readFile('/ok.tar');
    await expectLoadFails(whole.subarray(0, Math.floor(whole.length / 2)), 'CORRUPT_ARCHIVE'); // mid-member
    await expectLoadFails(whole.subarray(0, whole.length - 1024), 'CORRUPT_ARCHIVE'); // no end marker
    await expectLoadFails(gzipSync(whole).subarray(0, 2000), 'CORRUPT_ARCHIVE'); // truncated gzip
    await expectLoadFails(Buffer.from('this is not a tar file at all, not even close'.repeat(30)), 'CORRUPT_ARCHIVE');
    await expectLoadFails(await makeTar([{ name: 'README', data: 'hi' }]), 'INVALID_IMAGE');
  });

  test('names that escape the archive', async () => {
    const ok = [{ name: 'oci-layout', data: '{"imageLayoutVersion":"1.0.0"}' }];
    await expectLoadFails(await makeTar([...ok, { name: '../../etc/passwd', data: 'x' }]), 'INVALID_PATH');
    await expectLoadFails(await makeTar([...ok, { name: '/etc/passwd', data: 'x' }]), 'INVALID_PATH');
    await expectLoadFails(await makeTar([...ok, { name: 'blobs/../../x', data: 'x' }]), 'INVALID_PATH');
    // A symlink leading out: refused when followed (here: index.json → /etc/passwd).
    await expectLoadFails(await makeTar([...ok, { name: 'index.json', type: 'symlink', linkname: '../../../etc/passwd' }]), 'INVALID_PATH');
    await expectLoadFails(await makeTar([...ok, { name: 'index.json', type: 'symlink', linkname: '/etc/passwd' }]), 'INVALID_PATH');
    const layer = await layerTar();
    await expectLoadFails(await classicDockerArchive({ layerTar: layer, layerPath: 'x/layer.tar', extraMembers: [{ name: 'x/layer.tar', type: 'symlink', linkname: '../../outside.tar' }] }), 'INVALID_PATH');
  });
});
