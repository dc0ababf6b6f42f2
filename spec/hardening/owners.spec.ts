/**
 * Owner ids above 2^32-1 (Linux's uid_t and gid_t are 32 bits) are refused where they are read —
 * a layer's PAX record, a COPY --chown, a builder or API call — instead of passing load, ls and
 * build and killing export (a raw RangeError from chown, or a Go extractor truncating the id to
 * another user).
 */
import * as nodeFs from 'node:fs';
import { join } from 'node:path';
import { buildImage } from '../../lib/build/build-image';
import { ImageBuilder } from '../../lib/build/builder';
import { CloudRootfsError, InvalidAttributeError } from '../../lib/errors';
import { MAX_OWNER_ID, directoryEntry, fileEntry, withAttributes } from '../../lib/entry';
import { diskFs } from '../../lib/fs';
import { Image } from '../../lib/image/image';
import { Layer } from '../../lib/layer/layer';
import { ImageStore } from '../../lib/store';
import { Rootfs } from '../../lib/rootfs/rootfs';
import { memfs, writeTree } from '../build/helpers';
import { scratchDir } from '../support/umoci';
import { ociArchiveRecords, ociImage } from './archives';
import { file, pax, rawLayer, tar } from './corpus';
import { cli, expectCode, outcome, snapshot } from './support';

function archiveWithOwners(records: Record<string, string>): Buffer {
  const layer = rawLayer(tar([pax(records), file('etc/owned', 'x')]), true);
  return tar(ociArchiveRecords(ociImage({ layers: [layer] })));
}

describe('owner ids in layers', () => {
  let dir: string;
  beforeEach(() => {
    dir = scratchDir('crfs-owners-');
  });
  afterEach(() => nodeFs.rmSync(dir, { recursive: true, force: true }));

  for (const [what, records] of [
    ['uid 99999999999', { uid: '99999999999' }],
    ['gid 2^32', { gid: String(2 ** 32) }],
    ['uid 2^53', { uid: String(2 ** 53) }],
  ] as const) {
    test(`a PAX ${what}: CORRUPT_ARCHIVE from load and ls, the store untouched`, async () => {
      const archive = join(dir, 'a.tar');
      nodeFs.writeFileSync(archive, archiveWithOwners(records));
      const store = join(dir, 'store');
      await (await ImageStore.open({ fs: diskFs, root: store })).put(await loadable(), 'kept:v1');
      const before = snapshot(store);
      for (const argv of [['load', archive], ['ls', `oci-archive:${archive}`], ['export', `oci-archive:${archive}`, join(dir, 'out')]]) {
        const r = await cli([...argv, '--store', store], diskFs);
        expect([argv[0], r.code, r.stderr]).toEqual([argv[0], 1, expect.stringMatching(/(uid|gid) \d+: owners are whole numbers from 0 to 4294967295.*\[CORRUPT_ARCHIVE\]\n$/)]);
      }
      expect(snapshot(store)).toEqual(before);
      expect(nodeFs.existsSync(join(dir, 'out'))).toBe(false);
    });
  }

  test('the largest id, 2^32-1, is read as it is', async () => {
    const archive = join(dir, 'max.tar');
    nodeFs.writeFileSync(archive, archiveWithOwners({ uid: String(MAX_OWNER_ID), gid: String(MAX_OWNER_ID) }));
    const r = await cli(['ls', `oci-archive:${archive}`, 'etc/owned', '--store', join(dir, 'store')], diskFs);
    expect(r.stdout).toContain(`${MAX_OWNER_ID}:${MAX_OWNER_ID}`);
  });
});

async function loadable(): Promise<Image> {
  return Image.empty({ os: 'linux', architecture: 'amd64' }).withLayer(Layer.fromRootfs(Rootfs.empty().withFile('a', 'a')));
}

describe('owner ids from builds and the API', () => {
  test('COPY --chown above 2^32-1: a usage error before any step runs (number, group, or a name the image maps to one)', async () => {
    const fs = memfs();
    const ran: string[] = [];
    for (const chown of ['99999999999', '0:4294967296', '4294967296:0']) {
      await writeTree(fs, '/ctx', { Kubefile: `FROM scratch\nCOPY f .\nCOPY --chown=${chown} f g\n`, f: 'x' });
      const result = await outcome(() => buildImage({ fs, context: '/ctx', platforms: ['linux/amd64'], cache: false, onProgress: (e) => ran.push(String((e as { instruction?: string }).instruction)) }));
      expectCode(result, 'USAGE', `--chown=${chown}`);
      expect((result as Error).message).toContain('4294967295');
    }
    expect(ran).toEqual([]);
    // A name the image's etc/passwd maps to a too-large id: refused when the step runs.
    await writeTree(fs, '/ctx2', { Kubefile: 'FROM scratch\nCOPY passwd etc/passwd\nCOPY --chown=big f .\n', passwd: 'big:x:99999999999:0::/:/bin/sh\n', f: 'x' });
    const named = await outcome(() => buildImage({ fs, context: '/ctx2', platforms: ['linux/amd64'], cache: false }));
    expectCode(named, 'BUILD_FAILED', 'the step fails');
    expect((named as CloudRootfsError).details.causeCode).toBe('USAGE');
  });

  test('the CLI: build with such a --chown fails with exit 2 and nothing stored', async () => {
    const dir = scratchDir('crfs-owners-cli-');
    try {
      nodeFs.writeFileSync(join(dir, 'Kubefile'), 'FROM scratch\nCOPY --chown=99999999999 Kubefile .\n');
      const r = await cli(['build', '-t', 'x:v1', '--store', join(dir, 'store'), dir], diskFs);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/\[USAGE\]\n$/);
      expect(r.stderr).not.toContain('STEP');
    } finally {
      nodeFs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('builder calls with such ids throw at once, typed', () => {
    const b = ImageBuilder.from('scratch', { fs: memfs() });
    expect(() => b.copy('a', 'b', { chown: { uid: 2 ** 32, gid: 0 } })).toThrow(expect.objectContaining({ code: 'USAGE' }));
    expect(() => b.file('f', 'x', { uid: 2 ** 32 })).toThrow(InvalidAttributeError);
    expect(() => b.directory('d', { gid: 99999999999 })).toThrow(expect.objectContaining({ code: 'INVALID_ATTRIBUTE' }));
    expect(() => b.symlink('l', 't', { uid: -1 })).toThrow(expect.objectContaining({ code: 'INVALID_ATTRIBUTE' }));
  });

  test('the entry model refuses them, whoever makes the entry', () => {
    expect(() => fileEntry('x', { uid: 2 ** 32 })).toThrow(expect.objectContaining({ code: 'INVALID_ATTRIBUTE', details: { attribute: 'uid', value: '4294967296' } }));
    expect(() => directoryEntry({ gid: 1.5 })).toThrow(InvalidAttributeError);
    expect(() => withAttributes(fileEntry('x'), { gid: 2 ** 40 })).toThrow(InvalidAttributeError);
    expect(() => Rootfs.empty().withFile('a', 'x', { uid: Number.NaN })).toThrow(InvalidAttributeError);
    expect(() => fileEntry('x', { mode: 0o10000 })).toThrow(expect.objectContaining({ code: 'INVALID_ATTRIBUTE' }));
    expect(fileEntry('x', { uid: MAX_OWNER_ID, gid: MAX_OWNER_ID })).toMatchObject({ uid: 4294967295, gid: 4294967295 });
  });
});
