/**
 * What reaching a registry the enterprise way needs in tests: a CA and certificates made with
 * the openssl CLI (a server certificate for `localhost`, `registry.test` and 127.0.0.1, a client
 * certificate for mTLS), a loopback HTTP proxy that counts what it forwards (CONNECT tunnels and
 * absolute-form requests) and resolves the names it is asked for to 127.0.0.1 (so a registry can
 * be named `registry.test`, a host that is not loopback and therefore goes through a proxy), and
 * `docker-credential-*` helper scripts backed by a JSON file.
 */
import { execFile } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** The names the test certificates are valid for. */
export const TEST_SERVER_NAMES = ['localhost', 'registry.test', 'mirror.test'];

export interface TestPki {
  dir: string;
  /** The CA certificate (PEM file). */
  caCert: string;
  caKey: string;
  /** The registry's certificate and key (PEM files), issued by the CA. */
  serverCert: string;
  serverKey: string;
  /** A client certificate and key (PEM files), issued by the CA, for mTLS. */
  clientCert: string;
  clientKey: string;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  await execFileAsync('openssl', args, { cwd });
}

/** A CA, a server certificate and a client certificate, with EC keys (fast to make). */
export async function makeTestPki(dir: string): Promise<TestPki> {
  await fsp.mkdir(dir, { recursive: true });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await openssl(
    ['req', '-x509', ...ec, '-sha256', '-days', '2', '-subj', '/CN=cloudrootfs test CA', '-keyout', 'ca.key', '-out', 'ca.crt',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
    dir,
  );
  const issue = async (name: string, subject: string, extensions: string): Promise<void> => {
    await fsp.writeFile(path.join(dir, `${name}.ext`), extensions);
    await openssl(['req', ...ec, '-subj', subject, '-keyout', `${name}.key`, '-out', `${name}.csr`], dir);
    await openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-sha256',
      '-extfile', `${name}.ext`, '-out', `${name}.crt`], dir);
  };
  const sans = [...TEST_SERVER_NAMES.map((n) => `DNS:${n}`), 'IP:127.0.0.1'].join(',');
  await issue('server', '/CN=registry.test', `subjectAltName=${sans}\nextendedKeyUsage=serverAuth\n`);
  await issue('client', '/CN=cloudrootfs test client', 'extendedKeyUsage=clientAuth\n');
  const f = (n: string) => path.join(dir, n);
  return {
    dir,
    caCert: f('ca.crt'),
    caKey: f('ca.key'),
    serverCert: f('server.crt'),
    serverKey: f('server.key'),
    clientCert: f('client.crt'),
    clientKey: f('client.key'),
  };
}

/**
 * Writes a certs.d directory for `registry` under `root` (`root/registry/ca.crt`, and with
 * `client`, `client.cert` + `client.key`); returns that directory.
 */
export async function writeCertsDir(root: string, registry: string, pki: TestPki, options: { client?: boolean } = {}): Promise<string> {
  const dir = path.join(root, registry);
  await fsp.mkdir(dir, { recursive: true });
  await fsp.copyFile(pki.caCert, path.join(dir, 'ca.crt'));
  if (options.client) {
    await fsp.copyFile(pki.clientCert, path.join(dir, 'client.cert'));
    await fsp.copyFile(pki.clientKey, path.join(dir, 'client.key'));
  }
  return dir;
}

// ------------------------------------------------------------------ counting proxy

export interface ProxyRecord {
  /** `CONNECT` (a tunnel) or the method of a forwarded absolute-form request. */
  method: string;
  /** `host:port` for a tunnel, the absolute URL for a forwarded request. */
  target: string;
  /** What the client sent as Proxy-Authorization, if anything. */
  proxyAuthorization?: string;
}

export interface CountingProxy {
  /** `http://127.0.0.1:PORT`. */
  url: string;
  records: ProxyRecord[];
  stop(): Promise<void>;
}

/**
 * An HTTP proxy on 127.0.0.1 that forwards CONNECT tunnels and absolute-form requests, records
 * each, and connects every name it is given to 127.0.0.1 (the port as asked).
 */
