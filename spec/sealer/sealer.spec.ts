import { Image } from '../../lib/image/image';
import { Rootfs } from '../../lib/rootfs/rootfs';
import { Layer } from '../../lib/layer/layer';
import { canonicalJson } from '../../lib/image/json';
import { SchemaValidationError } from '../../lib/errors';
import { Volume, createFsFromVolume } from 'memfs';
import type { FileSystem } from '../../lib/fs';
import { writeOciLayout, readOciImage } from '../../lib/formats/layout';
import {
  SEALER_CONTAINER_IMAGES_ANNOTATION,
  SEALER_EXTENSION_ANNOTATION,
  SEALER_LABELS,
  collapseSealerLabels,
  defaultImageExtension,
  getClusterRuntime,
  getContainerImages,
  getContainerRuntime,
  getImageExtension,
  getKubeCnis,
  getKubeCsis,
  getSealerVersion,
  getSupportedKubeVersion,
  parseMetadata,
  readMetadata,
  updateImageExtension,
  withClusterRuntime,
  withContainerImages,
  withContainerRuntime,
  withImageExtension,
  withKubeCni,
  withKubeCsi,
  withMetadata,
  withSealerVersion,
  withSupportedKubeVersion,
  type ImageExtension,
} from '../../lib/sealer';

function issuesOf(fn: () => unknown): { field: string; message: string; file?: string }[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof SchemaValidationError) return err.issues;
    throw err;
  }
  throw new Error('expected a SchemaValidationError');
}

const base = () => Image.empty({ os: 'linux', architecture: 'amd64' });

