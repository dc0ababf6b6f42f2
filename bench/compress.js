#!/usr/bin/env node
/**
 * Micro-benchmark of the layer compressors (lib/compress) on ~200 MB of mixed data: text, ELF
 * binaries from /usr/bin and already-gzipped blobs, the mix a CloudRootfs layer carries.
 *
 *   npx tsc -p tsconfig.build.json && node bench/compress.js
 *   CLOUDROOTFS_DIST=/other/dist RUNS=5 node bench/compress.js
 *   sudo nice -n -15 node bench/compress.js     # on a machine others are using (see docs/compression.md)
 *
 * Every configuration runs RUNS times (default 3), each in a fresh Node process; the table shows
 * medians. Corpus and outputs go to /dev/shm when it exists (tmpfs keeps disk stalls out of the
 * figures), else to the OS temp dir. Not run by jest (plain .js, outside spec/).
 */
'use strict';
const { spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const zlib = require('node:zlib');

const MiB = 1 << 20;
const DIST = process.env.CLOUDROOTFS_DIST || path.resolve(__dirname, '..', 'dist');
const OUT = path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'cloudrootfs-bench-compress');
const RUNS = Number(process.env.RUNS || 3);
const CORPUS = path.join(OUT, 'corpus.bin');
const CORPUS_INDEX = path.join(OUT, 'corpus.json');
const CORPUS_VERSION = 1;

/* ------------------------------------------------------------------ corpus */

function walk(dir, out = []) {
  let names;
  try {
    names = fs.readdirSync(dir).sort();
  } catch {
    return out;
  }
  for (const name of names) {
    const p = path.join(dir, name);
    const st = fs.lstatSync(p);
    if (st.isDirectory()) walk(p, out);
    else if (st.isFile()) out.push({ path: p, size: st.size });
  }
  return out;
}

function head(p, n = 6) {
  const fd = fs.openSync(p, 'r');
  try {
    const b = Buffer.alloc(n);
    const got = fs.readSync(fd, b, 0, n, 0);
    return b.subarray(0, got);
  } finally {
    fs.closeSync(fd);
  }
}

const isElf = (h) => h.length >= 4 && h[0] === 0x7f && h[1] === 0x45 && h[2] === 0x4c && h[3] === 0x46;
const isGzip = (h) => h.length >= 3 && h[0] === 0x1f && h[1] === 0x8b && h[2] === 8;

/** Takes files from `files` (sorted) until `budget` bytes, skipping files above `maxFile`. */
function take(files, budget, maxFile, accept) {
  const chosen = [];
  let total = 0;
  for (const f of files) {
    if (total >= budget) break;
    if (f.size === 0 || f.size > maxFile || !accept(f)) continue;
    chosen.push(f);
    total += f.size;
  }
  return chosen;
}

/**
 * Builds the corpus as a tar-like stream: a 512-byte header (name + size) before each file, the
 * file padded to 512. Gzipped blobs (real gzip -1 output of shared libraries, as registry blobs
 * are) are marked as store ranges, exactly what the layer writer's sniffing would mark.
 */
function buildCorpus() {
  fs.mkdirSync(OUT, { recursive: true });
  const text = take(
    [...walk('/usr/include'), ...walk('/usr/lib/python3'), ...walk('/usr/share/perl')],
    50 * MiB,
    4 * MiB,
    (f) => /\.(h|hpp|py|pm|pl|txt|rst|md|cfg|ini)$/.test(f.path),
  );
  const elf = take(walk('/usr/bin'), 100 * MiB, 40 * MiB, (f) => isElf(head(f.path)));
  const libs = take(walk('/usr/lib/x86_64-linux-gnu'), 150 * MiB, 20 * MiB, (f) => isElf(head(f.path)));
  const entries = [];
  for (const f of text) entries.push({ kind: 'text', name: f.path, data: () => fs.readFileSync(f.path) });
  for (const f of elf) entries.push({ kind: 'elf', name: f.path, data: () => fs.readFileSync(f.path) });
  let gzBytes = 0;
  for (const f of libs) {
    if (gzBytes >= 50 * MiB) break;
    const blob = zlib.gzipSync(fs.readFileSync(f.path), { level: 1 });
    gzBytes += blob.length;
    entries.push({ kind: 'gzip', name: `blobs/sha256/${crypto.createHash('sha256').update(blob).digest('hex')}/data`, data: () => blob });
  }
  // Interleave like a real tree (sorted names), not three solid runs.
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

  const fd = fs.openSync(CORPUS, 'w');
  const hash = crypto.createHash('sha256');
  const ranges = [];
  const bytes = { text: 0, elf: 0, gzip: 0, framing: 0 };
  let offset = 0;
  const put = (buf) => {
    fs.writeSync(fd, buf);
    hash.update(buf);
    offset += buf.length;
  };
  for (const e of entries) {
    const data = e.data();
    const header = Buffer.alloc(512);
    header.write(`${e.name.slice(-400)}\0${data.length}`);
    put(header);
    const start = offset;
    put(data);
    if (isGzip(data)) ranges.push([start, offset]);
    bytes[e.kind] += data.length;
    const pad = (512 - (data.length % 512)) % 512;
    put(Buffer.alloc(pad));
    bytes.framing += 512 + pad;
  }
  put(Buffer.alloc(1024));
  bytes.framing += 1024;
  fs.closeSync(fd);
  const index = { version: CORPUS_VERSION, size: offset, sha256: hash.digest('hex'), files: entries.length, bytes, storeRanges: ranges };
  fs.writeFileSync(CORPUS_INDEX, JSON.stringify(index));
  return index;
}

