/**
 * The sealer validators `npm run build` precompiles (scripts/compile-schemas.js, ajv standalone)
 * must judge every document exactly as the runtime-compiled ones do: same verdict, same issues.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import standalone from 'ajv/dist/standalone';
import { issuesFromAjv } from '../../lib/image/schema/ajv';
import { buildSealerAjv, sealerSchemaIds, sealerValidator, type SealerSchemaKind } from '../../lib/sealer/schema';

type Validate = ((data: unknown) => boolean) & { errors?: Parameters<typeof issuesFromAjv>[0] };

const cases: [SealerSchemaKind, string, unknown][] = [
  ['image-extension', 'minimal', { schemaVersion: 'v1alpha1' }],
  ['image-extension', 'full', {
    buildClient: { sealerVersion: '0.9.0', buildahVersion: '1.27.1' },
    schemaVersion: 'v1alpha1',
    type: 'app-installer',
    applications: [{ name: 'nginx', type: 'kube', files: ['a.yaml'], version: 'v1', cmds: ['kubectl apply -f a.yaml'], env: { A: 'b' } }],
    launch: { app_names: ['nginx'] },
    env: { K: 'v' },
  }],
  ['image-extension', 'nulls', { schemaVersion: 'v1alpha1', applications: null, launch: null, env: null }],
  ['image-extension', 'missing version', { type: 'kube-installer' }],
  ['image-extension', 'wrong version', { schemaVersion: 'v2' }],
  ['image-extension', 'bad type', { schemaVersion: 'v1alpha1', type: 'cluster' }],
  ['image-extension', 'bad app name', { schemaVersion: 'v1alpha1', applications: [{ name: '../etc' }] }],
  ['image-extension', 'bad env value', { schemaVersion: 'v1alpha1', env: { A: 1 } }],
  ['image-extension', 'not an object', 'text'],
  ['container-images', 'list', [{ image: 'docker.io/library/nginx:1.25', appName: 'nginx', platform: { os: 'linux', architecture: 'amd64' } }]],
  ['container-images', 'empty', []],
  ['container-images', 'no image', [{ appName: 'x' }]],
  ['container-images', 'bad platform', [{ image: 'a', platform: { architecture: 1, os: 'linux' } }]],
  ['metadata', 'full', { version: 'v1.19.9', arch: 'amd64', variant: 'v8', kubeVersion: 'v1.19.9' }],
  ['metadata', 'empty', {}],
  ['metadata', 'bad version', { version: 5 }],
  ['metadata', 'bad arch', { arch: 5, NydusFlag: 'yes' }],
];

describe('precompiled sealer validators', () => {
  let dir: string;
  let compiled: Record<SealerSchemaKind, Validate>;
  beforeAll(() => {
    // Inside the project, so the generated code resolves ajv's runtime from node_modules as in dist/.
    const parent = join(__dirname, '..', '..', '.tmp');
    mkdirSync(parent, { recursive: true });
    dir = mkdtempSync(join(parent, 'sealer-schemas-'));
    const file = join(dir, 'validators.js');
    writeFileSync(file, standalone(buildSealerAjv({ code: { source: true, lines: false } }), sealerSchemaIds()));
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    compiled = require(file);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('every kind is exported', () => {
    expect(Object.keys(compiled).sort()).toEqual(['container-images', 'image-extension', 'metadata']);
  });

  test.each(cases)('%s: %s', (kind, _name, doc) => {
    const runtime = sealerValidator(kind) as Validate;
    const verdict = runtime(doc);
    const runtimeIssues = issuesFromAjv(runtime.errors);
    expect(compiled[kind](doc)).toBe(verdict);
    expect(issuesFromAjv(compiled[kind].errors)).toEqual(runtimeIssues);
  });

  test('the cases include both verdicts for every kind', () => {
    for (const kind of ['image-extension', 'container-images', 'metadata'] as const) {
      const verdicts = cases.filter(([k]) => k === kind).map(([, , doc]) => sealerValidator(kind)(doc));
      expect(new Set(verdicts)).toEqual(new Set([true, false]));
    }
  });
});
