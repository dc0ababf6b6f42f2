/**
 * Which proxy a registry request goes through, decided as Go's `http.ProxyFromEnvironment`
 * (golang.org/x/net/http/httpproxy) decides it — the function skopeo, podman, docker and
 * containerd all use — so one environment means the same thing to all of them:
 *
 * - each variable is `UPPER` or `lower` case, the first non-empty wins (`HTTPS_PROXY` before
 *   `https_proxy`);
 * - an `https` URL uses only the HTTPS proxy, an `http` URL only the HTTP proxy;
 * - `localhost` and loopback IPs never go through a proxy;
 * - `NO_PROXY` is a comma-separated list: `*` (anywhere) disables proxies; `10.0.0.0/8` matches IP
 *   hosts in the range; `1.2.3.4` or `[::1]:5000` an IP (and port); `example.com` the domain and its
 *   subdomains, `.example.com` and `*.example.com` only the subdomains; a `:port` must match
 *   the request's (80/443 by default); domain entries never match IP hosts;
 * - a proxy value without scheme is `http://` + value; `REQUEST_METHOD` set (a CGI) ignores
 *   `HTTP_PROXY`.
 */
import * as net from 'node:net';
import { RegistryConfigError } from '../errors';
import type { ProxyOption, ProxySettings } from './options';

/** Decides the proxy for one request URL: its URL, or undefined to connect directly. */
export type ProxyResolver = (url: URL) => URL | undefined;

/** The proxy settings the environment gives, as Go reads them. */
export function proxySettingsFromEnv(env: NodeJS.ProcessEnv): ProxySettings {
  const first = (...names: string[]): string | undefined => {
    for (const n of names) if (env[n]) return env[n];
    return undefined;
  };
  const httpProxy = env.REQUEST_METHOD ? undefined : first('HTTP_PROXY', 'http_proxy');
  return { httpProxy, httpsProxy: first('HTTPS_PROXY', 'https_proxy'), noProxy: first('NO_PROXY', 'no_proxy') };
}

/** A proxy URL as Go parses it: a value without scheme or host is read as `http://VALUE`. */
export function parseProxyUrl(value: string): URL {
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  if (!url || !url.host) {
    try {
      url = new URL(`http://${value}`);
    } catch {
      throw new RegistryConfigError(`invalid proxy address ${JSON.stringify(value)}`, { proxy: value });
    }
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new RegistryConfigError(`proxy ${JSON.stringify(value)}: only http:// and https:// proxies are supported (not ${url.protocol.slice(0, -1)})`, {
      proxy: value,
    });
  }
  return url;
}

/** The host of a URL without IPv6 brackets, lower-cased. */
function bareHost(url: URL): string {
  const h = url.hostname.toLowerCase();
  return h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h;
}

function defaultPort(url: URL): string {
  return url.port || (url.protocol === 'https:' ? '443' : '80');
}

/** 127.0.0.0/8, ::1, and IPv4-mapped loopback, as Go's `IP.IsLoopback`. */
export function isLoopbackIp(ip: string): boolean {
  if (net.isIPv4(ip)) return ip.startsWith('127.');
  if (!net.isIPv6(ip)) return false;
  const lower = ip.toLowerCase();
  if (lower === '::1' || /^0{0,4}(:0{0,4}){6}:0{0,3}1$/.test(lower)) return true;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
  return mapped !== null && mapped[1].startsWith('127.');
}

type Matcher = (host: string, port: string, ip: boolean) => boolean;

/** An IP or CIDR test on IP-literal hosts, with net.BlockList (no DNS: as Go). */
function cidrMatcher(entry: string): Matcher | undefined {
  const m = /^(.+)\/(\d{1,3})$/.exec(entry);
  if (!m) return undefined;
  const family = net.isIPv4(m[1]) ? 'ipv4' : net.isIPv6(m[1]) ? 'ipv6' : undefined;
  const bits = Number(m[2]);
  if (!family || bits > (family === 'ipv4' ? 32 : 128)) return undefined;
  const list = new net.BlockList();
  list.addSubnet(m[1], bits, family);
  return (host, _port, ip) => ip && list.check(host, net.isIPv4(host) ? 'ipv4' : 'ipv6');
}

function sameIp(a: string, b: string): boolean {
  if (net.isIPv4(a) && net.isIPv4(b)) return a === b;
  if (net.isIPv6(a) && net.isIPv6(b)) {
    const list = new net.BlockList();
    list.addAddress(a, 'ipv6');
    return list.check(b, 'ipv6');
  }
  return false;
}

/** NO_PROXY, parsed: true for hosts that go direct. */
export function noProxyMatcher(noProxy: string | undefined): (url: URL) => boolean {
  const matchers: Matcher[] = [];
  for (const raw of (noProxy ?? '').split(',')) {
    const p = raw.trim().toLowerCase();
    if (p === '') continue;
    if (p === '*') return () => true;
    if (p.startsWith(':')) continue; // a port without host: malformed, ignored
    const cidr = cidrMatcher(p);
    if (cidr) {
      matchers.push(cidr);
      continue;
    }
    // IPv4:port, [IPv6]:port, or a bare host.
    let host = p;
    let port = '';
    const bracketed = /^\[([^\]]*)\](?::(\d*))?$/.exec(p);
    const hostPort = /^([^:]+):(\d*)$/.exec(p);
    if (bracketed) {
      host = bracketed[1];
      port = bracketed[2] ?? '';
    } else if (hostPort) {
      host = hostPort[1];
      port = hostPort[2];
    }
    if (host === '') continue;
    if (net.isIP(host)) {
      const want = host;
      matchers.push((h, hp, ip) => ip && sameIp(want, h) && (port === '' || port === hp));
      continue;
    }
    if (host.startsWith('*.')) host = host.slice(1);
    const matchHost = !host.startsWith('.');
    const suffix = matchHost ? `.${host}` : host;
    matchers.push((h, hp, ip) => !ip && (h.endsWith(suffix) || (matchHost && h === suffix.slice(1))) && (port === '' || port === hp));
  }
  return (url) => {
    const host = bareHost(url);
    const ip = net.isIP(host) !== 0;
    const port = defaultPort(url);
    return matchers.some((m) => m(host, port, ip));
  };
}

/** The resolver for settings read as Go reads the environment. */
export function goProxyResolver(settings: ProxySettings): ProxyResolver {
  const httpProxy = settings.httpProxy ? parseProxyUrl(settings.httpProxy) : undefined;
  const httpsProxy = settings.httpsProxy ? parseProxyUrl(settings.httpsProxy) : undefined;
  const direct = noProxyMatcher(settings.noProxy);
  return (url) => {
    const proxy = url.protocol === 'https:' ? httpsProxy : url.protocol === 'http:' ? httpProxy : undefined;
    if (!proxy) return undefined;
    const host = bareHost(url);
    if (host === 'localhost' || (net.isIP(host) && isLoopbackIp(host))) return undefined;
    return direct(url) ? undefined : proxy;
  };
}

/** The resolver the `proxy` option (or, unset, the environment) asks for. */
export function proxyResolver(option: ProxyOption | undefined, env: NodeJS.ProcessEnv): ProxyResolver {
  if (option === false) return () => undefined;
  if (typeof option === 'string') {
    const proxy = parseProxyUrl(option);
    return () => proxy;
  }
  if (typeof option === 'function') {
    return (url) => {
      const chosen = option(url);
      return chosen ? parseProxyUrl(chosen) : undefined;
    };
  }
  return goProxyResolver(option ?? proxySettingsFromEnv(env));
}
