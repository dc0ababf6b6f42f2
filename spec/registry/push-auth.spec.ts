/**
 * Push and pull through authentication: htpasswd Basic auth and the Bearer token flow (a token
 * server on loopback), credentials given directly or found in an auth file; skopeo, with the
 * same credentials, sees what we pushed.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { AuthError } from '../../lib/errors';
import { Image, ImageIndex } from '../../lib/image/image';
import { login } from '../../lib/registry/login';
import { pullImage } from '../../lib/registry/pull';
import { pushImage } from '../../lib/registry/push';
import { RegistryClientPool } from '../../lib/registry/remote';
import { describeWithRegistry, startTestRegistry, uniqueRepo, type TestRegistry } from '../support/registry';
import { requireTool } from '../support/tools';
import { contentsOf, randomTag, sampleImage, sampleIndex, skopeoRawDigest, tempDir } from './images';

const amd64 = { os: 'linux', architecture: 'amd64' };

for (const auth of ['basic', 'token'] as const) {
  describeWithRegistry(auth, `push and pull with ${auth} auth`, () => {
    let registry: TestRegistry;
    let work: string;
    const users = { ci: 'pipeline-secret', reader: 'read-only' };
    beforeAll(async () => {
      registry = await startTestRegistry({
        auth,
        users,
        // The token server gives `reader` pull only; htpasswd cannot express that.
        token: { grant: (user, requested) => (user === 'ci' ? requested.actions : requested.actions.filter((a) => a === 'pull')) },
      });
      work = await tempDir(`push-${auth}`);
    });
    afterAll(async () => {
      await registry?.stop();
      if (work) await fsp.rm(work, { recursive: true, force: true });
    });

    const credentials = { username: 'ci', password: users.ci };

    it('pushes an index with credentials and pulls it back identical', async () => {
      const index = sampleIndex(randomTag());
      const ref = `docker://${registry.host}/${uniqueRepo(auth)}:v1`;
      const pushed = await pushImage(index, ref, { credentials, authFile: false });
      const pulled = (await pullImage(ref, { credentials, authFile: false })) as ImageIndex;
      expect(pulled.stored?.descriptor.digest).toBe(pushed.digest);
      expect(await contentsOf(pulled.select(amd64))).toEqual(await contentsOf(index.select(amd64)));
      if (auth === 'token') {
        // One client per host: a token per scope set, not one per request.
        const before = registry.tokenServer!.requests.length;
        const pool = new RegistryClientPool({ credentials, authFile: false });
        await pushImage(sampleImage(amd64, 'pool'), `docker://${registry.host}/${uniqueRepo('pool')}:v1`, { clients: pool });
        expect(registry.tokenServer!.requests.length - before).toBeLessThanOrEqual(3);
        expect(registry.tokenServer!.requests.slice(before).every((r) => r.user === 'ci')).toBe(true);
      }
    });

    it('reads the credentials from an auth file written by login, as skopeo does', async () => {
      const authFile = path.join(work, 'auth.json');
      await login({ registry: registry.host, username: 'ci', password: users.ci, authFile });
      const image = sampleImage(amd64, 'authfile', { seed: randomTag() });
      const ref = `docker://${registry.host}/${uniqueRepo('authfile')}:v1`;
      const pushed = await pushImage(image, ref, { authFile });
      const pulled = (await pullImage(ref, { authFile })) as Image;
      expect(pulled.stored?.manifestDescriptor.digest).toBe(pushed.digest);
      if (requireTool('skopeo')) expect(await skopeoRawDigest(ref, '--authfile', authFile)).toBe(pushed.digest);
    });

    it('fails with AUTH_FAILED, writing nothing, for bad or missing credentials', async () => {
      const ref = `docker://${registry.host}/${uniqueRepo('denied')}:v1`;
      const image = sampleImage(amd64, 'denied');
      await expect(pushImage(image, ref, { credentials: { username: 'ci', password: 'wrong' }, authFile: false })).rejects.toBeInstanceOf(AuthError);
      await expect(pushImage(image, ref, { authFile: false })).rejects.toMatchObject({ code: 'AUTH_FAILED' });
      if (auth === 'token') {
        // Allowed to pull, not to push.
        await expect(pushImage(image, ref, { credentials: { username: 'reader', password: users.reader }, authFile: false })).rejects.toMatchObject({
          code: 'AUTH_FAILED',
        });
      }
      await expect(pullImage(ref, { credentials, authFile: false })).rejects.toMatchObject({ code: 'IMAGE_NOT_FOUND' });
    });
  });
}
