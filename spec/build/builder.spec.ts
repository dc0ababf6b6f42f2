import { ImageBuilder } from '../../lib/build/builder';
import { builtinRunExecutor } from '../../lib/build/run';
import { contextFromRootfs } from '../../lib/build/context';
import { DigestOnlyTarget } from '../../lib/build/digest-target';
import { Image, ImageIndex } from '../../lib/image/image';
import { writeTarget } from '../../lib/image/write';
import { Rootfs } from '../../lib/rootfs/rootfs';
import { SEALER_CONTAINER_IMAGES_ANNOTATION, getImageExtension, withImageExtension, defaultImageExtension } from '../../lib/sealer';
import { listing, memfs, tree } from './helpers';

const AMD64 = 'linux/amd64';
const context = contextFromRootfs(
  tree({
    'etc/daemon.json': '{"a":1}',
    'etc/kubeadm.yml': 'kind: ClusterConfiguration',
    'statics/audit-policy.yml': 'policy',
    'apps/nginx/deploy.yaml': 'kind: Deployment',
    'apps/nginx/svc.yml': 'kind: Service',
    'apps/chart/Chart.yaml': 'name: chart',
    'apps/chart/values.yaml': '{}',
    'apps/chart/templates/x.yaml': 'x',
    'apps/tools/install.sh': '#!/bin/sh',
    'apps/tools/more.sh': '#!/bin/sh',
    'apps/mixed/a.yaml': 'a',
    'apps/mixed/run.sh': 'b',
    'apps/binary/tool': 'bin',
  }),
  memfs(),
);

function scratch(options = {}) {
  return ImageBuilder.from('scratch', { platform: AMD64, context, ...options });
}

async function digestOf(image: Image | ImageIndex): Promise<string> {
  return (await writeTarget(image, new DigestOnlyTarget())).digest;
}

describe('layer boundaries', () => {
  test('one layer per copy; batched edits make one layer; metadata steps only history', async () => {
    const image = await scratch()
      .copy('etc', 'etc')
      .file('etc/extra.conf', 'x')
      .directory('var/lib/data', { mode: 0o700 })
      .symlink('etc/current', 'extra.conf')
      .label('k', 'v')
      .remove('etc/kubeadm.yml')
      .copy('statics', 'statics')
      .env('PodCIDR', '100.64.0.0/10')
      .build();
    expect(image.layers).toHaveLength(3);
    expect(image.history.map((h) => [h.created_by, !!h.empty_layer])).toEqual([
      ['COPY etc etc', false],
      ['LABEL k=v', true],
      ['cloudrootfs: file etc/extra.conf; directory var/lib/data; symlink etc/current -> extra.conf; remove etc/kubeadm.yml', false],
      ['COPY statics statics', false],
      ['ENV PodCIDR=100.64.0.0/10', true],
    ]);
    const batch = await image.layers[1].changeset();
    // etc/kubeadm.yml came from the first layer: its removal is a whiteout in the batch layer.
    expect(batch.whiteouts()).toEqual(['etc/kubeadm.yml']);
    expect(batch.get('var/lib/data')).toMatchObject({ type: 'directory', mode: 0o700 });
    expect(listing(await image.flatten())).toEqual([
      'etc/', 'etc/current -> extra.conf', 'etc/daemon.json', 'etc/extra.conf', 'statics/', 'statics/audit-policy.yml', 'var/', 'var/lib/', 'var/lib/data/',
    ]);
  });

  test('a step that changes nothing still makes its (empty) layer: boundaries stay predictable', async () => {
    const image = await scratch().copy('etc', 'etc').copy('etc', 'etc').build();
    expect(image.layers).toHaveLength(2);
    expect((await image.layers[1].changeset()).isEmpty).toBe(true);
  });

  test('layers are minimal diffs: a re-copied file is the only entry, parents listed', async () => {
    const base = scratch().copy('.', '.');
    const ctx2 = contextFromRootfs(tree({ 'daemon.json': '{"b":2}' }), memfs());
    const image = await base.copy('daemon.json', 'etc/', { from: ctx2 }).build();
    const top = await image.layers[1].changeset();
    expect([...top.entries()].map((e) => e.path)).toEqual(['etc', 'etc/daemon.json']);
    expect(top.whiteouts()).toEqual([]);
  });
});

