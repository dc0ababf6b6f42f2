#!/usr/bin/env node
/**
 * `npm run example` (after `npm run build`): build the bundled example's base and child images
 * into a fresh store under .tmp/example-store, print each digest and its layers, and check the
 * result: the child's merged etc/daemon.json is the child's own, statics/audit-policy.yml is
 * gone, and the child's first layer is the base's layer byte for byte.
 *
 *   FROM scratch + COPY . .                         (examples/cloudrootfs/Kubefile)
 *   FROM base + COPY daemon.json etc/ + RUN rm -f …  (examples/child/Kubefile)
 *
 * Exit status 0 when every check passes, 1 otherwise.
 */
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { buildImage } = require('../dist/lib/build');
const { ImageStore } = require('../dist/lib/store');
const { describeBuild } = require('../dist/lib/cli/commands/build');

const repo = path.join(__dirname, '..');
const examples = path.join(repo, 'examples');
const storeRoot = path.join(repo, '.tmp', 'example-store');
const BASE = 'cloudrootfs-example:v1.19.9';
const CHILD = 'cloudrootfs-example-child:v1.19.9';

function check(ok, what) {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) process.exitCode = 1;
}

async function main() {
  fs.rmSync(storeRoot, { recursive: true, force: true });
  const store = await ImageStore.open({ root: storeRoot });
  const common = { store, platforms: ['linux/amd64'] };

  const started = process.hrtime.bigint();
  const base = await buildImage({ ...common, context: path.join(examples, 'cloudrootfs'), tag: BASE });
  const child = await buildImage({ ...common, context: path.join(examples, 'child'), tag: CHILD });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;

  console.log(`store: ${storeRoot}\n`);
  for (const line of describeBuild(base)) console.log(line);
  console.log('');
  for (const line of describeBuild(child)) console.log(line);
  console.log(`\nbuilt both in ${ms.toFixed(0)} ms\n`);

  const merged = await (await store.loadImage(CHILD)).flatten();
  const expected = fs.readFileSync(path.join(examples, 'child', 'daemon.json'));
  check((await merged.readFile('etc/daemon.json')).equals(expected), "child's merged etc/daemon.json is examples/child/daemon.json");
  check(merged.get('statics/audit-policy.yml') === undefined, 'statics/audit-policy.yml is deleted in the child');
  const baseRootfs = await (await store.loadImage(BASE)).flatten();
  check(baseRootfs.get('statics/audit-policy.yml') !== undefined, 'the base still has statics/audit-policy.yml');
  const same = child.layers[0].digest === base.layers[0].digest && child.layers[0].size === base.layers[0].size;
  check(same && child.layers[0].fromBase, "the child's first layer is the base's layer, byte for byte");
}

main().catch((err) => {
  console.error(`example failed: ${err && err.message ? err.message : err}`);
  process.exitCode = 1;
});
