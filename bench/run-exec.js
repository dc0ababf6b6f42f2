/**
 * What the RUN sandbox costs, in one process (run by bench/run.js, or alone):
 *   CLOUDROOTFS_DIST=dist node bench/run-exec.js [FIXTURE_DIR]
 * Each row times `executor.run()` (write the tree to disk, run the command, read the tree back)
 * for the host shell (RUN before the sandbox) and the sandbox, interleaved run by run:
 * - `RUN true` over a one-file rootfs: the fixed cost per RUN;
 * - the bundled example's RUN (`rm -f statics/audit-policy.yml` over examples/cloudrootfs);
 * - `RUN true` over FIXTURE_DIR (the bench fixture), when given: writing a big rootfs for RUN.
 * Besides the whole call, the time spent writing the tree (`materialize`, the same code for both)
 * and launching the command (`runProcess`: sh, or bwrap then sh) is reported, and the CPU time of
 * the launched processes (mean per RUN), which a busy machine does not inflate as it does wall time.
 * With CLOUDROOTFS_DIST_BASELINE=<another dist>, its host shell is timed too (e.g. main's, to
 * show the shared write/read-back path did not get slower). The trees are written under
 * RUN_TMPDIR (default /dev/shm, as the bench's other outputs: disk writeback of one run would
 * otherwise land on the next). Medians in ms, printed as JSON.
 */
'use strict';
const path = require('node:path');
const { performance } = require('node:perf_hooks');

const ROOT = path.resolve(__dirname, '..');
const DIST = path.resolve(process.env.CLOUDROOTFS_DIST || path.join(ROOT, 'dist'));
const BASELINE = process.env.CLOUDROOTFS_DIST_BASELINE ? path.resolve(process.env.CLOUDROOTFS_DIST_BASELINE) : undefined;
const RUNS = Number(process.env.RUNS || 21);
const BIG_RUNS = Number(process.env.BIG_RUNS || 11);
const TMPDIR = process.env.RUN_TMPDIR || (require('node:fs').existsSync('/dev/shm') ? '/dev/shm' : require('node:os').tmpdir());

/**
 * A dist's modules, with the tree writing (`materialize`) and the process launch (`runProcess`,
 * absent before the sandbox) timed: the executors call them through their module objects.
 */
const phases = { current: undefined };
function timePhase(mod, name) {
  if (!mod || typeof mod[name] !== 'function') return;
  const fn = mod[name];
  mod[name] = async (...args) => {
    const t0 = performance.now();
    try {
      return await fn(...args);
    } finally {
      if (phases.current) phases.current[name] = (phases.current[name] ?? 0) + performance.now() - t0;
    }
  };
}
const load = (dist) => {
  const optional = (p) => {
    try {
      return require(path.join(dist, p));
    } catch {
      return undefined;
    }
  };
  timePhase(require(path.join(dist, 'lib/rootfs/io')), 'materialize');
  timePhase(optional('lib/build/run-process'), 'runProcess');
  return {
    run: require(path.join(dist, 'lib/build/run')),
    context: require(path.join(dist, 'lib/build/context')),
    rootfs: require(path.join(dist, 'lib/rootfs/rootfs')),
    fs: require(path.join(dist, 'lib/fs')),
  };
};
const ours = load(DIST);
const baseline = BASELINE ? load(BASELINE) : undefined;

/** CPU time (ms) of this process's finished children so far (/proc/self/stat cutime + cstime). */
const TICK_MS = 1000 / Number(require('node:child_process').execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim() || 100);
function childrenCpuMs() {
  const stat = require('node:fs').readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After the command name: state is field 3, so cutime (16) and cstime (17) are at 13 and 14.
  return (Number(fields[13]) + Number(fields[14])) * TICK_MS;
}

const median = (v) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Time `command` over `rootfs` through each executor, `runs` times each, interleaved. */
async function compare(name, rootfs, command, runs, warmup = 2) {
  const executors = {
    host: ours.run.hostShellExecutor({ tmpDir: TMPDIR }),
    sandbox: ours.run.sandboxExecutor({ tmpDir: TMPDIR }),
    ...(baseline ? { baselineHost: baseline.run.hostShellExecutor({ tmpDir: TMPDIR }) } : {}),
  };
  const times = Object.fromEntries(Object.keys(executors).map((k) => [k, []]));
  const writes = Object.fromEntries(Object.keys(executors).map((k) => [k, []]));
  const launches = Object.fromEntries(Object.keys(executors).map((k) => [k, []]));
  const cpu = Object.fromEntries(Object.keys(executors).map((k) => [k, 0]));
  const request = { rootfs, command, env: {}, sourceDateEpoch: 0, platform: { os: 'linux', architecture: 'amd64' } };
  for (let i = 0; i < warmup + runs; i++) {
    const order = Object.keys(executors);
    if (i % 2) order.reverse();
    for (const key of order) {
      const exec = executors[key];
      phases.current = {};
      const cpu0 = childrenCpuMs();
      const t0 = performance.now();
      await exec.run(request);
      const ms = performance.now() - t0;
      const cpuMs = childrenCpuMs() - cpu0;
      const phase = phases.current;
      phases.current = undefined;
      // Removing the tree is cleanup, the same for every executor: not timed.
      await exec.dispose();
      if (i >= warmup) {
        times[key].push(ms);
        cpu[key] += cpuMs;
        writes[key].push(phase.materialize ?? NaN);
        if (phase.runProcess !== undefined) launches[key].push(phase.runProcess);
      }
    }
  }
  const row = { name, command, runs };
  for (const [k, v] of Object.entries(times)) row[`${k}Ms`] = median(v);
  for (const [k, v] of Object.entries(writes)) row[`${k}WriteMs`] = median(v);
  for (const [k, v] of Object.entries(launches)) if (v.length) row[`${k}LaunchMs`] = median(v);
  // CPU is summed over the runs (the clock ticks in 10 ms steps), then divided: mean per RUN.
  for (const [k, v] of Object.entries(cpu)) row[`${k}ChildCpuMs`] = v / runs;
  row.overheadMs = row.sandboxMs - row.hostMs;
  row.cpuOverheadMs = row.sandboxChildCpuMs - row.hostChildCpuMs;
  row.launchOverheadMs = row.sandboxLaunchMs - row.hostLaunchMs;
  return row;
}

async function main() {
  const fixtureDir = process.argv[2];
  const { Rootfs } = ours.rootfs;
  const { readBuildContext } = ours.context;
  const { diskFs } = ours.fs;
  const rows = [];
  const tiny = Rootfs.empty().withFile('etc/hello', 'hello');
  rows.push(await compare('RUN true (one-file rootfs)', tiny, 'true', RUNS));
  const example = (await readBuildContext(path.join(ROOT, 'examples', 'cloudrootfs'), { fs: diskFs })).rootfs;
  rows.push(await compare('the example\'s RUN (examples/cloudrootfs)', example, 'rm -f statics/audit-policy.yml', RUNS));
  if (fixtureDir) {
    const big = (await readBuildContext(fixtureDir, { fs: diskFs })).rootfs;
    let bytes = 0;
    let files = 0;
    for (const { entry } of big.walk()) if (entry.type === 'file') (bytes += entry.content.size, files++);
    const row = await compare(`RUN true over the fixture (${Math.round(bytes / 1e6)} MB, ${files} files)`, big, 'true', BIG_RUNS, 1);
    rows.push({ ...row, bytes, files });
  }
  process.stdout.write(JSON.stringify({ runs: RUNS, bigRuns: BIG_RUNS, tmpDir: TMPDIR, baseline: BASELINE ?? null, rows }) + '\n');
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