export async function startCountingProxy(): Promise<CountingProxy> {
  const records: ProxyRecord[] = [];
  const sockets = new Set<net.Socket>();
  const server = http.createServer((req, res) => {
    const target = new URL(req.url ?? '/');
    records.push({ method: req.method ?? 'GET', target: target.href, proxyAuthorization: req.headers['proxy-authorization'] });
    const headers = { ...req.headers };
    delete headers['proxy-authorization'];
    delete headers['proxy-connection'];
    const upstream = http.request(
      { host: '127.0.0.1', port: Number(target.port || 80), method: req.method, path: target.pathname + target.search, headers, agent: false },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', () => res.socket?.destroy());
    req.pipe(upstream);
  });
  server.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    records.push({ method: 'CONNECT', target: req.url ?? '', proxyAuthorization: req.headers['proxy-authorization'] });
    const port = Number((req.url ?? '').split(':').pop());
    const upstream = net.connect(port, '127.0.0.1', () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    sockets.add(client).add(upstream);
    const close = (): void => {
      client.destroy();
      upstream.destroy();
    };
    upstream.on('error', close);
    client.on('error', close);
    client.on('close', close);
  });
  server.on('connection', (s: net.Socket) => sockets.add(s));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    records,
    stop: async () => {
      for (const s of sockets) s.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// ------------------------------------------------------------------ credential helpers

export interface TestCredentialHelper {
  /** The helper's name (`docker-credential-NAME`). */
  name: string;
  /** The directory to put first on PATH. */
  binDir: string;
  /** The JSON store: server → { Username, Secret }. */
  storeFile: string;
  /** Every invocation: `action server`. */
  calls(): Promise<string[]>;
  /** What the store holds now. */
  stored(): Promise<Record<string, { Username: string; Secret: string }>>;
}

/**
 * A `docker-credential-NAME` script (node) speaking the helper protocol over a JSON file.
 * `failWith` makes every call print that text and exit 1 (a broken keychain); `echo` prints
 * what the helper was given instead (a careless helper, repeating a secret in its error).
 */
export async function writeCredentialHelper(
  dir: string,
  name: string,
  initial: Record<string, { Username: string; Secret: string }> = {},
  options: { failWith?: string } = {},
): Promise<TestCredentialHelper> {
  const binDir = path.join(dir, 'bin');
  await fsp.mkdir(binDir, { recursive: true });
  const storeFile = path.join(dir, `${name}-store.json`);
  const logFile = path.join(dir, `${name}-calls.log`);
  await fsp.writeFile(storeFile, JSON.stringify(initial));
  const script = path.join(binDir, `docker-credential-${name}`);
  const js = `
const fs = require('fs');
const action = process.argv[2];
const data = fs.readFileSync(0, 'utf8');
const storeFile = ${JSON.stringify(storeFile)}, logFile = ${JSON.stringify(logFile)}, fail = ${JSON.stringify(options.failWith ?? '')};
const store = JSON.parse(fs.readFileSync(storeFile, 'utf8'));
const server = action === 'store' ? JSON.parse(data).ServerURL : data.trim();
fs.appendFileSync(logFile, action + ' ' + server + '\\n');
const out = (text, code) => { process.stdout.write(text); process.exitCode = code; };
const notFound = () => out('credentials not found in native keychain', 1);
if (fail === 'echo') out('cannot ' + action + ': ' + data, 1);
else if (fail) out(fail, 1);
else if (action === 'get') store[server] ? out(JSON.stringify({ ServerURL: server, ...store[server] }), 0) : notFound();
else if (action === 'store') { const d = JSON.parse(data); store[d.ServerURL] = { Username: d.Username, Secret: d.Secret }; fs.writeFileSync(storeFile, JSON.stringify(store)); }
else if (action === 'erase') { if (!store[server]) notFound(); else { delete store[server]; fs.writeFileSync(storeFile, JSON.stringify(store)); } }
else out('unknown action', 1);
`;
  await fsp.writeFile(script, `#!/usr/bin/env node\n${js}`, { mode: 0o755 });
  return {
    name,
    binDir,
    storeFile,
    calls: async () => {
      try {
        return (await fsp.readFile(logFile, 'utf8')).split('\n').filter(Boolean);
      } catch {
        return [];
      }
    },
    stored: async () => JSON.parse(await fsp.readFile(storeFile, 'utf8')) as Record<string, { Username: string; Secret: string }>,
  };
}
