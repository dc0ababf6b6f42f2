/**
 * Stalls and timeouts: a registry that stops sending mid-body, never answers, drips bytes, stops
 * reading an upload, or never finishes a TLS handshake fails with a typed TIMEOUT, retried per
 * the retry policy and within a bound that follows from the options; a slow consumer is no
 * stall. The tests use short timeouts; the default bound is checked from the defaults.
 */
import * as http from 'node:http';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { OciLayout } from '../../lib/formats/layout';
import { diskFs } from '../../lib/fs';
import { RegistryClient } from '../../lib/registry/client';
import { DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_STALL_TIMEOUT_MS } from '../../lib/registry/options';
import { pullToLayout } from '../../lib/registry/pull';
import { DEFAULT_RETRY_POLICY } from '../../lib/registry/retry';
import { startFakeRegistry, type FakeRegistry } from '../support/fake-registry';
import { buildTinyImage, randomData, readAll, sha256 } from './helpers';
import { tempDir } from './images';

const STALL_MS = 300;
const RETRIES = 2;
/** What a stalled operation may take at most with these options: every attempt stalls, plus backoff and slack. */
const BOUND_MS = (RETRIES + 1) * STALL_MS + 1500;

const options = { stallTimeoutMs: STALL_MS, retries: RETRIES, retryBaseDelayMs: 10, authFile: false as const };

/** A body that sends `head` bytes, then nothing until the connection closes. */
function stallingBody(bytes: Buffer, head: number): () => AsyncIterable<Buffer> {
  return async function* () {
    yield bytes.subarray(0, head);
    await new Promise(() => undefined);
  };
}

async function timed<T>(p: Promise<T>): Promise<{ result: unknown; ms: number }> {
  const start = Date.now();
  const result = await p.then(
    (v) => v,
    (e: unknown) => e,
  );
  return { result, ms: Date.now() - start };
}

