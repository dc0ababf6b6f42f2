import { execFileSync } from 'node:child_process';
import * as nodeFs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildImage, type BuildProgress } from '../../lib/build/build-image';
import { builtinRunExecutor } from '../../lib/build/run';
import { diskFs } from '../../lib/fs';
import { Image, ImageIndex } from '../../lib/image/image';
import { Layer } from '../../lib/layer/layer';
import { writeOciLayout } from '../../lib/formats/layout';
import { ImageStore } from '../../lib/store';
import { requireTool } from '../support/tools';
import { memfs, writeTree } from './helpers';

const EXAMPLES = join(__dirname, '..', '..', 'examples');
const BASE = 'cloudrootfs-example:v1.19.9';
const CHILD = 'cloudrootfs-example-child:v1.19.9';

let tmp: string;
beforeAll(() => {
  tmp = nodeFs.mkdtempSync(join(tmpdir(), 'cloudrootfs-build-spec-'));
});
afterAll(() => nodeFs.rmSync(tmp, { recursive: true, force: true }));

/** A copy of the example tree at `dir` (as a fresh checkout would be). */
function checkout(dir: string): string {
  nodeFs.cpSync(EXAMPLES, dir, { recursive: true });
  return dir;
}

async function buildBoth(root: string, storeRoot: string, fs = diskFs, runExecutor?: ReturnType<typeof builtinRunExecutor>) {
  const store = await ImageStore.open({ fs, root: storeRoot });
  const common = { fs, store, platforms: ['linux/amd64'], runExecutor };
  const base = await buildImage({ ...common, context: join(root, 'cloudrootfs'), tag: BASE });
  const child = await buildImage({ ...common, context: join(root, 'child'), tag: CHILD });
  return { store, base, child };
}

describe('buildImage on node:fs', () => {
  // The child's RUN runs in the default executor on node:fs, the bubblewrap sandbox.
  test('the same Kubefiles and contexts in two directories give the same digests', async () => {
    if (!requireTool('bwrap')) return;
    const a = await buildBoth(checkout(join(tmp, 'checkout-a')), join(tmp, 'store-a'));
    // Different mtimes in the second checkout must not matter.
    const second = checkout(join(tmp, 'checkout-b'));
    nodeFs.utimesSync(join(second, 'cloudrootfs', 'etc', 'daemon.json'), new Date(), new Date('2030-01-01'));
    const b = await buildBoth(second, join(tmp, 'store-b'));
    expect(b.base.digest).toBe(a.base.digest);
    expect(b.child.digest).toBe(a.child.digest);
    expect(a.child.layers.map((l) => l.createdBy)).toEqual(['COPY . .', 'COPY daemon.json etc/', 'RUN rm -f statics/audit-policy.yml']);
    // The child's base layer is the base's blob, byte for byte.
    const baseBlob = nodeFs.readFileSync(join(tmp, 'store-a', 'blobs', 'sha256', a.base.layers[0].digest.slice(7)));
    expect(a.child.layers[0].digest).toBe(a.base.layers[0].digest);
    expect(baseBlob.length).toBe(a.child.layers[0].size);
  });

  test('the sandbox (disk) and the builtin executor (memfs) give the same digests', async () => {
    if (!requireTool('bwrap')) return;
    const disk = await buildBoth(checkout(join(tmp, 'checkout-c')), join(tmp, 'store-c'));
    const fs = memfs();
    const mfs = fs as unknown as typeof nodeFs;
    const copy = (from: string, to: string) => {
      mfs.mkdirSync(to, { recursive: true });
      mfs.chmodSync(to, nodeFs.statSync(from).mode & 0o7777);
      for (const name of nodeFs.readdirSync(from)) {
        const st = nodeFs.lstatSync(join(from, name));
        if (st.isDirectory()) copy(join(from, name), `${to}/${name}`);
        else {
          mfs.writeFileSync(`${to}/${name}`, nodeFs.readFileSync(join(from, name)));
          mfs.chmodSync(`${to}/${name}`, st.mode & 0o7777);
        }
      }
    };
    copy(join(tmp, 'checkout-c'), '/ex');
    const mem = await buildBoth('/ex', '/store', fs, builtinRunExecutor());
    expect(mem.base.digest).toBe(disk.base.digest);
    expect(mem.child.digest).toBe(disk.child.digest);
  });

  test('umoci unpack of the child: the new daemon.json, no audit policy, the base files', async () => {
    if (!requireTool('umoci', 'bwrap')) return;
    const { store } = await buildBoth(checkout(join(tmp, 'checkout-d')), join(tmp, 'store-d'));
    const layout = join(tmp, 'child-layout');
    await writeOciLayout(await store.loadTarget(CHILD), layout, { fs: diskFs, tag: 'child' });
    const bundle = join(tmp, 'bundle');
    execFileSync('umoci', ['unpack', '--rootless', '--image', `${layout}:child`, bundle], { stdio: 'pipe' });
    const rootfs = join(bundle, 'rootfs');
    expect(nodeFs.readFileSync(join(rootfs, 'etc', 'daemon.json'))).toEqual(nodeFs.readFileSync(join(EXAMPLES, 'child', 'daemon.json')));
    expect(nodeFs.existsSync(join(rootfs, 'statics', 'audit-policy.yml'))).toBe(false);
    expect(nodeFs.existsSync(join(rootfs, 'statics'))).toBe(true);
    expect(nodeFs.statSync(join(rootfs, 'bin', 'kubeadm')).mode & 0o777).toBe(0o755);
    expect(nodeFs.readFileSync(join(rootfs, 'etc', 'kubeadm-config.yaml'), 'utf8')).toContain('kubernetesVersion: v1.19.9');
    expect(nodeFs.existsSync(join(rootfs, 'registry', 'docker', 'registry'))).toBe(true);
  });
});

