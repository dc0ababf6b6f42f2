/**
 * The bundled example, end to end on memfs (no disk, no shell): both Kubefile workflows, the
 * child's merged daemon.json and deletion, byte-identical base layers, and the fluent API giving
 * the same digests as the Kubefiles.
 */
import * as nodeFs from 'node:fs';
import { join } from 'node:path';
import { Volume, createFsFromVolume } from 'memfs';
import { builtinRunExecutor, lintImage } from '../lib/build';
import type { FileSystem } from '../lib/fs';
import { ImageStore } from '../lib/store';
import { readMetadata } from '../lib/sealer';
import { BASE_TAG, CHILD_TAG, EXAMPLE_ROOT, buildExample } from './build-image';
import { baseBuilder, childBuilder, childBuilderWithRemove } from './fluent';

/** Copy a directory from the real disk into memfs, modes included. */
function copyIntoMemfs(from: string, fs: FileSystem, to: string): void {
  const mfs = fs as unknown as typeof nodeFs;
  mfs.mkdirSync(to, { recursive: true });
  for (const name of nodeFs.readdirSync(from)) {
    const src = join(from, name);
    const dst = `${to}/${name}`;
    const st = nodeFs.lstatSync(src);
    if (st.isDirectory()) copyIntoMemfs(src, fs, dst);
    else if (st.isFile()) mfs.writeFileSync(dst, nodeFs.readFileSync(src));
    else continue;
    mfs.chmodSync(dst, st.mode & 0o7777);
  }
}

async function setup() {
  const fs = createFsFromVolume(new Volume()) as unknown as FileSystem;
  copyIntoMemfs(EXAMPLE_ROOT, fs, '/example');
  const store = await ImageStore.open({ fs, root: '/store' });
  return { fs, store, root: '/example', runExecutor: builtinRunExecutor() };
}

describe('the bundled example on memfs', () => {
  test('base and child: digests, layers, merged daemon.json, deleted audit policy', async () => {
    const opts = await setup();
    const { base, child } = await buildExample(opts);

    expect(base.layers.map((l) => l.createdBy)).toEqual(['COPY . .']);
    expect(child.layers.map((l) => l.createdBy)).toEqual(['COPY . .', 'COPY daemon.json etc/', 'RUN rm -f statics/audit-policy.yml']);
    // The child's first layer is the base's, byte for byte (same blob digest and size).
    expect(child.layers[0]).toEqual({ ...base.layers[0], fromBase: true });
    expect(child.layers.slice(1).every((l) => !l.fromBase)).toBe(true);

    const merged = await (await opts.store.loadImage(CHILD_TAG)).flatten();
    const daemon = JSON.parse(await merged.readText('etc/daemon.json'));
    expect(daemon['log-level']).toBe('info');
    expect(daemon['data-root']).toBe('/data/docker');
    expect(merged.get('statics/audit-policy.yml')).toBeUndefined();
    expect(merged.get('statics')?.type).toBe('directory');
    expect(merged.get('registry/docker/registry')?.type).toBe('directory');
    expect(merged.get('registry/docker/registry/.gitkeep')).toBeUndefined(); // .kubefileignore
    expect(await readMetadata(merged)).toEqual({ version: 'v1.19.9', arch: 'amd64' });

    const baseRootfs = await (await opts.store.loadImage(BASE_TAG)).flatten();
    expect(JSON.parse(await baseRootfs.readText('etc/daemon.json'))['log-level']).toBe('warn');
    expect(baseRootfs.get('statics/audit-policy.yml')?.type).toBe('file');

    // The child's RUN layer holds the whiteout, not a copy of anything.
    const runLayer = await (await opts.store.loadImage(CHILD_TAG)).layers[2].changeset();
    expect(runLayer.whiteouts()).toEqual(['statics/audit-policy.yml']);

    const lint = await lintImage(await opts.store.loadImage(BASE_TAG));
    expect(lint.issues.filter((i) => i.severity === 'error')).toEqual([]);
    expect(lint.kubernetesVersion).toBe('v1.19.9');
  });

  test('the fluent API gives the Kubefiles\' digests', async () => {
    const opts = await setup();
    const { base, child } = await buildExample(opts);
    const fluentBase = await opts.store.put(await baseBuilder(opts).build(), 'fluent-base:v1');
    const fluentChild = await opts.store.put(await childBuilder(opts).build(), 'fluent-child:v1');
    expect(fluentBase.digest).toBe(base.digest);
    expect(fluentChild.digest).toBe(child.digest);
    // remove() hides the file too, through a batched-edit layer with a different history line.
    const removed = await childBuilderWithRemove(opts).build();
    expect((await removed.flatten()).get('statics/audit-policy.yml')).toBeUndefined();
    expect(removed.history.at(-1)?.created_by).toBe('cloudrootfs: remove statics/audit-policy.yml');
  });
});
