/**
 * `load` of hostile archives (spec/hardening/archives.ts): each case is loaded through the API
 * (with the case's limits) and with `cloudrootfs load` (the defaults) into a store that already
 * holds an image. A case must end with its typed error — and then the whole sandbox, store
 * included (every file, its bytes and index.json), is exactly as before — or with its documented
 * result, the store still readable. The archive is also read in place (`cloudrootfs ls`). Either
 * way nothing outside the store changes, no temporary file or lock stays, and no descriptor leaks.
 */
import { execFileSync } from 'node:child_process';
import * as nodeFs from 'node:fs';
import { join } from 'node:path';
import { CloudRootfsError } from '../../lib/errors';
import { diskFs } from '../../lib/fs';
import { validate } from '../../lib/image/validate';
import { loadArchiveIntoStore, type LoadArchiveResult } from '../../lib/store/load';
import { ImageStore } from '../../lib/store/store';
import { ARCHIVE_CASES, ArchiveCase, LoadExpectation, dockerArchiveRecords, ociArchiveRecords, ociImage } from './archives';
import { tar } from './corpus';
import { cli, expectCode, expectNoFdLeak, leftovers, openFds, outcome, sandbox, snapshot } from './support';

const FUZZ = process.env.FUZZ_RUNS !== undefined;

/** A store holding `pre/existing:v1` (so "unchanged" means something). */
async function storeWithImage(root: string, sb: string): Promise<ImageStore> {
  const store = await ImageStore.open({ fs: diskFs, root });
  const file = join(sb, 'pre.tar');
  nodeFs.writeFileSync(file, tar(dockerArchiveRecords({ repoTags: ['pre/existing:v1'] })));
  await loadArchiveIntoStore(store, file, { fs: diskFs });
  nodeFs.rmSync(file);
  return store;
}

/** The store reads: every entry lists, loads and validates. */
async function expectStoreReads(root: string): Promise<void> {
  const store = await ImageStore.open({ fs: diskFs, root });
  for (const entry of await store.list()) {
    const report = await validate(await store.loadTarget(entry.reference ?? entry.digest));
    expect(report.issues).toEqual([]);
  }
}

function describeExpectation(e: LoadExpectation): string {
  return 'code' in e ? `${e.code}: ${e.why}` : `safe: ${e.safe}`;
}

async function runCase(c: ArchiveCase): Promise<void> {
  const sb = sandbox('crfs-load-');
  try {
    const root = join(sb, 'store');
    const store = await storeWithImage(root, sb);
    const file = join(sb, 'in', 'archive.tar');
    nodeFs.mkdirSync(join(sb, 'in'));
    nodeFs.writeFileSync(file, c.build(sb));
    const before = snapshot(sb);
    const outside = snapshot(sb, [root]);
    const fdsBefore = openFds();

    // 1. The API, with the case's limits.
    const result = await outcome(() => loadArchiveIntoStore(store, file, { fs: diskFs, ...(c.limits ? { limits: c.limits } : {}) }));
    await judge(result, c.expect, store, sb, before);

    // 2. The CLI, with the defaults.
    const withDefaults = c.expectWithDefaults ?? c.expect;
    const loaded = await cli(['load', file, '--store', root, '-q'], diskFs);
    if ('code' in withDefaults) {
      expect({ exit: loaded.code, stderr: loaded.stderr }).toEqual({ exit: 1, stderr: expect.stringContaining(`[${withDefaults.code}]`) });
      if ('code' in c.expect) expect(snapshot(sb)).toEqual(before);
    } else {
      expect({ exit: loaded.code, stderr: loaded.stderr }).toEqual({ exit: 0, stderr: '' });
    }

    // 3. Reading the archive in place (`ls`, flattening every layer): a typed error or a listing.
    const listed = await cli(['ls', `docker-archive:${file}`], diskFs);
    if (listed.code !== 0) expect(listed.stderr).toMatch(/\[[A-Z_]+\]\n$/);

    expect(snapshot(sb, [root])).toEqual(outside);
    expect(leftovers(root)).toEqual([]);
    await expectStoreReads(root);
    await expectNoFdLeak(fdsBefore);
  } finally {
    nodeFs.rmSync(sb, { recursive: true, force: true });
  }
}

async function judge(result: LoadArchiveResult | Error, expected: LoadExpectation, store: ImageStore, sb: string, before: Map<string, string>): Promise<void> {
  if ('code' in expected) {
    expectCode(result, expected.code, expected.why);
    // Nothing changed anywhere: not the store's files, not its index.json, not outside it.
    expect(snapshot(sb)).toEqual(before);
    return;
  }
  if (result instanceof Error) throw new Error(`expected a safe result (${expected.safe}), got ${(result as CloudRootfsError).code ?? ''} ${result.stack}`);
  await expected.check(result, store);
}

describe('load of hostile archives', () => {
  for (const c of ARCHIVE_CASES) {
    (c.fuzzOnly && !FUZZ ? test.skip : test)(`${c.name} → ${describeExpectation(c.expect)}`, () => runCase(c), 120_000);
  }
});

describe('what load reads from a hostile archive, it reads with bounds', () => {
  test('an archive that is a fifo is refused without being opened (it would block forever)', async () => {
    const sb = sandbox('crfs-load-');
    try {
      const store = await ImageStore.open({ fs: diskFs, root: join(sb, 'store') });
      const fifo = join(sb, 'archive.tar');
      execFileSync('mkfifo', [fifo]);
      const before = snapshot(sb);
      expectCode(await outcome(() => loadArchiveIntoStore(store, fifo, { fs: diskFs })), 'CORRUPT_ARCHIVE', 'not a regular file');
      expect(snapshot(sb)).toEqual(before);
    } finally {
      nodeFs.rmSync(sb, { recursive: true, force: true });
    }
  });

  test('a good archive loads, and loading it twice changes nothing the second time', async () => {
    const sb = sandbox('crfs-load-');
    try {
      const root = join(sb, 'store');
      const store = await ImageStore.open({ fs: diskFs, root });
      const file = join(sb, 'a.tar');
      nodeFs.writeFileSync(file, tar(ociArchiveRecords(ociImage())));
      const first = await loadArchiveIntoStore(store, file, { fs: diskFs });
      expect(first.images.map((i) => i.names)).toEqual([['docker.io/hostile/image:v1']]);
      const once = snapshot(root);
      const indexBytes = nodeFs.readFileSync(join(root, 'index.json'));
      await loadArchiveIntoStore(store, file, { fs: diskFs });
      // index.json is rewritten with the same bytes (a new mtime); everything else is untouched.
      const twice = snapshot(root);
      const changed = [...twice.keys()].filter((k) => twice.get(k) !== once.get(k));
      expect(changed).toEqual([join(root, 'index.json')]);
      expect(nodeFs.readFileSync(join(root, 'index.json'))).toEqual(indexBytes);
    } finally {
      nodeFs.rmSync(sb, { recursive: true, force: true });
    }
  });
});