describe('sealer.image.extension', () => {
  test('an image without the extension reads as undefined', () => {
    expect(getImageExtension(base())).toBeUndefined();
    expect(getContainerImages(base())).toEqual([]);
  });

  test('reads what sealer v0.9 wrote (Go omitempty forms), with Go\'s zero values', () => {
    // The fixture of sealer's own test (sealer_image_extension_test.go): no applications, no env.
    const text = '{"buildClient":{"sealerVersion":"0.9.0","buildahVersion":"1.27.1"},"schemaVersion":"v1alpha1","type":"kube-installer","launch":{"cmds":["ls","-l"]}}';
    const ext = getImageExtension(base().withAnnotation(SEALER_EXTENSION_ANNOTATION, text));
    expect(ext).toEqual({
      buildClient: { sealerVersion: '0.9.0', buildahVersion: '1.27.1' },
      schemaVersion: 'v1alpha1',
      type: 'kube-installer',
      applications: [],
      launch: { cmds: ['ls', '-l'] },
      env: {},
    });
    // null lists and maps (Go nil slices marshalled without omitempty) are accepted too.
    const nulls = '{"schemaVersion":"v1alpha1","applications":null,"launch":null,"env":null,"labels":null}';
    expect(getImageExtension(base().withAnnotation(SEALER_EXTENSION_ANNOTATION, nulls))).toMatchObject({ applications: [], launch: {}, type: '' });
  });

  test('reads leniently what sealer reads: its own tests\' minimal extension, in sealer\'s meaning', () => {
    // sealer's own test fixture: no schemaVersion, no buildClient, an unknown `launchfiles` field
    // (https://github.com/sealerio/sealer/blob/v0.11.0/pkg/define/image/v1/sealer_image_test.go#L99).
    const minimal =
      '{"type":"app-installer","applications":[{"name":"cnstack-acos-0.0.5-beta","type":"shell","launchfiles":["cnstack-acos-0.0.5-beta-install.sh"],"version":"v1"}],' +
      '"launch":{"cmds":["bash application/apps/cnstack-acos-0.0.5-beta/cnstack-acos-0.0.5-beta-install.sh"]}}';
    // Go's json.Unmarshal into v1ImageExtension: missing fields are zero, unknown ones ignored
    // (https://github.com/sealerio/sealer/blob/v0.11.0/pkg/define/image/v1/sealer_image.go#L124-L160).
    expect(getImageExtension(base().withAnnotation(SEALER_EXTENSION_ANNOTATION, minimal))).toEqual({
      buildClient: { sealerVersion: '', buildahVersion: '' },
      schemaVersion: '',
      type: 'app-installer',
      applications: [{ name: 'cnstack-acos-0.0.5-beta', type: 'shell', files: [], version: 'v1' }],
      launch: { cmds: ['bash application/apps/cnstack-acos-0.0.5-beta/cnstack-acos-0.0.5-beta-install.sh'] },
      env: {},
    });
    // Whatever string sealer finds it keeps (`"schemaVersion":"0.1","type":"app-image"`, sealer_image_test.go#L200).
    const other = getImageExtension(base().withAnnotation(SEALER_EXTENSION_ANNOTATION, '{"schemaVersion":"0.1","type":"app-image"}'));
    expect(other).toMatchObject({ schemaVersion: '0.1', type: 'app-image' });
    // Go matches field names case-insensitively, the last key winning; null leaves what was there.
    const cased = getImageExtension(base().withAnnotation(SEALER_EXTENSION_ANNOTATION, '{"Type":"kube-installer","TYPE":"app-installer","type":null,"Launch":{"App_Names":["a"]}}'));
    expect(cased).toMatchObject({ type: 'app-installer', launch: { app_names: ['a'] } });
    // `null` is Go's zero extension.
    expect(getImageExtension(base().withAnnotation(SEALER_EXTENSION_ANNOTATION, 'null'))).toMatchObject({ type: '', applications: [] });
  });

  test('write then read round-trips, in canonical JSON with every field sealer needs', () => {
    const ext: ImageExtension = defaultImageExtension({
      type: 'app-installer',
      applications: [
        { name: 'nginx', type: 'kube', files: ['nginx.yaml'], version: 'v1' },
        { name: 'redis', type: 'helm', files: ['.'], version: 'v1', env: { PORT: '6379' }, cmds: ['helm install redis .'] },
      ],
      launch: { app_names: ['nginx', 'redis'] },
      env: { PodCIDR: '100.64.0.0/10' },
    });
    const image = withImageExtension(base(), ext);
    const text = image.annotations[SEALER_EXTENSION_ANNOTATION];
    // Keys sorted, no spaces: the annotation's bytes depend only on the value.
    expect(text.startsWith('{"applications":[{"files":["nginx.yaml"],"name":"nginx","type":"kube","version":"v1"}')).toBe(true);
    expect(text).toBe(canonicalJson(JSON.parse(text)));
    const parsed = JSON.parse(text);
    for (const key of ['buildClient', 'schemaVersion', 'type', 'applications', 'launch', 'env']) expect(parsed).toHaveProperty(key);
    expect(getImageExtension(image)).toEqual(ext);
    // Equal values, equal bytes, whatever the key order they were built with.
    const reordered = { env: ext.env, launch: ext.launch, applications: ext.applications, type: ext.type, schemaVersion: ext.schemaVersion, buildClient: ext.buildClient };
    expect(withImageExtension(base(), reordered as ImageExtension).annotations[SEALER_EXTENSION_ANNOTATION]).toBe(text);
  });

  test('updateImageExtension starts from the default', () => {
    const image = updateImageExtension(base(), (e) => ({ ...e, launch: { cmds: ['kubectl get nodes'] } }));
    expect(getImageExtension(image)?.launch).toEqual({ cmds: ['kubectl get nodes'] });
    expect(getImageExtension(image)?.schemaVersion).toBe('v1alpha1');
  });

  test('what sealer cannot read either names the bad field; writing is strict', () => {
    const bad = (json: string) => issuesOf(() => getImageExtension(base().withAnnotation(SEALER_EXTENSION_ANNOTATION, json)));
    // Values of the wrong JSON type make Go's json.Unmarshal (and so sealer's inspect) fail.
    expect(bad('{"schemaVersion":2}')).toEqual([expect.objectContaining({ field: '/schemaVersion', message: expect.stringContaining('Go string') })]);
    expect(bad('{"applications":[{"name":7}]}')[0]).toMatchObject({ field: '/applications/0/name' });
    expect(bad('{"env":{"A":1}}')[0]).toMatchObject({ field: '/env/A' });
    expect(bad('{"launch":{"cmds":"ls"}}')[0]).toMatchObject({ field: '/launch/cmds' });
    expect(bad('{"applications":{}}')[0]).toMatchObject({ field: '/applications' });
    expect(bad('[]')[0]).toMatchObject({ field: '' });
    // Every problem is reported, not only the first.
    expect(bad('{"type":1,"env":{"A":true}}').map((i) => i.field)).toEqual(['/type', '/env/A']);
    expect(bad('not json')[0]).toMatchObject({ field: '', message: expect.stringContaining('not valid UTF-8 JSON') });
    // The error says where the document came from.
    expect(bad('{"type":1}')[0].file).toBe('manifest annotation sealer.image.extension');
    // Writing validates strictly: what sealer reads but we never write is refused.
    const write = (ext: Partial<ImageExtension>) => issuesOf(() => withImageExtension(base(), { ...defaultImageExtension(), ...ext } as ImageExtension));
    expect(write({ applications: [{ name: '', type: 'kube', files: [], version: 'v1' }] })[0]).toMatchObject({ field: '/applications/0/name' });
    expect(write({ applications: [{ name: '../etc', type: 'kube', files: [], version: 'v1' }] })[0]).toMatchObject({ field: '/applications/0/name' });
    expect(write({ applications: [{ name: '..', type: 'kube', files: [], version: 'v1' }] })[0]).toMatchObject({ field: '/applications/0/name' });
    expect(write({ schemaVersion: 'v2' })[0]).toMatchObject({ field: '/schemaVersion' });
    expect(write({ type: 'cluster' })[0]).toMatchObject({ field: '/type' });
    expect(write({ type: '' })[0]).toMatchObject({ field: '/type' });
  });

  test('the extension survives a write to a layout and a read back (it is a manifest annotation)', async () => {
    const fs = createFsFromVolume(new Volume()) as unknown as FileSystem;
    const ext = defaultImageExtension({ launch: { cmds: ['echo hi'] } });
    const image = withContainerImages(withImageExtension(base().withLayer(Layer.empty().withFile('Metadata', '{}')), ext), [{ image: 'docker.io/library/nginx:1.25', appName: 'nginx' }]);
    await writeOciLayout(image, '/l', { fs, tag: 't' });
    const back = await readOciImage('/l', { fs, ref: 't', platform: { os: 'linux', architecture: 'amd64' } });
    expect(getImageExtension(back)).toEqual(ext);
    expect(getContainerImages(back)).toEqual([{ image: 'docker.io/library/nginx:1.25', appName: 'nginx' }]);
  });
});

