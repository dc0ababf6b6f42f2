import { join } from 'node:path';
import { ImageBuilder } from '../../lib/build/builder';
import { contextFromRootfs } from '../../lib/build/context';
import { lintImage, lintRootfs } from '../../lib/build/lint';
import { withAttributes } from '../../lib/entry';
import { diskFs } from '../../lib/fs';
import { diff } from '../../lib/layer/diff';
import { readRootfsFromDirectory } from '../../lib/rootfs/io';
import { Rootfs } from '../../lib/rootfs/rootfs';
import { SEALER_EXTENSION_ANNOTATION, defaultImageExtension, withImageExtension } from '../../lib/sealer';

const EXAMPLE = join(__dirname, '..', '..', 'examples', 'cloudrootfs');
let example: Rootfs;
beforeAll(async () => {
  example = await readRootfsFromDirectory(EXAMPLE, { fs: diskFs, owner: { uid: 0, gid: 0 } });
});

const codes = (r: { issues: { code: string; severity: string }[] }, severity = 'error') => r.issues.filter((i) => i.severity === severity).map((i) => i.code);

describe('lintRootfs', () => {
  test('the bundled example is clean and declares Kubernetes v1.19.9', async () => {
    const report = await lintRootfs(example, { platform: { os: 'linux', architecture: 'amd64' } });
    expect(report.issues).toEqual([]);
    expect(report).toMatchObject({ ok: true, errors: 0, kubernetesVersion: 'v1.19.9' });
  });

  test('scripts sealer calls: missing, not executable, not a file', async () => {
    const broken = example
      .without('scripts/init-registry.sh')
      .with('scripts/docker.sh', withAttributes(example.get('scripts/docker.sh')!, { mode: 0o644 }))
      .withSymlink('scripts/init-kube.sh', 'nowhere.sh');
    const report = await lintRootfs(broken);
    expect(report.ok).toBe(false);
    expect(report.issues.filter((i) => i.severity === 'error').map((i) => [i.code, i.file, i.field])).toEqual([
      ['SCRIPT_NOT_FILE', 'scripts/init-kube.sh', undefined],
      ['SCRIPT_NOT_EXECUTABLE', 'scripts/docker.sh', '/mode'],
      ['SCRIPT_MISSING', 'scripts/init-registry.sh', undefined],
    ]);
    const none = await lintRootfs(example.without('scripts').withDirectory('scripts'));
    expect(codes(none)).toContain('SCRIPT_MISSING');
    expect(none.issues[0].message).toMatch(/neither scripts\/init\.sh/);
  });

  test('the container runtime label picks scripts/<cri>.sh', async () => {
    const report = await lintRootfs(example, { labels: { 'cluster.alpha.sealer.io/container-runtime-type': 'containerd' } });
    expect(report.issues.map((i) => [i.severity, i.file])).toEqual([
      ['error', 'scripts/containerd.sh'],
      ['warning', 'scripts/uninstall-containerd.sh'],
    ]);
  });

  test('one Kubernetes version across Metadata, labels and etc/kubeadm*.yaml', async () => {
    const metadata = example.withFile('Metadata', '{"version":"v1.19.8","arch":"amd64"}');
    const report = await lintRootfs(metadata, { labels: { 'cluster.alpha.sealer.io/cluster-runtime-version': 'v1.20.0' } });
    expect(report.issues.map((i) => [i.code, i.file, i.field])).toEqual([
      ['KUBE_VERSION_MISMATCH', 'Metadata', '/version'],
      ['KUBE_VERSION_MISMATCH', 'label:cluster.alpha.sealer.io/cluster-runtime-version', undefined],
    ]);
    expect(report.issues[0].message).toBe('Metadata version is v1.19.8 but etc/kubeadm-config.yaml kubernetesVersion is v1.19.9');
    const kubeadm = example.withFile('etc/kubeadm.yml', 'apiVersion: kubeadm.k8s.io/v1beta2\nkind: ClusterConfiguration\nkubernetesVersion: 1.19.9\n---\nkind: ClusterConfiguration\nkubernetesVersion: v1.18.0\n');
    const r2 = await lintRootfs(kubeadm);
    expect(r2.issues.map((i) => [i.file, i.field])).toEqual([['etc/kubeadm.yml', '/1/kubernetesVersion']]);
  });

  test('Metadata, Clusterfile and templates are validated; the arch must match the image', async () => {
    const bad = example
      .withFile('Metadata', '{"version": 119}')
      .withFile('etc/Clusterfile', 'apiVersion: sealer.io/v2\nkind: Cluster\nmetadata: {name: x}\nspec: {hosts: []}\n')
      .withFile('etc/broken.yaml.tmpl', 'a: {{ .A')
      .withFile('manifests/loop.yaml.tmpl', '{{ range .X }}{{ end }}');
    const report = await lintRootfs(bad);
    expect(report.issues.map((i) => [i.severity, i.code, i.file, i.field])).toEqual([
      ['error', 'INVALID_METADATA', 'Metadata', '/version'],
      ['error', 'INVALID_CLUSTERFILE', 'etc/Clusterfile', '/0/spec/image'],
      ['error', 'TEMPLATE_ERROR', 'etc/broken.yaml.tmpl', undefined],
      ['warning', 'TEMPLATE_UNSUPPORTED', 'manifests/loop.yaml.tmpl', undefined],
    ]);
    const arch = await lintRootfs(example, { platform: { os: 'linux', architecture: 'arm64' } });
    expect(arch.issues.map((i) => [i.code, i.field])).toEqual([['ARCH_MISMATCH', '/arch']]);
  });

  test('an app-only rootfs is not asked for cluster scripts', async () => {
    const app = Rootfs.empty().withFile('application/apps/web/deploy.yaml', 'kind: Deployment');
    expect((await lintRootfs(app)).issues).toEqual([]);
  });
});

describe('lintImage', () => {
  test('checks the sealer extension: present, apps exist, launch names apps', async () => {
    const ctx = contextFromRootfs(example, diskFs);
    const image = await ImageBuilder.from('scratch', { context: ctx, platform: 'linux/amd64' }).copy('.', '.').build();
    expect(codes(await lintImage(image))).toEqual([]);

    const bare = image.withoutAnnotation(SEALER_EXTENSION_ANNOTATION);
    expect(codes(await lintImage(bare), 'warning')).toEqual(['NO_SEALER_EXTENSION']);

    const ghost = withImageExtension(image, defaultImageExtension({
      applications: [{ name: 'web', type: 'kube', files: ['deploy.yaml'], version: 'v1' }],
      launch: { app_names: ['web', 'db'] },
    }));
    const r = await lintImage(ghost);
    expect(r.issues.map((i) => [i.code, i.field])).toEqual([
      ['APP_MISSING', '/applications/0'],
      ['LAUNCH_UNKNOWN_APP', '/launch/app_names/1'],
    ]);
    const withApp = ghost.withLayer(await diff(Rootfs.empty(), Rootfs.empty().withFile('application/apps/web/other.yaml', 'x')));
    expect((await lintImage(withApp)).issues.map((i) => i.code)).toEqual(['APP_FILE_MISSING', 'LAUNCH_UNKNOWN_APP']);
    const invalid = image.withAnnotation(SEALER_EXTENSION_ANNOTATION, '{"applications":"nope"}');
    expect(codes(await lintImage(invalid))).toEqual(['INVALID_SEALER_EXTENSION']);
  });
});