function loadCorpus() {
  try {
    const index = JSON.parse(fs.readFileSync(CORPUS_INDEX, 'utf8'));
    if (index.version === CORPUS_VERSION && fs.statSync(CORPUS).size === index.size) return index;
  } catch {
    /* build it */
  }
  return buildCorpus();
}

/* ------------------------------------------------------------------ child: one encode */

/** The baseline: Node's own zlib.createGzip stream (1 MiB chunks), behind the Encoder interface. */
function plainCreateGzip(sink, level) {
  const gz = zlib.createGzip({ level, chunkSize: MiB });
  let outputSize = 0;
  const pumped = (async () => {
    for await (const chunk of gz) {
      outputSize += chunk.length;
      await sink(chunk);
    }
  })();
  return {
    async write(data) {
      if (!gz.write(data)) await new Promise((resolve) => gz.once('drain', resolve));
    },
    async end() {
      gz.end();
      await pumped;
      return { outputSize };
    },
  };
}

async function child(config) {
  const compress = require(path.join(DIST, 'lib', 'compress'));
  const index = JSON.parse(fs.readFileSync(CORPUS_INDEX, 'utf8'));
  const ranges = config.store ? index.storeRanges : [];
  const outFile = path.join(OUT, `out-${process.pid}.gz`);
  const out = await fs.promises.open(outFile, 'w');
  const inHash = config.hash ? new compress.DigestCounter() : undefined;
  const outHash = config.hash ? new compress.DigestCounter() : undefined;
  const sink = async (chunk) => {
    outHash?.update(chunk);
    await out.write(chunk);
  };
  const encoder =
    config.engine === 'createGzip'
      ? plainCreateGzip(sink, config.level)
      : config.engine === 'stream'
        ? new compress.GzipEncoder(sink, { level: config.level })
        : new compress.ParallelGzipEncoder(sink, { level: config.level, concurrency: config.concurrency });

  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  let offset = 0;
  let r = 0; // next store range that ends after `offset`
  for await (const chunk of fs.createReadStream(CORPUS, { highWaterMark: MiB })) {
    let at = 0;
    while (at < chunk.length) {
      while (r < ranges.length && ranges[r][1] <= offset + at) r++;
      const range = ranges[r];
      let end = chunk.length;
      let store = false;
      if (range && range[0] <= offset + at) {
        store = true;
        end = Math.min(end, range[1] - offset);
      } else if (range) {
        end = Math.min(end, range[0] - offset);
      }
      const piece = chunk.subarray(at, end);
      inHash?.update(piece);
      await encoder.write(piece, store ? { store: true } : undefined);
      at = end;
    }
    offset += chunk.length;
  }
  const summary = await encoder.end();
  await out.close();
  inHash?.digest();
  outHash?.digest();
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);

  // Verification, outside the timed part: the output must gunzip to the corpus.
  let verified = false;
  if (config.verify) {
    const h = crypto.createHash('sha256');
    for await (const c of fs.createReadStream(outFile, { highWaterMark: MiB }).pipe(zlib.createGunzip({ chunkSize: MiB }))) h.update(c);
    verified = h.digest('hex') === index.sha256;
  }
  const outDigest = crypto.createHash('sha256');
  for await (const c of fs.createReadStream(outFile, { highWaterMark: MiB })) outDigest.update(c);
  fs.rmSync(outFile);
  process.stdout.write(
    JSON.stringify({
      wall,
      cpu: (cpu.user + cpu.system) / 1e6,
      rssMiB: process.resourceUsage().maxRSS / 1024,
      outSize: summary.outputSize,
      outDigest: outDigest.digest('hex'),
      verified,
    }),
  );
}

