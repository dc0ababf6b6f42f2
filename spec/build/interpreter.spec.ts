import { BuilderOptions, ImageBuilder } from '../../lib/build/builder';
import { contextFromRootfs } from '../../lib/build/context';
import { DigestOnlyTarget } from '../../lib/build/digest-target';
import { interpretKubefile, platformArgs } from '../../lib/build/interpreter';
import { RunExecutor, builtinRunExecutor } from '../../lib/build/run';
import { Image, ImageIndex } from '../../lib/image/image';
import { writeTarget } from '../../lib/image/write';
import { Layer } from '../../lib/layer/layer';
import { layerTarStream } from '../../lib/tar/write';
import { Rootfs } from '../../lib/rootfs/rootfs';
import { getImageExtension } from '../../lib/sealer';
import { listing, memfs, tree } from './helpers';

const files = tree({
  'daemon.json': '{"log-level":"info"}',
  'amd64/bin/kubectl': ['amd64', 0o755],
  'arm64/bin/kubectl': ['arm64', 0o755],
  'v2/conf': 'versioned',
  'etc/kubelet.service': 'unit',
  'statics/audit-policy.yml': 'policy',
  'apps/nginx/deploy.yaml': 'kind: Deployment',
  'apps/calico.yaml': 'kind: DaemonSet',
  'apps/csi.yaml': 'kind: StorageClass',
  'apps/mixed/a.yaml': 'a',
  'apps/mixed/b.txt': 'b',
});
const context = contextFromRootfs(files, memfs());

function build(kubefile: string, options: Parameters<typeof interpretKubefile>[1] = {}) {
  const { builder, warnings } = interpretKubefile(kubefile, { context, platform: 'linux/amd64', runExecutor: builtinRunExecutor(), ...options });
  return { image: builder.build(), warnings, builder };
}

async function digest(image: Image | ImageIndex): Promise<string> {
  return (await writeTarget(image, new DigestOnlyTarget())).digest;
}

describe('FROM', () => {
  test('scratch is an empty rootfs; the platform is the build platform', async () => {
    const image = await build('FROM scratch\n').image;
    expect(image.layers).toHaveLength(0);
    expect(image.platform).toEqual({ os: 'linux', architecture: 'amd64' });
  });

  test('a global ARG expands in FROM; a store miss names the Kubefile line', async () => {
    const base = await build('FROM scratch\nCOPY daemon.json etc/\n').image;
    const store = { loadTarget: async (name: string) => { if (name === 'k8s:v1.19.9') return base; throw Object.assign(new Error(`no ${name}`), {}); } };
    const image = await build('ARG V=v1.19.9\nFROM k8s:${V}\nLABEL x=y\n', { store }).image;
    expect(image.layers).toHaveLength(1);
    await expect(build('FROM missing:v1\n', { file: 'Kubefile.child' }).image).rejects.toMatchObject({
      code: 'BUILD_FAILED',
      details: { causeCode: 'IMAGE_NOT_FOUND', line: 1, file: 'Kubefile.child' },
    });
    expect(() => build('ARG B\nFROM ${B}\n')).toThrow(/expands to nothing/);
  });

  test('FROM --platform picks the stage platform; a bad one is a syntax error with its line', async () => {
    expect((await build('FROM --platform=linux/arm64 scratch\n').image).platform.architecture).toBe('arm64');
    expect(() => build('FROM --platform=linux/ scratch\n')).toThrow(expect.objectContaining({ code: 'KUBEFILE_SYNTAX', line: 1 }));
  });

  test('stages: COPY --from a named or numbered stage, FROM a stage; only the last stage is the image', async () => {
    const image = await build('FROM scratch AS tools\nCOPY amd64/bin bin/\nFROM scratch\nCOPY --from=tools bin/kubectl kubectl\nCOPY --from=0 bin bin2/\n').image;
    expect(listing(await image.flatten())).toEqual(['bin2/', 'bin2/kubectl', 'kubectl']);
    expect(image.history.map((h) => h.created_by)).toEqual(['COPY --from=tools bin/kubectl kubectl', 'COPY --from=0 bin bin2/']);
    const chained = await build('FROM scratch AS one\nCOPY daemon.json a.json\nFROM one\nCOPY daemon.json b.json\n').image;
    expect(listing(await chained.flatten())).toEqual(['a.json', 'b.json']);
    expect(() => build('FROM scratch AS a\nFROM scratch AS a\n')).toThrow(/duplicate stage/);
  });
});