describe('immutability', () => {
  test('a builder can be branched; branches share the work of their common prefix', async () => {
    let runs = 0;
    const common = scratch().copy('etc', 'etc').edit('count', (r) => {
      runs++;
      return r.withFile('count', String(runs));
    });
    const a = common.label('branch', 'a');
    const b = common.label('branch', 'b').remove('etc/daemon.json');
    const [ia, ib] = await Promise.all([a.build(), b.build()]);
    expect(runs).toBe(1);
    expect(ia.labels.branch).toBe('a');
    expect(ib.labels.branch).toBe('b');
    expect((await ia.flatten()).get('etc/daemon.json')).toBeDefined();
    expect((await ib.flatten()).get('etc/daemon.json')).toBeUndefined();
    expect(common.steps).toEqual(['COPY etc etc', 'count']);
    expect(a.steps).toEqual(['COPY etc etc', 'count', 'LABEL branch=a']);
  });

  test('the same chain built twice gives the same digest; different content a different one', async () => {
    const make = () => scratch().copy('.', '.').label('a', 'b').build();
    expect(await digestOf(await make())).toBe(await digestOf(await make()));
    expect(await digestOf(await scratch().copy('etc', 'etc').build())).not.toBe(await digestOf(await make()));
  });
});

describe('reproducibility', () => {
  test('created times come from sourceDateEpoch (or SOURCE_DATE_EPOCH), mtimes are clamped', async () => {
    const image = await scratch({ sourceDateEpoch: 1700000000 }).copy('etc', 'etc').file('new', 'n').build();
    expect(image.config.created).toBe('2023-11-14T22:13:20Z');
    expect(image.history.every((h) => h.created === '2023-11-14T22:13:20Z')).toBe(true);
    const flat = await image.flatten();
    expect(flat.get('new')!.mtime).toBe(1700000000);
    const fromEnv = await scratch({ env: { SOURCE_DATE_EPOCH: '86400' } }).build();
    expect(fromEnv.config.created).toBe('1970-01-02T00:00:00Z');
    expect((await scratch().build()).config.created).toBe('1970-01-01T00:00:00Z');
    expect(() => scratch({ env: { SOURCE_DATE_EPOCH: 'yesterday' } })).toThrow(expect.objectContaining({ code: 'USAGE' }));
  });
});

describe('edits', () => {
  test('remove of a missing path is an error unless forced', async () => {
    await expect(scratch().remove('nope').build()).rejects.toMatchObject({ code: 'BUILD_FAILED', details: { causeCode: 'NOT_FOUND', instruction: 'remove nope' } });
    const image = await scratch().remove('nope', { force: true }).build();
    expect(image.layers).toHaveLength(0);
    expect(() => scratch().remove('/')).toThrow(expect.objectContaining({ code: 'USAGE' }));
  });

  test('metadata() writes Metadata in the batch; file() takes modes and owners', async () => {
    const image = await scratch().metadata({ version: 'v1.19.9', arch: 'amd64' }).file('bin/x', '#!/bin/sh', { mode: 0o755, uid: 7 }).build();
    const flat = await image.flatten();
    expect(await flat.readText('Metadata')).toBe('{"version":"v1.19.9","arch":"amd64"}\n');
    expect(flat.get('bin/x')).toMatchObject({ mode: 0o755, uid: 7 });
    expect(image.layers).toHaveLength(1);
  });
});