/* ------------------------------------------------------------------ parent */

function runNode(config, verify) {
  const r = spawnSync(process.execPath, [__filename, '--child', JSON.stringify({ ...config, verify })], {
    encoding: 'utf8',
    maxBuffer: 16 * MiB,
  });
  if (r.status !== 0) throw new Error(`child failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

function runPigz(config, index, verify) {
  const outFile = path.join(OUT, 'out-pigz.gz');
  const fd = fs.openSync(outFile, 'w');
  const r = spawnSync('/usr/bin/time', ['-f', '%e %U %S %M', 'pigz', `-p${config.concurrency}`, `-${config.level}`, '-c', CORPUS], {
    stdio: ['ignore', fd, 'pipe'],
    encoding: 'utf8',
  });
  fs.closeSync(fd);
  if (r.status !== 0) throw new Error(`pigz failed: ${r.stderr}`);
  const [wall, user, sys, rssKiB] = r.stderr.trim().split('\n').pop().split(' ').map(Number);
  let verified = false;
  if (verify) {
    const g = spawnSync('sh', ['-c', `gzip -dc '${outFile}' | sha256sum`], { encoding: 'utf8' });
    verified = g.stdout.split(' ')[0] === index.sha256;
  }
  const outSize = fs.statSync(outFile).size;
  fs.rmSync(outFile);
  return { wall, cpu: user + sys, rssMiB: rssKiB / 1024, outSize, verified };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Busy CPU seconds of the whole machine so far (all processes), from /proc/stat. */
function machineBusySeconds() {
  const [, ...fields] = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/);
  const [user, nice, system, , , irq, softirq, steal] = fields.map(Number);
  return (user + nice + system + irq + softirq + steal) / 100; // USER_HZ is 100 on Linux
}

/** CPU seconds of this process plus its finished children (utime, stime, cutime, cstime). */
function ownAndChildrenSeconds() {
  const stat = fs.readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return fields.slice(11, 15).map(Number).reduce((a, b) => a + b, 0) / 100;
}

const MAX_FOREIGN_CPU = Number(process.env.MAX_FOREIGN_CPU || 0.1);

function sleepSeconds(seconds) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, seconds * 1000);
}

const QUIET_WAIT_S = Number(process.env.QUIET_WAIT_S ?? 60);

/** Waits (up to QUIET_WAIT_S seconds) until the machine has been idle for two one-second samples. */
function waitForQuiet() {
  if (!canWatch) return;
  let quiet = 0;
  for (let waited = 0; waited < QUIET_WAIT_S && quiet < 2; waited++) {
    const busy0 = machineBusySeconds();
    sleepSeconds(1);
    quiet = machineBusySeconds() - busy0 <= MAX_FOREIGN_CPU ? quiet + 1 : 0;
  }
}
const canWatch = fs.existsSync('/proc/stat') && fs.existsSync('/proc/self/stat');

/**
 * Runs one measurement and repeats it (up to 8 times) while other processes on the machine used
 * more than MAX_FOREIGN_CPU of a core on average meanwhile: on a shared machine someone's test
 * run would otherwise land in the figures. Foreign CPU = machine busy time minus ours and our
 * children's, over the wall time of the whole child process.
 */
function measured(run) {
  let result;
  for (let attempt = 0; attempt < 8; attempt++) {
    waitForQuiet();
    const busy0 = canWatch ? machineBusySeconds() : 0;
    const own0 = canWatch ? ownAndChildrenSeconds() : 0;
    const t0 = process.hrtime.bigint();
    result = run();
    const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
    const foreign = canWatch ? machineBusySeconds() - busy0 - (ownAndChildrenSeconds() - own0) : 0;
    result.foreignCpu = Math.max(0, foreign) / elapsed;
    result.retries = attempt;
    if (result.foreignCpu <= MAX_FOREIGN_CPU) break;
    console.error(`  retry: other processes used ${result.foreignCpu.toFixed(2)} CPU during the run`);
  }
  return result;
}

function main() {
  const index = loadCorpus();
  const mb = index.size / 1e6;
  console.log(
    `corpus ${CORPUS}: ${index.size} B (${mb.toFixed(1)} MB), ${index.files} files, sha256 ${index.sha256.slice(0, 16)}; ` +
      `text ${(index.bytes.text / 1e6).toFixed(1)} MB, ELF ${(index.bytes.elf / 1e6).toFixed(1)} MB, gzip blobs ${(index.bytes.gzip / 1e6).toFixed(1)} MB`,
  );
  console.log(
    `node ${process.version}, zlib ${process.versions.zlib}, ${os.availableParallelism()} CPUs, nice ${os.getPriority()}, ` +
      `${RUNS} runs each (median), a run is redone while others use > ${MAX_FOREIGN_CPU} CPU\n`,
  );
  const configs = [];
  for (const level of [1, 6]) {
    configs.push({ name: `zlib.createGzip L${level} (plain Node stream)`, engine: 'createGzip', level });
    configs.push({ name: `GzipEncoder L${level} (one deflate stream)`, engine: 'stream', level });
    for (const concurrency of [1, 2, 3]) configs.push({ name: `ParallelGzipEncoder L${level} c${concurrency}`, engine: 'pgzip', level, concurrency });
    configs.push({ name: `ParallelGzipEncoder L${level} c2 + store blobs`, engine: 'pgzip', level, concurrency: 2, store: true });
    configs.push({ name: `ParallelGzipEncoder L${level} c2 + store + sha256 in/out`, engine: 'pgzip', level, concurrency: 2, store: true, hash: true });
    configs.push({ name: `pigz -p2 -${level}`, engine: 'pigz', level, concurrency: 2 });
  }
  configs.push({ name: 'GzipEncoder L1 + store blobs (params)', engine: 'stream', level: 1, store: true });
  configs.push({ name: 'GzipEncoder L6 + store blobs (params)', engine: 'stream', level: 6, store: true });

  // Rounds: every configuration once per round, so a passing disturbance hits all rows alike.
  const runs = configs.map(() => []);
  for (let round = 0; round < RUNS; round++) {
    configs.forEach((config, i) => {
      const verify = round === 0;
      runs[i].push(measured(() => (config.engine === 'pigz' ? runPigz(config, index, verify) : runNode(config, verify))));
    });
    console.error(`round ${round + 1}/${RUNS} done`);
  }
  const rows = [];
  console.log('| configuration | wall s (median) | MB/s | best wall s | CPU s | out % | peak RSS MiB | spread % | others\' CPU | gunzip = input |');
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  configs.forEach((config, i) => {
    const rs = runs[i];
    const walls = rs.map((x) => x.wall);
    const row = {
      name: config.name,
      wall: median(walls),
      best: Math.min(...walls),
      foreignCpu: Math.max(...rs.map((x) => x.foreignCpu)),
      spreadPct: (100 * (Math.max(...walls) - Math.min(...walls))) / median(walls),
      cpu: median(rs.map((x) => x.cpu)),
      rssMiB: median(rs.map((x) => x.rssMiB)),
      outSize: rs[0].outSize,
      verified: rs[0].verified,
      distinctDigests: new Set(rs.map((x) => x.outDigest)).size,
    };
    rows.push(row);
    console.log(
      `| ${row.name} | ${row.wall.toFixed(2)} | ${(mb / row.wall).toFixed(1)} | ${row.best.toFixed(2)} | ${row.cpu.toFixed(2)} | ` +
        `${((100 * row.outSize) / index.size).toFixed(2)} | ${row.rssMiB.toFixed(0)} | ${row.spreadPct.toFixed(0)} | ${row.foreignCpu.toFixed(2)} | ${row.verified ? 'yes' : 'NO'} |`,
    );
  });
  fs.writeFileSync(path.join(OUT, 'results.json'), JSON.stringify({ corpus: { ...index, storeRanges: index.storeRanges.length }, node: process.version, zlib: process.versions.zlib, rows }, null, 2));
  console.log(`\nresults: ${path.join(OUT, 'results.json')}`);
}

if (process.argv[2] === '--child') {
  child(JSON.parse(process.argv[3])).catch((error) => {
    console.error(error);
    process.exit(1);
  });
} else {
  main();
}
