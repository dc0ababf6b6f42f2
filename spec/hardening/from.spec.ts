/**
 * Building `FROM` a hostile image: a base in the store whose layers are hostile in content (the
 * error-expecting cases of the layer corpus; `load` refuses them, so they are put in the store
 * as a store written by an older or other tool could hold them), a base a hostile registry
 * serves, and a base in a hostile archive. The build must
 * fail with BUILD_FAILED whose `causeCode` is the underlying error's code, and leave the store as
 * the build found it (a pull of a well-formed base stores that base, as `cloudrootfs pull` would;
 * nothing else).
 */
import * as nodeFs from 'node:fs';
import { join } from 'node:path';
import { buildImage } from '../../lib/build/build-image';
import { BuildError, CloudRootfsError } from '../../lib/errors';
import { diskFs } from '../../lib/fs';
import { openImageArchive } from '../../lib/formats/archive';
import { loadArchiveIntoStore } from '../../lib/store/load';
import { ImageStore } from '../../lib/store/store';
import { FakeRegistry, startFakeRegistry } from '../support/fake-registry';
import { MT, OciImage, blobName, ociArchiveRecords, ociImage, okTar } from './archives';
import { LAYER_CASES, file, rawLayer, sha256, tar } from './corpus';
import { expectNoFdLeak, leftovers, openFds, outcome, sandbox, snapshot } from './support';

// Reading the base's layers is part of the FROM step, so a base that resolves but cannot be
// flattened (a hostile layer, a diff_id that does not match) fails as BUILD_FAILED naming FROM.

/** BUILD_FAILED naming the FROM step, caused by `causeCode`. */
function expectBuildFailed(result: unknown, causeCode: string): void {
  if (!(result instanceof CloudRootfsError)) throw new Error(`expected BUILD_FAILED(${causeCode}), got ${result instanceof Error ? result.stack : 'success'}`);
  expect({ code: result.code, causeCode: result.details.causeCode, instruction: result.details.instruction }).toEqual({
    code: 'BUILD_FAILED',
    causeCode,
    instruction: expect.stringMatching(/^FROM /),
  });
  expect(result).toBeInstanceOf(BuildError);
}

async function build(sb: string, store: ImageStore, from: string, registry = {}) {
  const context = join(sb, 'context');
  nodeFs.mkdirSync(context, { recursive: true });
  nodeFs.writeFileSync(join(context, 'Kubefile'), `FROM ${from}\nCOPY hello.txt etc/hello.txt\n`);
  nodeFs.writeFileSync(join(context, 'hello.txt'), 'hello\n');
  return outcome(() =>
    buildImage({ context, fs: diskFs, store, tag: 'built/image:v1', platforms: ['linux/amd64'], buildMode: 'lite', registry: { authFile: false, retries: 1, retryBaseDelayMs: 1, ...registry } }),
  );
}

