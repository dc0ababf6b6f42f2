import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { Readable } from 'node:stream';
import { encodeLayer, layerTarStream } from '../../lib/tar/write';
import { readLayerTar } from '../../lib/tar/read';
import { Layer } from '../../lib/layer/layer';
import { Rootfs } from '../../lib/rootfs/rootfs';
import { applyLayer } from '../../lib/layer/apply';
import { readContent } from '../../lib/content';
import { createHash, randomBytes } from 'node:crypto';

async function collect(s: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

async function encodeToBuffer(layer: Layer, opts = {}) {
  const parts: Buffer[] = [];
  const info = await encodeLayer(layer, (c) => void parts.push(c), opts);
  return { info, blob: Buffer.concat(parts) };
}

const sample = () =>
  Layer.empty()
    .withDirectory('bin', { mode: 0o755, mtime: 1700000000 })
    .withFile('bin/kubectl', Buffer.alloc(200000, 7), { mode: 0o755, uid: 1000, gid: 1000, mtime: 5 })
    .withFile('etc/daemon.json', '{"a":1}\n', { mode: 0o600 })
    .withFile('etc/zero-mode', 'x', { mode: 0 })
    .withSymlink('etc/link', '../bin/kubectl')
    .withHardlink('bin/kubectl-hard', 'bin/kubectl')
    .withFile(`long/${'n'.repeat(120)}/${'m'.repeat(120)}`, 'long path')
    .withFile('unicode/naïve-☸.txt', 'utf8 name')
    .withFile('big-ids', 'ids', { uid: 3000000, gid: 4000000 })
    .withFile('xattr', 'x', { xattrs: { 'user.b': '2', 'user.a': '1' } })
    .withWhiteout('statics/audit-policy.yml')
    .withOpaque('registry');

describe('layer tarballs', () => {
  test('round trip: write then read gives the same entries and bytes', async () => {
    const layer = sample();
    const { info, blob } = await encodeToBuffer(layer);
    const back = await readLayerTar(() => Readable.from([blob]), { expectedDigest: info.digest, expectedDiffId: info.diffId });
    expect(back.diffId).toBe(info.diffId);
    expect(back.compression).toBe('gzip');
    const a = applyLayer(Rootfs.empty(), layer);
    const b = applyLayer(Rootfs.empty(), back.layer);
    const list = (r: Rootfs) => [...r.walk()].map(({ path, entry }) => [path, entry.type, entry.mode, entry.uid, entry.gid, entry.type === 'symlink' ? entry.target : '']);
    // The writer lists the parents a layer only implies (statics/, registry/) as 0755 directories.
    expect(list(b)).toEqual(list(a.withDirectory('statics').withDirectory('registry')));
    // Reading back and writing again is byte-identical.
    const again = await encodeToBuffer(back.layer);
    expect(again.info.digest).toBe(info.digest);
    expect(back.layer.whiteouts()).toEqual(['statics/audit-policy.yml']);
    expect(back.layer.opaques()).toEqual(['registry']);
    expect(b.get('bin/kubectl-hard')).toBe(b.get('bin/kubectl'));
    const kubectl = b.get('bin/kubectl');
    expect(kubectl?.type === 'file' && (await readContent(kubectl.content)).equals(Buffer.alloc(200000, 7))).toBe(true);
    expect(b.get('xattr')?.xattrs).toEqual({ 'user.a': '1', 'user.b': '2' });
    expect(b.get('big-ids')).toMatchObject({ uid: 3000000, gid: 4000000 });
    expect(b.get('etc/zero-mode')?.mode).toBe(0);
  });

  test('reproducible: same layer, same digests; mtimes clamped to the epoch', async () => {
    const one = await encodeToBuffer(sample());
    const two = await encodeToBuffer(sample(), { concurrency: 1 });
    expect(two.info.digest).toBe(one.info.digest);
    expect(two.blob.equals(one.blob)).toBe(true);
    const later = await encodeToBuffer(sample(), { sourceDateEpoch: 10 });
    expect(later.info.diffId).not.toBe(one.info.diffId);
    const back = await readLayerTar(() => Readable.from([later.blob]));
    const r = applyLayer(Rootfs.empty(), back.layer);
    expect(r.get('bin')?.mtime).toBe(10);
    expect(r.get('bin/kubectl')?.mtime).toBe(5);
  });

  test('gzip header has MTIME 0 and the tar ends with a 1024-byte trailer', async () => {
    const { info, blob } = await encodeToBuffer(sample());
    expect(blob.readUInt32LE(4)).toBe(0);
    const tar = gunzipSync(blob);
    expect(tar.length % 512).toBe(0);
    expect(tar.subarray(tar.length - 1024).every((b) => b === 0)).toBe(true);
    expect('sha256:' + createHash('sha256').update(tar).digest('hex')).toBe(info.diffId);
    expect('sha256:' + createHash('sha256').update(blob).digest('hex')).toBe(info.digest);
    expect(info.size).toBe(blob.length);
    expect(info.uncompressedSize).toBe(tar.length);
  });

  test('GNU tar reads it: names in byte order, whiteouts first, parents present, numeric owners', async () => {
    const tar = await collect(layerTarStream(sample()));
    const dir = mkdtempSync(join(tmpdir(), 'crfs-tar-'));
    try {
      writeFileSync(join(dir, 'l.tar'), tar);
      const names = execFileSync('tar', ['-tf', join(dir, 'l.tar')], { encoding: 'utf8' }).trim().split('\n');
      expect(names).toContain('registry/.wh..wh..opq');
      expect(names.indexOf('statics/')).toBeLessThan(names.indexOf('statics/.wh.audit-policy.yml'));
      // every parent of every name is listed before it
      for (const [i, n] of names.entries()) {
        const parts = n.replace(/\/$/, '').split('/');
        for (let k = 1; k < parts.length; k++) {
          expect(names.slice(0, i)).toContain(parts.slice(0, k).join('/') + '/');
        }
      }
      const verbose = execFileSync('tar', ['--numeric-owner', '-tvf', join(dir, 'l.tar')], { encoding: 'utf8' });
      expect(verbose).toMatch(/1000\/1000\s+200000 .* bin\/kubectl\n/);
      const sorted = [...names].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
      // Only whiteouts may move ahead of their siblings.
      const nonWh = names.filter((n) => !n.split('/').pop()!.startsWith('.wh.'));
      expect(nonWh).toEqual(sorted.filter((n) => !n.split('/').pop()!.startsWith('.wh.')));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('already-compressed files are stored, not deflated again', async () => {
    const random = randomBytes(3 << 20);
    const gz = gzipSync(random, { level: 1 });
    const layer = Layer.empty().withFile('registry/blob', gz);
    const stored = await encodeToBuffer(layer);
    const deflated = await encodeToBuffer(layer, { storeCompressed: false });
    expect(stored.info.diffId).toBe(deflated.info.diffId);
    expect(gunzipSync(stored.blob).equals(gunzipSync(deflated.blob))).toBe(true);
    // stored blocks cost ~5 bytes per 64 KiB; deflating random data costs more and takes longer
    expect(stored.blob.length).toBeLessThan(gz.length + 4096);
  });

  test('corrupt, truncated and wrong-digest blobs give typed errors', async () => {
    const { info, blob } = await encodeToBuffer(sample());
    await expect(readLayerTar(() => Readable.from([blob.subarray(0, blob.length - 100)]))).rejects.toMatchObject({ code: 'CORRUPT_ARCHIVE' });
    const tar = gunzipSync(blob);
    await expect(readLayerTar(() => Readable.from([tar.subarray(0, 1536)]))).rejects.toMatchObject({ code: 'CORRUPT_ARCHIVE' });
    const garbage = Buffer.from(tar);
    garbage.fill(0x41, 0, 512);
    await expect(readLayerTar(() => Readable.from([garbage]))).rejects.toMatchObject({ code: 'CORRUPT_ARCHIVE' });
    await expect(readLayerTar(() => Readable.from([blob]), { expectedDigest: 'sha256:' + '0'.repeat(64) })).rejects.toMatchObject({
      code: 'DIGEST_MISMATCH',
    });
    await expect(readLayerTar(() => Readable.from([blob]), { expectedDiffId: info.digest })).rejects.toMatchObject({ code: 'DIGEST_MISMATCH' });
  });
});

describe('hardlinks in layers made by diff', () => {
  /** Every tar header of a layer: name → { type, mode, uid, gid, mtime }. */
  async function headers(layer: Layer): Promise<Map<string, { type: string; mode: number; uid: number; gid: number; mtime: number }>> {
    const { extract } = await import('tar-stream');
    const out = new Map<string, { type: string; mode: number; uid: number; gid: number; mtime: number }>();
    const ex = extract();
    const done = new Promise<void>((resolve, reject) => {
      ex.on('entry', (h, stream, next) => {
        out.set(h.name, { type: h.type ?? '', mode: h.mode ?? -1, uid: h.uid ?? -1, gid: h.gid ?? -1, mtime: Math.floor((h.mtime?.getTime() ?? 0) / 1000) });
        stream.on('end', next);
        stream.resume();
      });
      ex.on('finish', resolve);
      ex.on('error', reject);
    });
    ex.end(gunzipSync((await encodeToBuffer(layer)).blob));
    await done;
    return out;
  }

  test('a link record carries its inode\'s mode, owner and mtime (Docker applies them to the path)', async () => {
    const { diff } = await import('../../lib/layer/diff');
    const lower = Rootfs.empty().withFile('scripts/init.sh', '#!/bin/sh\n', { mode: 0o750, uid: 7, gid: 8, mtime: 3 });
    // The link sorts before its target: the writer stores the data under the first name.
    const upper = lower.withHardlink('scripts/a-link.sh', 'scripts/init.sh').withFile('bin/x', 'x', { mode: 0o711, uid: 1, gid: 2 }).withHardlink('bin/y', 'bin/x');
    const h = await headers(await diff(Rootfs.empty(), upper));
    expect(h.get('scripts/a-link.sh')).toEqual({ type: 'file', mode: 0o750, uid: 7, gid: 8, mtime: 0 });
    expect(h.get('scripts/init.sh')).toEqual({ type: 'link', mode: 0o750, uid: 7, gid: 8, mtime: 0 });
    expect(h.get('bin/y')).toEqual({ type: 'link', mode: 0o711, uid: 1, gid: 2, mtime: 0 });
    // A new link to a file a lower layer holds, at an untouched path: also the inode's attributes.
    const h2 = await headers(await diff(lower, lower.withHardlink('scripts/z-link.sh', 'scripts/init.sh')));
    expect(h2.get('scripts/z-link.sh')).toEqual({ type: 'link', mode: 0o750, uid: 7, gid: 8, mtime: 0 });
  });
});
