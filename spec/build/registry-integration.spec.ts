/** buildImage with registries: FROM pulls a missing base; collected container images land in registry/. */
import * as fs from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FileSystem } from '../../lib/fs';
import { buildImage } from '../../lib/build/build-image';
import { Image } from '../../lib/image/image';
import { Layer } from '../../lib/layer/layer';
import { ImageStore } from '../../lib/store';
import { saveTarget } from '../../lib/transports';
import { getContainerImages } from '../../lib/sealer';
import { describeWithRegistry, startTestRegistry, uniqueRepo, type TestRegistry } from '../support/registry';

const disk = fs as unknown as FileSystem;

describeWithRegistry('none', 'buildImage with a registry', () => {
  let reg: TestRegistry;
  let dir: string;
  beforeAll(async () => {
    reg = await startTestRegistry();
    dir = mkdtempSync(join(tmpdir(), 'crfs-build-reg-'));
  });
  afterAll(async () => {
    await reg?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const small = (text: string) =>
    Image.empty({ os: 'linux', architecture: 'amd64' }).withLayer(Layer.empty().withDirectory('etc').withFile('etc/x', text), { created_by: 'COPY x etc/' });

  test('FROM a base that only the registry has: pulled into the store, then built on', async () => {
    const base = `${reg.host}/${uniqueRepo('base')}:v1`;
    const pushed = await saveTarget(small('from the registry\n'), `docker://${base}`);
    const ctx = join(dir, 'child');
    fs.mkdirSync(ctx, { recursive: true });
    fs.writeFileSync(join(ctx, 'Kubefile'), `FROM ${base}\nCOPY daemon.json etc/\n`);
    fs.writeFileSync(join(ctx, 'daemon.json'), '{}\n');
    const store = await ImageStore.open({ fs: disk, root: join(dir, 'store1') });
    const result = await buildImage({ context: ctx, fs: disk, store, tag: 'child:v1', platforms: ['linux/amd64'] });
    expect(result.layers).toHaveLength(2);
    expect(result.layers[0].fromBase).toBe(true);
    expect(await store.has(base)).toBe(true);
    expect((await store.loadImage(base)).stored?.manifestDescriptor.digest).toBe(pushed.digest);
    const merged = await (await store.loadImage('child:v1')).flatten();
    expect(await merged.readText('etc/x')).toBe('from the registry\n');
    // --pull never: a missing base is an error that names it.
    await expect(
      buildImage({ context: ctx, fs: disk, store: await ImageStore.open({ fs: disk, root: join(dir, 'store2') }), pull: 'never', platforms: ['linux/amd64'] }),
    ).rejects.toMatchObject({ code: 'BUILD_FAILED' });
  });

  test('images named in manifests/imageList are embedded in registry/ as the last layer', async () => {
    const app = `${reg.host}/${uniqueRepo('app')}:1.0`;
    const appDesc = await saveTarget(small('app\n'), `docker://${app}`);
    const ctx = join(dir, 'withimages');
    fs.mkdirSync(join(ctx, 'manifests'), { recursive: true });
    fs.writeFileSync(join(ctx, 'Kubefile'), 'FROM scratch\nCOPY . .\n');
    fs.writeFileSync(join(ctx, 'manifests', 'imageList'), `# images the cluster needs\n${app}\n`);
    const store = await ImageStore.open({ fs: disk, root: join(dir, 'store3') });
    const result = await buildImage({ context: ctx, fs: disk, store, tag: 'withimages:v1', platforms: ['linux/amd64'] });
    expect(result.layers).toHaveLength(2);
    const image = await store.loadImage('withimages:v1');
    const repo = app.slice(app.indexOf('/') + 1, app.lastIndexOf(':'));
    const last = await image.layers[1].changeset();
    const link = last.get(`registry/docker/registry/v2/repositories/${repo}/_manifests/tags/1.0/current/link`);
    expect(link?.type).toBe('file');
    const merged = await image.flatten();
    expect(await merged.readText(`registry/docker/registry/v2/repositories/${repo}/_manifests/tags/1.0/current/link`)).toBe(appDesc.digest);
    expect(getContainerImages(image).map((i) => i.image)).toEqual([app]);
    // lite: nothing embedded
    const lite = await buildImage({ context: ctx, fs: disk, store, buildMode: 'lite', platforms: ['linux/amd64'] });
    expect(lite.layers).toHaveLength(1);
  });
});