describe('COPY and ADD', () => {
  test('${ARCH} in sources is the target architecture (sealer #1989)', async () => {
    const kf = 'FROM scratch\nCOPY ${ARCH}/bin bin/\nCOPY $ARCH/bin/kubectl kubectl-$ARCH\n';
    const amd = await (await build(kf).image).flatten();
    expect(await amd.readText('bin/kubectl')).toBe('amd64');
    expect(amd.get('kubectl-')).toBeDefined(); // ARCH is not an ARG outside sources
    const arm = await (await build(kf, { platform: 'linux/arm64' }).image).flatten();
    expect(await arm.readText('bin/kubectl')).toBe('arm64');
  });

  test('ARG values, --chown, --chmod and the JSON form', async () => {
    const image = await build('FROM scratch\nARG DIR=v2\nCOPY --chown=1000:1000 --chmod=600 ${DIR}/conf etc/\nCOPY ["daemon.json", "etc/my daemon.json"]\n').image;
    const flat = await image.flatten();
    expect(flat.get('etc/conf')).toMatchObject({ uid: 1000, gid: 1000, mode: 0o600 });
    expect(flat.get('etc/my daemon.json')?.type).toBe('file');
    expect(image.history.map((h) => h.created_by)).toEqual(['COPY --chown=1000:1000 --chmod=600 v2/conf etc/', 'COPY ["daemon.json", "etc/my daemon.json"]']);
  });

  test('copyMode legacy nests sources under dest', async () => {
    const image = await build('FROM scratch\nCOPY etc config\n', { copyMode: 'legacy' }).image;
    expect(listing(await image.flatten())).toEqual(['config/', 'config/etc/', 'config/etc/kubelet.service']);
  });

  test('errors point at the instruction: missing source, several sources without /, a bad --chmod', async () => {
    await expect(build('FROM scratch\n\nCOPY nope.json etc/\n').image).rejects.toMatchObject({ code: 'BUILD_FAILED', details: { line: 3, causeCode: 'NOT_FOUND', instruction: 'COPY nope.json etc/' } });
    await expect(build('FROM scratch\nCOPY daemon.json etc/kubelet.service etc\n').image).rejects.toThrow(/Kubefile:2: .*ending in "\/"/);
    expect(() => build('FROM scratch\nCOPY --chmod=rwx daemon.json x\n')).toThrow(expect.objectContaining({ code: 'USAGE' }));
    expect(() => build('FROM scratch\nCOPY ${X:?set X} x\n')).toThrow(expect.objectContaining({ code: 'KUBEFILE_SYNTAX', line: 2 }));
  });

  test('ADD unpacks a local tar; URLs are downloaded (an unknown host fails fast), git sources refused', async () => {
    const chunks: Buffer[] = [];
    for await (const c of layerTarStream(Layer.fromRootfs(Rootfs.empty().withFile('helm', 'helm-binary', { mode: 0o755 })))) chunks.push(c as Buffer);
    const ctx = contextFromRootfs(files.withFile('helm.tar', Buffer.concat(chunks)), memfs());
    const image = await build('FROM scratch\nADD helm.tar bin/\nADD daemon.json etc/\n', { context: ctx }).image;
    const flat = await image.flatten();
    expect(await flat.readText('bin/helm')).toBe('helm-binary');
    expect(flat.get('etc/daemon.json')?.type).toBe('file');
    await expect(build('FROM scratch\nADD https://files.invalid/helm.tgz bin/\n').image).rejects.toMatchObject({ details: { causeCode: 'NETWORK_ERROR', line: 2 } });
    await expect(build('FROM scratch\nADD git://example.com/x.git bin/\n').image).rejects.toThrow(/git sources are not/);
  });
});

