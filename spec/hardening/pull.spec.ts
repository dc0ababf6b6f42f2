/**
 * `pull` from a hostile registry (spec/support/fake-registry.ts serves whatever a case says): each
 * case is pulled with `pullToStore` (the case's limits) into a store that already holds an image,
 * with `pullToLayout` into a new OCI layout (default limits) and, unless it only differs in
 * retries, with `cloudrootfs pull`. It must end with its typed error — and then the store, the
 * layout and everything around them are exactly as before: no blob, no tag, no temporary file —
 * or with its documented result. No descriptor may leak.
 */
import * as nodeFs from 'node:fs';
import { join } from 'node:path';
import { CloudRootfsError, ErrorCode } from '../../lib/errors';
import type { ImageReadLimits } from '../../lib/formats/blob-source';
import { OciLayout } from '../../lib/formats/layout';
import { diskFs } from '../../lib/fs';
import { validate } from '../../lib/image/validate';
import { pullToLayout, pullToStore, type PullResult } from '../../lib/registry/pull';
import { loadArchiveIntoStore } from '../../lib/store/load';
import { ImageStore } from '../../lib/store/store';
import { FakeRegistry, startFakeRegistry } from '../support/fake-registry';
import { MT, OciImage, blobName, dockerArchiveRecords, indexBlob, ociImage, okTar } from './archives';
import { dir, file, rawLayer, sha256, tar } from './corpus';
import { cli, expectCode, expectNoFdLeak, leftovers, openFds, outcome, sandbox, snapshot } from './support';

type PullExpectation = { code: ErrorCode; why: string } | { safe: string; check: (result: PullResult, store: ImageStore) => void | Promise<void> };

interface PullCase {
  name: string;
  /** Serve the case on `reg` (`other` is a second host); returns `repo:tag` to pull. */
  setup: (reg: FakeRegistry, other: FakeRegistry) => string;
  expect: PullExpectation;
  limits?: ImageReadLimits;
  expectWithDefaults?: PullExpectation;
  /** The CLI retries with the default backoff (seconds): leave it out where a case is about retries. */
  cli?: boolean;
  /** Wait this long before the final "nothing changed" check (writes still in flight at the failure). */
  settleMs?: number;
  /** Checks on the requests the registries saw. */
  after?: (reg: FakeRegistry, other: FakeRegistry) => void;
}

const fail = (code: ErrorCode, why: string): PullExpectation => ({ code, why });

/** Serve an image's blobs and manifest; returns nothing (the tag is `repo:tag`). */
function serve(reg: FakeRegistry, repo: string, tag: string | undefined, image: OciImage, mediaType: string = MT.manifest): string {
  let manifest: Buffer | undefined;
  for (const r of image.blobs) {
    if (r.name === blobName(image.descriptor.digest)) manifest = Buffer.from(r.data as Buffer);
    else reg.putBlob(Buffer.from(r.data as Buffer));
  }
  return reg.putManifest(repo, tag, manifest!, mediaType);
}

function blobOf(image: OciImage, digest: string): Buffer {
  return Buffer.from(image.blobs.find((r) => r.name === blobName(digest))!.data as Buffer);
}

const flip = (b: Buffer, at: number) => {
  const out = Buffer.from(b);
  out[at] ^= 1;
  return out;
};

const good = () => ociImage();
const twoLayers = () => ociImage({ layers: [rawLayer(okTar(), true), rawLayer(tar([dir('opt'), file('opt/app', 'app')]), true)] });

async function expectPulled(result: PullResult, store: ImageStore): Promise<void> {
  const image = await store.loadImage('pulled/image:v1');
  expect((await image.flatten()).get('etc/hostname')).toBeDefined();
  expect(result.descriptor.digest).toMatch(/^sha256:/);
}