describe('sealer.image.container.images', () => {
  test('round-trips, drops Go null platforms and empty appNames, removes the annotation when empty', () => {
    const list = [
      { image: 'nginx:1.25', appName: 'web', platform: { architecture: 'arm64', os: 'linux', variant: 'v8' } },
      { image: 'busybox' },
    ];
    const image = withContainerImages(base(), list);
    expect(getContainerImages(image)).toEqual(list);
    const goForm = '[{"image":"a","appName":"","platform":null}]';
    expect(getContainerImages(base().withAnnotation(SEALER_CONTAINER_IMAGES_ANNOTATION, goForm))).toEqual([{ image: 'a' }]);
    expect(withContainerImages(image, []).annotations[SEALER_CONTAINER_IMAGES_ANNOTATION]).toBeUndefined();
    const unchanged = base();
    expect(withContainerImages(unchanged, [])).toBe(unchanged);
  });

  test('invalid lists name the field', () => {
    // sealer reads `[{"appName":"x"}]` (image ""), but not an image that is not a string.
    expect(getContainerImages(base().withAnnotation(SEALER_CONTAINER_IMAGES_ANNOTATION, '[{"appName":"x"}]'))).toEqual([{ image: '', appName: 'x' }]);
    expect(issuesOf(() => getContainerImages(base().withAnnotation(SEALER_CONTAINER_IMAGES_ANNOTATION, '[{"image":7}]')))[0]).toMatchObject({ field: '/0/image' });
    expect(issuesOf(() => withContainerImages(base(), [{ image: 'a', platform: { architecture: 1 as never, os: 'linux' } }]))[0]).toMatchObject({ field: '/0/platform/architecture' });
  });
});