describe('ARG, ENV, LABEL, MAINTAINER', () => {
  test('build args override defaults; stage ARGs must be declared; unused build args warn', async () => {
    const { image, warnings } = build('ARG GLOBAL=g\nFROM scratch\nARG GLOBAL\nARG LOCAL=l\nARG TARGETARCH\nLABEL g=${GLOBAL} l=${LOCAL} arch=${TARGETARCH} none=${UNDECLARED}\n', {
      buildArgs: { LOCAL: 'from-cli', EXTRA: 'x' },
    });
    expect((await image).labels).toMatchObject({ g: 'g', l: 'from-cli', arch: 'amd64', none: '' });
    expect(warnings.map((w) => w.code)).toEqual(['UNUSED_BUILD_ARG']);
    expect(platformArgs({ os: 'linux', architecture: 'arm', variant: 'v7' }).TARGETPLATFORM).toBe('linux/arm/v7');
  });

  test('ENV sets config env, the extension env (as sealer records it) and variables for later lines', async () => {
    const { image, warnings } = build('FROM scratch\nENV A=1 B=$A\nENV C=${A}-x\nENV LEGACY some value\nLABEL c=$C legacy="$LEGACY"\n');
    const img = await image;
    expect(img.env).toEqual({ A: '1', B: '', C: '1-x', LEGACY: 'some value' });
    // sealer records the words of the line as written, unexpanded, and only those with an `=`:
    // https://github.com/sealerio/sealer/blob/v0.11.0/build/kubefile/parser/kubefile.go#L380-L400
    expect(getImageExtension(img)!.env).toEqual({ A: '1', B: '$A', C: '${A}-x' });
    expect(img.labels).toMatchObject({ c: '1-x', legacy: 'some value' });
    expect(warnings.map((w) => w.code)).toEqual(['LEGACY_KEY_VALUE']);
  });

  test('LABEL and MAINTAINER', async () => {
    const img = await build('FROM scratch\nLABEL cluster.alpha.sealer.io/container-runtime-type="containerd" "with space"=yes\nMAINTAINER Jane <jane@example.com>\n').image;
    expect(img.labels).toMatchObject({ 'cluster.alpha.sealer.io/container-runtime-type': 'containerd', 'with space': 'yes' });
    expect(img.config.author).toBe('Jane <jane@example.com>');
  });
});

describe('RUN', () => {
  test('shell and JSON forms go to the executor with ENV and declared ARGs in the environment', async () => {
    const seen: { command?: string; argv?: string[]; env: Record<string, string> }[] = [];
    const recorder: RunExecutor = {
      name: 'recorder',
      async run(req) {
        seen.push({ command: req.command, argv: req.argv, env: { ...req.env } });
        return req.rootfs.withFile(`ran-${seen.length}`, 'x');
      },
    };
    const image = await build('FROM scratch\nARG A=a\nENV E=e\nRUN echo $A $E\nRUN ["touch", "x"]\n', { runExecutor: recorder }).image;
    expect(seen).toEqual([
      { command: 'echo $A $E', argv: undefined, env: { E: 'e', A: 'a' } },
      { command: undefined, argv: ['touch', 'x'], env: { E: 'e', A: 'a' } },
    ]);
    expect(image.layers).toHaveLength(2);
  });

  test('RUN rm makes a whiteout; a failing command names its line; --mount is refused, --security warned about', async () => {
    const img = await build('FROM scratch\nCOPY . .\nRUN rm -f statics/audit-policy.yml\n').image;
    expect((await img.layers[1].changeset()).whiteouts()).toEqual(['statics/audit-policy.yml']);
    await expect(build('FROM scratch\nRUN rm nope\n').image).rejects.toMatchObject({ details: { line: 2, causeCode: 'NOT_FOUND' } });
    expect(() => build('FROM scratch\nRUN --mount=type=cache,target=/x true\n')).toThrow(/--mount is not supported/);
    expect(build('FROM scratch\nRUN --security=insecure mkdir x\n').warnings.map((w) => w.code)).toEqual(['IGNORED_FLAG']);
  });

  test('RUN --network: none and default always; host only where the build allows it (an entitlement, as in BuildKit)', async () => {
    const seen: (string | undefined)[] = [];
    const recorder: RunExecutor = {
      name: 'recorder',
      async run(req) {
        seen.push(req.network);
        return req.rootfs;
      },
    };
    const kubefile = 'FROM scratch\nRUN a\nRUN --network=none b\nRUN --network=default c\n';
    const closed = build(kubefile, { runExecutor: recorder });
    expect(closed.warnings).toEqual([]);
    await closed.image;
    expect(seen.splice(0)).toEqual(['none', 'none', 'none']);
    await build(kubefile, { runExecutor: recorder, network: 'host' }).image;
    expect(seen.splice(0)).toEqual(['host', 'none', 'host']);
    await build('FROM scratch\nRUN --network=host a\n', { runExecutor: recorder, network: 'host' }).image;
    expect(seen.splice(0)).toEqual(['host']);
    expect(() => build('FROM scratch\nRUN --network=host a\n', { runExecutor: recorder })).toThrow(/Kubefile:2: RUN --network=host needs the build to allow the host network/);
    expect(() => build('FROM scratch\nRUN --network=bridge a\n', { runExecutor: recorder })).toThrow(expect.objectContaining({ code: 'KUBEFILE_SYNTAX' }));
  });

  test('a build that runs RUN on the host says so once; other executors do not', () => {
    // Interpreted only: nothing runs until build().
    const warnings = (kubefile: string, runExecutor?: BuilderOptions['runExecutor']) =>
      interpretKubefile(kubefile, { context, platform: 'linux/amd64', ...(runExecutor ? { runExecutor } : {}) }).warnings;
    const host = { name: 'host-shell', run: async (req: { rootfs: Rootfs }) => req.rootfs } as RunExecutor;
    expect(warnings('FROM scratch\nRUN a\nRUN b\n', host).map((w) => [w.code, w.line])).toEqual([['RUN_ON_HOST', 2]]);
    expect(warnings('FROM scratch\nRUN a\n', 'host').map((w) => w.code)).toEqual(['RUN_ON_HOST']);
    expect(warnings('FROM scratch\nCOPY . .\n', 'host')).toEqual([]);
    expect(warnings('FROM scratch\nRUN a\n')).toEqual([]);
    expect(warnings('FROM scratch\nRUN a\n', builtinRunExecutor())).toEqual([]);
  });
});

