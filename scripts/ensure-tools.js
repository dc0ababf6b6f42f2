#!/usr/bin/env node
/**
 * Installs the third-party referees the tests use (Debian packages) when they are missing and we
 * can: as root with apt-get. Otherwise it says what is missing; the tests then skip those checks
 * locally (and fail in CI, where CLOUDROOTFS_REQUIRE_TOOLS=1).
 */
'use strict';
const { execFileSync, spawnSync } = require('node:child_process');

// tool on PATH -> Debian package providing it
const TOOLS = {
  skopeo: 'skopeo',
  umoci: 'umoci',
  'oci-image-tool': 'oci-image-tool',
  'docker-registry': 'docker-registry',
  htpasswd: 'apache2-utils',
  openssl: 'openssl',
  pigz: 'pigz',
  hyperfine: 'hyperfine',
  podman: 'podman',
  dockerd: 'docker.io',
  docker: 'docker.io',
  containerd: 'containerd',
  ctr: 'containerd',
  // RUN's sandbox (the default RUN executor on disk); CI must build in it, not skip.
  bwrap: 'bubblewrap',
  // Go's archive/tar: the referee of the tar reader (spec/referees/gotar, built by the tests).
  go: 'golang-go',
};

function has(tool) {
  return spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status === 0;
}

function main(wanted = Object.keys(TOOLS)) {
  const missing = wanted.filter((t) => !has(t));
  if (missing.length === 0) return true;
  const packages = [...new Set(missing.map((t) => TOOLS[t]))];
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot || !has('apt-get')) {
    console.warn(`cloudrootfs: missing test tools (${missing.join(', ')}); install Debian packages: ${packages.join(' ')}`);
    return false;
  }
  console.log(`cloudrootfs: installing ${packages.join(' ')} with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () => spawnSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...packages], { stdio: 'inherit', env });
  if (install().status !== 0) {
    execFileSync('apt-get', ['update', '-q'], { stdio: 'inherit', env });
    if (install().status !== 0) throw new Error(`apt-get install ${packages.join(' ')} failed`);
  }
  return wanted.every(has);
}

module.exports = { ensureTools: main, TOOLS };
if (require.main === module) main(process.argv.slice(2).length ? process.argv.slice(2) : undefined);