describe('config and the sealer extension', () => {
  test('labels, env (config and extension), annotations, maintainer, platform, type', async () => {
    const image = await scratch()
      .label({ a: '1', b: 'two words' })
      .env('PodCIDR', '10.0.0.0/8')
      .env({ LEGACY: 'x' }, { extension: false })
      .annotation('org.example/note', 'hi')
      .maintainer('Jane <jane@example.com>')
      .platform('linux/arm64')
      .type('app-installer')
      .build();
    expect(image.labels).toMatchObject({ a: '1', b: 'two words', 'io.sealer.version': '0.11.0' });
    expect(image.env).toEqual({ PodCIDR: '10.0.0.0/8', LEGACY: 'x' });
    expect(image.annotations['org.example/note']).toBe('hi');
    expect(image.config.author).toBe('Jane <jane@example.com>');
    expect(image.platform).toEqual({ os: 'linux', architecture: 'arm64' });
    const ext = getImageExtension(image)!;
    expect(ext.type).toBe('app-installer');
    expect(ext.env).toEqual({ PodCIDR: '10.0.0.0/8' });
    expect(image.history.map((h) => h.created_by)).toEqual([
      'LABEL a=1 b="two words"',
      'ENV PodCIDR=10.0.0.0/8',
      'ENV LEGACY=x',
      'MAINTAINER Jane <jane@example.com>',
    ]);
    expect(() => scratch().type('bogus' as never)).toThrow(expect.objectContaining({ code: 'USAGE' }));
    expect(() => scratch().env('A=B', 'c')).toThrow(expect.objectContaining({ code: 'USAGE' }));
    expect((await scratch({ sealerVersionLabel: false }).build()).labels['io.sealer.version']).toBeUndefined();
  });

  test('apps: sealer\'s type detection and launch files; CNI/CSI/KUBEVERSION labels', async () => {
    const image = await scratch()
      .app('nginx', 'local://apps/nginx')
      .cni('calico', ['apps/chart/'])
      .csi('tools', 'apps/tools')
      .kubeVersion('>=1.20.0')
      .app('mixed', 'apps/mixed')
      .appCmds('mixed', ['kubectl apply -f a.yaml', 'bash run.sh'])
      .appEnv('nginx', { REPLICAS: '2' })
      .launch(['calico', 'nginx'])
      .build();
    const ext = getImageExtension(image)!;
    expect(ext.applications).toEqual([
      { name: 'nginx', type: 'kube', files: ['deploy.yaml', 'svc.yml'], version: 'v1', env: { REPLICAS: '2' } },
      { name: 'calico', type: 'helm', files: ['calico'], version: 'v1' },
      { name: 'tools', type: 'shell', files: ['install.sh', 'more.sh'], version: 'v1' },
      { name: 'mixed', type: '', files: [], version: 'v1', cmds: ['kubectl apply -f a.yaml', 'bash run.sh'] },
    ]);
    expect(ext.launch).toEqual({ app_names: ['calico', 'nginx'] });
    expect(image.labels).toMatchObject({
      'cluster.alpha.sealer.io/kube-cni-calico': 'true',
      'cluster.alpha.sealer.io/kube-csi-tools': 'true',
      'app.alpha.sealer.io/supported-kube-version': '>=1.20.0',
    });
    const flat = await image.flatten();
    expect(listing(flat, 'application/apps/nginx')).toEqual(['application/apps/nginx/deploy.yaml', 'application/apps/nginx/svc.yml']);
    expect(flat.get('application/apps/calico/templates/x.yaml')).toBeDefined();
    // One layer per app step, none for the metadata steps.
    expect(image.layers).toHaveLength(4);
    expect(image.history.map((h) => h.created_by)).toContain('APP nginx local://apps/nginx');
  });

  test('app errors: bad name, unknown app in APPCMDS/APPENV/LAUNCH, undetected type without APPCMDS, CMD with LAUNCH', async () => {
    expect(() => scratch().app('../evil', 'apps/nginx')).toThrow(expect.objectContaining({ code: 'USAGE' }));
    await expect(scratch().appCmds('ghost', ['x']).build()).rejects.toMatchObject({ details: { causeCode: 'NOT_FOUND' } });
    await expect(scratch().appEnv('ghost', { A: 'b' }).build()).rejects.toMatchObject({ code: 'BUILD_FAILED' });
    await expect(scratch().launch(['ghost']).build()).rejects.toThrow(/ghost.*defined: none/);
    await expect(scratch().app('bin', 'apps/binary').build()).rejects.toThrow(/APPCMDS/);
    await expect(scratch().cmd('kubectl get pods').app('nginx', 'apps/nginx').launch(['nginx']).build()).rejects.toThrow(/CMD/);
    await expect(scratch().app('nginx', 'git://example.com/x.git').build()).rejects.toThrow(/only local:\/\/, http:\/\/ and https:\/\//);
  });

  test('CMD and CMDS accumulate into launch.cmds', async () => {
    const ext = getImageExtension(await scratch().cmd('kubectl apply -f a.yaml, kubectl apply -f b.yaml').cmds(['helm list']).build())!;
    expect(ext.launch.cmds).toEqual(['kubectl apply -f a.yaml, kubectl apply -f b.yaml', 'helm list']);
  });
});

describe('FROM a base image', () => {
  async function baseImage(): Promise<Image> {
    let image = await scratch().copy('.', '.').app('nginx', 'apps/nginx').launch(['nginx']).cmds(['echo hi']).env('A', '1').label('base', 'yes').build();
    image = withImageExtension(image, { ...getImageExtension(image)!, labels: { x: 'y' } });
    return image.withAnnotation(SEALER_CONTAINER_IMAGES_ANNOTATION, '[{"image":"nginx:1.25"}]').withAnnotation('org.example/other', 'dropped');
  }

  test('layers, config and apps are inherited; LAUNCH, CMDS, extension env and other annotations are not', async () => {
    const base = await baseImage();
    const child = await ImageBuilder.from(base, { context }).copy('etc/daemon.json', 'etc/new.json').build();
    expect(child.layers.slice(0, base.layers.length)).toEqual(base.layers);
    expect(child.layers).toHaveLength(base.layers.length + 1);
    expect(child.labels.base).toBe('yes');
    expect(child.env.A).toBe('1');
    expect(child.history.slice(0, base.history.length)).toEqual(base.history);
    const ext = getImageExtension(child)!;
    expect(ext.applications.map((a) => a.name)).toEqual(['nginx']);
    expect(ext.launch).toEqual({});
    expect(ext.env).toEqual({});
    expect(child.annotations[SEALER_CONTAINER_IMAGES_ANNOTATION]).toBe('[{"image":"nginx:1.25"}]');
    expect(child.annotations['org.example/other']).toBeUndefined();
    expect(child.platform).toEqual(base.platform);
  });

  test('a name is looked up in the store, then through resolveBase; misses and platform mismatches are typed', async () => {
    const base = await baseImage();
    const store = { loadTarget: async (name: string) => (name === 'k8s:v1' ? base : Promise.reject(Object.assign(new Error('nope'), { code: 'IMAGE_NOT_FOUND' }))) };
    expect((await ImageBuilder.from('k8s:v1', { store }).build()).layers).toHaveLength(base.layers.length);
    await expect(ImageBuilder.from('k8s:v2').build()).rejects.toMatchObject({ code: 'BUILD_FAILED', details: { causeCode: 'IMAGE_NOT_FOUND' } });
    const calls: string[] = [];
    const resolveBase = async (ref: string) => {
      calls.push(ref);
      return ImageIndex.of([base]);
    };
    const { ImageNotFoundError } = await import('../../lib/errors');
    const realStore = { loadTarget: async (name: string): Promise<Image> => { throw new ImageNotFoundError(name, 'test store'); } };
    const viaHook = await ImageBuilder.from('registry.example.com/k8s:v1', { store: realStore, resolveBase, platform: AMD64 }).build();
    expect(calls).toEqual(['registry.example.com/k8s:v1']);
    expect(viaHook.layers).toHaveLength(base.layers.length);
    await expect(ImageBuilder.from(base, { platform: 'linux/s390x' }).build()).rejects.toMatchObject({ details: { causeCode: 'PLATFORM_NOT_FOUND' } });
  });
});

describe('RUN', () => {
  test('without an executor on memfs RUN is a clear UNSUPPORTED error', async () => {
    const b = ImageBuilder.from('scratch', { fs: memfs(), context }).copy('.', '.').run('rm -f statics/audit-policy.yml');
    await expect(b.build()).rejects.toMatchObject({ code: 'BUILD_FAILED', details: { causeCode: 'UNSUPPORTED' } });
    await expect(b.build()).rejects.toThrow(/no executor for this filesystem/);
  });

  test('with an executor, deletions become whiteouts in the RUN layer', async () => {
    const image = await scratch({ runExecutor: builtinRunExecutor() }).copy('.', '.').run('rm -f statics/audit-policy.yml && mkdir -p var/log').build();
    const layer = await image.layers[1].changeset();
    expect(layer.whiteouts()).toEqual(['statics/audit-policy.yml']);
    expect(layer.get('var/log')?.type).toBe('directory');
    expect(image.history.at(-1)?.created_by).toBe('RUN rm -f statics/audit-policy.yml && mkdir -p var/log');
  });
});

test('defaultImageExtension is what an image without apps carries', async () => {
  expect(getImageExtension(await scratch().build())).toEqual(defaultImageExtension());
});
