/**
 * Where credentials go, exactly as docs/security.md says ("Registries"): the user name and
 * password to the registry's own origin (Basic) and to the token server its Bearer challenge
 * names, wherever that is (another port, another host); the token only to the registry's own
 * origin; neither to where a redirect leads off the origin a request started at.
 */
import * as nodeFs from 'node:fs';
import { join } from 'node:path';
import { diskFs } from '../../lib/fs';
import { canonicalJsonBytes } from '../../lib/image/json';
import { pullToStore } from '../../lib/registry/pull';
import { ImageStore } from '../../lib/store';
import { FakeRegistry, FakeRequest, startFakeRegistry } from '../support/fake-registry';
import { scratchDir } from '../support/umoci';
import { MT, okTar } from '../hardening/archives';
import { rawLayer, sha256 } from '../hardening/corpus';

const USER = 'alice';
const PASSWORD = 's3cret';
const BASIC = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;
const TOKEN = 'token-for-the-registry-only';
const access = { retries: 1, retryBaseDelayMs: 1, maxRetryDelayMs: 5, authFile: false as const, platform: 'linux/amd64', credentials: { username: USER, password: PASSWORD } };

/** An image on `reg` under team/app:v1; returns the layer's digest and bytes. */
function serveImage(reg: FakeRegistry): { layer: string; blob: Buffer } {
  const layer = rawLayer(okTar(), true);
  const config = canonicalJsonBytes({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layer.diffId] } });
  reg.putBlob(layer.blob);
  reg.putBlob(config);
  reg.putManifest(
    'team/app',
    'v1',
    canonicalJsonBytes({
      schemaVersion: 2,
      mediaType: MT.manifest,
      config: { mediaType: MT.config, digest: sha256(config), size: config.length },
      layers: [{ mediaType: MT.layerGzip, digest: sha256(layer.blob), size: layer.blob.length }],
    }),
    MT.manifest,
  );
  return { layer: sha256(layer.blob), blob: layer.blob };
}

const authOf = (r: FakeRequest) => (r.headers.authorization as string | undefined) ?? null;

describe('where credentials go', () => {
  let reg: FakeRegistry;
  let tokenServer: FakeRegistry;
  let storage: FakeRegistry;
  let dir: string;
  beforeAll(async () => {
    [reg, tokenServer, storage] = await Promise.all([startFakeRegistry(), startFakeRegistry(), startFakeRegistry()]);
  });
  afterAll(async () => {
    await Promise.all([reg.stop(), tokenServer.stop(), storage.stop()]);
  });
  beforeEach(() => {
    reg.reset();
    tokenServer.reset();
    storage.reset();
    dir = scratchDir('crfs-credentials-');
  });
  afterEach(() => nodeFs.rmSync(dir, { recursive: true, force: true }));

  test('Bearer: the password goes to the token realm on another port; the registry sees only the token; a redirect off it sees nothing', async () => {
    const { layer, blob } = serveImage(reg);
    reg.intercept((r) =>
      r.path.startsWith('/v2/') && authOf(r) !== `Bearer ${TOKEN}`
        ? { status: 401, headers: { 'www-authenticate': `Bearer realm="http://${tokenServer.host}/token",service="fake"`, 'content-type': 'application/json' }, body: '{"errors":[{"code":"UNAUTHORIZED"}]}' }
        : undefined,
    );
    reg.intercept((r) => (r.path.endsWith(`/blobs/${layer}`) && authOf(r) === `Bearer ${TOKEN}` ? { status: 307, headers: { location: `http://${storage.host}/storage/${layer}` } } : undefined));
    tokenServer.intercept((r) => (r.path.startsWith('/token') ? { status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: TOKEN }) } : undefined));
    storage.intercept((r) => (r.path.startsWith('/storage/') ? { status: 200, body: blob } : undefined));

    const store = await ImageStore.open({ fs: diskFs, root: join(dir, 'store') });
    await pullToStore(`${reg.host}/team/app:v1`, store, access);

    // The token server (another port: another origin) was sent the user's password.
    const tokenRequests = tokenServer.requests.filter((r) => r.path.startsWith('/token'));
    expect(tokenRequests.length).toBeGreaterThan(0);
    for (const r of tokenRequests) {
      expect(authOf(r)).toBe(BASIC);
      expect(new URL(r.path, 'http://x').searchParams.get('account')).toBe(USER);
    }
    // The registry never saw the password, only the token (or nothing, before the challenge).
    expect(new Set(reg.requests.map(authOf))).toEqual(new Set([null, `Bearer ${TOKEN}`]));
    // The storage the registry redirected to saw neither.
    const stored = storage.requests.filter((r) => r.path.startsWith('/storage/'));
    expect(stored.length).toBeGreaterThan(0);
    for (const r of stored) expect(authOf(r)).toBeNull();
  });

  test('Basic: the password goes to the registry\'s own origin only, never where a redirect leads', async () => {
    const { layer, blob } = serveImage(reg);
    reg.requireBasicAuth(USER, PASSWORD);
    reg.intercept((r) => (r.path.endsWith(`/blobs/${layer}`) && authOf(r) === BASIC ? { status: 302, headers: { location: `http://${storage.host}/storage/${layer}` } } : undefined));
    storage.intercept((r) => (r.path.startsWith('/storage/') ? { status: 200, body: blob } : undefined));

    const store = await ImageStore.open({ fs: diskFs, root: join(dir, 'store') });
    await pullToStore(`${reg.host}/team/app:v1`, store, access);
    expect(new Set(reg.requests.map(authOf))).toEqual(new Set([null, BASIC]));
    const stored = storage.requests.filter((r) => r.path.startsWith('/storage/'));
    expect(stored.length).toBeGreaterThan(0);
    for (const r of stored) expect(authOf(r)).toBeNull();
    expect(tokenServer.requests).toEqual([]);
  });
});
