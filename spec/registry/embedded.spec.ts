/**
 * The embedded registry: images collected from a CloudRootfs are fetched (from a registry, a
 * mirror, or local layouts and archives) into `registry/` in distribution's exact storage layout,
 * as the image's last layer. Judged by a real docker-registry serving that directory, and skopeo.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { diskFs } from '../../lib/fs';
import { Image, ImageIndex } from '../../lib/image/image';
import { OciLayout, readOciLayout, writeOciLayout } from '../../lib/formats/layout';
import { writeOciArchive } from '../../lib/formats/oci-archive';
import { writeDockerArchive } from '../../lib/formats/docker-archive';
import { MEDIA_TYPES } from '../../lib/media-types';
import { collectImages } from '../../lib/registry/embedded/collect';
import { buildRegistryLayer, withEmbeddedRegistry, type RegistryLayer } from '../../lib/registry/embedded/build';
import { blobDataPath } from '../../lib/registry/embedded/storage';
import { pullImage } from '../../lib/registry/pull';
import { pushImage } from '../../lib/registry/push';
import { writeRootfsToDirectory } from '../../lib/rootfs/io';
import { Rootfs } from '../../lib/rootfs/rootfs';
import { getContainerImages } from '../../lib/sealer/extension';
import { describeWithRegistry, startFaultProxy, startTestRegistry, type TestRegistry } from '../support/registry';
import { requireTool } from '../support/tools';
import { contentsOf, randomTag, sampleImage, sampleIndex, sampleBase, skopeo, skopeoRawDigest, tempDir } from './images';

const arm64 = { os: 'linux', architecture: 'arm64' };
const V2 = 'docker/registry/v2';

async function listFiles(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const ent of await fsp.readdir(dir, { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${ent.name}` : ent.name;
    if (ent.isDirectory()) out.push(...(await listFiles(path.join(dir, ent.name), rel)));
    else out.push(rel);
  }
  return out.sort();
}

describeWithRegistry('none', 'embedded registry', () => {
  let source: TestRegistry;
  let work: string;
  const run = randomTag();
  // Source images: what a CloudRootfs's manifests name.
  let appRef: string; // multi-platform index
  let toolsRef: string; // pushed by skopeo as Docker schema 2, sharing the index's base layer
  let appIndex: ImageIndex;
  let appPushed: string;
  let toolsDigest: string;
  let offlineLayout: string;
  let offlineImage: Image;
  let built: RegistryLayer;

  beforeAll(async () => {
    source = await startTestRegistry({ allowExternal: false });
    work = await tempDir('embedded');
    const opts = { authFile: false as const };

    appRef = `${source.host}/cloudrootfs-spec/app-${run}:v1`;
    appIndex = sampleIndex(`app-${run}`, `shared-${run}`);
    appPushed = (await pushImage(appIndex, `docker://${appRef}`, opts)).digest;

    // The same base layer under another name, pushed by skopeo in Docker's format.
    const tools = sampleImage(arm64, `tools-${run}`, { base: sampleBase(`shared-${run}`) });
    const toolsLayout = path.join(work, 'tools-layout');
    await writeOciLayout(tools, toolsLayout, { fs: diskFs, tag: 'src' });
    toolsRef = `${source.host}/cloudrootfs-spec/tools-${run}:v2`;
    if (requireTool('skopeo')) {
      await skopeo('copy', '--dest-tls-verify=false', '--format', 'v2s2', `oci:${toolsLayout}:src`, `docker://${toolsRef}`);
    } else {
      await pushImage(`oci:${toolsLayout}:src`, `docker://${toolsRef}`, opts);
    }
    toolsDigest = (await pullImage(`docker://${toolsRef}`, opts) as Image).stored!.manifestDescriptor.digest;

    // Docker Hub names served by a mirror (the source registry, under library/…).
    await pushImage(sampleImage(arm64, `mirrored-${run}`), `docker://${source.host}/library/mirrored:1.0`, opts);

    // Local sources only: an OCI layout and an oci-archive (no registry has them).
    offlineImage = sampleImage(arm64, `offline-${run}`);
    offlineLayout = path.join(work, 'offline-layout');
    await writeOciLayout(offlineImage, offlineLayout, { fs: diskFs, tag: '1.0' });
    await writeOciArchive(ImageIndex.of([sampleImage(arm64, `archived-${run}`)]), path.join(work, 'archived.tar'), { fs: diskFs, name: 'archived:2.0' });
    await writeDockerArchive(sampleImage(arm64, `docker-archived-${run}`), path.join(work, 'docker-archived.tar'), { fs: diskFs, names: ['quay.io/team/dockerarchived:3'] });

    const rootfs = Rootfs.empty()
      .withFile('manifests/imageList', `# what the cluster pulls\n${appRef}\n"${toolsRef}"\nmirrored:1.0\n`)
      .withFile('manifests/offline.yaml', 'spec:\n  containers:\n  - image: offline:1.0\n')
      .withFile('application/apps/archived/deploy.yaml', 'image: archived:2.0\n---\nimage: quay.io/team/dockerarchived:3\n');
    const images = await collectImages(rootfs);
    expect(images.map((i) => i.image)).toEqual([
      appRef,
      toolsRef,
      'docker.io/library/mirrored:1.0',
      'docker.io/library/offline:1.0',
      'docker.io/library/archived:2.0',
      'quay.io/team/dockerarchived:3',
    ]);
    built = await buildRegistryLayer(images, {
      workDir: path.join(work, 'build'),
      platform: 'linux/arm64',
      authFile: false,
      mirrors: { 'docker.io': source.host },
      sources: {
        'offline:1.0': `oci:${offlineLayout}:1.0`,
        'archived:2.0': `oci-archive:${path.join(work, 'archived.tar')}:2.0`,
        'quay.io/team/dockerarchived:3': `docker-archive:${path.join(work, 'docker-archived.tar')}`,
      },
    });
  });
  afterAll(async () => {
    await source?.stop();
    if (work) await fsp.rm(work, { recursive: true, force: true });
  });

  it('writes the exact distribution layout: repositories without their domain, link files, blobs once', async () => {
    const files = await listFiles(built.root);
    const appRepo = `cloudrootfs-spec/app-${run}`;
    const armChild = appIndex.select(arm64);
    const armDigest = (await pullImage(`docker://${appRef}`, { authFile: false, platform: arm64 }) as Image).stored!.manifestDescriptor.digest;
    const amdDigest = (await pullImage(`docker://${appRef}`, { authFile: false, platform: 'linux/amd64' }) as Image).stored!.manifestDescriptor.digest;
    const hex = (d: string) => d.slice('sha256:'.length);

    // The tag names the source's index, byte for byte; only the arm64 manifest is stored with it.
    const tagLink = `${V2}/repositories/${appRepo}/_manifests/tags/v1/current/link`;
    expect(await fsp.readFile(path.join(built.root, tagLink), 'utf8')).toBe(appPushed);
    expect(files).toContain(`${V2}/repositories/${appRepo}/_manifests/tags/v1/index/sha256/${hex(appPushed)}/link`);
    expect(files).toContain(`${V2}/repositories/${appRepo}/_manifests/revisions/sha256/${hex(appPushed)}/link`);
    expect(files).toContain(`${V2}/repositories/${appRepo}/_manifests/revisions/sha256/${hex(armDigest)}/link`);
    expect(files).not.toContain(`${V2}/repositories/${appRepo}/_manifests/revisions/sha256/${hex(amdDigest)}/link`);
    expect(files).not.toContain(blobDataPath(amdDigest));
    for (const d of [appPushed, armDigest]) expect(files).toContain(blobDataPath(d));
    expect(armChild.platform.architecture).toBe('arm64');

    // Every link file is `sha256:<hex>` with no newline, and names a blob that is there.
    const links = files.filter((f) => f.endsWith('/link'));
    expect(links.length).toBeGreaterThan(10);
    for (const link of links) {
      const text = await fsp.readFile(path.join(built.root, link), 'utf8');
      expect(text).toMatch(/^sha256:[0-9a-f]{64}$/);
      expect(files).toContain(blobDataPath(text));
    }
    // Every blob's bytes hash to its name.
    const { createHash } = await import('node:crypto');
    for (const f of files.filter((x) => x.endsWith('/data'))) {
      const bytes = await fsp.readFile(path.join(built.root, f));
      expect(f).toContain(createHash('sha256').update(bytes).digest('hex'));
    }
    // Repositories are named without their registry; nothing else is in the tree.
    const repos = [...new Set(links.map((l) => /repositories\/(.+?)\/_(?:layers|manifests)\//.exec(l)?.[1]).filter(Boolean))].sort();
    expect(repos).toEqual(
      [appRepo, `cloudrootfs-spec/tools-${run}`, 'library/archived', 'library/mirrored', 'library/offline', 'team/dockerarchived'].sort(),
    );
    expect(files.every((f) => f.startsWith(`${V2}/blobs/sha256/`) || f.startsWith(`${V2}/repositories/`))).toBe(true);
    expect(files.some((f) => f.includes('_uploads') || f.includes('.tmp-'))).toBe(false);
    // The base layer shared by app (arm64) and tools was stored once, fetched once.
    expect(built.stats.reused).toBeGreaterThanOrEqual(1);
    expect(built.stats.blobs).toBe(files.filter((f) => f.endsWith('/data')).length);
    expect(built.images.find((i) => i.image === toolsRef)).toMatchObject({ digest: toolsDigest, mediaType: MEDIA_TYPES.dockerManifest, source: 'registry' });
    const offlineDigest = ((await readOciLayout(offlineLayout, { fs: diskFs, ref: '1.0' })) as Image).stored!.manifestDescriptor.digest;
    expect(built.images.find((i) => i.image === 'docker.io/library/offline:1.0')).toMatchObject({ digest: offlineDigest, platformDigest: offlineDigest, source: 'local' });
  });

  it('is served by a real docker-registry: skopeo inspects and copies every image, with the source digests', async () => {
    if (!requireTool('skopeo')) return;
    // Put the layer on an image, write it, read it back, and extract its rootfs: the registry
    // serves what the image carries, not the work directory.
    const image = withEmbeddedRegistry(Image.empty(arm64).withLayer(sampleBase('os'), { created_by: 'base' }), built);
    const layoutDir = path.join(work, 'cloudimage');
    await writeOciLayout(image, layoutDir, { fs: diskFs, tag: 'v1' });
    const back = (await readOciLayout(layoutDir, { fs: diskFs, ref: 'v1' })) as Image;
    expect(back.layers).toHaveLength(2);
    expect(getContainerImages(back).map((i) => [i.image, i.appName ?? '-', i.platform?.architecture])).toEqual([
      [appRef, '-', 'arm64'],
      [toolsRef, '-', 'arm64'],
      ['docker.io/library/mirrored:1.0', '-', 'arm64'],
      ['docker.io/library/offline:1.0', '-', 'arm64'],
      ['docker.io/library/archived:2.0', 'archived', 'arm64'],
      ['quay.io/team/dockerarchived:3', 'archived', 'arm64'],
    ]);
    const rootfsDir = path.join(work, 'rootfs');
    await writeRootfsToDirectory(await back.flatten(), rootfsDir, { fs: diskFs });

    const served = await startTestRegistry({ storageRoot: path.join(rootfsDir, 'registry') });
    try {
      for (const embedded of built.images) {
        const ref = `docker://${served.host}/${embedded.repository}:${embedded.tag}`;
        expect(await skopeoRawDigest(ref)).toBe(embedded.digest);
        const inspected = JSON.parse(await skopeo('inspect', '--tls-verify=false', '--override-arch', 'arm64', ref)) as { Architecture: string };
        expect(inspected.Architecture).toBe('arm64');
        const out = path.join(work, `copied-${embedded.repository.replace(/\//g, '_')}`);
        await skopeo('copy', '--src-tls-verify=false', '--override-arch', 'arm64', '--preserve-digests', ref, `oci:${out}:x`);
        const copied = (await readOciLayout(out, { fs: diskFs, ref: 'x' })) as Image;
        expect(copied.stored?.manifestDescriptor.digest).toBe(embedded.platformDigest);
      }
      // And the files inside are the source's files.
      const app = (await pullImage(`docker://${served.host}/cloudrootfs-spec/app-${run}:v1`, { authFile: false, platform: arm64 })) as Image;
      expect(await contentsOf(app)).toEqual(await contentsOf(appIndex.select(arm64)));
      // The amd64 image was not embedded.
      await expect(pullImage(`docker://${served.host}/cloudrootfs-spec/app-${run}:v1`, { authFile: false, platform: 'linux/amd64' })).rejects.toMatchObject({
        code: 'IMAGE_NOT_FOUND',
      });
    } finally {
      await served.stop();
    }
  });

  it('skips blobs the base image already carries in registry/, and works offline from local sources only', async () => {
    const base = await (withEmbeddedRegistry(Image.empty(arm64), built)).flatten();
    const again = await buildRegistryLayer([appRef, 'offline:1.0'], {
      workDir: path.join(work, 'build-again'),
      platform: arm64,
      authFile: false,
      base,
      sources: { 'offline:1.0': `oci:${offlineLayout}:1.0` },
    });
    expect(again.stats.blobs).toBe(0);
    expect(again.stats.reused).toBeGreaterThan(0);
    // Links and tags are still written for the new layer.
    expect(again.rootfs.get(`${V2}/repositories/cloudrootfs-spec/app-${run}/_manifests/tags/v1/current/link`)?.type).toBe('file');

    await expect(
      buildRegistryLayer([appRef], { workDir: path.join(work, 'build-offline'), platform: arm64, offline: true, authFile: false }),
    ).rejects.toMatchObject({ code: 'IMAGE_NOT_FOUND' });
    const offline = await buildRegistryLayer(['offline:1.0'], {
      workDir: path.join(work, 'build-offline-ok'),
      platform: arm64,
      offline: true,
      sources: { 'docker.io/library/offline:1.0': await readOciLayout(offlineLayout, { fs: diskFs, ref: '1.0' }) },
    });
    expect(offline.images[0]).toMatchObject({ repository: 'library/offline', tag: '1.0', source: 'local' });
    await expect(
      buildRegistryLayer([appRef], { workDir: path.join(work, 'build-s390x'), platform: 'linux/s390x', authFile: false }),
    ).rejects.toMatchObject({ code: 'PLATFORM_NOT_FOUND' });
  });

  it('refuses a blob corrupted in transit: DIGEST_MISMATCH, and neither the blob nor a temporary file is left', async () => {
    const image = sampleImage(arm64, `corrupt-${run}`, { seed: `corrupt-${run}`, bigFile: 256 * 1024 });
    const ref = `${source.host}/cloudrootfs-spec/corrupt-${run}:v1`;
    await pushImage(image, `docker://${ref}`, { authFile: false });
    const pulled = (await pullImage(`docker://${ref}`, { authFile: false })) as Image;
    const manifest = JSON.parse(pulled.stored!.manifest.toString('utf8')) as { layers: Array<{ digest: string }> };
    const layer = manifest.layers[0].digest; // the base, with the 256 KiB file: offset 12345 is inside it
    const proxy = await startFaultProxy(source.host);
    try {
      proxy.inject({ method: 'GET', path: new RegExp(`/blobs/${layer}`), fault: { kind: 'corrupt-response', offset: 12345 } });
      const workDir = path.join(work, 'build-corrupt');
      await expect(
        buildRegistryLayer([ref.replace(source.host, proxy.host)], { workDir, platform: arm64, authFile: false, retries: 0 }),
      ).rejects.toMatchObject({ code: 'DIGEST_MISMATCH' });
      const left = await listFiles(path.join(workDir, 'registry'));
      expect(left).not.toContain(blobDataPath(layer));
      expect(left.filter((f) => path.posix.basename(f).startsWith('.tmp-'))).toEqual([]);
      expect(proxy.log.some((r) => r.fault === 'corrupt-response')).toBe(true);
    } finally {
      await proxy.stop();
    }
  });

  it('makes the same layer (same digest) when built twice from the same sources', async () => {
    const once = async (dir: string) => {
      const layer = await buildRegistryLayer([appRef, toolsRef], { workDir: path.join(work, dir), platform: arm64, authFile: false });
      const layout = await OciLayout.create(diskFs, path.join(work, `${dir}-out`));
      return (await layout.putLayer(layer.layer, {})).encoded.digest;
    };
    expect(await once('twice-a')).toBe(await once('twice-b'));
  });
});
