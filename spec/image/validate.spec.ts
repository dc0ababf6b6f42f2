import { Volume, createFsFromVolume } from 'memfs';
import type { FileSystem } from '../../lib/fs';
import { Image, ImageIndex } from '../../lib/image/image';
import { validate, assertValid } from '../../lib/image/validate';
import { Layer } from '../../lib/layer/layer';
import { OciLayout, readOciLayout, writeOciLayout } from '../../lib/formats/layout';

const mem = () => createFsFromVolume(new Volume()) as unknown as FileSystem;
const image = () =>
  Image.empty({ os: 'linux', architecture: 'amd64' })
    .withLayer(Layer.empty().withFile('etc/a', 'a'), { created_by: 'COPY a etc/' })
    .withLayer(Layer.empty().withFile('etc/b', 'b').withWhiteout('etc/a'), { created_by: 'COPY b etc/' });

describe('validate', () => {
  test('a good image (written and read back) passes, index included', async () => {
    const fs = mem();
    await writeOciLayout(ImageIndex.of([image(), image().withPlatform({ os: 'linux', architecture: 'arm64' })]), '/l', { fs, tag: 't' });
    const report = await assertValid(await readOciLayout('/l', { fs, ref: 't' }));
    expect(report).toMatchObject({ ok: true, images: 2, layers: 4 });
  });

  test('an unwritten image passes too', async () => {
    expect((await validate(image())).ok).toBe(true);
  });

  test('a corrupted blob and a broken history are both reported', async () => {
    const fs = mem();
    const desc = await writeOciLayout(image().withHistory({ created_by: 'LABEL x' }), '/l', { fs, tag: 't' });
    expect(desc).toBeDefined();
    const layout = await OciLayout.open(fs, '/l');
    const img = (await layout.load(await layout.resolve('t'))) as Image;
    const l0 = img.layers[0];
    if (l0.kind !== 'blob') throw new Error('expected a blob layer');
    const p = layout.blobPath(l0.descriptor.digest);
    const bytes = await fs.promises.readFile(p);
    bytes[bytes.length - 10] ^= 1;
    await fs.promises.writeFile(p, bytes);
    const broken = img.withConfig((c) => ({ history: [...(c.history ?? []), { created_by: 'phantom layer' }] }));
    const report = await validate(broken);
    expect(report.ok).toBe(false);
    expect(report.issues.some((i) => i.field === '/layers/0')).toBe(true);
    expect(report.issues.some((i) => i.field === '/history')).toBe(true);
    await expect(assertValid(broken)).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
  });
});