describe('labels', () => {
  test('typed getters and setters', () => {
    let image = base();
    expect(getClusterRuntime(image)).toEqual({ type: 'kubernetes' });
    expect(getContainerRuntime(image)).toEqual({ type: 'docker' });
    expect(getKubeCnis(image)).toEqual([]);
    image = withSealerVersion(image, 'v0.11.0');
    image = withClusterRuntime(image, { type: 'k0s', version: 'v1.25.4' });
    image = withContainerRuntime(image, { type: 'containerd', version: '1.6.12' });
    image = withKubeCni(withKubeCni(image, 'flannel'), 'calico');
    image = withKubeCsi(image, 'alibaba-csi');
    image = withSupportedKubeVersion(image, '>=1.20.0');
    expect(getSealerVersion(image)).toBe('v0.11.0');
    expect(getClusterRuntime(image)).toEqual({ type: 'k0s', version: 'v1.25.4' });
    expect(getContainerRuntime(image)).toEqual({ type: 'containerd', version: '1.6.12' });
    expect(getKubeCnis(image)).toEqual(['calico', 'flannel']);
    expect(getKubeCsis(image)).toEqual(['alibaba-csi']);
    expect(getSupportedKubeVersion(image)).toBe('>=1.20.0');
    expect(image.labels[SEALER_LABELS.containerRuntimeType]).toBe('containerd');
    expect(image.labels['cluster.alpha.sealer.io/kube-cni-calico']).toBe('true');
    // A plain label map works too (before an Image exists).
    expect(getContainerRuntime({ [SEALER_LABELS.containerRuntimeType]: 'containerd' }).type).toBe('containerd');
    // Dropping a version removes its label.
    expect(withClusterRuntime(image, { type: 'kubernetes' }).labels[SEALER_LABELS.clusterRuntimeVersion]).toBeUndefined();
  });

  test('collapse like sealer inspect (its handleImageLabelOutput vector)', () => {
    expect(
      collapseSealerLabels({
        'cluster.alpha.sealer.io/kube-cni-flannel': 'true',
        'cluster.alpha.sealer.io/kube-cni-calico': 'true',
        'cluster.alpha.sealer.io/kube-csi-alibaba-csi': 'true',
        key1: 'value1',
      }),
    ).toEqual({
      'cluster.alpha.sealer.io/kube-cni': '["calico","flannel"]',
      'cluster.alpha.sealer.io/kube-csi': '["alibaba-csi"]',
      key1: 'value1',
    });
    expect(collapseSealerLabels({})).toEqual({});
  });
});

describe('Metadata', () => {
  test('parse, write, read; fields in sealer order', async () => {
    expect(parseMetadata('{"version":"v1.18.3","arch":"amd64"}')).toEqual({ version: 'v1.18.3', arch: 'amd64' });
    const rootfs = withMetadata(Rootfs.empty(), { arch: 'arm64', version: 'v1.22.15', ClusterRuntime: 'k8s', NydusFlag: false });
    expect(await rootfs.readText('Metadata')).toBe('{"version":"v1.22.15","arch":"arm64","NydusFlag":false,"ClusterRuntime":"k8s"}\n');
    expect(await readMetadata(rootfs)).toEqual({ version: 'v1.22.15', arch: 'arm64', NydusFlag: false, ClusterRuntime: 'k8s' });
    expect(await readMetadata(Rootfs.empty())).toBeUndefined();
    // A rewrite keeps the old file's attributes.
    const owned = Rootfs.empty().withFile('Metadata', '{}', { mode: 0o600, uid: 1000, gid: 1000, mtime: 1700000000 });
    const e = withMetadata(owned, { version: 'v1' }).get('Metadata');
    expect(e).toMatchObject({ mode: 0o600, uid: 1000, gid: 1000, mtime: 1700000000 });
    // Through a symlink inside the rootfs.
    const linked = Rootfs.empty().withFile('etc/meta.json', '{"version":"v1.2.3"}').withSymlink('Metadata', 'etc/meta.json');
    expect(await readMetadata(linked)).toEqual({ version: 'v1.2.3' });
  });

  test('errors name the file and the field', async () => {
    const issues = issuesOf(() => parseMetadata('{"version":1,"NydusFlag":"yes"}', 'rootfs/Metadata'));
    expect(issues.map((i) => i.field).sort()).toEqual(['/NydusFlag', '/version']);
    expect(issues[0].file).toBe('rootfs/Metadata');
    await expect(readMetadata(Rootfs.empty().withFile('Metadata', '[1,2]'))).rejects.toMatchObject({
      code: 'SCHEMA_VALIDATION',
      message: expect.stringContaining('Metadata'),
    });
    expect(() => withMetadata(Rootfs.empty(), { arch: 5 as never })).toThrow(SchemaValidationError);
  });
});
