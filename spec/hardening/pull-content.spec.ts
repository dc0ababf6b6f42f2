/**
 * `pull` of well-formed images whose layers are hostile in content: every error-expecting case of
 * the layer corpus, served by a registry with honest digests and diff_ids. A pull checks each
 * layer's tar as it streams, so a case a single layer shows (paths that escape, devices, bad
 * whiteouts, lying headers…) ends with the case's own typed error and the store byte-identical.
 * What only the stack shows (a hardlink to a file in no layer, a child under a file) is the
 * documented exception (docs/security.md): the pull stores the image, and every read of it fails
 * with the case's code.
 */
import * as nodeFs from 'node:fs';
import { join } from 'node:path';
import { CloudRootfsError } from '../../lib/errors';
import { diskFs } from '../../lib/fs';
import { pullToStore } from '../../lib/registry/pull';
import { ImageStore } from '../../lib/store/store';
import { FakeRegistry, startFakeRegistry } from '../support/fake-registry';
import { MT, OciImage, blobName, ociImage } from './archives';
import { LAYER_CASES, rawLayer, sha256 } from './corpus';
import { expectNoFdLeak, leftovers, openFds, outcome, sandbox, snapshot } from './support';

/** Codes only the stack of layers can produce (applying a layer onto those below it). */
const STACK_CODES = new Set(['HARDLINK_TARGET', 'LAYER_CONFLICT']);

describe('pull of an image whose layers are hostile in content', () => {
  let reg: FakeRegistry;
  beforeAll(async () => {
    reg = await startFakeRegistry();
  });
  afterAll(() => reg?.stop());

  function serve(repo: string, image: OciImage): void {
    let manifest!: Buffer;
    for (const r of image.blobs) {
      const bytes = Buffer.from(r.data as Buffer);
      if (r.name === blobName(image.descriptor.digest)) manifest = bytes;
      else reg.putBlob(bytes, sha256(bytes));
    }
    reg.putManifest(repo, 'v1', manifest, MT.manifest);
  }

  const cases = LAYER_CASES.filter((c) => 'code' in c.expect && !c.stored && !c.limits);

  test.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    reg.reset();
    const sb = sandbox('crfs-pullc-');
    try {
      const root = join(sb, 'store');
      const store = await ImageStore.open({ fs: diskFs, root });
      serve('h/layers', ociImage({ layers: c.layers(sb).map((t) => rawLayer(t, true)) }));
      const code = (c.expect as { code: string }).code;
      const before = snapshot(sb);
      const fds = openFds();
      const result = await outcome(() => pullToStore(`${reg.host}/h/layers:v1`, store, { authFile: false, retries: 0 }));
      // Pooled keep-alive connections are not leaks: let the server close them first.
      reg.closeConnections();
      await expectNoFdLeak(fds);
      expect(leftovers(root)).toEqual([]);
      if (result instanceof CloudRootfsError) {
        expect(result.code).toBe(code);
        expect(snapshot(sb)).toEqual(before);
        return;
      }
      // Stored: only for what no single layer shows, and then every read of it fails typed.
      if (result instanceof Error) throw result;
      expect(STACK_CODES.has(code)).toBe(true);
      const read = await outcome(async () => (await store.loadImage(`${reg.host}/h/layers:v1`)).flatten());
      expect(read).toBeInstanceOf(CloudRootfsError);
      expect((read as CloudRootfsError).code).toBe(code);
      expect(nodeFs.existsSync(join(sb, 'evil'))).toBe(false);
    } finally {
      nodeFs.rmSync(sb, { recursive: true, force: true });
    }
  });

  test('the cases cover both outcomes: refused while streaming, and stack-only', () => {
    const codes = new Set(cases.map((c) => (c.expect as { code: string }).code));
    expect([...codes].some((x) => STACK_CODES.has(x))).toBe(true);
    expect([...codes].some((x) => !STACK_CODES.has(x))).toBe(true);
  });
});