const CASES: PullCase[] = [
  {
    name: 'an index that lists itself (any digest answers with the same index)',
    setup(reg) {
      const self = { schemaVersion: 2, mediaType: MT.index, manifests: [{ mediaType: MT.index, digest: sha256('placeholder'), size: 10 }] };
      const bytes = Buffer.from(JSON.stringify(self));
      reg.putManifest('h/app', 'v1', bytes, MT.index);
      reg.intercept((r) => (r.path.includes('/manifests/sha256:') ? { status: 200, headers: { 'content-type': MT.index }, body: bytes } : undefined));
      return 'h/app:v1';
    },
    expect: fail('DIGEST_MISMATCH', 'a document fetched by digest must hash to it'),
  },
  {
    name: 'a tag whose Docker-Content-Digest lies',
    setup(reg) {
      const image = good();
      serve(reg, 'h/app', undefined, image);
      const manifest = blobOf(image, image.descriptor.digest);
      reg.intercept((r) => (r.path.endsWith('/manifests/v1') ? { status: 200, headers: { 'content-type': MT.manifest, 'docker-content-digest': sha256('other') }, body: manifest } : undefined));
      return 'h/app:v1';
    },
    expect: fail('DIGEST_MISMATCH', 'by tag, the bytes must match the digest the registry names'),
  },
  {
    name: 'indexes nested 12 deep',
    setup(reg) {
      const image = good();
      serve(reg, 'h/app', undefined, image);
      let level = indexBlob([image.entry]);
      for (let i = 0; i < 12; i++) {
        reg.putManifest('h/app', undefined, Buffer.from((level.record.data as Buffer) ?? ''), MT.index);
        level = indexBlob([level.descriptor]);
      }
      reg.putManifest('h/app', 'v1', Buffer.from(level.record.data as Buffer), MT.index);
      return 'h/app:v1';
    },
    expect: fail('LIMIT_EXCEEDED', 'maxNesting 8'),
  },
  {
    name: 'indexes nested 3 deep, with maxNesting 2',
    setup(reg) {
      const image = good();
      serve(reg, 'h/app', undefined, image);
      let level = indexBlob([image.entry]);
      for (let i = 0; i < 2; i++) {
        reg.putManifest('h/app', undefined, Buffer.from(level.record.data as Buffer), MT.index);
        level = indexBlob([level.descriptor]);
      }
      reg.putManifest('h/app', 'v1', Buffer.from(level.record.data as Buffer), MT.index);
      return 'h/app:v1';
    },
    limits: { maxNesting: 2 },
    expect: fail('LIMIT_EXCEEDED', 'maxNesting is configurable'),
    expectWithDefaults: { safe: 'within the default nesting', check: expectPulled },
  },
  {
    name: 'an index DAG that fans out exponentially (1000^4)',
    setup(reg) {
      const image = good();
      serve(reg, 'h/app', undefined, image);
      let level = indexBlob(Array.from({ length: 1000 }, () => image.entry));
      for (let i = 0; i < 3; i++) {
        reg.putManifest('h/app', undefined, Buffer.from(level.record.data as Buffer), MT.index);
        level = indexBlob(Array.from({ length: 1000 }, () => level.descriptor));
      }
      reg.putManifest('h/app', 'v1', Buffer.from(level.record.data as Buffer), MT.index);
      return 'h/app:v1';
    },
    expect: fail('LIMIT_EXCEEDED', 'maxIndexEntries counts repeats; each document is fetched once'),
    after(reg) {
      // Four indexes and at most one manifest per pull (three pulls): nothing fanned out.
      expect(reg.requests.filter((r) => r.path.includes('/manifests/')).length).toBeLessThanOrEqual(15);
    },
  },
  {
    name: 'an index of 10,001 entries',
    setup(reg) {
      const image = good();
      serve(reg, 'h/app', undefined, image);
      reg.putManifest('h/app', 'v1', Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.index, manifests: Array.from({ length: 10_001 }, () => image.entry) })), MT.index);
      return 'h/app:v1';
    },
    expect: fail('LIMIT_EXCEEDED', 'refused before any entry is fetched'),
    after(reg) {
      expect(reg.requests.filter((r) => r.path.includes('/manifests/sha256:'))).toEqual([]);
    },
  },
  {
    name: 'a manifest over 4 MiB (Content-Length says so)',
    setup(reg) {
      reg.putManifest('h/app', 'v1', Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.manifest, pad: 'p'.repeat(5 << 20) })), MT.manifest);
      return 'h/app:v1';
    },
    expect: fail('LIMIT_EXCEEDED', 'maxDocumentBytes, before the body is read'),
  },
  {
    name: 'an endless manifest body without Content-Length',
    setup(reg) {
      reg.intercept((r) =>
        r.path.endsWith('/manifests/v1')
          ? {
              status: 200,
              headers: { 'content-type': MT.manifest },
              body: async function* () {
                yield Buffer.from('{"pad":"');
                for (let i = 0; i < 64; i++) yield Buffer.alloc(1 << 20, 0x61);
              },
            }
          : undefined,
      );
      return 'h/app:v1';
    },
    expect: fail('LIMIT_EXCEEDED', 'reading stops at maxDocumentBytes'),
  },
  {
    name: 'a manifest over the configured maxDocumentBytes',
    setup(reg) {
      serve(reg, 'h/app', 'v1', good());
      return 'h/app:v1';
    },
    limits: { maxDocumentBytes: 100 },
    expect: fail('LIMIT_EXCEEDED', 'maxDocumentBytes is configurable'),
    expectWithDefaults: { safe: 'a small manifest', check: expectPulled },
  },
  {
    name: 'a config declared over 4 MiB',
    setup(reg) {
      const image = ociImage({ manifest: (m) => ((m.config as { size: number }).size = 5 << 20) });
      serve(reg, 'h/app', 'v1', image);
      return 'h/app:v1';
    },
    expect: fail('LIMIT_EXCEEDED', 'refused before it is fetched'),
    after(reg) {
      expect(reg.requests.filter((r) => r.path.includes('/blobs/'))).toEqual([]);
    },
  },
  {
    name: 'a manifest whose Content-Length is shorter than its body',
    setup(reg) {
      const image = good();
      serve(reg, 'h/app', undefined, image);
      const bytes = blobOf(image, image.descriptor.digest);
      const raw = Buffer.concat([
        Buffer.from(`HTTP/1.1 200 OK\r\ncontent-type: ${MT.manifest}\r\ndocker-content-digest: ${image.descriptor.digest}\r\ncontent-length: 40\r\nconnection: close\r\n\r\n`),
        bytes,
      ]);
      reg.intercept((r) => (r.path.endsWith('/manifests/v1') ? { raw } : undefined));
      return 'h/app:v1';
    },
    expect: fail('DIGEST_MISMATCH', 'the bytes read must hash to the digest the registry names'),
  },
  {
    name: 'a manifest whose Content-Length is longer than its body (connection closed)',
    setup(reg) {
      const image = good();
      const bytes = blobOf(image, image.descriptor.digest);
      const raw = Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\ncontent-type: ${MT.manifest}\r\ncontent-length: ${bytes.length + 100}\r\n\r\n`), bytes]);
      reg.intercept((r) => (r.path.endsWith('/manifests/v1') ? { raw } : undefined));
      return 'h/app:v1';
    },
    expect: fail('NETWORK_ERROR', 'a body cut short is retried, then reported'),
    cli: false,
  },
  {
    name: 'a layer whose Content-Length is not its size',
    setup(reg) {
      const image = good();
      serve(reg, 'h/app', 'v1', image);
      const blob = blobOf(image, image.layerDigests[0]);
      reg.intercept((r) => (r.path.endsWith(`/blobs/${image.layerDigests[0]}`) ? { status: 200, headers: { 'content-length': String(blob.length + 1000) }, body: Buffer.concat([blob, Buffer.alloc(1000)]) } : undefined));
      return 'h/app:v1';
    },
    expect: fail('SIZE_MISMATCH', 'refused at the headers'),
  },
  {
    name: 'a layer body that runs past its size (no Content-Length)',
    setup(reg) {
      const image = good();
      serve(reg, 'h/app', 'v1', image);
      const blob = blobOf(image, image.layerDigests[0]);
      reg.intercept((r) =>
        r.path.endsWith(`/blobs/${image.layerDigests[0]}`)
          ? {
              status: 200,
              body: async function* () {
                yield blob;
                for (let i = 0; i < 64; i++) yield Buffer.alloc(1 << 20);
              },
            }
          : undefined,
      );
      return 'h/app:v1';
    },
    expect: fail('SIZE_MISMATCH', 'as soon as the body passes the size'),
  },
  {
    name: 'a layer whose bytes do not match its digest',
    setup(reg) {
      const image = good();
      serve(reg, 'h/app', 'v1', image);
      reg.putBlob(flip(blobOf(image, image.layerDigests[0]), 30), image.layerDigests[0]);
      return 'h/app:v1';
    },
    expect: fail('DIGEST_MISMATCH', 'nothing is named under a digest its bytes do not have'),
  },
  {
    name: 'a config whose bytes do not match its digest',
    setup(reg) {
      const image = good();
      serve(reg, 'h/app', 'v1', image);
      reg.putBlob(flip(blobOf(image, image.configDigest), 5), image.configDigest);
      return 'h/app:v1';
    },
    expect: fail('DIGEST_MISMATCH', 'documents are verified'),
  },
  {
    name: 'a config whose diff_ids do not match the layers',
    setup(reg) {
      serve(reg, 'h/app', 'v1', ociImage({ config: (c) => ((c.rootfs as { diff_ids: string[] }).diff_ids = [sha256('another tar')]) }));
      return 'h/app:v1';
    },
    expect: fail('DIGEST_MISMATCH', 'layers are checked against their diff_ids as they download'),
  },
  {
    name: 'the second layer lies after the first was stored',
    setup(reg) {
      const image = twoLayers();
      serve(reg, 'h/app', 'v1', image);
      reg.putBlob(flip(blobOf(image, image.layerDigests[1]), 30), image.layerDigests[1]);
      return 'h/app:v1';
    },
    expect: fail('DIGEST_MISMATCH', 'and the first layer is taken back'),
  },
  {
    name: 'one layer fails while another is still downloading',
    setup(reg) {
      const image = twoLayers();
      serve(reg, 'h/app', 'v1', image);
      reg.putBlob(flip(blobOf(image, image.layerDigests[0]), 30), image.layerDigests[0]);
      const slow = blobOf(image, image.layerDigests[1]);
      reg.intercept((r) => (r.path.endsWith(`/blobs/${image.layerDigests[1]}`) ? { status: 200, headers: { 'content-length': String(slow.length) }, body: slow, delayMs: 300 } : undefined));
      return 'h/app:v1';
    },
    expect: fail('DIGEST_MISMATCH', 'the write in flight finishes, then is taken back'),
    settleMs: 500,
  },
  {
    name: 'a manifest of an unknown media type',
    setup(reg) {
      reg.putManifest('h/app', 'v1', Buffer.from('{"schemaVersion":2}'), 'application/x-evil');
      return 'h/app:v1';
    },
    expect: fail('UNSUPPORTED_MEDIA_TYPE', 'only manifests and indexes'),
  },
  {
    name: 'a Docker schema 1 manifest',
    setup(reg) {
      reg.putManifest('h/app', 'v1', Buffer.from('{"schemaVersion":1,"name":"h/app","tag":"v1","fsLayers":[]}'), 'application/vnd.docker.distribution.manifest.v1+prettyjws');
      return 'h/app:v1';
    },
    expect: fail('UNSUPPORTED_MEDIA_TYPE', 'schema 1 is refused'),
  },
  {
    name: 'a layer of an unknown media type',
    setup(reg) {
      serve(reg, 'h/app', 'v1', ociImage({ manifest: (m) => ((m.layers as { mediaType: string }[])[0].mediaType = 'application/x-evil') }));
      return 'h/app:v1';
    },
    expect: fail('UNSUPPORTED_MEDIA_TYPE', 'only layer media types'),
  },
  {
    name: 'an index entry whose size does not match the manifest served',
    setup(reg) {
      const image = good();
      serve(reg, 'h/app', undefined, image);
      reg.putManifest('h/app', 'v1', Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.index, manifests: [{ ...image.entry, size: image.descriptor.size - 1 }] })), MT.index);
      return 'h/app:v1';
    },
    expect: fail('SIZE_MISMATCH', 'documents are checked against their descriptors'),
  },
  {
    name: 'layers redirected to another host (credentials stay home)',
    setup(reg, other) {
      const image = good();
      serve(reg, 'h/app', 'v1', image);
      const layer = blobOf(image, image.layerDigests[0]);
      other.putBlob(layer);
      reg.requireBasicAuth('user', 'secret');
      reg.intercept((r) => (r.path.endsWith(`/blobs/${image.layerDigests[0]}`) ? { status: 307, headers: { location: `http://${other.host}/storage/${image.layerDigests[0]}` } } : undefined));
      other.intercept((r) => (r.path.startsWith('/storage/') ? { status: 200, headers: { 'content-length': String(layer.length) }, body: layer } : undefined));
      return 'h/app:v1';
    },
    expect: { safe: 'followed; the bytes are verified wherever they come from', check: expectPulled },
    expectWithDefaults: fail('AUTH_FAILED', 'the layout pull and the CLI have no credentials'),
    cli: true,
    after(_reg, other) {
      const storage = other.requests.filter((r) => r.path.startsWith('/storage/'));
      expect(storage.length).toBeGreaterThan(0);
      for (const r of storage) expect(r.headers.authorization).toBeUndefined();
    },
  },
  {
    name: 'a layer redirected to a host serving other bytes',
    setup(reg, other) {
      const image = good();
      serve(reg, 'h/app', 'v1', image);
      const evil = flip(blobOf(image, image.layerDigests[0]), 30);
      reg.intercept((r) => (r.path.endsWith(`/blobs/${image.layerDigests[0]}`) ? { status: 302, headers: { location: `http://${other.host}/storage/x` } } : undefined));
      other.intercept((r) => (r.path.startsWith('/storage/') ? { status: 200, body: evil } : undefined));
      return 'h/app:v1';
    },
    expect: fail('DIGEST_MISMATCH', 'wherever a redirect leads, the digest decides'),
  },
  {
    name: 'a redirect loop',
    setup(reg) {
      const image = good();
      serve(reg, 'h/app', 'v1', image);
      reg.intercept((r) => (r.path.includes('/blobs/') || r.path.startsWith('/loop') ? { status: 307, headers: { location: `/loop${Math.random()}` } } : undefined));
      return 'h/app:v1';
    },
    expect: fail('REGISTRY_ERROR', 'at most 10 redirects'),
  },
  {
    name: 'a redirect to a closed port',
    setup(reg) {
      const image = good();
      serve(reg, 'h/app', 'v1', image);
      reg.intercept((r) => (r.path.includes(`/blobs/${image.layerDigests[0]}`) ? { status: 307, headers: { location: 'http://127.0.0.1:1/nothing' } } : undefined));
      return 'h/app:v1';
    },
    expect: fail('NETWORK_ERROR', 'nobody answers'),
    cli: false,
  },
  {
    name: 'a redirect to a file: URL',
    setup(reg) {
      const image = good();
      serve(reg, 'h/app', 'v1', image);
      reg.intercept((r) => (r.path.includes('/blobs/') ? { status: 307, headers: { location: 'file:///etc/passwd' } } : undefined));
      return 'h/app:v1';
    },
    expect: fail('NETWORK_ERROR', 'only http(s) is fetched'),
    cli: false,
  },
  {
    name: 'a layer that is missing',
    setup(reg) {
      const image = good();
      serve(reg, 'h/app', 'v1', image);
      reg.intercept((r) => (r.path.endsWith(`/blobs/${image.layerDigests[0]}`) ? { status: 404, body: '{"errors":[{"code":"BLOB_UNKNOWN"}]}' } : undefined));
      return 'h/app:v1';
    },
    expect: fail('BLOB_NOT_FOUND', 'named in the error'),
  },
  { name: 'a tag that does not exist', setup: () => 'h/none:v1', expect: fail('IMAGE_NOT_FOUND', 'the registry said 404') },
  {
    name: 'a token realm (on another host) that answers an endless body',
    setup(reg, other) {
      serve(reg, 'h/app', 'v1', good());
      reg.intercept((r) =>
        r.path.startsWith('/v2/') && !String(r.headers.authorization ?? '').startsWith('Bearer ')
          ? { status: 401, headers: { 'www-authenticate': `Bearer realm="http://${other.host}/token",service="fake"`, 'content-type': 'application/json' }, body: '{"errors":[{"code":"UNAUTHORIZED"}]}' }
          : undefined,
      );
      other.intercept((r) =>
        r.path.startsWith('/token')
          ? {
              status: 200,
              headers: { 'content-type': 'application/json' },
              body: async function* () {
                yield Buffer.from('{"token":"');
                for (let i = 0; i < 64; i++) yield Buffer.alloc(1 << 20, 0x61);
              },
            }
          : undefined,
      );
      return 'h/app:v1';
    },
    expect: fail('LIMIT_EXCEEDED', 'a token answer is read with a bound (1 MiB)'),
  },
  {
    name: 'a config that keeps failing with 500',
    setup(reg) {
      const image = good();
      serve(reg, 'h/app', 'v1', image);
      reg.intercept((r) => (r.path.endsWith(`/blobs/${image.configDigest}`) ? { status: 500, body: '{"errors":[{"code":"UNKNOWN"}]}' } : undefined));
      return 'h/app:v1';
    },
    expect: fail('REGISTRY_ERROR', 'retried, then reported'),
    cli: false,
  },
  {
    name: 'a layer that decompresses to 32 MiB of zeros',
    setup(reg) {
      serve(reg, 'h/app', 'v1', ociImage({ layers: [rawLayer(tar([dir('etc'), file('etc/hostname', 'n'), file('zeros', Buffer.alloc(32 << 20))]), true)] }));
      return 'h/app:v1';
    },
    limits: { layerLimits: { maxUncompressedBytes: 8 << 20 } },
    expect: fail('LIMIT_EXCEEDED', 'the diff_id check is bounded too'),
    expectWithDefaults: { safe: 'within the default 1 TiB', check: expectPulled },
  },
  {
    name: 'a manifest with 1,001 layers',
    setup(reg) {
      const layer = rawLayer(okTar(), true);
      serve(reg, 'h/app', 'v1', ociImage({ layers: Array.from({ length: 1001 }, () => layer) }));
      return 'h/app:v1';
    },
    expect: fail('LIMIT_EXCEEDED', 'maxLayers 1,000'),
  },
];