describe('FROM a base in the store whose layers are hostile', () => {
  const cases = LAYER_CASES.filter((c) => 'code' in c.expect && !c.stored && !c.limits);

  /** Build FROM a store base made of the case's layers; returns the outcome, after checking the store is unchanged. */
  async function fromHostileBase(c: (typeof cases)[number]): Promise<unknown> {
    const sb = sandbox('crfs-from-');
    try {
      const root = join(sb, 'store');
      const store = await ImageStore.open({ fs: diskFs, root });
      const layers = c.layers(sb).map((t) => rawLayer(t, true));
      const archive = join(sb, 'base.tar');
      nodeFs.writeFileSync(archive, tar(ociArchiveRecords(ociImage({ layers, annotations: { 'io.containerd.image.name': 'docker.io/hostile/base:v1' } }))));
      // Digests and diff_ids hold; the content is what is hostile. `load` refuses it with the
      // case's code and leaves the store as it was...
      const empty = snapshot(sb);
      const loaded = await outcome(() => loadArchiveIntoStore(store, archive, { fs: diskFs }));
      expect(loaded).toBeInstanceOf(CloudRootfsError);
      expect((loaded as CloudRootfsError).code).toBe((c.expect as { code: string }).code);
      expect(snapshot(sb)).toEqual(empty);
      // ...so the base goes in as a store written without that check could hold it.
      const opened = await openImageArchive(archive, { fs: diskFs });
      try {
        await store.put(await opened.images[0].load(), 'docker.io/hostile/base:v1');
      } finally {
        opened.close();
      }
      const skip = [join(sb, 'store', 'cache'), join(sb, 'context')];
      const before = withoutPaths(snapshot(sb), skip);
      const fds = openFds();
      const result = await build(sb, store, 'hostile/base:v1');
      expect(withoutPaths(snapshot(sb), skip)).toEqual(before);
      expect(leftovers(root)).toEqual([]);
      await expectNoFdLeak(fds);
      return result;
    } finally {
      nodeFs.rmSync(sb, { recursive: true, force: true });
    }
  }

  for (const c of cases) {
    const code = (c.expect as { code: string }).code;
    test(`${c.name} → BUILD_FAILED(${code})`, async () => expectBuildFailed(await fromHostileBase(c), code));
  }

  test('meanwhile: every case fails with its code (raw or as the cause), the store unchanged', async () => {
    for (const c of cases) {
      const code = (c.expect as { code: string }).code;
      const result = await fromHostileBase(c);
      if (!(result instanceof CloudRootfsError)) throw new Error(`${c.name}: expected ${code}, got ${result instanceof Error ? result.stack : 'success'}`);
      expect({ name: c.name, code: result.code === 'BUILD_FAILED' ? result.details.causeCode : result.code }).toEqual({ name: c.name, code });
    }
  }, 120_000);
});

function withoutPaths(snap: Map<string, string>, skip: string[]): Map<string, string> {
  return new Map([...snap].filter(([p]) => !skip.some((s) => p === s || p.startsWith(`${s}/`))));
}

