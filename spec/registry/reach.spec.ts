/**
 * Registries as enterprises and offline clusters run them, against Debian's docker-registry with
 * skopeo reading back what we pushed in each setup: a private CA given through certs.d (a
 * test-controlled root, and the default `$HOME/.config/containers/certs.d`), TLS without
 * verification, client certificates (the registry's `clientcas`), a port on the Fetch standard's
 * "bad port" list, credentials that only a `docker-credential-*` helper knows, a proxy that
 * counts what it forwards (and is bypassed by NO_PROXY), and registries.conf mirrors that serve
 * a FROM base and an embedded image while the registry they mirror is down.
 */
import { execFile } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { buildImage } from '../../lib/build/build-image';
import { diskFs } from '../../lib/fs';
import { Image } from '../../lib/image/image';
import { RegistryClient } from '../../lib/registry/client';
import { buildRegistryLayer } from '../../lib/registry/embedded';
import { login, logout } from '../../lib/registry/login';
import type { RegistryOptions } from '../../lib/registry/options';
import { pullImage, pullToStore } from '../../lib/registry/pull';
import { pushImage } from '../../lib/registry/push';
import { ImageStore } from '../../lib/store';
import { runCaptured } from '../support/cli';
import { makeTestPki, startCountingProxy, writeCertsDir, writeCredentialHelper, type TestPki } from '../support/reach';
import { freePort, startTestRegistry, uniqueRepo, type TestRegistry } from '../support/registry';
import { describeWithTools } from '../support/tools';
import { sampleImage, sha256, tempDir } from './images';

const execFileAsync = promisify(execFile);
const platform = { os: 'linux', architecture: 'amd64' };

