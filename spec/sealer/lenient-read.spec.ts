/**
 * An image whose extension is as minimal as sealer's own tests write it inspects and lints: we
 * read what sealer reads, as sealer reads it (Go's json.Unmarshal into its structs).
 */
import type { FileSystem } from '../../lib/fs';
import { Image } from '../../lib/image/image';
import { Layer } from '../../lib/layer/layer';
import { SEALER_EXTENSION_ANNOTATION } from '../../lib/sealer';
import { ImageStore } from '../../lib/store';
import { memfs } from '../formats/archive-support';
import { runCaptured } from '../support/cli';

// https://github.com/sealerio/sealer/blob/v0.11.0/pkg/define/image/v1/sealer_image_test.go#L99
const MINIMAL =
  '{"type":"app-installer","applications":[{"name":"cnstack-acos-0.0.5-beta","type":"shell","launchfiles":["cnstack-acos-0.0.5-beta-install.sh"],"version":"v1"}],' +
  '"launch":{"cmds":["bash application/apps/cnstack-acos-0.0.5-beta/cnstack-acos-0.0.5-beta-install.sh"]}}';

async function seeded(extension: string, files: Record<string, string>): Promise<FileSystem> {
  const fs = memfs();
  const store = await ImageStore.open({ fs, root: '/store' });
  let layer = Layer.empty();
  for (const [path, text] of Object.entries(files)) layer = layer.withFile(path, text);
  await store.put(Image.empty({ os: 'linux', architecture: 'amd64' }).withLayer(layer).withAnnotation(SEALER_EXTENSION_ANNOTATION, extension), 'app:v1');
  return fs;
}

const cli = (fs: FileSystem, argv: string[]) => runCaptured(fs, argv, { CLOUDROOTFS_STORE: '/store', HOME: '/home/u' });

describe('reading sealer\'s metadata leniently', () => {
  test('inspect and lint accept the extension sealer\'s own tests write', async () => {
    const fs = await seeded(MINIMAL, { 'application/apps/cnstack-acos-0.0.5-beta/cnstack-acos-0.0.5-beta-install.sh': 'echo hi\n' });
    const inspected = await cli(fs, ['inspect', 'app:v1']);
    expect(inspected.err).toBe('');
    expect(inspected.code).toBe(0);
    const spec = JSON.parse(inspected.out);
    // As sealer decodes it (sealer_image.go#L124-L160): what is missing is Go's zero value.
    expect(spec.imageExtension).toMatchObject({ type: 'app-installer', schemaVersion: '', buildClient: { sealerVersion: '', buildahVersion: '' } });
    expect(spec.imageExtension.applications).toEqual([{ name: 'cnstack-acos-0.0.5-beta', type: 'shell', files: [], version: 'v1' }]);
    const lint = await cli(fs, ['lint', 'app:v1', '--json']);
    const report = JSON.parse(lint.out);
    expect(report.issues.filter((i: { severity: string }) => i.severity === 'error')).toEqual([]);
    expect(lint.code).toBe(0);
  });

  test('lint joins app files as sealer does (`/a.yaml` is `a.yaml`) and names what sealer would miss', async () => {
    // sealer records a directory source's files as `/a.yaml` (utils.go#L242) and joins them with
    // filepath.Join (application.go#L80), so they are found.
    const ext = JSON.stringify({ applications: [{ name: 'web', type: 'kube', files: ['/a.yaml', 'gone.yaml'] }, { name: '../x', type: 'kube' }] });
    const fs = await seeded(ext, { 'application/apps/web/a.yaml': 'kind: A\n' });
    const report = JSON.parse((await cli(fs, ['lint', 'app:v1', '--json'])).out);
    expect(report.issues.filter((i: { severity: string }) => i.severity === 'error').map((i: { code: string; field: string }) => `${i.code} ${i.field}`)).toEqual([
      'APP_FILE_MISSING /applications/0/files/1',
      'APP_NAME_INVALID /applications/1/name',
    ]);
  });

  test('what sealer cannot read fails inspect, naming the field', async () => {
    const fs = await seeded('{"type":1}', { a: 'a' });
    const inspected = await cli(fs, ['inspect', 'app:v1']);
    expect(inspected.code).toBe(1);
    expect(inspected.err).toMatch(/\/type cannot be read as a Go string/);
    expect(inspected.err).toMatch(/\[SCHEMA_VALIDATION\]/);
  });
});
