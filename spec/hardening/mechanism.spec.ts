/**
 * The shared pieces the hostile corpora and the crash test rest on, each on its own: sweeping what
 * dead writers left, replacing a tree only once the new one is complete, the document reader's
 * bounds on shared subtrees, and an index whose child lost entries.
 */
import { spawnSync } from 'node:child_process';
import * as nodeFs from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { DocumentGraph } from '../../lib/formats/blob-source';
import { OciLayout, writeOciLayout } from '../../lib/formats/layout';
import { diskFs } from '../../lib/fs';
import { ImageIndex } from '../../lib/image/image';
import { fileEntry } from '../../lib/entry';
import { writeRootfsToDirectory } from '../../lib/rootfs/io';
import { Rootfs } from '../../lib/rootfs/rootfs';
import { isAbandonedTemp, signedTempName, sweepAbandonedTemps, writeFileAtomic } from '../../lib/util/atomic';
import { scratchDir } from '../support/umoci';
import { MT, indexBlob, ociArchiveRecords, ociImage } from './archives';
import { expectCode, outcome } from './support';

/** A pid that existed and is gone. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

describe('sweeping what dead writers left', () => {
  let dir: string;
  beforeEach(() => {
    dir = scratchDir('crfs-sweep-');
  });
  afterEach(() => nodeFs.rmSync(dir, { recursive: true, force: true }));

  test('temporary files and trees of dead pids go; live ones, young or not ours, stay', async () => {
    const dead = deadPid();
    const names = {
      deadFile: signedTempName('.tmp-out.tar', dead),
      deadTree: signedTempName('.tmp-out', dead),
      live: signedTempName('.tmp-out.tar'),
      parent: signedTempName('.tmp-out.tar', process.ppid),
      notOurs: `.tmp-something-else`,
      user: `out.tar`,
      // Named like a temporary file of a dead writer, but without our signature: the user's.
      userLookalike: `.tmp-out.tar-${dead}-0123456789ab`,
      userLookalikeTree: `.tmp-out-${dead}-ba9876543210`,
      userForgedShape: `.tmp-out.tar-${dead}-0123456789ab-01234567`,
    };
    nodeFs.writeFileSync(join(dir, names.deadFile), 'x');
    // A crashed export leaves read-only directories behind: still removed.
    nodeFs.mkdirSync(join(dir, names.deadTree, 'ro', 'deep'), { recursive: true });
    nodeFs.writeFileSync(join(dir, names.deadTree, 'ro', 'deep', 'f'), 'x');
    nodeFs.chmodSync(join(dir, names.deadTree, 'ro'), 0o555);
    for (const n of [names.live, names.parent, names.notOurs, names.user, names.userLookalike, names.userForgedShape]) nodeFs.writeFileSync(join(dir, n), 'x');
    nodeFs.mkdirSync(join(dir, names.userLookalikeTree, 'd'), { recursive: true });
    // Old enough for the age rule, were they ours.
    const old = new Date(Date.now() - 48 * 3600_000);
    for (const n of [names.userLookalike, names.userForgedShape]) nodeFs.utimesSync(join(dir, n), old, old);

    expect(await sweepAbandonedTemps(diskFs, dir)).toBe(2);
    const kept = [names.live, names.parent, names.notOurs, names.user, names.userLookalike, names.userLookalikeTree, names.userForgedShape];
    expect(nodeFs.readdirSync(dir).sort()).toEqual(kept.sort());
  });

  test('once per directory per process: a later leftover waits for the next run (or gc)', async () => {
    const dead = deadPid();
    const leftover = signedTempName('.tmp-a', dead);
    await writeFileAtomic(diskFs, join(dir, 'a'), 'a');
    nodeFs.writeFileSync(join(dir, leftover), 'x');
    await writeFileAtomic(diskFs, join(dir, 'a'), 'b');
    expect(nodeFs.readdirSync(dir).sort()).toEqual([leftover, 'a'].sort());
  });

  test('the age rule: a day-old temporary file is abandoned whoever wrote it (if it is ours)', () => {
    const name = signedTempName('.tmp-x', process.ppid);
    expect(isAbandonedTemp(name, Date.now())).toBe(false);
    expect(isAbandonedTemp(name, Date.now() - 25 * 3600_000)).toBe(true);
    expect(isAbandonedTemp('.tmp-no-pid', 0)).toBe(false);
    // A user's file shaped like an old unsigned name: never, however old — except inside the
    // store's own directories, where earlier versions' leftovers are swept.
    expect(isAbandonedTemp(`.tmp-x-${process.ppid}-0123456789ab`, 0)).toBe(false);
    expect(isAbandonedTemp(`.tmp-x-${process.ppid}-0123456789ab`, 0, Date.now(), { ownDirectory: true })).toBe(true);
  });
});

describe('export --force keeps the old tree until the new one is complete', () => {
  test('a write that fails half-way leaves the old tree as it was, and nothing else', async () => {
    const dir = scratchDir('crfs-swap-');
    try {
      const out = join(dir, 'out');
      await writeRootfsToDirectory(Rootfs.empty().withFile('old', 'old'), out, { fs: diskFs });
      const failing = fileEntry({ size: 10, source: 'test', open: () => Readable.from((async function* () { yield Buffer.from('12345'); throw new Error('disk gone'); })()) }, { mode: 0o644 });
      const next = Rootfs.empty().withFile('a', 'a').with('b', failing);
      await expect(writeRootfsToDirectory(next, out, { fs: diskFs, overwrite: true })).rejects.toThrow('disk gone');
      expect(nodeFs.readdirSync(dir)).toEqual(['out']);
      expect(nodeFs.readdirSync(out)).toEqual(['old']);
      await writeRootfsToDirectory(Rootfs.empty().withFile('new', 'new'), out, { fs: diskFs, overwrite: true });
      expect(nodeFs.readdirSync(dir)).toEqual(['out']);
      expect(nodeFs.readdirSync(out)).toEqual(['new']);
    } finally {
      nodeFs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the document reader', () => {
  let dir: string;
  beforeEach(() => {
    dir = scratchDir('crfs-graph-');
  });
  afterEach(() => nodeFs.rmSync(dir, { recursive: true, force: true }));

  /** A layout made of the records of an oci-archive (the same members, as files). */
  function layoutOf(records: ReturnType<typeof ociArchiveRecords>): string {
    const layout = join(dir, 'layout');
    for (const r of records) {
      nodeFs.mkdirSync(join(layout, String(r.name), '..'), { recursive: true });
      nodeFs.writeFileSync(join(layout, String(r.name)), r.data ?? '');
    }
    return layout;
  }

  test('a subtree read shallow and listed again deeper is held to the nesting bound', async () => {
    const image = ociImage();
    // shared: 3 levels of index above the image; top lists it directly and under 5 more levels.
    let shared = indexBlob([image.entry]);
    const records = [...image.blobs, shared.record];
    for (let i = 0; i < 2; i++) {
      shared = indexBlob([shared.descriptor]);
      records.push(shared.record);
    }
    let deep = indexBlob([shared.descriptor]);
    records.push(deep.record);
    for (let i = 0; i < 4; i++) {
      deep = indexBlob([deep.descriptor]);
      records.push(deep.record);
    }
    const top = indexBlob([shared.descriptor, deep.descriptor]);
    records.push(top.record);
    const layout = await OciLayout.open(diskFs, layoutOf([...ociArchiveRecords(image).slice(0, 1), ...records]));
    // shared sits 1 below top (height 3 → depth 4 fine); under deep it sits 6 below (height 3 → 9 > 8).
    expectCode(await outcome(() => new DocumentGraph(layout).load(top.descriptor)), 'LIMIT_EXCEEDED', 'maxNesting counts a shared subtree where it is deepest');
    expect(await new DocumentGraph(layout, { maxNesting: 9 }).load(top.descriptor)).toBeInstanceOf(ImageIndex);
  });

  test('an index whose child index lost an attestation is written whole (both re-serialized)', async () => {
    const image = ociImage();
    const attestation = { mediaType: MT.manifest, digest: image.descriptor.digest, size: image.descriptor.size, platform: { os: 'unknown', architecture: 'unknown' } };
    const inner = indexBlob([image.entry, attestation]);
    const outer = indexBlob([inner.descriptor]);
    const layout = await OciLayout.open(diskFs, layoutOf([...ociArchiveRecords(image).slice(0, 1), ...image.blobs, inner.record, outer.record]));
    const target = (await layout.load(outer.descriptor)) as ImageIndex;
    expect(target.stored).toBeUndefined();
    const copy = join(dir, 'copy');
    const written = await writeOciLayout(target, copy, { fs: diskFs, tag: 'v1' });
    expect(written.digest).not.toBe(outer.descriptor.digest);
    // Every blob the copy names is there: it reads back whole.
    const back = (await (await OciLayout.open(diskFs, copy)).load(written)) as ImageIndex;
    expect(back.images()).toHaveLength(1);
    expect((await back.images()[0].image.flatten()).get('etc/hostname')).toBeDefined();
  });
});
