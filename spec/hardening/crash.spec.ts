/**
 * Crash safety: `export`, `save` (oci-archive and docker-archive), the store
 * writes (`build -t`, `load`, `tag`, `rmi`) and `pull` run as child processes (the CLI, compiled
 * from this tree) and are SIGKILLed at random points. After each kill:
 *
 * - the destination holds nothing partial: the export directory or archive file is absent, or is
 *   exactly what an uninterrupted run makes (a tree identical in every byte and attribute, an
 *   archive identical byte for byte);
 * - the store reads: it opens, lists, and every image loads and validates (documents, every
 *   layer against its digest and diff_id); a tag the killed run was writing is absent or names
 *   the complete image;
 * - the next run succeeds, and afterwards no `.tmp-*` file, lock, or unreferenced blob is left:
 *   the next run sweeps temporary files next to its destination; in the store, `gc` does.
 *
 * Kill points are random delays over an uninterrupted run's measured duration, mostly past the
 * CLI's start-up (measured too), so most kills land while the operation writes; `FUZZ_RUNS`
 * raises the number of kills per operation (CI: 3; FUZZ_SEED replays a sequence).
 */
import { createHash, randomBytes } from 'node:crypto';
import * as nodeFs from 'node:fs';
import { join } from 'node:path';
import { diskFs } from '../../lib/fs';
import { ImageIndex } from '../../lib/image/image';
import { validate } from '../../lib/image/validate';
import { ImageStore } from '../../lib/store/store';
import { loadArchiveIntoStore } from '../../lib/store/load';
import { reachableBlobs } from '../../lib/formats/layout';
import { readOciArchive } from '../../lib/formats/oci-archive';
import { FakeRegistry, startFakeRegistry } from '../support/fake-registry';
import { scratchDir } from '../support/umoci';
import { compileCli, runAndKill, runChildOk } from './child';
import { leftovers } from './support';

const FUZZ_RUNS = process.env.FUZZ_RUNS ? Number(process.env.FUZZ_RUNS) : undefined;
/** Kills per operation: 3 in CI (the whole file stays under a minute), FUZZ_RUNS/250 in fuzz runs (20 for `npm run fuzz`). */
const KILLS = FUZZ_RUNS ? Math.max(3, Math.ceil(FUZZ_RUNS / 250)) : 3;
const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : Date.now() % 100_000;

/** A small PRNG, so a failing sequence can be replayed with FUZZ_SEED. */
function prng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 0x100000000;
  };
}

/** Every path under `dir`: type, mode, owner, size, mtime, bytes or link text. */
function describeTree(dir: string): string[] {
  const out: string[] = [];
  const walk = (abs: string, rel: string) => {
    const st = nodeFs.lstatSync(abs);
    let what = '';
    if (st.isSymbolicLink()) what = `-> ${nodeFs.readlinkSync(abs)}`;
    else if (st.isFile()) what = createHash('sha256').update(nodeFs.readFileSync(abs)).digest('hex');
    out.push(`${rel || '.'} ${(st.mode & 0o170000).toString(8)} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} ${st.isDirectory() ? '' : st.size} ${Math.floor(st.mtimeMs / 1000)} ${what}`);
    if (st.isDirectory()) for (const name of nodeFs.readdirSync(abs).sort()) walk(join(abs, name), rel ? `${rel}/${name}` : name);
  };
  walk(dir, '');
  return out;
}

const fileHash = (path: string) => createHash('sha256').update(nodeFs.readFileSync(path)).digest('hex');

/** The store reads: open, list, and every image loads and validates. Returns name → digest. */
async function storeReads(root: string): Promise<Map<string, string>> {
  const store = await ImageStore.open({ fs: diskFs, root, lock: { timeoutMs: 10_000 } });
  const names = new Map<string, string>();
  for (const entry of await store.list()) {
    const target = await store.loadTarget(entry.reference ?? entry.digest);
    // Every name loads; each image is validated once however many names it has.
    if (![...names.values()].includes(entry.digest)) {
      const report = await validate(target);
      expect({ name: entry.reference, issues: report.issues }).toEqual({ name: entry.reference, issues: [] });
    }
    names.set(entry.reference ?? entry.digest, entry.digest);
  }
  return names;
}

/** After gc: no temporary file, no lock, and every blob is one index.json reaches. */
async function expectCleanAfterGc(root: string): Promise<void> {
  const store = await ImageStore.open({ fs: diskFs, root });
  await store.gc();
  expect(leftovers(root).filter((p) => !p.startsWith(join(root, 'cache')))).toEqual([]);
  const reached = await reachableBlobs(store.layout, (await store.layout.readIndex()).manifests);
  const blobs = nodeFs.readdirSync(join(root, 'blobs', 'sha256')).map((h) => `sha256:${h}`);
  expect(blobs.filter((b) => !reached!.has(b))).toEqual([]);
}

