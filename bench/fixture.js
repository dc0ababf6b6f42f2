/**
 * The bench fixture: a CloudRootfs laid out as sealer expects (`bin/`, `cri/`, `etc/`, `scripts/`,
 * `registry/docker/registry/v2`), made of
 * - REAL executables: the Debian packages containerd, docker.io, runc and kubernetes-client,
 *   fetched with `apt-get download` and unpacked with `dpkg-deb -x` (about 297 MB of Go binaries);
 * - a registry of already-compressed blobs: real gzip output of pseudo-random data, deterministic
 *   from a seed, log-uniform sizes from 1 KiB to 30 MiB, content-addressed as distribution stores
 *   them, with the repository link files next to them;
 * - the example's configs and scripts in `etc/` and `scripts/`, and a sealer-style Kubefile with
 *   one COPY per section (so a file of `etc/` lives in its own small layer, `registry/` last).
 *
 * The tree is built once per size under `bench/.cache/` and reused while its stamp matches.
 */
'use strict';
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const zlib = require('node:zlib');
const { execFileSync } = require('node:child_process');

const FIXTURE_VERSION = 4;
const PACKAGES = ['containerd', 'docker.io', 'runc', 'kubernetes-client'];
const MiB = 1 << 20;

/** Where each executable of the packages goes (the rest of the packages is left out). */
const PLACE = {
  'usr/bin/kubectl': 'bin/kubectl',
  'usr/bin/ctr': 'bin/ctr',
  'usr/sbin/runc': 'cri/runc',
  'usr/bin/containerd': 'cri/containerd',
  'usr/bin/containerd-shim': 'cri/containerd-shim',
  'usr/bin/containerd-shim-runc-v1': 'cri/containerd-shim-runc-v1',
  'usr/bin/containerd-shim-runc-v2': 'cri/containerd-shim-runc-v2',
  'usr/bin/docker': 'cri/docker',
  'usr/sbin/dockerd': 'cri/dockerd',
  'usr/sbin/docker-proxy': 'cri/docker-proxy',
  'usr/bin/dnet': 'cri/dnet',
  'usr/sbin/ovrouter': 'cri/ovrouter',
  'etc/containerd/config.toml': 'etc/containerd/config.toml',
  'etc/default/docker': 'etc/default/docker',
  'lib/systemd/system/containerd.service': 'etc/containerd.service',
  'lib/systemd/system/docker.socket': 'etc/docker.socket',
  'lib/udev/rules.d/80-docker.rules': 'etc/80-docker.rules',
};

const KUBEFILE = `FROM scratch
COPY Kubefile Kubefile
COPY bin bin
COPY cri cri
COPY scripts scripts
COPY etc etc
COPY registry registry
`;

/** A deterministic byte stream: AES-256-CTR keyed by the seed (fast, and the same everywhere). */
function prng(seed) {
  const key = crypto.createHash('sha256').update(`cloudrootfs-bench:${seed}`).digest();
  const cipher = crypto.createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  return (n) => cipher.update(Buffer.alloc(n));
}

/**
 * Data gzip can work on: runs of a 16-letter alphabet (4 bits of entropy a byte, like text) and
 * runs of random bytes (incompressible, like media). Then real gzip, level 6, so the blob is what
 * a registry holds: a gzip member of a layer that deflate cannot shrink again.
 */
function blobData(random, size) {
  const raw = random(size);
  for (let off = 0; off < size; off += 64 << 10) {
    const end = Math.min(size, off + (64 << 10));
    if (raw[off] & 1) for (let i = off; i < end; i++) raw[i] = 0x61 + (raw[i] & 15);
  }
  return zlib.gzipSync(raw, { level: 6 });
}

/** A log-uniform size from 1 KiB to 30 MiB (of raw data; the blob is its gzip). */
function blobSize(random) {
  const lo = Math.log(1024);
  const hi = Math.log(30 * MiB);
  const u = random(4).readUInt32BE(0) / 2 ** 32;
  return Math.round(Math.exp(lo + u * (hi - lo)));
}

function sha256(buf) {
  return crypto.createHash('sha256').update(buf).digest('hex');
}

function writeFile(root, rel, data, mode = 0o644) {
  const p = path.join(root, rel);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, data, { mode });
  fs.chmodSync(p, mode);
}

