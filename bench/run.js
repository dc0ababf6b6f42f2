#!/usr/bin/env node
/**
 * `npm run bench`: cloudrootfs against the tools people use instead, on a realistic CloudRootfs
 * (bench/fixture.js: real Debian executables and a registry of gzip blobs), in one run:
 *
 * - cold build + save into a store (`cloudrootfs build -t`, sealer-style Kubefile with a COPY per
 *   section), default settings and the fastest setting (`--level 1 --no-cache`);
 * - `tar | gzip -6 | sha256sum`, `tar | pigz -p2 -6`, `umoci insert` of the same tree;
 * - no-change rebuild, and a rebuild after one file of `etc/` changed (only its layer may be
 *   compressed again: checked);
 * - 100k-entry Rootfs operations (bench/rootfs-ops.js);
 * - what the RUN sandbox adds per RUN, and to writing the fixture for a RUN (bench/run-exec.js);
 * - push to a loopback docker-registry against `skopeo copy` of the same stored image;
 * - pull from a loopback docker-registry into a new store (`cloudrootfs pull`: every blob hashed,
 *   every layer gunzipped, its diff_id and tar checked) against `skopeo copy docker://… oci:…`
 *   of the same image (blobs hashed only), in the same runs.
 *
 * Every figure is the median of --runs whole-process runs, interleaved so that load from other
 * processes spreads over all rows; wall and CPU time and peak RSS come from /usr/bin/time -v.
 * Outputs go to tmpfs (/dev/shm). Results: printed as markdown, and saved as JSON and markdown in
 * bench/.cache/results-<size>.{json,md}.
 *
 *   npm run bench                      # 400 MB fixture, 5 runs
 *   npm run bench -- --size 1g         # the 1 GB fixture (3 runs)
 *   npm run bench -- --runs 7 --only build,tools
 *   npm run bench -- --levels 4,5          # extra rows: cold builds at other gzip levels
 *   npm run bench -- --nice -10            # every measured command under nice (a busy machine)
 *   CLOUDROOTFS_DIST=/other/dist node bench/run.js --no-install
 *
 * Sections (--only): build, tools, rebuild, rootfs, run, push, pull.
 */
