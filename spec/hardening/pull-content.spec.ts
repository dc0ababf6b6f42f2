/**
 * `pull` of well-formed images whose layers are hostile in content: every error-expecting case of
 * the layer corpus, served by a registry with honest digests and diff_ids. A pull checks each
 * layer's tar as it streams (paths that escape, devices, bad whiteouts, lying headers…) and the
 * image's stack before its manifest is written (a hardlink to a file in no layer, a child under
 * a file), so every case ends with its own typed error and the store byte-identical — also when
 * the store already held one of the layers (it is read back from there for the stack check).
 */
import * as nodeFs from 'node:fs';
import { join } from 'node:path';
import { CloudRootfsError } from '../../lib/errors';
import { diskFs } from '../../lib/fs';
import { pullToStore } from '../../lib/registry/pull';
import { ImageStore } from '../../lib/store/store';
import { FakeRegistry, startFakeRegistry } from '../support/fake-registry';
import { MT, OciImage, blobName, ociImage } from './archives';
import { LAYER_CASES, file, hardlink, rawLayer, sha256, tar } from './corpus';
import { expectNoFdLeak, leftovers, openFds, outcome, sandbox, snapshot } from './support';

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
      if (!(result instanceof CloudRootfsError)) throw new Error(`expected ${code}, got ${result instanceof Error ? result.stack : 'success'}`);
      expect(result.code).toBe(code);
      expect(snapshot(sb)).toEqual(before);
    } finally {
      nodeFs.rmSync(sb, { recursive: true, force: true });
    }
  });

  test('a layer the store already holds is read back from it for the stack check', async () => {
    reg.reset();
    const sb = sandbox('crfs-pullc-');
    try {
      const root = join(sb, 'store');
      const store = await ImageStore.open({ fs: diskFs, root });
      // The lower layer alone is a fine image: pulled and stored first.
      const lower = rawLayer(tar([file('bin/real', 'x')]), true);
      serve('h/lower', ociImage({ layers: [lower] }));
      await pullToStore(`${reg.host}/h/lower:v1`, store, { authFile: false, retries: 0 });
      // On top of it, a layer whose hardlink names a file no layer has: only the stack shows it.
      const upper = rawLayer(tar([hardlink('bin/link', 'bin/missing')]), true);
      serve('h/stack', ociImage({ layers: [lower, upper] }));
      const before = snapshot(sb);
      const result = await outcome(() => pullToStore(`${reg.host}/h/stack:v1`, store, { authFile: false, retries: 0 }));
      expect(result).toMatchObject({ code: 'HARDLINK_TARGET' });
      expect(snapshot(sb)).toEqual(before);
      reg.closeConnections();
    } finally {
      nodeFs.rmSync(sb, { recursive: true, force: true });
    }
  });
});
