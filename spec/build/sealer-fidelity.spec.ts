/**
 * What a Kubefile builds, as sealer v0.11 builds it: the extension's apps, their files and their
 * order, APPENV and ENV as recorded, the labels. Each expected value comes from sealer's source
 * (linked beside it), not from our own output.
 */
import { contextFromRootfs } from '../../lib/build/context';
import { interpretKubefile } from '../../lib/build/interpreter';
import { builtinRunExecutor } from '../../lib/build/run';
import { getImageExtension } from '../../lib/sealer';
import { memfs, tree } from './helpers';

const SEALER = 'https://github.com/sealerio/sealer/blob/v0.11.0';

const context = contextFromRootfs(
  tree({
    // A kube app whose directory holds a subdirectory that sorts before a file with the same stem.
    'crds-app/crds/01-crd.yaml': 'kind: CustomResourceDefinition',
    'crds-app/crds/02-crd.yaml': 'kind: CustomResourceDefinition',
    'crds-app/crds-extra.yaml': 'kind: ConfigMap',
    'crds-app/a.yaml': 'kind: Namespace',
    'crds-app/z/y/x.yml': 'kind: Service',
    'crds-app/B.yaml': 'kind: Secret',
    'hooks/run.sh': 'echo',
    'web.yaml': 'kind: Deployment',
    'amd64/bin/kubectl': ['amd64', 0o755],
  }),
  memfs(),
);

function build(kubefile: string) {
  const { builder, warnings } = interpretKubefile(kubefile, { context, platform: 'linux/amd64', runExecutor: builtinRunExecutor() });
  return { image: builder.build(), warnings };
}

describe('a kube app\'s files, in the order kubectl apply gets them', () => {
  test('filepath.Walk order: names sorted per directory, a subdirectory walked where its name sorts', async () => {
    // getApplicationFiles walks a directory source with filepath.Walk, which reads each directory
    // sorted by name and descends into a subdirectory in place:
    // ${SEALER}/build/kubefile/parser/utils.go#L231-L247, and GetAppLaunchCmd applies them in that
    // order: ${SEALER}/pkg/define/application/v1/application.go#L76-L82.
    // Go sorts names byte-wise: "B.yaml" < "a.yaml" < "crds" < "crds-extra.yaml" < "z".
    const ext = getImageExtension(await build('FROM scratch\nAPP crds local://crds-app\n').image)!;
    expect(ext.applications[0]).toEqual({
      name: 'crds',
      type: 'kube',
      files: ['B.yaml', 'a.yaml', 'crds/01-crd.yaml', 'crds/02-crd.yaml', 'crds-extra.yaml', 'z/y/x.yml'],
      version: 'v1',
    });
  });

  test('sources in the order written, each directory walked, each file by its base name', async () => {
    // ${SEALER}/build/kubefile/parser/utils.go#L225-L262: sources in order; a file is filepath.Base(source).
    const ext = getImageExtension(await build('FROM scratch\nAPP both local://web.yaml local://crds-app/z\n').image)!;
    expect(ext.applications[0].files).toEqual(['web.yaml', 'y/x.yml']);
  });
});

describe('APPENV, ENV and app names', () => {
  test('APPENV app k1=v1 word k2=v2: the word without = is skipped; values are kept as written', async () => {
    // ${SEALER}/build/kubefile/parser/kubefile.go#L358-L365 (skip), #L372-L376 (merge over earlier APPENV)
    const { image, warnings } = build('FROM scratch\nAPP web local://web.yaml\nAPPENV web k1=v1 word k2=v2\nAPPENV web k2=$HOME Q="a\n');
    const ext = getImageExtension(await image)!;
    expect(ext.applications[0].env).toEqual({ k1: 'v1', k2: '$HOME', Q: '"a' });
    expect(warnings.map((w) => `${w.line} ${w.code}`)).toEqual(['3 APPENV_WORD_SKIPPED']);
  });

  test('ENV: the config gets the expanded values, the extension what sealer records', async () => {
    // Config: buildah's ENV (buildkit semantics). Extension: ${SEALER}/build/kubefile/parser/kubefile.go#L380-L400
    const img = await build('FROM scratch\nENV REGISTRY=sea.hub:5000\nENV IMAGE="$REGISTRY/nginx" NAME="two words"\n').image;
    expect(img.env).toMatchObject({ REGISTRY: 'sea.hub:5000', IMAGE: 'sea.hub:5000/nginx', NAME: 'two words' });
    expect(getImageExtension(img)!.env).toEqual({ REGISTRY: 'sea.hub:5000', IMAGE: '"$REGISTRY/nginx"', NAME: '"two' });
  });

  test('an app named _hooks builds; its files go to application/apps/_hooks/', async () => {
    // Only a non-empty name is required: ${SEALER}/build/kubefile/parser/app_handler.go#L55-L57;
    // the directory is filepath.Join(appRoot, name): ${SEALER}/build/kubefile/parser/kubefile.go#L505-L508
    const img = await build('FROM scratch\nAPP _hooks local://hooks\nLAUNCH _hooks\n').image;
    const ext = getImageExtension(img)!;
    expect(ext.applications).toEqual([{ name: '_hooks', type: 'shell', files: ['run.sh'], version: 'v1' }]);
    expect(ext.launch).toEqual({ app_names: ['_hooks'] });
    expect((await img.flatten()).get('application/apps/_hooks/run.sh')?.type).toBe('file');
  });
});

describe('labels and COPY', () => {
  test('KUBEVERSION\'s label is the text as written; CNI/CSI add their labels', async () => {
    // ${SEALER}/build/kubefile/parser/kubefile.go#L266-L271, #L246-L262
    const img = await build('FROM scratch\nKUBEVERSION ">=1.20.0"\nCNI calico local://web.yaml\nCSI openebs local://web.yaml\n').image;
    expect(img.labels).toMatchObject({
      'app.alpha.sealer.io/supported-kube-version': '">=1.20.0"',
      'cluster.alpha.sealer.io/kube-cni-calico': 'true',
      'cluster.alpha.sealer.io/kube-csi-openebs': 'true',
    });
  });

  test('COPY expands $ARCH in its source; what sealer drops is built and warned about', async () => {
    // sealer keeps COPY's first two words and expands only $ARCH in the source:
    // ${SEALER}/build/kubefile/parser/kubefile.go#L273-L300
    const { image, warnings } = build('FROM scratch\nARG DIR=amd64\nCOPY ${ARCH}/bin bin\nCOPY --chmod=700 ${DIR}/bin web.yaml opt/\n');
    const rootfs = await (await image).flatten();
    expect(rootfs.get('bin/kubectl')?.type).toBe('file');
    expect(rootfs.get('opt/kubectl')?.mode).toBe(0o700);
    expect(warnings.map((w) => `${w.line} ${w.code}`)).toEqual(['4 SEALER_DIFFERENCE']);
    expect(warnings[0].message).toMatch(/--chmod=700/);
    expect(warnings[0].message).toMatch(/sealer copies \$\{DIR\}\/bin to web\.yaml/);
    expect(warnings[0].message).toMatch(/\$DIR/);
  });

  test('ADD gets no $ARCH: sealer passes it to buildah as written', async () => {
    // ADD is passed verbatim (${SEALER}/build/kubefile/parser/kubefile.go#L213-L215); buildah knows no ARCH.
    await expect(build('FROM scratch\nADD ${ARCH}/bin/kubectl bin/\n').image).rejects.toThrow(/"\/bin\/kubectl"|bin\/kubectl/);
  });
});