'use strict';
const { spawn, spawnSync, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { ensureFixture } = require('./fixture');

const ROOT = path.resolve(__dirname, '..');
const DIST = path.resolve(process.env.CLOUDROOTFS_DIST || path.join(ROOT, 'dist'));
const CLI = path.join(DIST, 'lib', 'cli', 'main.js');
const CACHE = path.join(__dirname, '.cache');
const SHM = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
const WORK = path.join(SHM, `cloudrootfs-bench-${process.pid}`);
const MB = 1e6;
const MiB = 1 << 20;

// ------------------------------------------------------------------------------------ arguments

function parseArgs(argv) {
  const out = { size: 400 * MB, runs: undefined, only: undefined, install: true, nice: undefined, levels: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => argv[++i];
    if (a === '--size') out.size = parseSize(value());
    else if (a === '--runs') out.runs = Number(value());
    else if (a === '--only') out.only = new Set(value().split(','));
    else if (a === '--no-install') out.install = false;
    else if (a === '--nice') out.nice = Number(value());
    else if (a === '--levels') out.levels = value().split(',').map(Number);
    else if (a === '--help' || a === '-h') {
      console.log(fs.readFileSync(__filename, 'utf8').split('*/')[0]);
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  out.runs ??= out.size >= 900 * MB ? 3 : 5;
  return out;
}

function parseSize(text) {
  const m = /^(\d+(?:\.\d+)?)\s*([mg])b?$/i.exec(text);
  if (!m) throw new Error(`--size takes e.g. 400m or 1g (got ${text})`);
  return Number(m[1]) * (m[2].toLowerCase() === 'g' ? 1000 : 1) * MB;
}

// -------------------------------------------------------------------------------------- helpers

const log = (...a) => console.error('bench:', ...a);

function has(tool) {
  return spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status === 0;
}

/** Installs what the bench needs (apt-get, as root), as the test tools are installed. */
function ensureTools(install) {
  const { ensureTools: ensure } = require('../scripts/ensure-tools');
  const wanted = ['pigz', 'umoci', 'skopeo', 'docker-registry', 'bwrap'];
  if (install) ensure(wanted);
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (install && isRoot && (!fs.existsSync('/usr/bin/time') || !has('dpkg-deb'))) {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    spawnSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', 'time', 'dpkg'], { stdio: 'inherit', env });
  }
  const missing = [...wanted, 'tar', 'gzip', 'sha256sum'].filter((t) => !has(t));
  if (!fs.existsSync('/usr/bin/time')) missing.push('/usr/bin/time (package time)');
  return missing;
}

function median(values) {
  const v = values.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

function loadAverage() {
  return os.loadavg().map((x) => x.toFixed(2)).join(' ');
}

/**
 * Run a command under /usr/bin/time -v. Returns wall and CPU seconds, peak RSS (MiB; for a shell
 * pipeline the largest of its processes), stdout and the exit status.
 */
let NICE = [];

function timed(argv, options = {}) {
  const report = path.join(WORK, `time-${process.hrtime.bigint()}.txt`);
  const r = spawnSync('/usr/bin/time', ['-v', '-o', report, ...NICE, ...argv], {
    cwd: options.cwd,
    env: { ...process.env, ...(options.env ?? {}) },
    encoding: 'utf8',
    maxBuffer: 64 * MiB,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const text = fs.existsSync(report) ? fs.readFileSync(report, 'utf8') : '';
  fs.rmSync(report, { force: true });
  const field = (name) => {
    const m = new RegExp(`${name}: (.*)`).exec(text);
    return m ? m[1].trim() : undefined;
  };
  const clock = field('Elapsed \\(wall clock\\) time \\(h:mm:ss or m:ss\\)') ?? '0';
  const wall = clock.split(':').reduce((acc, part) => acc * 60 + Number(part), 0);
  const user = Number(field('User time \\(seconds\\)') ?? NaN);
  const sys = Number(field('System time \\(seconds\\)') ?? NaN);
  const rss = Number(field('Maximum resident set size \\(kbytes\\)') ?? NaN) / 1024;
  if (r.status !== 0 && !options.allowFailure) {
    throw new Error(`${argv.join(' ')} failed (${r.status}):\n${r.stderr}\n${r.stdout}`.slice(0, 4000));
  }
  return { wall, cpu: user + sys, rss, stdout: r.stdout, stderr: r.stderr, status: r.status };
}

function sh(script) {
  return ['sh', '-c', script];
}

function q(p) {
  return `'${p.replace(/'/g, `'\\''`)}'`;
}

function rm(p) {
  fs.rmSync(p, { recursive: true, force: true });
}

function cli(args) {
  return ['node', CLI, ...args];
}

/** The sum of the layer sizes of a build's JSON output, and each layer's cache outcome. */
function builtFacts(stdout) {
  const r = JSON.parse(stdout);
  const image = r.images[0];
  return {
    digest: r.digest,
    layers: image.layers.map((l) => ({ digest: l.digest, size: l.size, createdBy: l.createdBy })),
    size: image.layers.reduce((a, l) => a + l.size, 0),
    cache: image.cache ?? [],
  };
}

/** The layer umoci added: the last layer of the image's manifest. */
function umociLayerSize(layout) {
  const index = JSON.parse(fs.readFileSync(path.join(layout, 'index.json'), 'utf8'));
  const blob = (d) => path.join(layout, 'blobs', ...d.split(':'));
  const entry = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === 'base') ?? index.manifests[0];
  const manifest = JSON.parse(fs.readFileSync(blob(entry.digest), 'utf8'));
  return manifest.layers[manifest.layers.length - 1].size;
}

function machine() {
  const cpu = (() => {
    try {
      const m = /model name\s*:\s*(.*)/.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'));
      return m ? m[1] : os.cpus()[0]?.model;
    } catch {
      return os.cpus()[0]?.model;
    }
  })();
  const version = (cmd) => {
    try {
      return execFileSync('sh', ['-c', cmd], { encoding: 'utf8' }).split('\n')[0].trim();
    } catch {
      return 'n/a';
    }
  };
  return {
    cpu,
    cores: os.availableParallelism?.() ?? os.cpus().length,
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: os.release(),
    node: process.version,
    zlib: process.versions.zlib,
    openssl: process.versions.openssl,
    gzip: version('gzip --version'),
    pigz: version('pigz --version 2>&1'),
    umoci: version('umoci --version'),
    skopeo: version('skopeo --version'),
    registry: version('docker-registry --version'),
    tar: version('tar --version'),
    tmpfs: SHM,
  };
}

// ------------------------------------------------------------------------------------- sections

/** Cold builds (default and fastest), the GNU and peer tools, and the rebuilds; interleaved. */
function runBuildAndTools(fixture, runs, only, results, levels) {
  const F = fixture.dir;
  const etcFile = path.join(F, 'etc', 'daemon.json');
  const original = fs.readFileSync(etcFile);
  const umociBase = path.join(WORK, 'umoci-base');
  if (only('tools')) {
    execFileSync('umoci', ['init', '--layout', umociBase]);
    execFileSync('umoci', ['new', '--image', `${umociBase}:base`]);
  }
  const rows = results.rows;
  const add = (name, r) => (rows[name] ??= []).push(r);
  const storeFor = (i, tag) => path.join(WORK, `store-${tag}-${i}`);

  // The output sizes of the GNU pipelines (not timed).
  if (only('tools')) {
    results.sizes.gzip6 = Number(execFileSync('sh', ['-c', `tar -C ${q(F)} -cf - . | gzip -6 | wc -c`], { encoding: 'utf8' }).trim());
    results.sizes.tar = Number(execFileSync('sh', ['-c', `tar -C ${q(F)} -cf - . | wc -c`], { encoding: 'utf8' }).trim());
  }
  for (let i = 0; i < runs; i++) {
    log(`run ${i + 1}/${runs} (load ${loadAverage()})`);
    if (only('build')) {
      const store = storeFor(i, 'default');
      rm(store);
      const cold = timed(cli(['build', '--json', '-t', 'bench:v1', '--store', store, F]));
      const facts = builtFacts(cold.stdout);
      if (facts.cache.some((c) => c !== 'miss')) throw new Error(`a cold build reused something: ${facts.cache}`);
      add('ours-cold', { ...cold, size: facts.size });
      results.image = facts;

      if (only('rebuild')) {
        const again = timed(cli(['build', '--json', '-t', 'bench:v1', '--store', store, F]));
        const f2 = builtFacts(again.stdout);
        if (f2.digest !== facts.digest) throw new Error('a no-change rebuild gave another digest');
        if (f2.cache.some((c) => c !== 'hit')) throw new Error(`a no-change rebuild compressed something: ${f2.cache}`);
        add('ours-nochange', again);

        fs.writeFileSync(etcFile, Buffer.concat([original, Buffer.from(`\n`)]));
        try {
          const changed = timed(cli(['build', '--json', '-t', 'bench:v2', '--store', store, F]));
          const f3 = builtFacts(changed.stdout);
          const misses = f3.cache.map((c, j) => (c === 'miss' ? j : -1)).filter((j) => j >= 0);
          const etcLayer = f3.layers.findIndex((l) => l.createdBy === 'COPY etc etc');
          if (misses.length !== 1 || misses[0] !== etcLayer) throw new Error(`changing etc/daemon.json recompressed layers ${misses} (etc is ${etcLayer})`);
          const differing = f3.layers.map((l, j) => (l.digest !== facts.layers[j].digest ? j : -1)).filter((j) => j >= 0);
          if (differing.length !== 1 || differing[0] !== etcLayer) throw new Error(`changing etc/daemon.json changed layers ${differing}`);
          add('ours-onefile', { ...changed, recompressed: misses.length });
        } finally {
          fs.writeFileSync(etcFile, original);
        }
      }
      if (i > 0) rm(store); // the first store is kept for the push section

      const other = (row, args) => {
        const dir = storeFor(i, row);
        rm(dir);
        const r = timed(cli(['build', '--json', ...args, '-t', 'bench:other', '--store', dir, F]));
        add(row, { ...r, size: builtFacts(r.stdout).size });
        rm(dir);
      };
      other('ours-cold-nocache', ['--no-cache']);
      other('ours-cold-fast', ['--level', '1', '--no-cache']);
      for (const level of levels) other(`ours-cold-l${level}`, ['--level', String(level)]);
    }
    if (only('tools')) {
      add('gzip6', timed(sh(`tar -C ${q(F)} -cf - . | gzip -6 | sha256sum`)));
      const pigzOut = path.join(WORK, 'pigz.gz');
      const pigz = timed(sh(`tar -C ${q(F)} -cf - . | pigz -p2 -6 > ${q(pigzOut)}`));
      add('pigz', { ...pigz, size: fs.statSync(pigzOut).size });
      rm(pigzOut);
      const layout = path.join(WORK, `umoci-${i}`);
      rm(layout);
      execFileSync('cp', ['-a', umociBase, layout]);
      const umoci = timed(['umoci', 'insert', '--image', `${layout}:base`, F, '/']);
      add('umoci', { ...umoci, size: umociLayerSize(layout) });
      rm(layout);
    }
  }
}

function runRootfsOps(results) {
  log(`100k-entry Rootfs operations (load ${loadAverage()})`);
  const r = spawnSync('node', [path.join(__dirname, 'rootfs-ops.js')], { env: { ...process.env, CLOUDROOTFS_DIST: DIST }, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`rootfs-ops failed: ${r.stderr}`);
  results.rootfs = JSON.parse(r.stdout.trim().split('\n').pop());
}

/** The RUN sandbox against the host shell (bench/run-exec.js), over the fixture too. */
function runRunExec(fixture, results) {
  log(`RUN executors (load ${loadAverage()})`);
  const argv = [...NICE, process.execPath, path.join(__dirname, 'run-exec.js'), fixture.dir];
  const r = spawnSync(argv[0], argv.slice(1), {
    env: { ...process.env, CLOUDROOTFS_DIST: DIST },
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`run-exec failed: ${r.stderr}`);
  results.run = JSON.parse(r.stdout.trim().split('\n').pop());
}

/** A docker-registry on a free loopback port, storage on tmpfs. */
async function startRegistry(name) {
  const dir = path.join(WORK, name);
  fs.mkdirSync(dir, { recursive: true });
  const port = await new Promise((resolve, reject) => {
    const srv = require('node:net').createServer();
    srv.listen(0, '127.0.0.1', () => {
      const p = srv.address().port;
      srv.close(() => resolve(p));
    });
    srv.on('error', reject);
  });
  const config = path.join(dir, 'config.yml');
  fs.writeFileSync(
    config,
    [
      'version: 0.1',
      'log:',
      '  level: error',
      '  accesslog:',
      '    disabled: true',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${JSON.stringify(path.join(dir, 'storage'))}`,
      '  delete:',
      '    enabled: true',
      'http:',
      `  addr: 127.0.0.1:${port}`,
      '',
    ].join('\n'),
  );
  const child = spawn('docker-registry', ['serve', config], { stdio: 'ignore' });
  const kill = () => child.kill('SIGKILL');
  process.once('exit', kill);
  const host = `127.0.0.1:${port}`;
  const stop = () =>
    new Promise((resolve) => {
      process.removeListener('exit', kill);
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    }).then(() => rm(dir));
  for (let i = 0; i < 200; i++) {
    try {
      const res = await fetch(`http://${host}/v2/`);
      if (res.status === 200) return { host, stop };
    } catch {
      /* not yet listening */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  kill();
  throw new Error('docker-registry did not start');
}

/**
 * Push the stored image with cloudrootfs and with skopeo. Each run gets a fresh registry (a new
 * port), so no tool can mount blobs it pushed in an earlier run (skopeo remembers blob locations
 * across runs in its blob-info cache), and the two tools take turns going first.
 */
async function runPush(runs, results) {
  const store = path.join(WORK, 'store-default-0');
  if (!fs.existsSync(store)) throw new Error('push needs the build section (its first store)');
  for (let i = 0; i < runs; i++) {
    log(`push run ${i + 1}/${runs} (load ${loadAverage()})`);
    const registry = await startRegistry(`registry-${i}`);
    try {
      const ours = () =>
        (results.rows['push-ours'] ??= []).push(timed(cli(['push', '-q', '--store', store, 'bench:v1', `docker://${registry.host}/bench/ours:v1`])));
      const skopeo = () =>
        (results.rows['push-skopeo'] ??= []).push(
          timed(['skopeo', 'copy', '--quiet', '--dest-tls-verify=false', `oci:${store}:docker.io/library/bench:v1`, `docker://${registry.host}/bench/skopeo:v1`]),
        );
      if (i % 2 === 0) {
        ours();
        skopeo();
      } else {
        skopeo();
        ours();
      }
    } finally {
      await registry.stop();
    }
  }
}

/**
 * Pull the bench image from a loopback registry (pushed there once) into a new store with
 * cloudrootfs, and into a new OCI layout with skopeo; the two take turns going first. Each output
 * is removed after its run, so no run finds a blob an earlier one wrote.
 */
async function runPull(runs, results) {
  const store = path.join(WORK, 'store-default-0');
  if (!fs.existsSync(store)) throw new Error('pull needs the build section (its first store)');
  const registry = await startRegistry('registry-pull');
  try {
    const ref = `docker://${registry.host}/bench/pull:v1`;
    execFileSync('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${store}:docker.io/library/bench:v1`, ref]);
    for (let i = 0; i < runs; i++) {
      log(`pull run ${i + 1}/${runs} (load ${loadAverage()})`);
      const ourStore = path.join(WORK, `pull-store-${i}`);
      const layout = path.join(WORK, `pull-layout-${i}`);
      const ours = () => {
        rm(ourStore);
        (results.rows['pull-ours'] ??= []).push(timed(cli(['pull', '-q', '--store', ourStore, ref])));
        rm(ourStore);
      };
      const skopeo = () => {
        rm(layout);
        (results.rows['pull-skopeo'] ??= []).push(timed(['skopeo', 'copy', '--quiet', '--src-tls-verify=false', ref, `oci:${layout}:v1`]));
        rm(layout);
      };
      if (i % 2 === 0) {
        ours();
        skopeo();
      } else {
        skopeo();
        ours();
      }
    }
  } finally {
    await registry.stop();
  }
}

// --------------------------------------------------------------------------------------- report

const LABELS = {
  'ours-cold': 'cloudrootfs build+save, cold, default (gzip level 4)',
  'ours-cold-nocache': 'the same with `--no-cache` (what the cache costs a cold build)',
  'ours-cold-fast': 'cloudrootfs build+save, cold, fastest (`--level 1 --no-cache`)',
  'ours-cold-l2': 'cloudrootfs build+save, cold, `--level 2`',
  'ours-cold-l3': 'cloudrootfs build+save, cold, `--level 3`',
  'ours-cold-l4': 'cloudrootfs build+save, cold, `--level 4`',
  'ours-cold-l5': 'cloudrootfs build+save, cold, `--level 5`',
  'ours-cold-l6': 'cloudrootfs build+save, cold, `--level 6` (zlib\'s customary level)',
  gzip6: '`tar | gzip -6 | sha256sum`',
  pigz: '`tar | pigz -p2 -6`',
  umoci: '`umoci insert` (peer)',
  'ours-nochange': 'cloudrootfs rebuild, nothing changed',
  'ours-onefile': 'cloudrootfs rebuild, one file of etc/ changed',
  'push-ours': 'cloudrootfs push (loopback registry)',
  'push-skopeo': '`skopeo copy` oci: → registry',
  'pull-ours': 'cloudrootfs pull registry → new store (every layer checked)',
  'pull-skopeo': '`skopeo copy` registry → oci: (blobs hashed)',
};

function summarize(results) {
  const s = {};
  for (const [name, list] of Object.entries(results.rows)) {
    s[name] = {
      runs: list.length,
      wall: median(list.map((r) => r.wall)),
      cpu: median(list.map((r) => r.cpu)),
      rss: Math.max(...list.map((r) => r.rss)),
      size: median(list.map((r) => r.size)),
      spread: list.length > 1 ? Math.max(...list.map((r) => r.wall)) - Math.min(...list.map((r) => r.wall)) : 0,
    };
  }
  if (s.gzip6 && results.sizes.gzip6) s.gzip6.size = results.sizes.gzip6;
  return s;
}

function fmt(x, digits = 2) {
  return x === undefined || Number.isNaN(x) ? '–' : x.toFixed(digits);
}

function targets(s, results) {
  const out = [];
  const t = (name, ok, text) => out.push({ name, ok, text });
  if (s['ours-cold'] && s.gzip6) {
    const r = s['ours-cold'].wall / s.gzip6.wall;
    t('cold build+save ≤ 0.30 × tar|gzip -6|sha256sum', r <= 0.3, `${fmt(r, 3)}×`);
  }
  if (s['ours-cold'] && s.umoci) {
    const r = s['ours-cold'].wall / s.umoci.wall;
    t('cold build+save ≤ 1.5 × umoci insert', r <= 1.5, `${fmt(r, 3)}× (CPU ${fmt(s['ours-cold'].cpu / s.umoci.cpu, 2)}×)`);
  }
  if (s['ours-cold-fast'] && s.umoci) {
    const r = s['ours-cold-fast'].wall / s.umoci.wall;
    const sz = s['ours-cold-fast'].size / s.umoci.size;
    t('fastest setting no slower than umoci', r <= 1, `${fmt(r, 3)}× the time (CPU ${fmt(s['ours-cold-fast'].cpu / s.umoci.cpu, 2)}×)`);
    t('fastest setting output ≤ 1.05 × umoci', sz <= 1.05, `${fmt(sz, 3)}× the size`);
  }
  const rss = Math.max(...['ours-cold', 'ours-cold-fast', 'ours-nochange', 'ours-onefile', 'push-ours', 'pull-ours'].filter((n) => s[n]).map((n) => s[n].rss));
  if (Number.isFinite(rss)) t('peak RSS ≤ 200 MiB', rss <= 200, `${fmt(rss, 0)} MiB`);
  if (s['ours-nochange'] && s['ours-cold']) {
    const r = s['ours-nochange'].wall / s['ours-cold'].wall;
    t('no-change rebuild ≤ 10% of cold', r <= 0.1, `${fmt(r * 100, 1)}%`);
  }
  if (s['ours-onefile']) t('one etc/ change recompresses only its layer', true, 'checked on every run');
  if (results.rootfs) t('diff of shared 100k Rootfs ≥ 50× faster than independent', results.rootfs.speedup >= 50, `${fmt(results.rootfs.speedup, 1)}×`);
  // Writing and reading back the tree is the same code for both executors: what differs is the
  // launch (bwrap, then sh), so that median is the sandbox's cost per RUN (totals carry the noise
  // of writing the tree twice).
  for (const row of results.run?.rows ?? []) {
    t(`sandbox adds ≤ 50 ms per RUN: ${row.name}`, row.launchOverheadMs <= 50, `${fmt(row.launchOverheadMs, 1)} ms launch (whole RUN ${fmt(row.hostMs, 1)} → ${fmt(row.sandboxMs, 1)} ms)`);
    if (row.bytes) {
      const r = row.sandboxWriteMs / row.hostWriteMs;
      t(`writing ${fmt(row.bytes / MB, 0)} MB for a RUN costs no more than before (±10%)`, r <= 1.1, `${fmt(row.sandboxWriteMs, 0)} ms against ${fmt(row.hostWriteMs, 0)} ms (${fmt(r, 2)}×)`);
    }
  }
  if (s['push-ours'] && s['push-skopeo']) {
    const r = s['push-ours'].wall / s['push-skopeo'].wall;
    t('push at least as fast as skopeo copy', r <= 1, `${fmt(r, 3)}× skopeo's time`);
  }
  if (s['pull-ours'] && s['pull-skopeo']) {
    const r = s['pull-ours'].wall / s['pull-skopeo'].wall;
    t('pull into the store ≤ 2.0 × skopeo copy to a layout', r <= 2, `${fmt(r, 3)}× skopeo's time (CPU ${fmt(s['pull-ours'].cpu / s['pull-skopeo'].cpu, 2)}×)`);
  }
  return out;
}

function markdown(results) {
  const s = summarize(results);
  const f = results.fixture;
  const base = s.gzip6?.wall;
  const lines = [];
  lines.push(`Fixture: ${fmt(f.bytes / MB, 0)} MB in ${f.files} files and ${f.dirs} directories (executables ${fmt(f.binaries / MB, 0)} MB, registry blobs ${fmt(f.registryBytes / MB, 0)} MB in ${f.blobs} blobs); tar ${fmt((results.sizes.tar ?? 0) / MB, 0)} MB.`);
  lines.push(
    `Runs: ${results.runs} (medians; RSS is the largest seen)${results.nice !== undefined ? `, every command under \`nice -n ${results.nice}\`` : ''}. Load average before/after: ${results.loadBefore} / ${results.loadAfter}.`,
  );
  lines.push('');
  lines.push('| | wall s (median) | spread s | CPU s | peak RSS MiB | output MB | time ÷ gzip pipeline | time ÷ umoci | CPU ÷ umoci |');
  lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const name of Object.keys(LABELS)) {
    const r = s[name];
    if (!r) continue;
    lines.push(
      `| ${LABELS[name].replace(/\|/g, '\\|')} | ${fmt(r.wall)} | ${fmt(r.spread)} | ${fmt(r.cpu)} | ${fmt(r.rss, 0)} | ${r.size ? fmt(r.size / MB, 1) : '–'} | ${base && !/^pu(sh|ll)-/.test(name) ? fmt(r.wall / base, 3) : '–'} | ${s.umoci && !/^pu(sh|ll)-/.test(name) ? fmt(r.wall / s.umoci.wall, 3) : '–'} | ${s.umoci && !/^pu(sh|ll)-/.test(name) ? fmt(r.cpu / s.umoci.cpu, 3) : '–'} |`,
    );
  }
  if (results.rootfs) {
    const r = results.rootfs;
    lines.push('');
    lines.push(`100k-entry Rootfs (${r.entries} entries, ${r.changes} changed; ${r.warmup} warm-up + ${r.runs} runs (shared diff: ${r.sharedRuns}), medians):`);
    lines.push('');
    lines.push('| operation | ms |');
    lines.push('|---|---:|');
    lines.push(`| build (fromEntries) | ${fmt(r.buildMs, 1)} |`);
    lines.push(`| walk | ${fmt(r.walkMs, 1)} |`);
    lines.push(`| diff, shared structure | ${fmt(r.diffSharedMs, 2)} |`);
    lines.push(`| diff, independent copies | ${fmt(r.diffIndependentMs, 1)} |`);
    lines.push(`| ratio | ${fmt(r.speedup, 1)}× |`);
  }
  if (results.run) {
    const r = results.run;
    lines.push('');
    lines.push(`RUN through the host shell and the sandbox (\`executor.run()\`: write the tree, run, read it back; medians of ${r.runs} interleaved runs, ${r.bigRuns} over the fixture):`);
    lines.push('');
    lines.push('| RUN | host shell ms | sandbox ms | sandbox adds ms | of which launch ms | writing the tree ms (host / sandbox) | CPU of the launched processes ms (host / sandbox) |');
    lines.push('|---|---:|---:|---:|---:|---:|---:|');
    for (const row of r.rows) {
      lines.push(
        `| ${row.name} | ${fmt(row.hostMs, 1)} | ${fmt(row.sandboxMs, 1)} | ${fmt(row.overheadMs, 1)} | ${fmt(row.launchOverheadMs, 1)} | ${fmt(row.hostWriteMs, 1)} / ${fmt(row.sandboxWriteMs, 1)} | ${fmt(row.hostChildCpuMs, 1)} / ${fmt(row.sandboxChildCpuMs, 1)} |`,
      );
    }
  }
  lines.push('');
  lines.push('| target | result | |');
  lines.push('|---|---|---|');
  for (const t of targets(s, results)) lines.push(`| ${t.name.replace(/\|/g, '\\|')} | ${t.text} | ${t.ok ? 'met' : '**missed**'} |`);
  return lines.join('\n');
}

// ----------------------------------------------------------------------------------------- main

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const only = (section) => !args.only || args.only.has(section);
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build (npm run bench does)`);
  const missing = ensureTools(args.install);
  if (missing.length > 0) throw new Error(`missing tools: ${missing.join(', ')}`);
  fs.mkdirSync(CACHE, { recursive: true });
  rm(WORK);
  fs.mkdirSync(WORK, { recursive: true });
  const fixture = ensureFixture({ cacheDir: CACHE, size: args.size, examples: path.join(ROOT, 'examples', 'cloudrootfs'), log });
  // Warm the page cache: every tool then reads the tree from memory.
  execFileSync('sh', ['-c', `tar -C ${q(fixture.dir)} -cf - . > /dev/null`]);

  if (args.nice !== undefined) NICE = ['nice', '-n', String(args.nice)];
  const results = { machine: machine(), fixture, runs: args.runs, nice: args.nice, rows: {}, sizes: {}, loadBefore: loadAverage(), started: new Date().toISOString() };
  try {
    if (only('build') || only('tools')) runBuildAndTools(fixture, args.runs, only, results, args.levels);
    if (only('rootfs')) runRootfsOps(results);
    if (only('run')) runRunExec(fixture, results);
    if (only('push') && only('build')) await runPush(args.runs, results);
    if (only('pull') && only('build')) await runPull(args.runs, results);
  } finally {
    results.loadAfter = loadAverage();
    rm(WORK);
  }
  results.summary = summarize(results);
  results.targets = targets(results.summary, results);
  const md = markdown(results);
  const tag = `${Math.round(args.size / MB)}mb`;
  fs.writeFileSync(path.join(CACHE, `results-${tag}.json`), JSON.stringify(results, (k, v) => (k === 'stdout' || k === 'stderr' ? undefined : v), 2));
  fs.writeFileSync(path.join(CACHE, `results-${tag}.md`), md + '\n');
  const m = results.machine;
  console.log(`Machine: ${m.cpu}, ${m.cores} cores, ${m.memGiB} GiB, Linux ${m.kernel}, Node ${m.node} (zlib ${m.zlib}); outputs on ${m.tmpfs}.\n`);
  console.log(md);
}

main().catch((err) => {
  console.error(err instanceof Error ? err.stack : err);
  rm(WORK);
  process.exit(1);
});