function fetchDebs(cacheDir, log) {
  const dir = path.join(cacheDir, 'debs');
  fs.mkdirSync(dir, { recursive: true });
  const have = () => fs.readdirSync(dir).filter((f) => f.endsWith('.deb'));
  const missing = PACKAGES.filter((p) => !have().some((f) => f.startsWith(`${p}_`)));
  if (missing.length > 0) {
    log(`fetching ${missing.join(' ')} with apt-get download`);
    try {
      execFileSync('apt-get', ['download', ...missing], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (err) {
      execFileSync('apt-get', ['update', '-q'], { stdio: 'inherit' });
      execFileSync('apt-get', ['download', ...missing], { cwd: dir, stdio: 'inherit' });
    }
  }
  const debs = PACKAGES.map((p) => have().find((f) => f.startsWith(`${p}_`)));
  const unpacked = path.join(dir, 'unpacked');
  const stamp = path.join(unpacked, '.debs');
  if (!fs.existsSync(stamp) || fs.readFileSync(stamp, 'utf8') !== debs.join('\n')) {
    fs.rmSync(unpacked, { recursive: true, force: true });
    for (const deb of debs) execFileSync('dpkg-deb', ['-x', path.join(dir, deb), unpacked]);
    fs.writeFileSync(stamp, debs.join('\n'));
  }
  return { unpacked, debs };
}

function du(root) {
  let bytes = 0;
  let files = 0;
  let dirs = 0;
  const walk = (d) => {
    for (const name of fs.readdirSync(d)) {
      const p = path.join(d, name);
      const st = fs.lstatSync(p);
      if (st.isDirectory()) {
        dirs++;
        walk(p);
      } else {
        files++;
        if (st.isFile()) bytes += st.size;
      }
    }
  };
  walk(root);
  return { bytes, files, dirs };
}

/**
 * The fixture for a total size (bytes), built under `cacheDir` if missing or stale. Returns its
 * directory and what it holds.
 */
function ensureFixture({ cacheDir, size, seed = 1, examples, log = () => undefined }) {
  const { unpacked, debs } = fetchDebs(cacheDir, log);
  const name = `fixture-${Math.round(size / 1e6)}mb`;
  const dir = path.join(cacheDir, name);
  const stampFile = path.join(cacheDir, `${name}.json`);
  const stamp = { version: FIXTURE_VERSION, size, seed, debs, zlib: process.versions.zlib };
  if (fs.existsSync(stampFile) && fs.existsSync(dir)) {
    const old = JSON.parse(fs.readFileSync(stampFile, 'utf8'));
    if (JSON.stringify(old.stamp) === JSON.stringify(stamp)) return { dir, ...old.contents };
  }
  log(`building the fixture ${dir}`);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.rmSync(stampFile, { force: true });
  const tmp = `${dir}.tmp`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });

  let binaries = 0;
  for (const [from, to] of Object.entries(PLACE)) {
    const src = path.join(unpacked, from);
    const st = fs.statSync(src);
    writeFile(tmp, to, fs.readFileSync(src), st.mode & 0o7777);
    if (to.startsWith('bin/') || to.startsWith('cri/')) binaries += st.size;
  }
  fs.symlinkSync('../cri/runc', path.join(tmp, 'bin', 'runc'));
  fs.symlinkSync('docker', path.join(tmp, 'cri', 'docker-init'));

  for (const sub of ['etc', 'scripts', 'statics']) {
    const from = path.join(examples, sub);
    for (const f of fs.readdirSync(from)) {
      const st = fs.statSync(path.join(from, f));
      writeFile(tmp, path.join(sub === 'statics' ? 'etc' : sub, f), fs.readFileSync(path.join(from, f)), st.mode & 0o7777);
    }
  }
  writeFile(tmp, 'Kubefile', KUBEFILE);

  // registry/: distribution's storage layout, blobs filling the rest of the budget.
  const random = prng(seed);
  const budget = Math.max(64 * MiB, size - binaries);
  const v2 = 'registry/docker/registry/v2';
  const repos = ['library/nginx', 'library/redis', 'calico/node', 'calico/cni', 'coredns/coredns', 'library/busybox', 'kube-proxy', 'etcd'];
  let registryBytes = 0;
  let blobs = 0;
  for (let i = 0; registryBytes < budget; i++) {
    const data = blobData(random, blobSize(random));
    const hex = sha256(data);
    registryBytes += data.length;
    blobs++;
    writeFile(tmp, `${v2}/blobs/sha256/${hex.slice(0, 2)}/${hex}/data`, data);
    const repo = repos[i % repos.length];
    writeFile(tmp, `${v2}/repositories/${repo}/_layers/sha256/${hex}/link`, `sha256:${hex}`);
  }
  repos.forEach((repo, i) => {
    const hex = sha256(`manifest ${repo}`);
    writeFile(tmp, `${v2}/repositories/${repo}/_manifests/tags/v1.${i}/current/link`, `sha256:${hex}`);
    writeFile(tmp, `${v2}/repositories/${repo}/_manifests/revisions/sha256/${hex}/link`, `sha256:${hex}`);
  });

  fs.renameSync(tmp, dir);
  const contents = { ...du(dir), binaries, registryBytes, blobs };
  fs.writeFileSync(stampFile, JSON.stringify({ stamp, contents }, null, 2));
  return { dir, ...contents };
}

module.exports = { ensureFixture, KUBEFILE, PACKAGES };
