/**
 * `--image-list-with-auth` (sealer's imageListWithAuth.yaml): images behind credentials, embedded
 * in `registry/` with their section's login. The file is read as sealer reads it; the images are
 * fetched from a real registry with htpasswd auth, and without the login they cannot be.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { buildImage } from '../../lib/build/build-image';
import { diskFs } from '../../lib/fs';
import type { Image } from '../../lib/image/image';
import { pushImage } from '../../lib/registry/push';
import { authenticatedImages, getContainerImages, normalizeWithRegistry, parseImageListWithAuth } from '../../lib/sealer';
import { ImageStore } from '../../lib/store';
import { runCaptured } from '../support/cli';
import { describeWithRegistry, startTestRegistry, type TestRegistry } from '../support/registry';
import { randomTag, sampleImage, tempDir } from '../registry/images';

const SEALER = 'https://github.com/sealerio/sealer/blob/v0.11.0';

describe('imageListWithAuth.yaml, read as sealer reads it', () => {
  test('sections of registry, username, password and images (Go json field rules: any case, unknown ignored)', () => {
    // ImageSection: ${SEALER}/build/buildimage/middleware.go#L26-L31
    const sections = parseImageListWithAuth(
      '- registry: reg.example.com:5000\n  username: ci\n  password: s3cret\n  images:\n  - app/web:1.2\n  - quay.io/coreos/etcd:v3.5.0\n' +
        '- Registry: ""\n  USERNAME: u\n  Password: p\n  images: [nginx, library/redis:7]\n  extra: ignored\n' +
        '- registry: empty.example.com\n',
    );
    expect(sections).toEqual([
      { registry: 'reg.example.com:5000', username: 'ci', password: 's3cret', images: ['app/web:1.2', 'quay.io/coreos/etcd:v3.5.0'] },
      { registry: '', username: 'u', password: 'p', images: ['nginx', 'library/redis:7'] },
      { registry: 'empty.example.com', username: '', password: '', images: [] },
    ]);
    // ParseNormalizedNamed(image, section.Registry): ${SEALER}/pkg/image/save/utils.go#L72-L113;
    // sections without images are skipped (middleware.go#L48-L50).
    expect(authenticatedImages(sections).map((a) => [a.image, a.credentials.username])).toEqual([
      ['reg.example.com:5000/app/web:1.2', 'ci'],
      ['quay.io/coreos/etcd:v3.5.0', 'ci'],
      ['docker.io/library/nginx:latest', 'u'],
      ['docker.io/library/redis:7', 'u'],
    ]);
    expect(normalizeWithRegistry('nginx', 'my.reg')).toBe('my.reg/nginx:latest'); // library/ only for docker.io
    expect(normalizeWithRegistry('localhost/x:1', 'my.reg')).toBe('localhost/x:1');
    expect(() => normalizeWithRegistry('my.reg/App:1', '')).toThrow(/must be lowercase/);
  });

  test('a section with images needs both a username and a password (sealer\'s message)', () => {
    // ${SEALER}/build/buildimage/middleware.go#L51-L53
    const sections = parseImageListWithAuth('- registry: r.example.com\n  username: ci\n  images: [a:1]\n');
    expect(() => authenticatedImages(sections)).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED', message: 'must set username and password at imageListWithAuth.yaml' }));
    expect(() => parseImageListWithAuth('- images: nginx\n')).toThrow(expect.objectContaining({ code: 'SCHEMA_VALIDATION' }));
    expect(() => parseImageListWithAuth('- [unclosed\n')).toThrow(expect.objectContaining({ code: 'SCHEMA_VALIDATION' }));
  });
});

describeWithRegistry('basic', '--image-list-with-auth against a registry with htpasswd auth', () => {
  let registry: TestRegistry;
  let work: string;
  const users = { ci: 'ci-secret' };
  const repo = `private/app-${randomTag()}`;

  beforeAll(async () => {
    registry = await startTestRegistry({ auth: 'basic', users });
    work = await tempDir('auth-list');
    await pushImage(sampleImage({ os: 'linux', architecture: 'amd64' }, 'private-app'), `docker://${registry.host}/${repo}:1.0`, {
      credentials: { username: 'ci', password: users.ci },
      authFile: false,
    });
    await fsp.mkdir(path.join(work, 'ctx'));
    await fsp.writeFile(path.join(work, 'ctx', 'Kubefile'), 'FROM scratch\n');
  });
  afterAll(async () => {
    await registry?.stop();
    if (work) await fsp.rm(work, { recursive: true, force: true });
  });

  test('the image is fetched with its section\'s login into registry/ and listed in the annotation', async () => {
    // The registry of the section completes the name (`private/app…` → `<host>/private/app…`).
    const sections = parseImageListWithAuth(`- registry: ${registry.host}\n  username: ci\n  password: ${users.ci}\n  images:\n  - ${repo}:1.0\n`);
    const store = await ImageStore.open({ fs: diskFs, root: path.join(work, 'store') });
    const result = await buildImage({
      context: path.join(work, 'ctx'),
      store,
      tag: 'with-auth:v1',
      platforms: ['linux/amd64'],
      imageListWithAuth: sections,
      registry: { authFile: false },
      env: {},
    });
    const image = result.target as Image;
    const rootfs = await image.flatten();
    // The repository is stored without its registry: ${SEALER}/pkg/image/save/save.go (Named.Repo)
    expect(rootfs.get(`registry/docker/registry/v2/repositories/${repo}/_manifests/tags/1.0/current/link`)?.type).toBe('file');
    expect(getContainerImages(image).map((c) => c.image)).toEqual([`${registry.host}/${repo}:1.0`]);
  });

  test('without the login the same image cannot be fetched; the CLI flag reads the file', async () => {
    const store = await ImageStore.open({ fs: diskFs, root: path.join(work, 'store') });
    const denied = await buildImage({
      context: path.join(work, 'ctx'),
      store,
      platforms: ['linux/amd64'],
      imageList: [`${registry.host}/${repo}:1.0`],
      registry: { authFile: false },
      env: {},
    }).catch((e) => e);
    expect(denied.code).toBe('AUTH_FAILED');
    const file = path.join(work, 'imageListWithAuth.yaml');
    await fsp.writeFile(file, `- registry: ${registry.host}\n  username: ci\n  password: ${users.ci}\n  images: ["${repo}:1.0"]\n`);
    const env = { HOME: path.join(work, 'home'), CLOUDROOTFS_STORE: path.join(work, 'cli-store'), REGISTRY_AUTH_FILE: path.join(work, 'none.json') };
    const out = await runCaptured(diskFs, ['build', '-t', 'cli-auth:v1', '--platform', 'linux/amd64', '--image-list-with-auth', file, '--json', path.join(work, 'ctx')], env);
    expect(out.err).not.toMatch(/error/);
    expect(out.code).toBe(0);
    expect(JSON.parse(out.out).images[0].layers).toHaveLength(1);
  });
});
