/** Which container images a CloudRootfs needs: sealer's collection rules, on a Rootfs in memory. */
import { collectImages, imagesFromValues, parseImageList, scanImageLine } from '../../lib/registry/embedded/collect';
import { Rootfs } from '../../lib/rootfs/rootfs';

function rootfsOf(files: Record<string, string>): Rootfs {
  let r = Rootfs.empty();
  for (const [path, text] of Object.entries(files)) r = r.withFile(path, text);
  return r;
}

describe('the line scan (sealer decodeLine)', () => {
  it.each([
    ['image: nginx:1.25', 'nginx:1.25'],
    ['        image: quay.io/coreos/flannel:v0.14.0', 'quay.io/coreos/flannel:v0.14.0'],
    ['  - image: "k8s.gcr.io/pause:3.5"', 'k8s.gcr.io/pause:3.5'],
    ['    "image": "registry.k8s.io/coredns/coredns:v1.10.1",', 'registry.k8s.io/coredns/coredns:v1.10.1'],
    ["  image: 'busybox:1.36'", 'busybox:1.36'],
    ['  sidecar_image: busybox', 'busybox'],
    ['  initImage: case-sensitive-as-sealer', undefined],
    ['  image : nginx', 'nginx'],
    ['  image: nginx:1.25   # pinned for CVE-x', 'nginx:1.25'],
    ['  image: 127.0.0.1:5000/team/app:v1', '127.0.0.1:5000/team/app:v1'],
  ])('%j → %j', (line, expected) => {
    expect(scanImageLine(line)).toBe(expected);
  });

  it.each([
    ['# image: commented:1'],
    ['  imagePullPolicy: Always'],
    ['  images:'],
    ['  image:'],
    ['  Image: capitalised-is-not-matched'],
    ['no colon at all image'],
    ['  name: image'],
  ])('%j is not an image line', (line) => {
    expect(scanImageLine(line)).toBeUndefined();
  });
});

describe('imageList', () => {
  it('one image per line; blank lines and comments skipped, quotes trimmed', () => {
    expect(parseImageList('# the list\nnginx:1.25\n\n  "quay.io/a/b:v1"  \r\n\'k8s.gcr.io/pause:3.5\'\nbusybox # inline\n   # indented comment\n')).toEqual([
      'nginx:1.25',
      'quay.io/a/b:v1',
      'k8s.gcr.io/pause:3.5',
      'busybox',
    ]);
  });
});

describe('values.yaml', () => {
  it('finds string images and repository/tag maps, keeping tags as written', () => {
    const values = [
      'image:',
      '  repository: bitnami/nginx',
      '  tag: ""',
      '  pullPolicy: IfNotPresent',
      'sidecar:',
      '  image: "busybox:1.36"',
      'controller:',
      '  image:',
      '    registry: quay.io',
      '    repository: jetstack/cert-manager-controller',
      '    tag: v1.12.0',
      'legacy:',
      '  workerImage:',
      '    repository: example/worker',
      '    tag: 1.20',
      'pinned:',
      '  image:',
      '    repository: example/pinned',
      '    digest: sha256:' + 'a'.repeat(64),
      'templated:',
      '  image: "{{ .Values.global.registry }}/x:1"',
      'list:',
      '  - name: a',
      '    image: alpine:3.18',
      'imagePullSecrets: []',
    ].join('\n');
    expect(imagesFromValues(values, '1.25.3')).toEqual([
      'bitnami/nginx:1.25.3',
      'busybox:1.36',
      'quay.io/jetstack/cert-manager-controller:v1.12.0',
      'example/worker:1.20',
      'example/pinned:1.25.3@sha256:' + 'a'.repeat(64),
      'alpine:3.18',
    ]);
  });

  it('yields nothing for YAML it cannot read', () => {
    expect(imagesFromValues('image: [unclosed')).toEqual([]);
  });
});

