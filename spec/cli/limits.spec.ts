/**
 * `--limit NAME=N` and $CLOUDROOTFS_LIMITS: the bounds on untrusted input from the command line
 * reach the readers (load, ls of an archive, export from the store), later settings win, and bad
 * settings are usage errors.
 */
import { CLI_LIMITS, parseLimits } from '../../lib/cli/limits';
import { writeOciArchive } from '../../lib/formats/oci-archive';
import type { FileSystem } from '../../lib/fs';
import { ImageStore } from '../../lib/store';
import { cloudImage, memfs } from '../formats/archive-support';
import { runCaptured } from '../support/cli';

const cli = (fs: FileSystem, argv: string[], env: Record<string, string> = {}) =>
  runCaptured(fs, argv, { CLOUDROOTFS_STORE: '/store', HOME: '/home/u', ...env });

/** An archive of the sample CloudImage: 3 layers, the first with several entries. */
async function withArchive(): Promise<FileSystem> {
  const fs = memfs();
  await writeOciArchive(await cloudImage(), '/in/image.tar', { fs, name: 'docker.io/library/kubernetes:v1.19.9' });
  return fs;
}

describe('parseLimits', () => {
  test('each name sets its bound; units; later settings win', () => {
    expect(parseLimits(['entries=10', 'path-bytes=2K', 'layer-bytes=3M', 'metadata-bytes=1G'])).toEqual({
      layerLimits: { maxEntries: 10, maxPathBytes: 2048, maxUncompressedBytes: 3 * 1024 ** 2, maxMetadataBytes: 1024 ** 3 },
    });
    expect(parseLimits(['document-bytes=4MiB', 'nesting=2', 'index-entries=5', 'layers=7', 'members=9', 'header-bytes=512', 'archive-bytes=1g'])).toEqual({
      maxDocumentBytes: 4 * 1024 ** 2,
      maxNesting: 2,
      maxIndexEntries: 5,
      maxLayers: 7,
      maxMembers: 9,
      maxHeaderBytes: 512,
      maxUncompressedBytes: 1024 ** 3,
    });
    expect(parseLimits(['entries=10', 'entries=20'])).toEqual({ layerLimits: { maxEntries: 20 } });
    expect(Object.keys(CLI_LIMITS)).toHaveLength(11);
  });

  test.each([['bogus=1'], ['entries'], ['entries=0'], ['entries=-1'], ['entries=1.5'], ['entries=ten'], ['entries=9T'], ['entries=99999999999999999999']])(
    '%s is a usage error',
    (setting) => {
      expect(() => parseLimits([setting])).toThrow(expect.objectContaining({ code: 'USAGE' }));
    },
  );
});

describe('the CLI applies them', () => {
  test('load --limit entries=N: LIMIT_EXCEEDED below the layer size, the store untouched; enough passes', async () => {
    const fs = await withArchive();
    const refused = await cli(fs, ['load', '-q', '--limit', 'entries=2', '/in/image.tar']);
    expect(refused).toMatchObject({ code: 1, err: expect.stringContaining('[LIMIT_EXCEEDED]') });
    expect((await (await ImageStore.open({ fs, root: '/store' })).list()).length).toBe(0);
    const loaded = await cli(fs, ['load', '-q', '--limit', 'entries=1000', '/in/image.tar']);
    expect(loaded).toMatchObject({ code: 0, out: expect.stringContaining('kubernetes:v1.19.9') });
  });

  test('$CLOUDROOTFS_LIMITS sets them too; a --limit given later wins', async () => {
    const fs = await withArchive();
    const env = { CLOUDROOTFS_LIMITS: 'layers=2, document-bytes=1M' };
    expect(await cli(fs, ['ls', 'oci-archive:/in/image.tar'], env)).toMatchObject({ code: 1, err: expect.stringContaining('[LIMIT_EXCEEDED]') });
    expect(await cli(fs, ['ls', '--limit', 'layers=3', 'oci-archive:/in/image.tar'], env)).toMatchObject({ code: 0 });
  });

  test('reads from the store take them: export with a path bound smaller than a path of the image', async () => {
    const fs = await withArchive();
    expect(await cli(fs, ['load', '-q', '/in/image.tar'])).toMatchObject({ code: 0 });
    const refused = await cli(fs, ['export', '--limit', 'path-bytes=8', 'kubernetes:v1.19.9', '/out']);
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/\[(CORRUPT_ARCHIVE|LIMIT_EXCEEDED)\]/);
    expect(await fs.promises.readdir('/').then((d) => d.includes('out'))).toBe(false);
    expect(await cli(fs, ['export', '--limit', 'path-bytes=4096', 'kubernetes:v1.19.9', '/out'])).toMatchObject({ code: 0 });
  });

  test('commands without --limit (images, rmi) ignore $CLOUDROOTFS_LIMITS; the own index of the store is never bounded by it', async () => {
    const fs = await withArchive();
    expect(await cli(fs, ['load', '-q', '/in/image.tar'])).toMatchObject({ code: 0 });
    expect(await cli(fs, ['images'], { CLOUDROOTFS_LIMITS: 'entries=lots' })).toMatchObject({ code: 0, out: expect.stringContaining('kubernetes') });
    // A document bound far below the store's index.json: reads of the store still work.
    expect(await cli(fs, ['ls', '--limit', 'document-bytes=1', 'kubernetes:v1.19.9'])).toMatchObject({ code: 0 });
    expect(await cli(fs, ['rmi', 'kubernetes:v1.19.9'], { CLOUDROOTFS_LIMITS: 'document-bytes=1' })).toMatchObject({ code: 0 });
  });

  test('bad settings are usage errors (exit 2), from flags or the environment', async () => {
    const fs = await withArchive();
    expect(await cli(fs, ['ls', '--limit', 'nope=1', 'oci-archive:/in/image.tar'])).toMatchObject({ code: 2, err: expect.stringContaining('unknown limit') });
    expect(await cli(fs, ['ls', 'oci-archive:/in/image.tar'], { CLOUDROOTFS_LIMITS: 'entries=lots' })).toMatchObject({ code: 2 });
  });
});