describe('buildImage options', () => {
  async function context(files: Record<string, string | [string, number]>) {
    const fs = memfs();
    await writeTree(fs, '/ctx', files);
    return fs;
  }

  test('several platforms make one index; ${ARCH} picks each platform\'s files', async () => {
    const fs = await context({
      Kubefile: 'FROM scratch\nCOPY ${ARCH}/kubectl bin/\nLABEL arch=${TARGETARCH}\n',
      'amd64/kubectl': 'amd64 build',
      'arm64/kubectl': 'arm64 build',
    });
    const store = await ImageStore.open({ fs, root: '/store' });
    const result = await buildImage({ context: '/ctx', fs, store, tag: 'multi:v1', platforms: ['linux/amd64', 'linux/arm64'] });
    expect(result.target).toBeInstanceOf(ImageIndex);
    const index = result.target as ImageIndex;
    expect(index.platforms).toEqual([{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64' }]);
    expect(result.images.map((i) => i.platform.architecture)).toEqual(['amd64', 'arm64']);
    expect(result.images[0].digest).not.toBe(result.images[1].digest);
    const arm = index.select({ os: 'linux', architecture: 'arm64' });
    expect(await (await arm.flatten()).readText('bin/kubectl')).toBe('arm64 build');
    expect(result.descriptor.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    await expect(buildImage({ context: '/ctx', fs, platforms: ['linux/amd64', 'linux/amd64'] })).rejects.toMatchObject({ code: 'USAGE' });
  });

  test('without a tag nothing is stored, and the digests are those a store write gives', async () => {
    const fs = await context({ Kubefile: 'FROM scratch\nCOPY . .\n', 'etc/a': 'a' });
    const untagged = await buildImage({ context: '/ctx', fs, platforms: ['linux/amd64'] });
    expect(untagged.stored).toBe(false);
    expect(untagged.tag).toBeUndefined();
    const store = await ImageStore.open({ fs, root: '/store' });
    expect(await store.list()).toEqual([]);
    const tagged = await buildImage({ context: '/ctx', fs, store, tag: 'x:1', platforms: ['linux/amd64'] });
    expect(tagged.digest).toBe(untagged.digest);
    expect(tagged.layers).toEqual(untagged.layers);
    expect((await store.put(untagged.target, 'again:1')).digest).toBe(untagged.digest);
  });

  test('a tag without a store opens the default store (CLOUDROOTFS_STORE)', async () => {
    const fs = await context({ Kubefile: 'FROM scratch\nCOPY . .\n', f: 'x' });
    const result = await buildImage({ context: '/ctx', fs, tag: 'default-store:v1', env: { CLOUDROOTFS_STORE: '/default-store' } });
    expect(result.stored).toBe(true);
    const store = await ImageStore.open({ fs, root: '/default-store' });
    expect((await store.list()).map((e) => e.familiar)).toEqual(['default-store:v1']);
  });

  test('kubefile path, inline text, labels, annotations, build args, epoch, progress', async () => {
    const fs = await context({ 'Kubefile.custom': 'FROM scratch\nARG V\nLABEL v=$V\nCOPY f .\n', f: 'x' });
    const events: BuildProgress[] = [];
    const result = await buildImage({
      context: '/ctx',
      kubefile: '/ctx/Kubefile.custom',
      fs,
      platforms: ['linux/amd64'],
      buildArgs: { V: '7' },
      labels: { extra: 'yes' },
      annotations: { 'org.example/a': 'b' },
      sourceDateEpoch: 1000,
      onProgress: (e) => events.push(e),
    });
    const image = result.target as import('../../lib/image/image').Image;
    expect(image.labels).toMatchObject({ v: '7', extra: 'yes' });
    expect(image.annotations['org.example/a']).toBe('b');
    expect(image.config.created).toBe('1970-01-01T00:16:40Z');
    expect(events.filter((e) => e.phase === 'step').map((e) => (e as { instruction: string }).instruction)).toEqual(['LABEL v=7', 'COPY f .']);
    expect(events.some((e) => e.phase === 'manifest')).toBe(true);
    const inline = await buildImage({ context: '/ctx', fs, kubefileText: 'FROM scratch\nCOPY f .\n', platforms: ['linux/amd64'] });
    expect(inline.layers).toHaveLength(1);
    await expect(buildImage({ context: '/ctx', fs })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(buildImage({ context: '/ctx', fs, kubefileText: 'COPY f .\n' })).rejects.toMatchObject({ code: 'KUBEFILE_SYNTAX' });
    await expect(buildImage({ context: '/missing', fs, kubefileText: 'FROM scratch\n' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});

describe('buildImage: embedded container images', () => {
  const APP = 'example.com/team/app:1.0';
  async function withImageList() {
    const fs = memfs();
    await writeTree(fs, '/ctx', { Kubefile: 'FROM scratch\nCOPY . .\n', 'manifests/imageList': `${APP}\n` });
    return fs;
  }
  const registryWorkDirs = async (fs: ReturnType<typeof memfs>) =>
    (await fs.promises.readdir('/tmp').catch(() => [] as string[])).filter((n) => n.startsWith('cloudrootfs-registry-'));

  test('a build that fails while fetching images removes its work directory', async () => {
    const fs = await withImageList();
    // Offline, and no local source for the image: the fetch fails after the work directory exists.
    await expect(buildImage({ context: '/ctx', fs, offline: true, platforms: ['linux/amd64'] })).rejects.toMatchObject({ code: 'IMAGE_NOT_FOUND' });
    expect(await registryWorkDirs(fs)).toEqual([]);
  });

  test('a rebuild finds the registry/ layer in the build cache', async () => {
    const fs = await withImageList();
    const app = Image.empty({ os: 'linux', architecture: 'amd64' }).withLayer(Layer.empty().withFile('app', 'the app\n'), { created_by: 'COPY app /' });
    await writeOciLayout(app, '/src', { fs, tag: '1.0' });
    const store = await ImageStore.open({ fs, root: '/store' });
    const options = { context: '/ctx', fs, store, offline: true, imageSources: { [APP]: 'oci:/src:1.0' }, platforms: ['linux/amd64'] };
    const first = await buildImage({ ...options, tag: 'embedded:v1' });
    expect(first.layers).toHaveLength(2);
    expect(first.images[0].cache).toEqual(['miss', 'miss']);
    const second = await buildImage({ ...options, tag: 'embedded:v2' });
    expect(second.digest).toBe(first.digest);
    expect(second.images[0].cache).toEqual(['hit', 'hit']);
    expect(second.cacheStats).toMatchObject({ stepHits: 1, blobHits: 1, misses: 0 });
    expect(await registryWorkDirs(fs)).toEqual([]);
  });
});