interface Op {
  name: string;
  /** State before a killed run. */
  prepare(): Promise<void>;
  argv(): string[];
  /** Right after a kill: nothing partial where the run writes. */
  afterKill(): Promise<void>;
  /** The run after the kill: it must succeed; then nothing may be left over. */
  next(): Promise<void>;
  /** Where the run writes (to count kills that left temporary files behind). */
  area: string;
  /** Measured duration of one uninterrupted run (ms). */
  duration?: number;
}

describe('crash safety: SIGKILL at random points', () => {
  let ws: string;
  let cliPath: string;
  let reg: FakeRegistry;
  const env = (store: string) => ({ CLOUDROOTFS_STORE: store });
  const cli = (argv: string[]) => runChildOk(cliPath, argv);
  const random = prng(SEED);
  const ops: Op[] = [];
  // Reference results of uninterrupted runs.
  let builtDigest: string;
  let bigDigest: string;
  /** How long the CLI takes to start and do nothing: kills before that only test start-up. */
  let startup = 0;
  let exportTree: string[];
  const archiveHash: Record<string, string> = {};

  beforeAll(async () => {
    ws = scratchDir('crfs-crash-');
    cliPath = compileCli(join(ws, 'build'));

    // A context of a few MiB in three layers: random bytes, text, and many small files.
    const ctx = join(ws, 'ctx');
    nodeFs.mkdirSync(join(ctx, 'data'), { recursive: true });
    nodeFs.mkdirSync(join(ctx, 'etc', 'conf.d'), { recursive: true });
    nodeFs.mkdirSync(join(ctx, 'bin'), { recursive: true });
    for (let i = 0; i < 4; i++) nodeFs.writeFileSync(join(ctx, 'data', `blob-${i}`), randomBytes(1 << 20));
    nodeFs.writeFileSync(join(ctx, 'data', 'text'), Array.from({ length: 60_000 }, (_, i) => `line ${i} of some text that compresses\n`).join(''));
    for (let i = 0; i < 400; i++) nodeFs.writeFileSync(join(ctx, 'etc', 'conf.d', `conf-${i}.yaml`), `key: ${i}\n`);
    nodeFs.writeFileSync(join(ctx, 'bin', 'tool'), '#!/bin/sh\necho tool\n', { mode: 0o755 });
    nodeFs.symlinkSync('tool', join(ctx, 'bin', 'tool-link'));
    nodeFs.writeFileSync(join(ctx, 'Kubefile'), 'FROM scratch\nCOPY data data\nCOPY etc etc\nCOPY bin bin\n');
    // A bigger image, stored uncompressed, for the operations that only move blobs (save, load,
    // pull): their write takes long enough to be killed in.
    const bigCtx = join(ws, 'ctx-big');
    nodeFs.mkdirSync(join(bigCtx, 'data'), { recursive: true });
    for (let i = 0; i < 4; i++) nodeFs.writeFileSync(join(bigCtx, 'data', `blob-${i}`), randomBytes(8 << 20));
    nodeFs.writeFileSync(join(bigCtx, 'Kubefile'), 'FROM scratch\nCOPY data/blob-0 data/blob-0\nCOPY data/blob-1 data/blob-1\nCOPY data data\n');

    // The source store (read-only for export/save) and the reference artifacts.
    const src = join(ws, 'store-src');
    await cli(['build', '-t', 'crash/base:v1', ctx, '--store', src, '--build-mode', 'lite', '-q']);
    await cli(['build', '-t', 'crash/big:v1', bigCtx, '--store', src, '--build-mode', 'lite', '--compression', 'none', '-q']);
    const built = await storeReads(src);
    builtDigest = built.get('docker.io/crash/base:v1')!;
    bigDigest = built.get('docker.io/crash/big:v1')!;
    await cli(['export', 'crash/base:v1', join(ws, 'ref-export'), '--store', src]);
    exportTree = describeTree(join(ws, 'ref-export'));
    for (const format of ['oci-archive', 'docker-archive']) {
      await cli(['save', 'crash/big:v1', '-o', join(ws, `ref-${format}.tar`), '--format', format, '--store', src, '-q']);
      archiveHash[format] = fileHash(join(ws, `ref-${format}.tar`));
    }

    // A registry serving the image, for pull.
    reg = await startFakeRegistry();
    const image = await readOciArchive(join(ws, 'ref-oci-archive.tar'), { fs: diskFs });
    if (image instanceof ImageIndex) throw new Error('expected one image');
    for (const layer of image.layers) if (layer.kind === 'blob') reg.putBlob(nodeFs.readFileSync(join(src, 'blobs', 'sha256', layer.descriptor.digest.slice(7))));
    reg.putBlob(image.stored!.config);
    reg.putManifest('crash/big', 'v1', image.stored!.manifest, image.stored!.manifestDescriptor.mediaType);

    // --- the operations ---------------------------------------------------------------------------------
    const exportsDir = join(ws, 'exports');
    const out = join(exportsDir, 'out');
    nodeFs.mkdirSync(exportsDir);
    const exportOp = (force: boolean): Op => ({
      name: force ? 'export --force over a complete tree' : 'export',
      area: exportsDir,
      async prepare() {
        if (!force) nodeFs.rmSync(out, { recursive: true, force: true });
        else if (!nodeFs.existsSync(out)) await cli(['export', 'crash/base:v1', out, '--store', src]);
      },
      argv: () => ['export', 'crash/base:v1', out, '--store', src, ...(force ? ['--force'] : [])],
      async afterKill() {
        // Absent, or complete: never a partial tree at the destination.
        if (nodeFs.existsSync(out)) expect(describeTree(out)).toEqual(exportTree);
      },
      async next() {
        await cli(['export', 'crash/base:v1', out, '--store', src, '--force']);
        expect(describeTree(out)).toEqual(exportTree);
        expect(nodeFs.readdirSync(exportsDir)).toEqual(['out']);
      },
    });
    ops.push(exportOp(false), exportOp(true));

    for (const format of ['oci-archive', 'docker-archive']) {
      const dir = join(ws, `saves-${format}`);
      const file = join(dir, 'image.tar');
      nodeFs.mkdirSync(dir);
      ops.push({
        name: `save --format ${format}`,
        area: dir,
        async prepare() {
          nodeFs.rmSync(file, { force: true });
        },
        argv: () => ['save', 'crash/big:v1', '-o', file, '--format', format, '--store', src, '-q'],
        async afterKill() {
          if (nodeFs.existsSync(file)) expect(fileHash(file)).toBe(archiveHash[format]);
        },
        async next() {
          await cli(['save', 'crash/big:v1', '-o', file, '--format', format, '--store', src, '-q']);
          expect(fileHash(file)).toBe(archiveHash[format]);
          expect(nodeFs.readdirSync(dir)).toEqual(['image.tar']);
        },
      });
    }

    // Store writes, each on its own store.
    const storeOp = (name: string, store: string, argv: () => string[], prepare: () => Promise<void>, checkTag: [string, () => string] | undefined, next: () => Promise<void>): Op => ({
      name,
      area: store,
      prepare,
      argv,
      async afterKill() {
        const names = await storeReads(store);
        // The tag being written is absent, or names the complete image.
        if (checkTag && names.has(checkTag[0])) expect(names.get(checkTag[0])).toBe(checkTag[1]());
      },
      async next() {
        await next();
        await storeReads(store);
        await expectCleanAfterGc(store);
      },
    });

    const buildStore = join(ws, 'store-build');
    let buildRuns = 0;
    ops.push(
      storeOp(
        'build -t',
        buildStore,
        // Every other run without the cache, so the layers are made and compressed again.
        () => ['build', '-t', 'crash/built:v1', ctx, '--store', buildStore, '--build-mode', 'lite', '-q', ...(buildRuns++ % 2 === 0 ? ['--no-cache'] : [])],
        async () => {
          const store = await ImageStore.open({ fs: diskFs, root: buildStore });
          if (await store.has('crash/built:v1')) await store.remove('crash/built:v1');
        },
        ['docker.io/crash/built:v1', () => builtDigest],
        async () => {
          await cli(['build', '-t', 'crash/built:v1', ctx, '--store', buildStore, '--build-mode', 'lite', '-q']);
          expect((await storeReads(buildStore)).get('docker.io/crash/built:v1')).toBe(builtDigest);
        },
      ),
    );

    const loadStore = join(ws, 'store-load');
    const archive = join(ws, 'ref-docker-archive.tar');
    ops.push(
      storeOp(
        'load',
        loadStore,
        () => ['load', archive, '--store', loadStore, '-q'],
        async () => {
          const store = await ImageStore.open({ fs: diskFs, root: loadStore });
          if (await store.has('crash/big:v1')) await store.remove('crash/big:v1');
        },
        ['docker.io/crash/big:v1', () => bigDigest],
        async () => {
          await cli(['load', archive, '--store', loadStore, '-q']);
          expect((await storeReads(loadStore)).get('docker.io/crash/big:v1')).toBe(bigDigest);
        },
      ),
    );

    const tagStore = join(ws, 'store-tag');
    let tagRuns = 0;
    ops.push(
      storeOp(
        'tag',
        tagStore,
        () => ['tag', 'crash/big:v1', `crash/tagged:v${tagRuns++}`, '--store', tagStore],
        async () => {
          if (!nodeFs.existsSync(tagStore)) await loadArchiveIntoStore(await ImageStore.open({ fs: diskFs, root: tagStore }), archive, { fs: diskFs });
        },
        undefined,
        async () => {
          await cli(['tag', 'crash/big:v1', 'crash/tagged:next', '--store', tagStore]);
          const names = await storeReads(tagStore);
          expect(names.get('docker.io/crash/tagged:next')).toBe(bigDigest);
          for (const [name, digest] of names) expect({ name, digest }).toEqual({ name, digest: bigDigest });
        },
      ),
    );

    const rmiStore = join(ws, 'store-rmi');
    ops.push(
      storeOp(
        'rmi (with its garbage collection)',
        rmiStore,
        () => ['rmi', 'crash/big:v1', '--store', rmiStore],
        async () => {
          const store = await ImageStore.open({ fs: diskFs, root: rmiStore });
          if (!(await store.has('crash/big:v1'))) await loadArchiveIntoStore(store, archive, { fs: diskFs });
        },
        ['docker.io/crash/big:v1', () => bigDigest],
        async () => {
          const store = await ImageStore.open({ fs: diskFs, root: rmiStore });
          if (await store.has('crash/big:v1')) await cli(['rmi', 'crash/big:v1', '--store', rmiStore]);
          expect([...(await storeReads(rmiStore)).keys()]).toEqual([]);
        },
      ),
    );

    const pullStore = join(ws, 'store-pull');
    const pullArgv = () => ['pull', `docker://${reg.host}/crash/big:v1`, '-t', 'crash/pulled:v1', '--platform', 'linux/amd64', '--store', pullStore, '-q', '--authfile', join(ws, 'none.json')];
    ops.push(
      storeOp(
        'pull',
        pullStore,
        pullArgv,
        async () => {
          const store = await ImageStore.open({ fs: diskFs, root: pullStore });
          if (await store.has('crash/pulled:v1')) await store.remove('crash/pulled:v1');
        },
        ['docker.io/crash/pulled:v1', () => bigDigest],
        async () => {
          await cli(pullArgv());
          expect((await storeReads(pullStore)).get('docker.io/crash/pulled:v1')).toBe(bigDigest);
        },
      ),
    );

    // How long an uninterrupted run takes: kills are spread over that, past the start-up.
    const started = Date.now();
    await cli(['images', '--store', join(ws, 'empty-store'), '-q']);
    startup = Date.now() - started;
    for (const op of ops) {
      await op.prepare();
      const started = Date.now();
      await runChildOk(cliPath, op.argv(), env(join(ws, 'unused-store')));
      op.duration = Date.now() - started;
    }
  }, 120_000);

  afterAll(async () => {
    await reg?.stop();
    if (ws) nodeFs.rmSync(ws, { recursive: true, force: true });
  });

  test('the reference runs made what they should', () => {
    expect(builtDigest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(exportTree.length).toBeGreaterThan(400);
    expect(ops.map((o) => o.duration)).not.toContain(undefined);
  });

  const names = ['export', 'export --force over a complete tree', 'save --format oci-archive', 'save --format docker-archive', 'build -t', 'load', 'tag', 'rmi (with its garbage collection)', 'pull'];
  for (const name of names) {
    test(`${name}: killed ${KILLS} times, never partial; the store reads; the next run succeeds and sweeps`, async () => {
      const op = ops.find((o) => o.name === name)!;
      let landed = 0;
      let leftBehind = 0;
      // A short run may end before a kill lands: try again (closer to its start) until KILLS have.
      for (let i = 0; landed < KILLS && i < KILLS * 4; i++) {
        await op.prepare();
        // Mostly while it works; one kill in four anywhere, start-up included.
        const work = Math.min(startup * 0.9, op.duration! * 0.6);
        const from = i % 4 === 3 ? 0 : work;
        const to = i < KILLS ? op.duration! * 1.05 : work + (op.duration! - work) * 0.5;
        const delay = Math.floor(from + random() * (to - from));
        const r = await runAndKill(cliPath, op.argv(), delay, env(join(ws, 'unused-store')));
        if (!r.killed && r.code !== 0) throw new Error(`${name} failed on its own (seed ${SEED}): ${r.stderr}`);
        if (r.killed) landed++;
        if (leftovers(op.area).length > 0) leftBehind++;
        try {
          await op.afterKill();
          await op.next();
        } catch (err) {
          (err as Error).message = `${name}, killed after ${delay} ms (FUZZ_SEED=${SEED}): ${(err as Error).message}`;
          throw err;
        }
      }
      if (FUZZ_RUNS || process.env.CRASH_STATS) console.log(`${name} (${op.duration} ms, start-up ${startup} ms): ${landed}/${KILLS} kills landed, ${leftBehind} left temporary files or a lock (swept by the next run or gc)`);
      expect(landed).toBeGreaterThan(0);
    }, 300_000);
  }
});
