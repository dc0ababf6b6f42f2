/**
 * The rules of reaching registries, without a network: which proxy a URL gets (Go's
 * httpproxy rules), registries.conf parsing, merging and matching, the plan for a registry
 * (scheme, verification, fall back), and credential lookup through helpers.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { planEndpoint } from '../../lib/registry/endpoint';
import { findCredentials } from '../../lib/registry/auth-file';
import { goProxyResolver, noProxyMatcher, proxyResolver, proxySettingsFromEnv } from '../../lib/registry/proxy';
import {
  EMPTY_REGISTRIES_CONF,
  findRegistry,
  loadRegistriesConf,
  parseRegistriesConf,
  prefixMatch,
  pullSources,
} from '../../lib/registry/registries-conf';
import { parseDockerReference } from '../../lib/reference/docker';
import { memfs } from '../build/helpers';
import { writeCredentialHelper } from '../support/reach';
import { tempDir } from './images';

describe('proxy choice (Go http.ProxyFromEnvironment)', () => {
  const u = (s: string) => new URL(s);

  it('reads UPPER before lower case, the first non-empty winning; a CGI ignores HTTP_PROXY', () => {
    expect(proxySettingsFromEnv({ HTTPS_PROXY: 'http://dead:1', https_proxy: 'http://live:2' }).httpsProxy).toBe('http://dead:1');
    expect(proxySettingsFromEnv({ HTTPS_PROXY: '', https_proxy: 'http://live:2' }).httpsProxy).toBe('http://live:2');
    expect(proxySettingsFromEnv({ HTTP_PROXY: 'http://p:1', REQUEST_METHOD: 'GET' }).httpProxy).toBeUndefined();
    expect(proxySettingsFromEnv({ no_proxy: 'a,b' }).noProxy).toBe('a,b');
  });

  it('uses the proxy of the URL\'s scheme only, never loopback, and reads a bare host:port as http://', () => {
    const r = goProxyResolver({ httpProxy: 'proxy.lan:3128' });
    expect(r(u('http://reg.lan:5000/v2/'))?.href).toBe('http://proxy.lan:3128/');
    expect(r(u('https://reg.lan/v2/'))).toBeUndefined(); // no cross fall back
    const both = goProxyResolver({ httpsProxy: 'http://p:1' });
    for (const local of ['https://localhost:5000/', 'https://127.0.0.1/', 'https://127.9.9.9:443/', 'https://[::1]:5000/']) expect(both(u(local))).toBeUndefined();
    expect(both(u('https://localhost.example.com/'))?.host).toBe('p:1');
  });

  it('matches NO_PROXY as Go does: domains and subdomains, leading dots, ports, IPs, CIDRs, `*`', () => {
    const m = noProxyMatcher(' Example.com, .sub.org,*.star.net, reg.lan:5000, 10.0.0.0/8, 192.168.1.1, [2001:db8::1]:443, :80 ');
    const yes = ['https://example.com/', 'https://a.b.example.com/', 'https://x.sub.org/', 'https://y.star.net/', 'https://reg.lan:5000/', 'https://10.1.2.3/', 'http://192.168.1.1:8080/', 'https://[2001:db8::1]/'];
    const no = ['https://notexample.com/', 'https://sub.org/', 'https://star.net/', 'https://reg.lan/', 'https://reg.lan:5001/', 'https://11.0.0.1/', 'http://[2001:db8::1]:80/'];
    for (const url of yes) expect([url, m(u(url))]).toEqual([url, true]);
    for (const url of no) expect([url, m(u(url))]).toEqual([url, false]);
    // Domain entries never match IP hosts; `*` anywhere turns proxies off.
    expect(noProxyMatcher('10.0.0.1.nip.io')(u('https://10.0.0.1/'))).toBe(false);
    expect(noProxyMatcher('foo,*')(u('https://anything/'))).toBe(true);
  });

  it('the option sets or disables proxies, or decides per URL', () => {
    const env = { HTTPS_PROXY: 'http://env:1' };
    expect(proxyResolver(undefined, env)(u('https://reg/'))?.host).toBe('env:1');
    expect(proxyResolver(false, env)(u('https://reg/'))).toBeUndefined();
    expect(proxyResolver('http://chosen:2', env)(u('https://127.0.0.1/'))?.host).toBe('chosen:2');
    expect(proxyResolver({ httpsProxy: 'http://obj:3', noProxy: 'reg' }, env)(u('https://reg/'))).toBeUndefined();
    expect(proxyResolver((url) => (url.hostname === 'a' ? 'http://fn:4' : undefined), env)(u('https://a/'))?.host).toBe('fn:4');
    expect(() => proxyResolver('socks5://s:1080', {})).toThrow(expect.objectContaining({ code: 'REGISTRY_CONFIG' }));
  });
});

describe('registries.conf', () => {
  it('matches the longest prefix, at a `/`, `:`, `@` or the end (and `*.` subdomains)', () => {
    expect(prefixMatch('reg.lan/a/b:v1', 'reg.lan')).toBe(7);
    expect(prefixMatch('reg.lan:5000/a:v1', 'reg.lan')).toBe(7); // as containers/image, which warns not to rely on it
    expect(prefixMatch('reg.lanx/a:v1', 'reg.lan')).toBe(-1);
    expect(prefixMatch('x.example.com/a:v1', '*.example.com')).toBe('x.example.com'.length);
    expect(prefixMatch('example.com/a:v1', '*.example.com')).toBe(-1);
    const conf = parseRegistriesConf('[[registry]]\nlocation="reg.lan"\n[[registry]]\nprefix="reg.lan/team"\nlocation="mirror.lan/team"\n', 'test');
    expect(findRegistry(conf, 'reg.lan/team/app:v1')?.prefix).toBe('reg.lan/team');
    expect(findRegistry(conf, 'reg.lan/other:v1')?.prefix).toBe('reg.lan');
    expect(findRegistry(conf, 'elsewhere/x:v1')).toBeUndefined();
  });

  it('lists mirrors in file order, then the primary, rewriting the reference; digest-only rules apply', () => {
    const conf = parseRegistriesConf(
      [
        '[[registry]]',
        'prefix = "docker.io/library"',
        'location = "primary.lan/hub"',
        '[[registry.mirror]]',
        'location = "m1.lan:5000/cache"',
        'insecure = true',
        '[[registry.mirror]]',
        'location = "m2.lan"',
        'pull-from-mirror = "digest-only"',
      ].join('\n'),
      'test',
    );
    const byTag = pullSources(conf, parseDockerReference('nginx:1.25'));
    expect(byTag.sources.map((s) => [`${s.reference.registry}/${s.reference.repository}:${s.reference.tag}`, s.insecure, s.mirror])).toEqual([
      ['m1.lan:5000/cache/nginx:1.25', true, true],
      ['primary.lan/hub/nginx:1.25', false, false],
    ]);
    const digest = `sha256:${'a'.repeat(64)}`;
    const byDigest = pullSources(conf, parseDockerReference(`nginx@${digest}`));
    expect(byDigest.sources.map((s) => s.reference.registry)).toEqual(['m1.lan:5000', 'm2.lan', 'primary.lan']);
    expect(pullSources(EMPTY_REGISTRIES_CONF, parseDockerReference('quay.io/a/b:v1')).sources).toHaveLength(1);
  });

  it('refuses what containers/image refuses, naming the file', () => {
    const bad: Array<[string, RegExp]> = [
      ['[[registry]]\nlocation = "https://reg.lan"\n', /URI schemes are not supported/],
      ['[[registry]]\ninsecure = true\n', /both location and prefix are unset/],
      ['[[registry]]\nlocation = "a"\ninsecure = true\n[[registry]]\nprefix = "a/x"\nlocation = "a"\n', /conflicting 'insecure'/],
      ['[[registry]]\nlocation = "a"\nmirror-by-digest-only = true\n[[registry.mirror]]\nlocation = "m"\npull-from-mirror = "all"\n', /at the same time/],
      ['[[registry]]\nlocation = "a"\n[[registry.mirror]]\nlocation = "m"\npull-from-mirror = "sometimes"\n', /unsupported pull-from-mirror/],
      ['[[registry]]\nprefix = "*.a.com/x"\nlocation = "b"\n', /Wildcarded prefix/],
      ['[registries.search]\nregistries = ["a"]\n[[registry]]\nlocation = "b"\n', /mixing sysregistry v1\/v2/],
      ['[[registry]\n', /my\.conf:1/],
    ];
    for (const [text, message] of bad) expect(() => parseRegistriesConf(text, 'my.conf')).toThrow(expect.objectContaining({ code: 'REGISTRY_CONFIG', message: expect.stringMatching(message) }));
  });

  it('reads a version 1 file as the equivalent version 2', () => {
    const conf = parseRegistriesConf('[registries.insecure]\nregistries = ["old.lan:5000"]\n[registries.block]\nregistries = ["bad.lan"]\n', 'v1');
    expect(findRegistry(conf, 'old.lan:5000/a:v1')).toMatchObject({ insecure: true, blocked: false });
    expect(findRegistry(conf, 'bad.lan/a:v1')).toMatchObject({ blocked: true });
  });

  it('finds the files as podman does: explicit, else the user file with its drop-ins only, else /etc with both', async () => {
    const fs = memfs();
    const write = async (p: string, text: string) => {
      await fs.promises.mkdir(path.posix.dirname(p), { recursive: true });
      await fs.promises.writeFile(p, text);
    };
    await write('/etc/containers/registries.conf', '[[registry]]\nlocation = "sys.lan"\n');
    await write('/etc/containers/registries.conf.d/10-a.conf', '[[registry]]\nlocation = "dropin.lan"\ninsecure = true\n');
    await write('/etc/containers/registries.conf.d/ignored.txt', 'not toml');
    await write('/h/.config/containers/registries.conf.d/20-b.conf', '[[registry]]\nlocation = "sys.lan"\nblocked = true\ncredential-helpers = []\n');
    const opts = { authFs: fs, env: {}, homeDir: '/h' };
    let conf = await loadRegistriesConf(opts);
    expect(conf.sources).toEqual(['/etc/containers/registries.conf', '/etc/containers/registries.conf.d/10-a.conf', '/h/.config/containers/registries.conf.d/20-b.conf']);
    expect(findRegistry(conf, 'sys.lan/x:v1')?.blocked).toBe(true); // replaced by the later drop-in (same prefix)
    expect(findRegistry(conf, 'dropin.lan/x:v1')?.insecure).toBe(true);
    await write('/h/.config/containers/registries.conf', '[[registry]]\nlocation = "user.lan"\n');
    conf = await loadRegistriesConf(opts);
    expect(conf.sources).toEqual(['/h/.config/containers/registries.conf', '/h/.config/containers/registries.conf.d/20-b.conf']);
    expect(findRegistry(conf, 'dropin.lan/x:v1')).toBeUndefined();
    await expect(loadRegistriesConf({ ...opts, registriesConf: '/nope.conf' })).rejects.toMatchObject({ code: 'REGISTRY_CONFIG' });
    expect((await loadRegistriesConf({ ...opts, env: { CONTAINERS_REGISTRIES_CONF: '/etc/containers/registries.conf' } })).sources[0]).toBe('/etc/containers/registries.conf');
    expect(await loadRegistriesConf({ ...opts, registriesConf: false })).toBe(EMPTY_REGISTRIES_CONF);
    await write('/h/.config/containers/registries.conf.d/30-v1.conf', '[registries.search]\nregistries = ["x"]\n');
    await expect(loadRegistriesConf(opts)).rejects.toMatchObject({ code: 'REGISTRY_CONFIG', message: expect.stringContaining('v2 format') });
  });
});

describe('how a registry is reached', () => {
  const plan = (registry: string, options = {}, insecure?: boolean) =>
    planEndpoint(registry, { certsDirs: [], authFile: false, ...options }, { conf: parseRegistriesConf(insecure ? `[[registry]]\nlocation = "${registry}"\ninsecure = true\n` : '', 'test') });
  const summary = async (p: ReturnType<typeof plan>) => {
    const r = await p;
    r.transport.close();
    return [r.scheme, r.httpFallback, r.verify];
  };

  it('decides scheme, fall back and verification as skopeo and docker do', async () => {
    expect(await summary(plan('reg.lan'))).toEqual(['https', 'never', true]);
    expect(await summary(plan('127.0.0.1:5000'))).toEqual(['https', 'plain-http', true]);
    expect(await summary(plan('reg.lan', { insecure: true }))).toEqual(['http', 'never', true]);
    expect(await summary(plan('127.0.0.1:5000', { insecure: false }))).toEqual(['https', 'never', true]);
    expect(await summary(plan('reg.lan', { tlsVerify: false }))).toEqual(['https', 'any', false]);
    expect(await summary(plan('reg.lan', {}, true))).toEqual(['https', 'any', false]);
    // The per-call flag wins over registries.conf, either way (skopeo's rule).
    expect(await summary(plan('reg.lan', { tlsVerify: true }, true))).toEqual(['https', 'never', true]);
    expect(await summary(plan('reg.lan', { tls: { 'reg.lan': { verify: false } } }))).toEqual(['https', 'any', false]);
    await expect(plan('reg.lan', { tls: { 'reg.lan': { cert: 'x' } } })).rejects.toMatchObject({ code: 'USAGE' });
  });
});

describe('credential lookup through helpers', () => {
  it('asks credHelpers before auths, auths before credsStore, and registries.conf helpers in their order', async () => {
    const dir = await tempDir('cred-lookup');
    try {
      const helper = await writeCredentialHelper(dir, 'kc', { 'reg.lan': { Username: 'from-helper', Secret: 's' }, 'https://index.docker.io/v1/': { Username: 'hub', Secret: 'h' } });
      const env = { PATH: `${helper.binDir}:${process.env.PATH}`, HOME: dir };
      const file = path.join(dir, 'auth.json');
      const b64 = (s: string) => Buffer.from(s).toString('base64');
      await fsp.writeFile(file, JSON.stringify({ credHelpers: { 'reg.lan': 'kc' }, auths: { 'reg.lan': { auth: b64('from-file:f') }, 'other.lan': { auth: b64('o:o') } }, credsStore: 'kc' }));
      expect(await findCredentials('reg.lan', { authFile: file, env })).toMatchObject({ username: 'from-helper', helper: 'kc', file });
      expect(await findCredentials('other.lan', { authFile: file, env })).toMatchObject({ username: 'o', file });
      // Docker Hub under docker's key, through credsStore.
      expect(await findCredentials('docker.io', { authFile: file, env })).toMatchObject({ username: 'hub', helper: 'kc' });
      expect(await findCredentials('none.lan', { authFile: file, env })).toBeUndefined();
      // registries.conf `credential-helpers`: a helper first, then the files.
      expect(await findCredentials('other.lan', { authFile: file, env, credentialHelpers: ['kc', 'containers-auth.json'] })).toMatchObject({ username: 'o' });
      expect(await findCredentials('reg.lan', { authFile: false as unknown as string, env, credentialHelpers: ['kc'] })).toMatchObject({ username: 'from-helper' });
      await writeCredentialHelper(dir, 'tok', { 'tok.lan': { Username: '<token>', Secret: 'refresh' } });
      await expect(findCredentials('tok.lan', { env, credentialHelpers: ['tok'] })).rejects.toMatchObject({ code: 'AUTH_FAILED', message: expect.stringContaining('identity') });
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });
});
