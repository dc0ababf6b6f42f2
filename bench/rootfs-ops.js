/**
 * 100k-entry Rootfs operations, in one process (run by bench/run.js, or alone):
 *   CLOUDROOTFS_DIST=dist node bench/rootfs-ops.js [entries] [changes]
 * - build: Rootfs.fromEntries of 100k prepared entries (1,100 directories, 100k files);
 * - walk: every entry in archive order;
 * - diff, shared: `upper` is `lower` with 100 files replaced (the persistent tree shares the rest);
 * - diff, independent: `upper` built on its own from the same entries (new objects everywhere,
 *   the same 100 changes), so nothing can be skipped by identity.
 * Every operation runs first to warm the JIT (20 times for the diffs, which are what the target
 * compares), then several times more (101 times for the sub-millisecond shared diff, so a stray
 * collection or preemption cannot move its median); medians are printed as JSON. (Forcing a GC
 * before each run was tried: it made the small diff 2x slower, cold caches after compaction.)
 */
'use strict';
const path = require('node:path');
const { performance } = require('node:perf_hooks');

const DIST = path.resolve(process.env.CLOUDROOTFS_DIST || path.join(__dirname, '..', 'dist'));
const { Rootfs } = require(path.join(DIST, 'lib/rootfs/rootfs'));
const { fileEntry, directoryEntry } = require(path.join(DIST, 'lib/entry'));
const { diff } = require(path.join(DIST, 'lib/layer/diff'));

const ENTRIES = Number(process.argv[2] || 100_000);
const CHANGES = Number(process.argv[3] || 100);
const WARMUP = Number(process.env.WARMUP || 20);
const RUNS = Number(process.env.RUNS || 21);

/** Paths in archive order: d000/s0/f00000 … */
function paths(n) {
  const out = [];
  const perDir = 100;
  const subdirs = 10;
  let made = 0;
  for (let d = 0; made < n; d++) {
    const dir = `d${String(d).padStart(3, '0')}`;
    out.push({ path: dir, dir: true });
    for (let s = 0; s < subdirs && made < n; s++) {
      const sub = `${dir}/s${s}`;
      out.push({ path: sub, dir: true });
      for (let f = 0; f < perDir && made < n; f++, made++) out.push({ path: `${sub}/f${String(made).padStart(6, '0')}` });
    }
  }
  return out;
}

function entries(list, changed) {
  return list.map((p) =>
    p.dir ? [p.path, directoryEntry({ mode: 0o755 })] : [p.path, fileEntry(changed.has(p.path) ? `changed ${p.path}` : `content of ${p.path}`, { mode: 0o644 })],
  );
}

async function measure(fn, warmup = WARMUP, runs = RUNS) {
  for (let i = 0; i < warmup; i++) await fn();
  const times = [];
  let result;
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    result = await fn();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return { ms: times[Math.floor(times.length / 2)], min: times[0], max: times[times.length - 1], result };
}

async function main() {
  const list = paths(ENTRIES);
  const files = list.filter((p) => !p.dir);
  const step = Math.floor(files.length / CHANGES);
  const changed = new Set(files.filter((_, i) => i % step === 0).slice(0, CHANGES).map((p) => p.path));
  const prepared = entries(list, new Set());
  const preparedChanged = entries(list, changed);

  const build = await measure(() => Rootfs.fromEntries(prepared), 2, 5);
  const lower = build.result;
  const walk = await measure(() => {
    let n = 0;
    for (const _ of lower.walk()) n++;
    return n;
  }, 5, 11);
  // Shared: the same tree with CHANGES files replaced in place.
  let shared = lower;
  for (const [p, e] of preparedChanged) if (changed.has(p)) shared = shared.with(p, e);
  const independent = Rootfs.fromEntries(entries(list, changed));
  const diffShared = await measure(() => diff(lower, shared), WARMUP, 101);
  const diffIndependent = await measure(() => diff(lower, independent));
  const sharedEntries = diffShared.result.stats().entries;
  const independentEntries = diffIndependent.result.stats().entries;
  if (sharedEntries !== independentEntries) throw new Error(`the two diffs differ: ${sharedEntries} vs ${independentEntries} entries`);
  process.stdout.write(
    JSON.stringify({
      entries: walk.result,
      changes: CHANGES,
      warmup: WARMUP,
      runs: RUNS,
      sharedRuns: 101,
      buildMs: build.ms,
      walkMs: walk.ms,
      diffSharedMs: diffShared.ms,
      diffIndependentMs: diffIndependent.ms,
      diffEntries: sharedEntries,
      speedup: diffIndependent.ms / diffShared.ms,
    }) + '\n',
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
