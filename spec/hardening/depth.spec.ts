/**
 * Inputs as long or as deep as they like never exhaust the call stack: a Kubefile of thousands of
 * LABEL and ENV lines, tens of thousands of ImageBuilder steps, `${A:-${A:-…}}` nested as deep as
 * a word is long, trees as deep as a path allows (2,047 levels in 4,096 bytes) through every walk
 * (read, apply, flatten, walk, diff, encode, write, read back), and JSON documents nested far
 * beyond any real one (a coded limit, LIMIT_EXCEEDED).
 *
 * Deep trees are checked in a child process given a small stack (`--stack-size`): at the default
 * stack recursion 2,047 levels deep still fits, and would fail only where less stack is left.
 */
import { spawnSync } from 'node:child_process';
import * as nodeFs from 'node:fs';
import { join } from 'node:path';
import { buildImage } from '../../lib/build/build-image';
import { ImageBuilder } from '../../lib/build/builder';
import { CloudRootfsError } from '../../lib/errors';
import { diskFs } from '../../lib/fs';
import { expandWord } from '../../lib/kubefile';
import { ImageStore } from '../../lib/store';
import { memfs, writeTree } from '../build/helpers';
import { scratchDir } from '../support/umoci';
import { compileCli } from './child';
import { MT, blobName, indexJson, layoutMarker, okTar } from './archives';
import { file, rawLayer, sha256, tar } from './corpus';
import { cli, expectCode, outcome } from './support';

describe('long Kubefiles and long builder chains', () => {
  test('a Kubefile of 5,000 LABEL and 2,000 ENV lines builds, one history entry each', async () => {
    const fs = memfs();
    const lines = ['FROM scratch', 'COPY Kubefile .'];
    for (let i = 0; i < 5000; i++) lines.push(`LABEL key${i}=value${i}`);
    for (let i = 0; i < 2000; i++) lines.push(`ENV VAR${i}=v${i}`);
    lines.push('LABEL key0=last');
    await writeTree(fs, '/ctx', { Kubefile: lines.join('\n') + '\n' });
    const result = await buildImage({ fs, context: '/ctx', platforms: ['linux/amd64'], cache: false });
    const image = result.target as Awaited<ReturnType<ImageBuilder['build']>>;
    expect(Object.keys(image.labels).filter((k) => k.startsWith('key'))).toHaveLength(5000);
    expect(image.labels.key0).toBe('last');
    expect(image.labels.key4999).toBe('value4999');
    expect(image.env.VAR1999).toBe('v1999');
    expect(image.history.filter((h) => h.empty_layer)).toHaveLength(7001);
    expect(image.history.map((h) => h.created_by).slice(-2)).toEqual(['ENV VAR1999=v1999', 'LABEL key0=last']);
  });

  test('20,000 ImageBuilder steps build, and every intermediate builder still gives its own state', async () => {
    const fs = memfs();
    let b = ImageBuilder.from('scratch', { fs, platform: 'linux/amd64' });
    const middle: ImageBuilder[] = [];
    for (let i = 0; i < 20000; i++) {
      b = i % 2 === 0 ? b.file(`d${i % 7}/f${i}`, `x${i}`) : b.label(`k${i}`, `v${i}`);
      if (i === 9999) middle.push(b);
    }
    const image = await b.build();
    const rootfs = await image.flatten();
    expect(rootfs.get('d6/f19998')).toBeDefined();
    expect(image.labels.k19999).toBe('v19999');
    expect(image.history).toHaveLength(10000 + 1);
    // A builder from the middle of the chain: its own steps only.
    const half = await middle[0].build();
    expect(half.labels.k9999).toBe('v9999');
    expect(half.labels.k10001).toBeUndefined();
    expect((await half.flatten()).get('d0/f10010')).toBeUndefined();
  });

  test('the same steps give the same digest whether their states were asked for one by one or not', async () => {
    const steps = (b: ImageBuilder, i: number) => (i % 3 === 0 ? b.env(`E${i}`, `${i}`) : i % 3 === 1 ? b.label(`k${i}`, `${i}`) : b.file(`f${i}`, `${i}`));
    let together = ImageBuilder.from('scratch', { fs: memfs(), platform: 'linux/amd64' });
    let oneByOne = ImageBuilder.from('scratch', { fs: memfs(), platform: 'linux/amd64' });
    for (let i = 0; i < 30; i++) {
      together = steps(together, i);
      oneByOne = steps(oneByOne, i);
      await oneByOne.rootfs();
    }
    const store = await ImageStore.open({ fs: memfs(), root: '/s' });
    expect((await store.put(await together.build(), 'a:v1')).digest).toBe((await store.put(await oneByOne.build(), 'b:v1')).digest);
  });

  test('${A:-…} nested 20,000 deep expands; unbalanced, it is a syntax error with its position', () => {
    let word = 'end';
    for (let i = 0; i < 20000; i++) word = '${A:-"' + word + '"}';
    expect(expandWord(word, () => undefined)).toBe('end');
    expect(expandWord(word, (n) => (n === 'A' ? 'set' : undefined))).toBe('set');
    const open = '${A:-'.repeat(20000) + 'x';
    expect(() => expandWord(open, () => undefined)).toThrow(expect.objectContaining({ code: 'KUBEFILE_SYNTAX', column: 1 + 5 * 19999 }));
  });

  test('a Kubefile whose ARG default nests ${…} 10,000 deep builds', async () => {
    const fs = memfs();
    let word = 'deep';
    for (let i = 0; i < 10000; i++) word = '${UNSET:-' + word + '}';
    await writeTree(fs, '/ctx', { Kubefile: `FROM scratch\nARG V=${word}\nLABEL v=$V\nCOPY Kubefile .\n` });
    const result = await buildImage({ fs, context: '/ctx', platforms: ['linux/amd64'], cache: false });
    expect((result.target as Awaited<ReturnType<ImageBuilder['build']>>).labels.v).toBe('deep');
  });
});