describe('sealer instructions', () => {
  const appKubefile = [
    'FROM scratch',
    'KUBEVERSION >=1.20.0',
    'CNI calico local://apps/calico.yaml',
    'CSI openebs local://apps/csi.yaml',
    'APP nginx local://apps/nginx/',
    'APP mixed local://apps/mixed',
    'APPCMDS mixed ["kubectl apply -f a.yaml"]',
    'APPENV nginx REPLICAS=3 NAME=web',
    'LAUNCH ["calico", "nginx"]',
    '',
  ].join('\n');

  test('APP/CNI/CSI/APPCMDS/APPENV/KUBEVERSION/LAUNCH write the extension and labels as sealer v0.9+ does', async () => {
    const { image, warnings } = build(appKubefile);
    const img = await image;
    const ext = getImageExtension(img)!;
    expect(ext.applications).toEqual([
      { name: 'calico', type: 'kube', files: ['calico.yaml'], version: 'v1' },
      { name: 'openebs', type: 'kube', files: ['csi.yaml'], version: 'v1' },
      { name: 'nginx', type: 'kube', files: ['deploy.yaml'], version: 'v1', env: { REPLICAS: '3', NAME: 'web' } },
      { name: 'mixed', type: '', files: [], version: 'v1', cmds: ['kubectl apply -f a.yaml'] },
    ]);
    expect(ext.launch).toEqual({ app_names: ['calico', 'nginx'] });
    expect(img.labels).toMatchObject({
      'app.alpha.sealer.io/supported-kube-version': '>=1.20.0',
      'cluster.alpha.sealer.io/kube-cni-calico': 'true',
      'cluster.alpha.sealer.io/kube-csi-openebs': 'true',
    });
    expect(img.layers).toHaveLength(4);
    expect(warnings).toEqual([]);
    expect(listing(await img.flatten(), 'application/apps/calico')).toEqual(['application/apps/calico/calico.yaml']);
  });

  test('CMD and CMDS fill launch.cmds; errors for unknown apps, remote sources and undetected types', async () => {
    const cmd = await build('FROM scratch\nCMD kubectl apply -f a.yaml, kubectl apply -f b.yaml\nCMD helm list\n').image;
    expect(getImageExtension(cmd)!.launch.cmds).toEqual(['kubectl apply -f a.yaml, kubectl apply -f b.yaml', 'helm list']);
    const cmds = await build('FROM scratch\nCMDS ["kubectl apply -f manifests/"]\n').image;
    expect(getImageExtension(cmds)!.launch.cmds).toEqual(['kubectl apply -f manifests/']);
    await expect(build('FROM scratch\nLAUNCH ["ghost"]\n').image).rejects.toMatchObject({ details: { line: 2 } });
    await expect(build('FROM scratch\nAPPCMDS ghost ["x"]\n').image).rejects.toThrow(/Kubefile:2: APPCMDS ghost/);
    await expect(build('FROM scratch\nAPPENV ghost A=b\n').image).rejects.toThrow(/APPENV/);
    await expect(build('FROM scratch\nAPP web https://files.invalid/web.yaml\n').image).rejects.toMatchObject({ details: { causeCode: 'NETWORK_ERROR', line: 2 } });
    await expect(build('FROM scratch\nAPP mixed local://apps/mixed\n').image).rejects.toThrow(/APPCMDS/);
    expect(() => build('FROM scratch\nCMD a\nLAUNCH ["x"]\n')).toThrow(expect.objectContaining({ code: 'KUBEFILE_SYNTAX' }));
  });
});