describe('collectImages', () => {
  const rootfs = rootfsOf({
    'manifests/imageList': '# base images\nnginx:1.25\n"quay.io/coreos/flannel:v0.14.0"\nnot a valid ref!\n',
    'manifests/calico.yaml': [
      'spec:',
      '  containers:',
      '  - name: cni',
      '    image: docker.io/calico/cni:v3.19.1',
      '    imagePullPolicy: IfNotPresent',
      '  # image: commented/out:1',
      '  - image: "{{ .Values.image }}"',
      '  - image: quay.io/coreos/flannel:v0.14.0',
    ].join('\n'),
    'manifests/nested/pause.YML': 'image: k8s.gcr.io/pause:3.5\n',
    'manifests/README.md': 'image: not-scanned:1\n',
    'charts/app/Chart.yaml': 'apiVersion: v2\nname: app\nversion: 0.1.0\nappVersion: "2.0.1"\n',
    'charts/app/values.yaml': 'image:\n  repository: team/app\n  tag: ""\nsidecar:\n  image: busybox:1.36\n',
    'charts/app/templates/deployment.yaml': 'image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"\n        image: redis:7.2\n',
    'charts/app/charts/db/Chart.yaml': 'name: db\nversion: 1.0.0\n',
    'charts/app/charts/db/values.yaml': 'image: postgres:16\n',
    'charts/app/charts/db/templates/x.yaml': '',
    'charts/loose/values.yaml': 'image: not-a-chart:1\n',
    'application/apps/web/deploy.yaml': 'image: nginx:1.25\n---\nimage: web/frontend:3\n',
    'application/apps/db/Chart.yaml': 'name: db\nversion: 1.0.0\nappVersion: "15"\n',
    'application/apps/db/values.yaml': 'image:\n  repository: postgres\n',
    'application/apps/db/templates/sts.yaml': '',
  });

  it('walks imageList, manifests, charts and apps in that order, normalized and deduplicated', async () => {
    const skipped: string[] = [];
    const images = await collectImages(rootfs, { images: ['extra/tool:1'], onSkipped: (text, source) => skipped.push(`${source}: ${text}`) });
    expect(images.map((i) => [i.image, i.appName ?? '-'])).toEqual([
      ['docker.io/library/nginx:1.25', '-'],
      ['quay.io/coreos/flannel:v0.14.0', '-'],
      ['docker.io/calico/cni:v3.19.1', '-'],
      ['k8s.gcr.io/pause:3.5', '-'],
      ['docker.io/team/app:2.0.1', '-'],
      ['docker.io/library/busybox:1.36', '-'],
      ['docker.io/library/redis:7.2', '-'],
      ['docker.io/library/postgres:16', '-'],
      ['docker.io/library/postgres:15', 'db'],
      ['docker.io/library/nginx:1.25', 'web'],
      ['docker.io/web/frontend:3', 'web'],
      ['docker.io/extra/tool:1', '-'],
    ]);
    const flannel = images.find((i) => i.image.startsWith('quay.io/coreos/flannel'))!;
    expect(flannel.sources).toEqual(['manifests/imageList:3', 'manifests/calico.yaml']);
    expect(skipped).toEqual(
      expect.arrayContaining(['manifests/imageList:4: not a valid ref!', 'manifests/calico.yaml: {{.Values.image}}']),
    );
    expect(skipped.some((s) => s.includes('not-scanned') || s.includes('not-a-chart'))).toBe(false);
  });

  it('drops ignored images (matched normalized) and can limit what is scanned', async () => {
    const images = await collectImages(rootfs, {
      ignored: ['nginx:1.25', 'docker.io/library/busybox:1.36'],
      scan: { charts: false, applications: false },
    });
    expect(images.map((i) => i.image)).toEqual(['quay.io/coreos/flannel:v0.14.0', 'docker.io/calico/cni:v3.19.1', 'k8s.gcr.io/pause:3.5']);
  });

  it('finds nothing in a rootfs without those sections', async () => {
    expect(await collectImages(rootfsOf({ 'etc/kubeadm.yml': 'image: nope:1\n' }))).toEqual([]);
  });
});