describe('trees as deep as paths allow, with little stack', () => {
  let dir: string;
  let compiled: string;
  beforeAll(() => {
    dir = scratchDir('crfs-depth-');
    compiled = join(dir, 'build');
    compileCli(compiled);
  }, 120_000);
  afterAll(() => nodeFs.rmSync(dir, { recursive: true, force: true }));

  test('2,047 levels: read, apply, flatten, walk, diff, encode, write and read back (memfs), in a 200 KiB stack', () => {
    const lib = (m: string) => JSON.stringify(join(compiled, 'lib', m));
    const script = `
      const tarStream = require('tar-stream');
      const { Readable } = require('node:stream');
      const { Volume, createFsFromVolume } = require('memfs');
      const { readLayerTar } = require(${lib('tar/read')});
      const { LayerStack } = require(${lib('layer/stack')});
      const { diff } = require(${lib('layer/diff')});
      const { Rootfs } = require(${lib('rootfs/rootfs')});
      const { encodeLayer } = require(${lib('tar/write')});
      const { materialize, readRootfsFromDirectory } = require(${lib('rootfs/io')});
      const { ImageBuilder } = require(${lib('build/builder')});
      (async () => {
        const deep = Array.from({ length: 2047 }, () => 'a').join('/');
        const pack = tarStream.pack();
        pack.entry({ name: deep + '/f', type: 'file', size: 1 }, 'x');
        pack.entry({ name: deep.slice(0, 2000) + '/.wh.gone', type: 'file', size: 0 }, '');
        pack.finalize();
        const chunks = [];
        for await (const c of pack) chunks.push(c);
        const tar = Buffer.concat(chunks);
        const read = await readLayerTar(() => Readable.from([tar]));
        const out = {};
        out.stats = read.layer.stats();
        const rootfs = LayerStack.of(read.layer, read.layer).flatten();
        out.walked = [...rootfs.walk()].length;
        out.size = rootfs.size;
        out.copied = rootfs.copy('a/a', 'b').size;
        out.removed = rootfs.without(deep).size;
        const layer = await diff(Rootfs.empty(), rootfs);
        out.diff = layer.stats().entries;
        const encoded = await encodeLayer(layer, async () => {}, { compression: 'none' });
        out.encodedDiffId = encoded.diffId.length;
        const fs = createFsFromVolume(new Volume());
        fs.mkdirSync('/out');
        await materialize(rootfs, '/out', fs);
        out.readBack = (await readRootfsFromDirectory('/out', { fs })).size;
        // COPY of the deep tree (from a Rootfs context, as from a base image's stage).
        const copied = await ImageBuilder.from('scratch', { fs, platform: 'linux/amd64', context: rootfs }).copy('a', 'c').rootfs();
        out.copiedByBuild = copied.size;
        process.stdout.write(JSON.stringify(out));
      })().catch((err) => {
        process.stdout.write(JSON.stringify({ error: String(err && err.stack || err) }));
      });
    `;
    const run = spawnSync(process.execPath, ['--stack-size=200', '-e', script], {
      env: { ...process.env, NODE_PATH: join(__dirname, '..', '..', 'node_modules') },
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(run.stderr).toBe('');
    const out = JSON.parse(run.stdout);
    expect(out.error).toBeUndefined();
    expect(out).toMatchObject({ walked: 2048, size: 2048, diff: 2048, readBack: 2048, removed: 2046, copied: 2048 + 2047, encodedDiffId: 71, copiedByBuild: 2048 });
    expect(out.stats.entries).toBe(1);
  }, 120_000);
});

describe('JSON nested far beyond any real document', () => {
  /** An oci-archive whose config carries an extra field nested `depth` levels deep. */
  function deepConfigArchive(depth: number): Buffer {
    const layer = rawLayer(okTar(), true);
    const deep = '['.repeat(depth) + ']'.repeat(depth);
    const config = Buffer.from(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["${layer.diffId}"]},"x-deep":${deep}}`);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MT.manifest,
        config: { mediaType: MT.config, digest: sha256(config), size: config.length },
        layers: [{ mediaType: layer.mediaType, digest: sha256(layer.blob), size: layer.blob.length }],
      }),
    );
    const entry = { mediaType: MT.manifest, digest: sha256(manifest), size: manifest.length, annotations: { 'org.opencontainers.image.ref.name': 'v1' } };
    return tar([layoutMarker(), indexJson([entry]), ...[layer.blob, config, manifest].map((b) => file(blobName(sha256(b)), b))]);
  }

  test('a config nested 100,000 levels deep: LIMIT_EXCEEDED from load, ls, inspect and FROM, never a crash', async () => {
    const dir = scratchDir('crfs-deep-json-');
    try {
      const archive = join(dir, 'deep.tar');
      nodeFs.writeFileSync(archive, deepConfigArchive(100_000));
      const store = join(dir, 'store');
      for (const argv of [['load', archive], ['ls', `oci-archive:${archive}`], ['inspect', `oci-archive:${archive}`]]) {
        const r = await cli([...argv, '--store', store], diskFs);
        expect([argv[0], r.code, r.stderr]).toEqual([argv[0], 1, expect.stringMatching(/nested 100001 levels deep.*\[LIMIT_EXCEEDED\]\n$/)]);
      }
      const from = await outcome(() => ImageBuilder.from(`oci-archive:${archive}`, { fs: diskFs }).label('a', 'b').build());
      expectCode(from, 'BUILD_FAILED', 'FROM a base that cannot be read');
      expect((from as CloudRootfsError).details.causeCode).toBe('LIMIT_EXCEEDED');
      // A few hundred levels are fine (no real document comes near).
      nodeFs.writeFileSync(archive, deepConfigArchive(200));
      expect((await cli(['ls', `oci-archive:${archive}`, '--store', store], diskFs)).code).toBe(0);
    } finally {
      nodeFs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