/** skopeo with its own environment; returns the raw manifest's digest. */
async function skopeoDigest(ref: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<string> {
  try {
    const { stdout } = await execFileAsync('skopeo', ['inspect', '--raw', ...args, ref], { encoding: 'buffer', env, maxBuffer: 64 << 20 });
    return sha256(stdout as unknown as Buffer);
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    throw new Error(`skopeo inspect ${args.join(' ')} ${ref} failed: ${e.stderr?.toString() ?? e.message}`);
  }
}

/** Push a small image; pull it back and check it is the same bytes; returns its digest. */
async function roundTrip(registry: string, options: RegistryOptions, marker = 'reach'): Promise<{ ref: string; digest: string }> {
  const ref = `docker://${registry}/${uniqueRepo(marker)}:v1`;
  const pushed = await pushImage(sampleImage(platform, marker), ref, { ...options, authFile: options.authFile ?? false });
  const pulled = await pullImage(ref, { ...options, authFile: options.authFile ?? false, platform });
  expect(pulled).toBeInstanceOf(Image);
  expect((pulled as Image).stored?.manifestDescriptor.digest).toBe(pushed.digest);
  // Every layer read back, verified against its digest and diff_id.
  const rootfs = await (pulled as Image).flatten();
  expect(rootfs.get(`etc/${marker}.conf`)?.type).toBe('file');
  return { ref: ref.slice('docker://'.length), digest: pushed.digest };
}

describeWithTools(['docker-registry', 'openssl', 'skopeo', 'htpasswd'], 'reaching registries', () => {
  let dir: string;
  let pki: TestPki;
  const stops: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    dir = await tempDir('reach');
    pki = await makeTestPki(path.join(dir, 'pki'));
  });
  afterAll(async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    await fsp.rm(dir, { recursive: true, force: true });
  });

  const started = async (reg: Promise<TestRegistry>): Promise<TestRegistry> => {
    const r = await reg;
    stops.push(() => r.stop());
    return r;
  };

  describe('TLS with a private CA', () => {
    let registry: TestRegistry;
    beforeAll(async () => {
      registry = await started(startTestRegistry({ tls: { certificate: pki.serverCert, key: pki.serverKey } }));
    });

    it('trusts the CA of a certs.d directory (HOST:PORT under a chosen root), and skopeo reads back with it', async () => {
      const root = path.join(dir, 'certs.d-a');
      const hostDir = await writeCertsDir(root, registry.host, pki);
      const { ref, digest } = await roundTrip(registry.host, { certsDirs: [root], tlsVerify: true });
      expect(await skopeoDigest(`docker://${ref}`, ['--cert-dir', hostDir])).toBe(digest);
    });

    it('looks in $HOME/.config/containers/certs.d by default', async () => {
      const home = path.join(dir, 'home-a');
      await writeCertsDir(path.join(home, '.config', 'containers', 'certs.d'), registry.host, pki);
      await roundTrip(registry.host, { env: { HOME: home }, homeDir: home, tlsVerify: true });
    });

    it('uses exactly one directory: the first existing HOST:PORT, never merged, never HOST alone', async () => {
      const empty = path.join(dir, 'certs.d-empty');
      const good = path.join(dir, 'certs.d-good');
      await fsp.mkdir(path.join(empty, registry.host), { recursive: true }); // exists, holds no CA
      await writeCertsDir(good, registry.host, pki);
      const first = new RegistryClient({ registry: registry.host, certsDirs: [empty, good], tlsVerify: true, authFile: false, retries: 0 });
      await expect(first.ping()).rejects.toMatchObject({ code: 'TLS_ERROR' });
      const hostOnly = path.join(dir, 'certs.d-hostonly');
      await writeCertsDir(hostOnly, '127.0.0.1', pki); // no port: not the registry's directory
      const noPort = new RegistryClient({ registry: registry.host, certsDirs: [hostOnly], tlsVerify: true, authFile: false, retries: 0 });
      await expect(noPort.ping()).rejects.toMatchObject({ code: 'TLS_ERROR' });
      const second = new RegistryClient({ registry: registry.host, certsDirs: [path.join(dir, 'missing'), good], tlsVerify: true, authFile: false });
      await expect(second.ping()).resolves.toEqual({ auth: 'none' });
    });

    it('takes the CA from --cert-dir (files directly in DIR) and from the tls option', async () => {
      const certDir = path.join(dir, 'cert-dir');
      await fsp.mkdir(certDir, { recursive: true });
      await fsp.copyFile(pki.caCert, path.join(certDir, 'private-ca.crt'));
      await roundTrip(registry.host, { certDir, tlsVerify: true });
      const ca = await fsp.readFile(pki.caCert, 'utf8');
      await roundTrip(registry.host, { tls: { [registry.host]: { ca } }, tlsVerify: true });
      await roundTrip(registry.host, { tls: (r) => (r === registry.host ? { ca } : undefined) });
    });

    it('refuses the certificate without the CA (TLS_ERROR, not retried); tlsVerify: false goes through, as for skopeo', async () => {
      const strict = new RegistryClient({ registry: registry.host, certsDirs: [], tlsVerify: true, authFile: false, retryBaseDelayMs: 1 });
      const failure = await strict.ping().catch((err: unknown) => err);
      expect(failure).toMatchObject({ code: 'TLS_ERROR' });
      expect(String((failure as Error).message)).toMatch(/certs\.d|--cert-dir/);
      // A loopback host, nothing configured: verified https; no fall back to http for a TLS server.
      await expect(new RegistryClient({ registry: registry.host, certsDirs: [], authFile: false }).ping()).rejects.toMatchObject({ code: 'TLS_ERROR' });
      const { ref, digest } = await roundTrip(registry.host, { certsDirs: [], tlsVerify: false });
      expect(await skopeoDigest(`docker://${ref}`, ['--tls-verify=false'])).toBe(digest);
    });

    it('refuses a half client pair in certs.d with the containers tools\' words', async () => {
      const root = path.join(dir, 'certs.d-half');
      const hostDir = await writeCertsDir(root, registry.host, pki);
      await fsp.copyFile(pki.clientCert, path.join(hostDir, 'client.cert'));
      const c = () => new RegistryClient({ registry: registry.host, certsDirs: [root], authFile: false });
      await expect(c().ping()).rejects.toMatchObject({
        code: 'REGISTRY_CONFIG',
        message: 'missing key client.key for client certificate client.cert. Note that CA certificates should use the extension .crt',
      });
      await fsp.rm(path.join(hostDir, 'client.cert'));
      await fsp.copyFile(pki.clientKey, path.join(hostDir, 'client.key'));
      await expect(c().ping()).rejects.toMatchObject({ code: 'REGISTRY_CONFIG', message: 'missing client certificate client.cert for key client.key' });
    });

    it('the CLI takes --cert-dir and --tls-verify with skopeo\'s meaning', async () => {
      const hostDir = await writeCertsDir(path.join(dir, 'certs.d-cli'), registry.host, pki);
      const { ref, digest } = await roundTrip(registry.host, { certsDirs: [path.join(dir, 'certs.d-cli')], tlsVerify: true }, 'cli');
      const store = path.join(dir, 'cli-store');
      const env = { HOME: path.join(dir, 'cli-home'), PATH: process.env.PATH };
      const ok = await runCaptured(diskFs, ['pull', '-q', '--store', store, '--cert-dir', hostDir, `docker://${ref}`], env);
      expect(ok.err).toBe('');
      expect(ok.code).toBe(0);
      expect(ok.out).toContain(digest);
      const refused = await runCaptured(diskFs, ['pull', '-q', '--store', store, '--retry-times', '0', `docker://${ref}`], env);
      expect(refused.code).not.toBe(0);
      expect(refused.err).toMatch(/TLS_ERROR/);
      const skipped = await runCaptured(diskFs, ['pull', '-q', '--store', store, '--tls-verify=false', `docker://${ref}`], env);
      expect(skipped.code).toBe(0);
    });
  });

  describe('client certificates (mTLS)', () => {
    let registry: TestRegistry;
    beforeAll(async () => {
      registry = await started(startTestRegistry({ tls: { certificate: pki.serverCert, key: pki.serverKey, clientCas: [pki.caCert] } }));
    });

    it('presents client.cert + client.key from certs.d; skopeo reads back with the same directory', async () => {
      const root = path.join(dir, 'certs.d-mtls');
      const hostDir = await writeCertsDir(root, registry.host, pki, { client: true });
      const { ref, digest } = await roundTrip(registry.host, { certsDirs: [root] });
      expect(await skopeoDigest(`docker://${ref}`, ['--cert-dir', hostDir])).toBe(digest);
    });

    it('without a client certificate the handshake is refused: TLS_ERROR naming the missing certificate', async () => {
      const root = path.join(dir, 'certs.d-mtls-ca-only');
      await writeCertsDir(root, registry.host, pki);
      const failure = await new RegistryClient({ registry: registry.host, certsDirs: [root], authFile: false, retries: 0 }).ping().catch((e: unknown) => e);
      expect(failure).toMatchObject({ code: 'TLS_ERROR' });
      expect(String((failure as Error).message)).toMatch(/client certificate/);
      const [cert, key] = await Promise.all([fsp.readFile(pki.clientCert, 'utf8'), fsp.readFile(pki.clientKey, 'utf8')]);
      const ca = await fsp.readFile(pki.caCert, 'utf8');
      await roundTrip(registry.host, { tls: { [registry.host]: { ca, cert, key } } });
    });
  });

  describe('any port', () => {
    it('pushes to and pulls from a registry on port 6000 (a Fetch "bad port"); skopeo reads back', async () => {
      // 6000 first; if something here holds it, another port of the same list.
      const registry = await started(startTestRegistry({ ports: [6000, 5061, 10080, 6665, 6666, 6667, 6668, 6669], allowExternal: false }));
      expect([6000, 5061, 10080, 6665, 6666, 6667, 6668, 6669]).toContain(Number(registry.host.split(':')[1]));
      const { ref, digest } = await roundTrip(registry.host, {});
      expect(await skopeoDigest(`docker://${ref}`, ['--tls-verify=false'])).toBe(digest);
    });
  });

  describe('credential helpers', () => {
    const users = { helper: 'only-the-helper-knows' };
    let registry: TestRegistry;
    beforeAll(async () => {
      registry = await started(startTestRegistry({ auth: 'basic', users }));
    });

    it('gets credentials from credHelpers through docker-credential-NAME on PATH (none in the file); skopeo does the same', async () => {
      const work = path.join(dir, 'helper-a');
      const helper = await writeCredentialHelper(work, 'cloudrootfs-test', { [registry.host]: { Username: 'helper', Secret: users.helper } });
      const authFile = path.join(work, 'auth.json');
      await fsp.writeFile(authFile, JSON.stringify({ credHelpers: { [registry.host]: helper.name } }));
      const env = { ...process.env, PATH: `${helper.binDir}:${process.env.PATH}` };
      const { ref, digest } = await roundTrip(registry.host, { authFile, env });
      expect(await helper.calls()).toContain(`get ${registry.host}`);
      expect(await fsp.readFile(authFile, 'utf8')).not.toContain(users.helper);
      expect(await skopeoDigest(`docker://${ref}`, ['--tls-verify=false', '--authfile', authFile], env)).toBe(digest);
      // Without the helper's answer the registry refuses us.
      await expect(roundTrip(registry.host, { authFile: false })).rejects.toMatchObject({ code: 'AUTH_FAILED' });
    });

    it('asks the credsStore helper for registries without their own (docker\'s rule)', async () => {
      const work = path.join(dir, 'helper-b');
      const helper = await writeCredentialHelper(work, 'store-all', { [registry.host]: { Username: 'helper', Secret: users.helper } });
      const authFile = path.join(work, 'config.json');
      await fsp.writeFile(authFile, JSON.stringify({ auths: { [registry.host]: {} }, credsStore: helper.name }));
      await roundTrip(registry.host, { authFile, env: { ...process.env, PATH: `${helper.binDir}:${process.env.PATH}` } });
      const calls = await helper.calls();
      expect(calls.length).toBeGreaterThan(0);
      expect(new Set(calls)).toEqual(new Set([`get ${registry.host}`]));
    });

    it('login stores through the helper and logout erases there; the file keeps no secret', async () => {
      const work = path.join(dir, 'helper-c');
      const helper = await writeCredentialHelper(work, 'keychain');
      const authFile = path.join(work, 'auth.json');
      await fsp.writeFile(authFile, JSON.stringify({ credHelpers: { [registry.host]: helper.name } }));
      const env = { ...process.env, PATH: `${helper.binDir}:${process.env.PATH}` };
      const result = await login({ registry: registry.host, username: 'helper', password: users.helper, authFile, env });
      expect(result).toMatchObject({ authFile, helper: helper.name, auth: 'basic' });
      expect(await helper.stored()).toEqual({ [registry.host]: { Username: 'helper', Secret: users.helper } });
      expect(await fsp.readFile(authFile, 'utf8')).not.toContain(users.helper);
      await roundTrip(registry.host, { authFile, env });
      await expect(logout({ registry: registry.host, authFile, env })).resolves.toEqual({ authFile, removed: true });
      expect(await helper.stored()).toEqual({});
      await expect(logout({ registry: registry.host, authFile, env })).resolves.toEqual({ authFile, removed: false });
    });

    it('a failing or missing helper is CREDENTIAL_HELPER, and its message never holds the secret', async () => {
      const work = path.join(dir, 'helper-d');
      // A careless helper that repeats what it was given (the secret, for `store`) in its error.
      const helper = await writeCredentialHelper(work, 'careless', {}, { failWith: 'echo' });
      const authFile = path.join(work, 'auth.json');
      await fsp.writeFile(authFile, JSON.stringify({ credHelpers: { [registry.host]: helper.name } }));
      const env = { ...process.env, PATH: `${helper.binDir}:${process.env.PATH}` };
      // A wrong password is refused by the registry first: nothing reaches the helper.
      await expect(login({ registry: registry.host, username: 'helper', password: 'wrong', authFile, env })).rejects.toMatchObject({ code: 'AUTH_FAILED' });
      expect(await helper.calls()).toEqual([]);
      // The right one: the registry accepts it, the helper fails to store it and says it back.
      const broken = await login({ registry: registry.host, username: 'helper', password: users.helper, authFile, env }).catch((e: unknown) => e);
      expect(broken).toMatchObject({ code: 'CREDENTIAL_HELPER', details: { helper: helper.name, action: 'store' } });
      expect(String((broken as Error).message)).toContain('<redacted>');
      expect(JSON.stringify({ message: (broken as Error).message, details: (broken as { details: unknown }).details })).not.toContain(users.helper);
      expect(await fsp.readFile(authFile, 'utf8')).not.toContain(users.helper);
      // Reading through a failing helper is the helper's error, not an anonymous attempt.
      await expect(roundTrip(registry.host, { authFile, env })).rejects.toMatchObject({ code: 'CREDENTIAL_HELPER', details: { action: 'get' } });
      await fsp.writeFile(authFile, JSON.stringify({ credHelpers: { [registry.host]: 'not-installed-anywhere' } }));
      await expect(roundTrip(registry.host, { authFile, env })).rejects.toMatchObject({
        code: 'CREDENTIAL_HELPER',
        message: expect.stringContaining('docker-credential-not-installed-anywhere is not installed'),
      });
    });
  });

  describe('proxies', () => {
    let registry: TestRegistry;
    let plain: TestRegistry;
    beforeAll(async () => {
      registry = await started(startTestRegistry({ tls: { certificate: pki.serverCert, key: pki.serverKey } }));
      plain = await started(startTestRegistry({ allowExternal: false }));
    });

    it('tunnels https through HTTPS_PROXY with CONNECT, skips it for NO_PROXY hosts; skopeo goes through it too', async () => {
      const proxy = await startCountingProxy();
      stops.push(() => proxy.stop());
      // Not a loopback name (loopback never goes through a proxy): the proxy resolves it.
      const host = `registry.test:${registry.host.split(':')[1]}`;
      const root = path.join(dir, 'certs.d-proxy');
      const hostDir = await writeCertsDir(root, host, pki);
      const env = { HTTPS_PROXY: proxy.url, NO_PROXY: 'example.com,10.0.0.0/8' };
      const { ref, digest } = await roundTrip(host, { certsDirs: [root], env });
      expect(proxy.records.length).toBeGreaterThan(0);
      expect(new Set(proxy.records.map((r) => `${r.method} ${r.target}`))).toEqual(new Set([`CONNECT ${host}`]));
      const before = proxy.records.length;
      expect(await skopeoDigest(`docker://${ref}`, ['--cert-dir', hostDir], { ...process.env, HTTPS_PROXY: proxy.url, NO_PROXY: '' })).toBe(digest);
      expect(proxy.records.length).toBeGreaterThan(before);

      // NO_PROXY names the host: the client goes direct, where `registry.test` does not resolve.
      const counted = proxy.records.length;
      const direct = await roundTrip(host, { certsDirs: [root], env: { HTTPS_PROXY: proxy.url, NO_PROXY: 'registry.test' }, retries: 0 }).catch((e: unknown) => e);
      expect(direct).toMatchObject({ code: 'NETWORK_ERROR' });
      expect(String((direct as Error).message)).toMatch(/ENOTFOUND|EAI_AGAIN/);
      expect(proxy.records.length).toBe(counted);
      // The option overrides the environment: `proxy: false` ignores HTTPS_PROXY…
      const off = await roundTrip(host, { certsDirs: [root], env, proxy: false, retries: 0 }).catch((e: unknown) => e);
      expect(off).toMatchObject({ code: 'NETWORK_ERROR' });
      expect(proxy.records.length).toBe(counted);
      // …and a URL is used for every request, loopback hosts included.
      await roundTrip(registry.host, { certsDirs: [await dirWith(registry.host)], proxy: proxy.url, env: {} });
      expect(proxy.records.slice(counted).every((r) => r.method === 'CONNECT' && r.target === registry.host)).toBe(true);
    });

    it('sends plain-http requests through HTTP_PROXY in absolute form', async () => {
      const proxy = await startCountingProxy();
      stops.push(() => proxy.stop());
      const host = `registry.test:${plain.host.split(':')[1]}`;
      await roundTrip(host, { insecure: true, env: { HTTP_PROXY: proxy.url } });
      expect(proxy.records.length).toBeGreaterThan(0);
      expect(proxy.records.every((r) => r.method !== 'CONNECT' && r.target.startsWith(`http://${host}/v2/`))).toBe(true);
    });

    async function dirWith(host: string): Promise<string> {
      const root = path.join(dir, `certs.d-${host.replace(/[^a-z0-9]/gi, '_')}`);
      await writeCertsDir(root, host, pki);
      return root;
    }
  });

  describe('registries.conf mirrors (offline)', () => {
    let mirror: TestRegistry;
    let deadPrimary: string;
    let conf: string;
    let baseDigest: string;
    beforeAll(async () => {
      mirror = await started(startTestRegistry({ allowExternal: false }));
      deadPrimary = `127.0.0.1:${await freePort()}`; // nothing listens there
      conf = path.join(dir, 'registries.conf');
      await fsp.writeFile(
        conf,
        [
          '[[registry]]',
          `location = "${deadPrimary}"`,
          '',
          '[[registry.mirror]]',
          `location = "127.0.0.1:${await freePort()}"`, // a mirror that is down too: skipped
          '',
          '[[registry.mirror]]',
          `location = "${mirror.host}/offline"`,
          'insecure = true',
          '',
          '[[registry]]',
          'location = "blocked.example"',
          'blocked = true',
          '',
        ].join('\n'),
      );
      // What the in-house mirror holds: the base, and a container image, under its namespace.
      baseDigest = (await pushImage(sampleImage(platform, 'base'), `docker://${mirror.host}/offline/sealer/base:v1`, { authFile: false })).digest;
      await pushImage(sampleImage(platform, 'app'), `docker://${mirror.host}/offline/apps/app:v1`, { authFile: false });
    });

    it('pulls from the mirror while the registry is down; skopeo with the same registries.conf agrees', async () => {
      const store = await ImageStore.open({ root: path.join(dir, 'mirror-store') });
      const pulled = await pullToStore(`docker://${deadPrimary}/sealer/base:v1`, store, { registriesConf: conf, authFile: false, platform });
      expect(pulled.descriptor.digest).toBe(baseDigest);
      expect(await skopeoDigest(`docker://${deadPrimary}/sealer/base:v1`, ['--registries-conf', conf])).toBe(baseDigest);
      const cli = await runCaptured(diskFs, ['pull', '-q', '--store', path.join(dir, 'mirror-cli-store'), '--registries-conf', conf, `docker://${deadPrimary}/sealer/base:v1`], {
        HOME: path.join(dir, 'mirror-home'),
        PATH: process.env.PATH,
      });
      expect(cli.err).toBe('');
      expect(cli.out).toContain(baseDigest);
    });

    it('a FROM base and an embedded image list resolve from the in-house mirror', async () => {
      const context = path.join(dir, 'mirror-ctx');
      await fsp.mkdir(context, { recursive: true });
      await fsp.writeFile(path.join(context, 'f'), 'x');
      const store = await ImageStore.open({ root: path.join(dir, 'mirror-build-store') });
      const built = await buildImage({
        context,
        store,
        kubefileText: `FROM ${deadPrimary}/sealer/base:v1\nCOPY f .\n`,
        platforms: ['linux/amd64'],
        tag: 'offline:v1',
        buildMode: 'lite',
        registry: { registriesConf: conf, authFile: false },
      });
      try {
        expect(built.images[0].layers.filter((l) => l.fromBase)).toHaveLength(2);
      } finally {
        await built.dispose();
      }
      const layer = await buildRegistryLayer([`${deadPrimary}/apps/app:v1`], {
        workDir: path.join(dir, 'mirror-embedded'),
        platform: 'linux/amd64',
        registriesConf: conf,
        authFile: false,
      });
      expect(layer.images[0]).toMatchObject({ repository: 'apps/app', tag: 'v1', source: 'registry' });
    });

    it('names every failed endpoint when none serves the image, and refuses blocked registries', async () => {
      const failure = await pullImage(`docker://${deadPrimary}/sealer/missing:v1`, { registriesConf: conf, authFile: false, retries: 0 }).catch((e: unknown) => e);
      expect(String((failure as Error).message)).toMatch(/^\(Mirrors also failed: \[/);
      expect((failure as { details: { mirrors: unknown[] } }).details.mirrors).toHaveLength(2);
      await expect(pullImage('docker://blocked.example/a/b:v1', { registriesConf: conf })).rejects.toMatchObject({ code: 'REGISTRY_BLOCKED' });
    });
  });
});