describe('one code path: the fluent chain gives the Kubefile\'s digest', () => {
  test('for a Kubefile using most instructions', async () => {
    const kubefile = [
      'FROM scratch',
      'ARG ARCH_DIR=amd64',
      'COPY ${ARCH_DIR}/bin bin/',
      'COPY daemon.json etc/',
      'ENV PodCIDR=100.64.0.0/10',
      'LABEL cluster.alpha.sealer.io/cluster-runtime-version=v1.19.9',
      'MAINTAINER ops',
      'RUN mkdir -p var/lib && rm -f etc/daemon.json',
      'CNI calico local://apps/calico.yaml',
      'APP nginx local://apps/nginx/',
      'APPENV nginx REPLICAS=3',
      'KUBEVERSION >=1.19.0',
      'LAUNCH ["calico", "nginx"]',
      '',
    ].join('\n');
    const fromKubefile = await build(kubefile).image;
    const fluent = await ImageBuilder.from('scratch', { context, platform: 'linux/amd64', runExecutor: builtinRunExecutor() })
      .copy('amd64/bin', 'bin/')
      .copy('daemon.json', 'etc/')
      .env('PodCIDR', '100.64.0.0/10')
      .label('cluster.alpha.sealer.io/cluster-runtime-version', 'v1.19.9')
      .maintainer('ops')
      .run('mkdir -p var/lib && rm -f etc/daemon.json')
      .cni('calico', 'local://apps/calico.yaml')
      .app('nginx', 'local://apps/nginx/')
      .appEnv('nginx', { REPLICAS: '3' })
      .kubeVersion('>=1.19.0')
      .launch(['calico', 'nginx'])
      .build();
    expect(fluent.history).toEqual(fromKubefile.history);
    expect(await digest(fluent)).toBe(await digest(fromKubefile));
  });
});

describe('every instruction fails with its Kubefile line', () => {
  // [instruction under test, Kubefile, expected code, line]
  const cases: [string, string, string, number][] = [
    ['FROM', 'FROM nowhere:v1\n', 'BUILD_FAILED', 1],
    ['COPY', 'FROM scratch\nCOPY missing .\n', 'BUILD_FAILED', 2],
    ['ADD', 'FROM scratch\nADD missing.tar .\n', 'BUILD_FAILED', 2],
    ['ARG', 'ARG A=${B:?B is required}\nFROM scratch\n', 'KUBEFILE_SYNTAX', 1],
    ['ENV', 'FROM scratch\nENV A=${NOPE:?unset}\n', 'KUBEFILE_SYNTAX', 2],
    ['LABEL', 'FROM scratch\nLABEL a="${X:?no X}"\n', 'KUBEFILE_SYNTAX', 2],
    ['MAINTAINER', 'MAINTAINER someone\n', 'KUBEFILE_SYNTAX', 1],
    ['RUN', 'FROM scratch\nRUN rm missing\n', 'BUILD_FAILED', 2],
    ['CMD', 'FROM scratch\nCMD a\nLAUNCH ["x"]\n', 'KUBEFILE_SYNTAX', 3],
    ['CMDS', 'FROM scratch\nCMDS not-json\n', 'KUBEFILE_SYNTAX', 2],
    ['LAUNCH', 'FROM scratch\nLAUNCH ["ghost"]\n', 'BUILD_FAILED', 2],
    ['APP', 'FROM scratch\nAPP web local://missing.yaml\n', 'BUILD_FAILED', 2],
    ['APPCMDS', 'FROM scratch\nAPPCMDS ghost ["x"]\n', 'BUILD_FAILED', 2],
    ['APPENV', 'FROM scratch\nAPPENV ghost A=1\n', 'BUILD_FAILED', 2],
    ['CNI', 'FROM scratch\nCNI calico local://missing/\n', 'BUILD_FAILED', 2],
    ['CSI', 'FROM scratch\nCSI openebs https://files.invalid/openebs.yaml\n', 'BUILD_FAILED', 2],
    ['KUBEVERSION', 'FROM scratch\nKUBEVERSION\n', 'KUBEFILE_SYNTAX', 2],
  ];
  test.each(cases)('%s', async (_kind, kubefile, code, line) => {
    let error: unknown;
    try {
      await build(kubefile).image;
    } catch (err) {
      error = err;
    }
    expect(error).toMatchObject({ code });
    const e = error as { line?: number; details: { line?: number } };
    expect(e.line ?? e.details.line).toBe(line);
  });
});