describe('stalls and timeouts', () => {
  let reg: FakeRegistry;
  const blob = randomData(256 * 1024);
  let digest: string;

  beforeAll(async () => {
    reg = await startFakeRegistry();
    digest = reg.putBlob(blob);
  });
  afterEach(() => {
    reg.closeConnections();
    reg.reset();
  });
  afterAll(() => reg.stop());

  const client = (extra = {}) => new RegistryClient({ registry: reg.host, insecure: true, ...options, ...extra });

  it('the defaults bound a stalled request: every attempt and its backoff within 90 s', () => {
    const attempts = DEFAULT_RETRY_POLICY.retries + 1;
    let backoff = 0;
    for (let i = 0; i < DEFAULT_RETRY_POLICY.retries; i++) backoff += Math.min(DEFAULT_RETRY_POLICY.maxDelayMs, DEFAULT_RETRY_POLICY.baseDelayMs * 2 ** i);
    // The connect timeout runs inside the stall window (no progress while connecting).
    expect(DEFAULT_CONNECT_TIMEOUT_MS).toBeLessThanOrEqual(DEFAULT_STALL_TIMEOUT_MS);
    expect(attempts * DEFAULT_STALL_TIMEOUT_MS + backoff).toBeLessThanOrEqual(90_000);
  });

  it('a body that stops mid-way fails with TIMEOUT after its resumes, within the bound', async () => {
    reg.intercept((req) => (req.path.includes('/blobs/') && req.method === 'GET' ? { status: 200, headers: { 'content-length': String(blob.length) }, body: stallingBody(blob, 1000) } : undefined));
    const { result, ms } = await timed(client().getBlob('a/b', digest, { expectedSize: blob.length }).then(readAll));
    expect(result).toMatchObject({ code: 'TIMEOUT', details: { phase: 'body' } });
    expect(ms).toBeLessThan(BOUND_MS);
    expect(ms).toBeGreaterThanOrEqual((RETRIES + 1) * STALL_MS - 50);
    // The first request and one resume per retry (Range from where it stopped), no more.
    const gets = reg.requests.filter((r) => r.path.includes('/blobs/'));
    expect(gets).toHaveLength(RETRIES + 1);
    expect(gets.slice(1).every((r) => r.headers.range === 'bytes=1000-')).toBe(true);
  });

  it('a registry that never answers fails with TIMEOUT (phase response), retried per the policy', async () => {
    const seen: string[] = [];
    const sockets = new Set<net.Socket>();
    const server = http.createServer((req) => void seen.push(req.url ?? '')); // takes requests, never answers
    server.on('connection', (s) => sockets.add(s));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
      const { result, ms } = await timed(new RegistryClient({ registry: host, insecure: true, ...options }).getManifest('a/b', 'v1'));
      expect(result).toMatchObject({ code: 'TIMEOUT', details: { phase: 'response', attempts: RETRIES + 1 } });
      expect(ms).toBeLessThan(BOUND_MS);
      expect(seen.filter((u) => u.includes('/manifests/'))).toHaveLength(RETRIES + 1);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it('a registry that drips bytes (less than stallMinBytes per stall window) times out too', async () => {
    reg.intercept((req) =>
      req.path.includes('/blobs/') && req.method === 'GET'
        ? {
            status: 200,
            headers: { 'content-length': String(blob.length) },
            body: async function* () {
              for (let i = 0; ; i += 8) {
                yield blob.subarray(i, i + 8);
                await new Promise((r) => setTimeout(r, 40)); // never a 300 ms gap
              }
            },
          }
        : undefined,
    );
    const { result, ms } = await timed(client({ retries: 0 }).getBlob('a/b', digest).then(readAll));
    expect(result).toMatchObject({ code: 'TIMEOUT', details: { phase: 'body' } });
    expect(ms).toBeLessThan(STALL_MS + 1500);
  });

  it('a slow consumer is not a stall: reading pauses longer than the stall timeout are not counted', async () => {
    const stream = await client({ retries: 0 }).getBlob('a/b', digest);
    const parts: Buffer[] = [];
    for await (const chunk of stream) {
      parts.push(chunk as Buffer);
      if (parts.length <= 2) await new Promise((r) => setTimeout(r, STALL_MS * 2));
    }
    expect(Buffer.concat(parts).equals(blob)).toBe(true);
  });

  it('a pull into a layout fails with TIMEOUT within the bound and leaves no blob named', async () => {
    const img = await buildTinyImage();
    reg.putManifest('app/stall', 'v1', img.manifest, 'application/vnd.oci.image.manifest.v1+json');
    reg.putBlob(img.config);
    reg.putBlob(img.layer);
    reg.intercept((req) =>
      req.path.endsWith(`/blobs/${img.layerDigest}`) && req.method === 'GET'
        ? { status: 200, headers: { 'content-length': String(img.layer.length) }, body: stallingBody(img.layer, 10) }
        : undefined,
    );
    const dir = await tempDir('stall-layout');
    try {
      const layout = await OciLayout.create(diskFs, dir);
      const { result, ms } = await timed(pullToLayout(`docker://${reg.host}/app/stall:v1`, layout, { ...options, insecure: true, platform: { os: 'linux', architecture: 'amd64' } }));
      expect(result).toMatchObject({ code: 'TIMEOUT' });
      expect(ms).toBeLessThan(BOUND_MS);
      await expect(fsp.access(path.join(dir, 'blobs', 'sha256', img.layerDigest.slice(7)))).rejects.toMatchObject({ code: 'ENOENT' });
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });

  it('an upload the registry stops reading fails with TIMEOUT (phase upload)', async () => {
    const sockets = new Set<net.Socket>();
    const server = http.createServer((req, res) => {
      if (req.method === 'POST') {
        req.resume();
        res.writeHead(202, { location: '/v2/a/b/blobs/uploads/1' }).end();
        return;
      }
      req.pause(); // takes the head, then never reads the body nor answers
    });
    server.on('connection', (s) => sockets.add(s));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
      const c = new RegistryClient({ registry: host, insecure: true, ...options, retries: 1 });
      const big = randomData(32 << 20); // more than the socket buffers hold
      const source = { size: big.length, digest: sha256(big), open: () => Readable.from((function* () { for (let i = 0; i < big.length; i += 1 << 20) yield big.subarray(i, i + (1 << 20)); })()) };
      const { result, ms } = await timed(c.putBlob('a/b', source, { skipExisting: false }));
      expect(result).toMatchObject({ code: 'TIMEOUT', details: { phase: 'upload' } });
      expect(ms).toBeLessThan(2 * STALL_MS + 3000);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it('a TLS handshake that never completes fails with TIMEOUT (phase connect) after connectTimeoutMs', async () => {
    const sockets = new Set<net.Socket>();
    const server = net.createServer((s) => void sockets.add(s)); // accepts, says nothing
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
      const c = new RegistryClient({ registry: host, insecure: false, authFile: false, connectTimeoutMs: 200, stallTimeoutMs: 5000, retries: 1, retryBaseDelayMs: 10 });
      const { result, ms } = await timed(c.ping());
      expect(result).toMatchObject({ code: 'TIMEOUT', details: { phase: 'connect', attempts: 2 } });
      expect(ms).toBeLessThan(2 * 200 + 1500);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
