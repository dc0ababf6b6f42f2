/**
 * Kubefiles from sealer's e2e tests, its parser tests and docs, sealerio/basefs and
 * sealerio/applications (spec/build/fixtures/sealer-kubefiles/<name>/context), built with
 * `cloudrootfs build --build-mode lite`, must give what sealer v0.11 gives: the image extension,
 * the labels and the rootfs layout in `expected.json`, each value derived from sealer's source
 * (its `why` names the file and line), not from our own output.
 *
 * Two documented differences are applied to sealer's values before comparing
 * (docs/kubefile.md, "Where we differ from sealer"): a directory source's files are recorded
 * without the leading `/` sealer leaves (`/a.yaml` → `a.yaml`: the same file once sealer joins it
 * to the app root), and the two version labels are not compared (`io.sealer.version` names the
 * builder; buildah's `io.buildah.version` is not ours to claim).
 */
import { promises as fsp, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { diskFs } from '../../lib/fs';
import { SEALER_CONTAINER_IMAGES_ANNOTATION, SEALER_LABELS, getImageExtension, type ImageExtension } from '../../lib/sealer';
import { ImageStore } from '../../lib/store';
import { runCaptured } from '../support/cli';
import { tempDir } from '../registry/images';
import { listing } from './helpers';

interface Expected {
  source: string;
  platform: string;
  imageType?: string;
  extension: Pick<ImageExtension, 'type' | 'schemaVersion' | 'applications' | 'launch' | 'env'>;
  labels: Record<string, string>;
  layers: number;
  rootfs: string[];
  types?: Record<string, 'file' | 'directory'>;
  contents?: Record<string, string>;
  config?: Record<string, unknown>;
  configEnv?: Record<string, string>;
  why: Record<string, string>;
}

const FIXTURES = path.join(__dirname, 'fixtures', 'sealer-kubefiles');
const names = readdirSync(FIXTURES).sort();

/** sealer's `/a.yaml` is `a.yaml` to us (see the module comment). */
function asRecorded(ext: Expected['extension']): Expected['extension'] {
  return { ...ext, applications: ext.applications.map((a) => ({ ...a, files: a.files.map((f) => f.replace(/^\/+/, '')) })) };
}

describe('Kubefiles built with --build-mode lite give what sealer gives', () => {
  let work: string;
  beforeAll(async () => {
    work = await tempDir('sealer-kubefiles');
  });
  afterAll(async () => {
    if (work) await fsp.rm(work, { recursive: true, force: true });
  });

  test('the fixture set is varied enough to mean something', () => {
    expect(names.length).toBeGreaterThanOrEqual(10);
  });

  test.each(names)('%s', async (name) => {
    const expected = JSON.parse(await fsp.readFile(path.join(FIXTURES, name, 'expected.json'), 'utf8')) as Expected;
    const env = { HOME: path.join(work, 'home'), CLOUDROOTFS_STORE: path.join(work, 'store'), REGISTRY_AUTH_FILE: path.join(work, 'auth.json') };
    const tag = `fixture-${name}:v1`;
    const argv = ['build', '--build-mode', 'lite', '--platform', expected.platform, '-t', tag, '-q', path.join(FIXTURES, name, 'context')];
    if (expected.imageType) argv.push('--type', expected.imageType);
    const built = await runCaptured(diskFs, argv, env);
    expect(built.err.replace(/^warning: .*\n/gm, '')).toBe('');
    expect(built.code).toBe(0);

    const store = await ImageStore.open({ fs: diskFs, root: env.CLOUDROOTFS_STORE });
    const image = await store.loadImage(tag);
    const ext = getImageExtension(image)!;
    expect({ type: ext.type, schemaVersion: ext.schemaVersion, applications: ext.applications, launch: ext.launch, env: ext.env }).toEqual(asRecorded(expected.extension));

    const labels = { ...image.labels };
    expect(labels[SEALER_LABELS.version]).toEqual(expect.any(String));
    delete labels[SEALER_LABELS.version];
    expect(labels).toEqual(expected.labels);

    // Lite mode: nothing collected, no registry/ (build.go#L194-L204).
    expect(image.annotations[SEALER_CONTAINER_IMAGES_ANNOTATION]).toBeUndefined();
    expect(image.layers).toHaveLength(expected.layers);
    expect(image.platform).toMatchObject({ os: expected.platform.split('/')[0], architecture: expected.platform.split('/')[1] });

    const rootfs = await image.flatten();
    expect(listing(rootfs).sort()).toEqual([...expected.rootfs].sort());
    for (const [p, type] of Object.entries(expected.types ?? {})) expect(rootfs.get(p)?.type).toBe(type);
    for (const [p, text] of Object.entries(expected.contents ?? {})) expect(await rootfs.readText(p)).toBe(text);
    for (const [k, v] of Object.entries(expected.config ?? {})) expect((image.config.config as Record<string, unknown> | undefined)?.[k] ?? null).toEqual(v);
    if (expected.configEnv) expect(image.env).toMatchObject(expected.configEnv);
    // Every entry is root's, as buildah's COPY makes them without --chown (add.go#L286-L291).
    for (const { entry } of rootfs.walk()) expect([entry.uid, entry.gid]).toEqual([0, 0]);
  });
});
