#!/usr/bin/env node
/**
 * Layer reading speed: `readLayerBlob` (both digests, every entry, the Layer built) on synthetic
 * layers, the median of --runs whole-process runs per layer, interleaved:
 *
 * - `small-plain`: 100,000 files of 0–2 KiB, an uncompressed tar on disk (header parsing dominates);
 * - `small-gzip`: the same tar gzip'd (level 6);
 * - `big-gzip`: 4 files of 48 MiB of pseudo-random bytes, gzip'd (level 1; hashing and gunzip dominate).
 *
 *   npm run build && node bench/read-layers.js [--runs 7]
 *   CLOUDROOTFS_DIST=/other/dist,dist node bench/read-layers.js   # builds side by side, runs interleaved
 *
 * Fixtures are written once to bench/.cache/read-layers/.
 */
'use strict';
const { spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const zlib = require('node:zlib');

const ROOT = path.resolve(__dirname, '..');
const DISTS = (process.env.CLOUDROOTFS_DIST || path.join(ROOT, 'dist')).split(',').map((d) => path.resolve(ROOT, d));
const CACHE = path.join(__dirname, '.cache', 'read-layers');

function header(name, size, type = '0') {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, 'utf8');
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(size.toString(8).padStart(11, '0') + '\0', 124);
  h.write('14000000000\0', 136);
  h.write(type, 156);
  h.write('ustar\x0000', 257);
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const c of h) sum += c;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  return h;
}

function writeTar(file, entries) {
  const fd = fs.openSync(file, 'w');
  for (const [name, data] of entries()) {
    fs.writeSync(fd, header(name, data.length));
    fs.writeSync(fd, data);
    const pad = (512 - (data.length % 512)) % 512;
    if (pad) fs.writeSync(fd, Buffer.alloc(pad));
  }
  fs.writeSync(fd, Buffer.alloc(1024));
  fs.closeSync(fd);
}

function prng(seed) {
  const cipher = crypto.createCipheriv('aes-256-ctr', crypto.createHash('sha256').update(seed).digest(), Buffer.alloc(16));
  return (n) => cipher.update(Buffer.alloc(n));
}

function fixtures() {
  fs.mkdirSync(CACHE, { recursive: true });
  const small = path.join(CACHE, 'small.tar');
  if (!fs.existsSync(small)) {
    const bytes = prng('small');
    writeTar(small, function* () {
      for (let i = 0; i < 100_000; i++) yield [`d${Math.floor(i / 1000)}/file-${i}.txt`, bytes(bytes(2).readUInt16LE(0) % 2048)];
    });
  }
  const smallGz = path.join(CACHE, 'small.tar.gz');
  if (!fs.existsSync(smallGz)) fs.writeFileSync(smallGz, zlib.gzipSync(fs.readFileSync(small), { level: 6 }));
  const bigGz = path.join(CACHE, 'big.tar.gz');
  if (!fs.existsSync(bigGz)) {
    const big = path.join(CACHE, 'big.tar');
    const bytes = prng('big');
    writeTar(big, function* () {
      for (let i = 0; i < 4; i++) yield [`big-${i}.bin`, bytes(48 << 20)];
    });
    fs.writeFileSync(bigGz, zlib.gzipSync(fs.readFileSync(big), { level: 1 }));
    fs.unlinkSync(big);
  }
  return { 'small-plain': small, 'small-gzip': smallGz, 'big-gzip': bigGz };
}

/** One timed read in this process (the child side). */
async function child(dist, file) {
  const lib = require(path.join(dist, 'lib', 'index.js'));
  const nodefs = require('node:fs');
  const size = nodefs.statSync(file).size;
  const blob = { size, source: file, file: { fs: nodefs, path: file, offset: 0 }, open: () => nodefs.createReadStream(file, { highWaterMark: 1 << 20 }) };
  const start = process.hrtime.bigint();
  // 100,000 files in 100 implied directories: past the default entry bound, which is not measured here.
  const read = await lib.readLayerBlob(blob, { expectedSize: size, maxEntries: 1_000_000 });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  process.stdout.write(JSON.stringify({ ms, entries: read.entries, maxRssMiB: process.resourceUsage().maxRSS / 1024 }) + '\n');
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function main() {
  const runsAt = process.argv.indexOf('--runs');
  const runs = runsAt > 0 ? Number(process.argv[runsAt + 1]) : 7;
  const files = fixtures();
  const results = new Map();
  // Interleaved (run 1 of every layer and build, then run 2…): load from other processes spreads over all rows.
  for (let r = 0; r < runs; r++) {
    for (const dist of DISTS) {
      for (const [name, file] of Object.entries(files)) {
        const out = spawnSync(process.execPath, [__filename, '--child', dist, file], { encoding: 'utf8' });
        if (out.status !== 0) throw new Error(`${name}: ${out.stderr}`);
        const key = `${dist}\t${name}`;
        if (!results.has(key)) results.set(key, []);
        results.get(key).push(JSON.parse(out.stdout));
      }
    }
  }
  console.log(`load average after: ${require('node:os').loadavg().map((x) => x.toFixed(2)).join(' ')}; ${runs} runs`);
  console.log('| build | layer | entries | median ms | min ms | max ms | peak RSS MiB |');
  console.log('|---|---|---:|---:|---:|---:|---:|');
  for (const [key, rs] of results) {
    const [dist, name] = key.split('\t');
    const ms = rs.map((x) => x.ms);
    console.log(`| ${dist} | ${name} | ${rs[0].entries} | ${median(ms).toFixed(0)} | ${Math.min(...ms).toFixed(0)} | ${Math.max(...ms).toFixed(0)} | ${Math.max(...rs.map((x) => x.maxRssMiB)).toFixed(0)} |`);
  }
}

if (process.argv[2] === '--child') child(process.argv[3], process.argv[4]).catch((err) => {
  console.error(err);
  process.exit(1);
});
else main();