describe('pull from a hostile registry', () => {
  let reg: FakeRegistry;
  let other: FakeRegistry;
  beforeAll(async () => {
    reg = await startFakeRegistry();
    other = await startFakeRegistry();
  });
  afterAll(async () => {
    await reg?.stop();
    await other?.stop();
  });

  const access = { retries: 1, retryBaseDelayMs: 1, maxRetryDelayMs: 5, authFile: false as const, platform: 'linux/amd64' };

  async function runCase(c: PullCase): Promise<void> {
    reg.reset();
    other.reset();
    const sb = sandbox('crfs-pull-');
    try {
      const root = join(sb, 'store');
      const store = await ImageStore.open({ fs: diskFs, root });
      const pre = join(sb, 'pre.tar');
      nodeFs.writeFileSync(pre, tar(dockerArchiveRecords({ repoTags: ['pre/existing:v1'] })));
      await loadArchiveIntoStore(store, pre, { fs: diskFs });
      nodeFs.rmSync(pre);
      const layoutDir = join(sb, 'layout');
      const layout = await OciLayout.create(diskFs, layoutDir);
      const ref = `docker://${reg.host}/${c.setup(reg, other)}`;
      const before = snapshot(sb);
      const fdsBefore = openFds();

      // 1. pullToStore with the case's limits (and credentials, for the auth case).
      const credentials = { username: 'user', password: 'secret' };
      const stored = await outcome(() => pullToStore(ref, store, { ...access, credentials, name: 'pulled/image:v1', ...(c.limits ? { limits: c.limits } : {}) }));
      await judge(stored, c.expect, store, sb, before);

      // 2. pullToLayout with the defaults, into the empty layout.
      const withDefaults = c.expectWithDefaults ?? c.expect;
      const layoutBefore = snapshot(layoutDir);
      const pulled = await outcome(() => pullToLayout(ref, layout, { ...access, tag: 'v1' }));
      if ('code' in withDefaults) {
        expectCode(pulled, withDefaults.code, withDefaults.why);
        expect(snapshot(layoutDir)).toEqual(layoutBefore);
      } else if (pulled instanceof Error) {
        throw pulled;
      }

      // 3. The CLI, with the defaults.
      if (c.cli !== false) {
        const out = await cli(['pull', ref, '-t', 'cli/image:v1', '--platform', 'linux/amd64', '--store', root, '-q', '--authfile', join(sb, 'no-auth.json')], diskFs);
        if ('code' in withDefaults) {
          expect({ exit: out.code, stderr: out.stderr }).toEqual({ exit: 1, stderr: expect.stringContaining(`[${withDefaults.code}]`) });
        } else {
          expect({ exit: out.code, stderr: out.stderr }).toEqual({ exit: 0, stderr: '' });
        }
      }

      // A write still in flight when the pull failed must not land later.
      if ('code' in c.expect && 'code' in withDefaults) {
        await new Promise((r) => setTimeout(r, c.settleMs ?? 20));
        expect(snapshot(sb)).toEqual(before);
      }
      expect(snapshot(sb, [root, layoutDir])).toEqual(snapshotOutside(before, [root, layoutDir]));
      expect(leftovers(sb)).toEqual([]);
      for (const entry of await (await ImageStore.open({ fs: diskFs, root })).list()) {
        expect((await validate(await store.loadTarget(entry.reference ?? entry.digest))).issues).toEqual([]);
      }
      c.after?.(reg, other);
      // Pooled keep-alive connections are not leaks: let the servers close them first.
      reg.closeConnections();
      other.closeConnections();
      await expectNoFdLeak(fdsBefore);
    } finally {
      nodeFs.rmSync(sb, { recursive: true, force: true });
    }
  }

  for (const c of CASES) {
    const why = 'code' in c.expect ? `${c.expect.code}: ${c.expect.why}` : `safe: ${c.expect.safe}`;
    test(`${c.name} → ${why}`, () => runCase(c), 60_000);
  }
});

/** The part of a snapshot outside `skip`. */
function snapshotOutside(snap: Map<string, string>, skip: string[]): Map<string, string> {
  return new Map([...snap].filter(([path]) => !skip.some((s) => path === s || path.startsWith(`${s}/`))));
}

async function judge(result: PullResult | Error, expected: PullExpectation, store: ImageStore, sb: string, before: Map<string, string>): Promise<void> {
  if ('code' in expected) {
    expectCode(result, expected.code, expected.why);
    expect(snapshot(sb)).toEqual(before);
    return;
  }
  if (result instanceof Error) throw new Error(`expected a safe result (${expected.safe}), got ${(result as CloudRootfsError).code ?? ''} ${result.stack}`);
  await expected.check(result, store);
}