describe('FROM a base a hostile registry serves', () => {
  let reg: FakeRegistry;
  beforeAll(async () => {
    reg = await startFakeRegistry();
  });
  afterAll(() => reg?.stop());

  function serve(repo: string, image: OciImage, tamper?: (digest: string, bytes: Buffer) => Buffer): void {
    let manifest!: Buffer;
    for (const r of image.blobs) {
      const bytes = Buffer.from(r.data as Buffer);
      if (r.name === blobName(image.descriptor.digest)) manifest = bytes;
      else reg.putBlob(tamper ? tamper(sha256(bytes), bytes) : bytes, sha256(bytes));
    }
    reg.putManifest(repo, 'v1', manifest, MT.manifest);
  }

  const cases: [string, () => string, string][] = [
    [
      'a layer whose bytes do not match its digest',
      () => {
        const image = ociImage();
        serve('h/digest', image, (d, b) => (d === image.layerDigests[0] ? Buffer.from(b.map((x, i) => (i === 40 ? x ^ 1 : x))) : b));
        return 'h/digest:v1';
      },
      'DIGEST_MISMATCH',
    ],
    [
      'a config whose diff_ids do not match',
      () => {
        serve('h/diffid', ociImage({ config: (c) => ((c.rootfs as { diff_ids: string[] }).diff_ids = [sha256('x')]) }));
        return 'h/diffid:v1';
      },
      'DIGEST_MISMATCH',
    ],
    [
      'an index that fans out exponentially',
      () => {
        const image = ociImage();
        serve('h/fan', image);
        let level = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.index, manifests: Array.from({ length: 1000 }, () => image.entry) }));
        for (let i = 0; i < 3; i++) {
          const digest = reg.putManifest('h/fan', undefined, level, MT.index);
          level = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.index, manifests: Array.from({ length: 1000 }, () => ({ mediaType: MT.index, digest, size: level.length })) }));
        }
        reg.putManifest('h/fan', 'v1', level, MT.index);
        return 'h/fan:v1';
      },
      'LIMIT_EXCEEDED',
    ],
  ];

  test.each(cases)('%s → BUILD_FAILED, the store unchanged', async (_name, setup, code) => {
    reg.reset();
    const sb = sandbox('crfs-from-');
    try {
      const root = join(sb, 'store');
      const store = await ImageStore.open({ fs: diskFs, root });
      const ref = `${reg.host}/${setup()}`;
      const before = snapshot(sb, [join(sb, 'context')]);
      expectBuildFailed(await build(sb, store, ref), code);
      expect(withoutPaths(snapshot(sb, [join(sb, 'context'), join(root, 'cache')]), [])).toEqual(withoutPaths(before, [join(root, 'cache')]));
      expect(leftovers(root)).toEqual([]);
    } finally {
      nodeFs.rmSync(sb, { recursive: true, force: true });
    }
  });

  test('the build passes its limits to the pull of its base: a base over them is refused, the store stays empty', async () => {
    reg.reset();
    const sb = sandbox('crfs-from-');
    try {
      const root = join(sb, 'store');
      const store = await ImageStore.open({ fs: diskFs, root });
      serve('h/many', ociImage({ layers: [rawLayer(tar([file('a', '1'), file('b', '2'), file('c', '3')]), true)] }));
      const context = join(sb, 'context');
      nodeFs.mkdirSync(context, { recursive: true });
      nodeFs.writeFileSync(join(context, 'Kubefile'), `FROM ${reg.host}/h/many:v1\n`);
      const options = { context, fs: diskFs, store, platforms: ['linux/amd64'], buildMode: 'lite' as const, registry: { authFile: false as const, retries: 0 } };
      expectBuildFailed(await outcome(() => buildImage({ ...options, limits: { layerLimits: { maxEntries: 2 } } })), 'LIMIT_EXCEEDED');
      expect(await store.list()).toEqual([]);
      // The same base within the limits builds.
      await expect(buildImage({ ...options, limits: { layerLimits: { maxEntries: 10 } } })).resolves.toMatchObject({ digest: expect.stringMatching(/^sha256:/) });
    } finally {
      nodeFs.rmSync(sb, { recursive: true, force: true });
    }
  });

  test('a well-formed base with a hostile layer: the pull refuses it as it streams, the build fails, the store stays empty', async () => {
    reg.reset();
    const sb = sandbox('crfs-from-');
    try {
      const root = join(sb, 'store');
      const store = await ImageStore.open({ fs: diskFs, root });
      serve('h/content', ociImage({ layers: [rawLayer(tar([file('../evil', 'x')]), true)] }));
      const result = await build(sb, store, `${reg.host}/h/content:v1`);
      expectBuildFailed(result, 'CORRUPT_ARCHIVE');
      expect(await store.list()).toEqual([]);
      expect(nodeFs.existsSync(join(sb, 'evil'))).toBe(false);
      expect(leftovers(root)).toEqual([]);
    } finally {
      nodeFs.rmSync(sb, { recursive: true, force: true });
    }
  });
});

describe('FROM a hostile archive', () => {
  test('an oci-archive whose layer does not match its diff_id → BUILD_FAILED(DIGEST_MISMATCH)', async () => {
    const sb = sandbox('crfs-from-');
    try {
      const store = await ImageStore.open({ fs: diskFs, root: join(sb, 'store') });
      const archive = join(sb, 'base.tar');
      nodeFs.writeFileSync(archive, tar(ociArchiveRecords(ociImage({ layers: [rawLayer(okTar(), true)], config: (c) => ((c.rootfs as { diff_ids: string[] }).diff_ids = [sha256('x')]) }))));
      const before = snapshot(sb);
      expectBuildFailed(await build(sb, store, `oci-archive:${archive}`), 'DIGEST_MISMATCH');
      expect(withoutPaths(snapshot(sb), [join(sb, 'context'), join(sb, 'store', 'cache')])).toEqual(withoutPaths(before, [join(sb, 'store', 'cache')]));
    } finally {
      nodeFs.rmSync(sb, { recursive: true, force: true });
    }
  });
});
