/**
 * Images whose layers hold much metadata and little data (the metadata bomb: 16 layers of 8,000
 * files, each with a 61 KB xattr, in a ~37 MB archive), written fast: every file's PAX header is
 * the same bytes, gzip'd once and repeated as a gzip member; each file's own header is a stored
 * (uncompressed) gzip member. A layer of 500 MB of tar costs no compression, only its diff_id.
 *
 * And the CLI as a child process with its peak RSS (`process.resourceUsage().maxRSS` at exit).
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as zlib from 'node:zlib';
import { BLOCK, member, paxRecords } from '../differential/tar-forms';
import { MT, ociArchiveRecords, ociImage } from './archives';
import { tar } from './corpus';

export interface StackShape {
  layers: number;
  filesPerLayer: number;
  /** Bytes of a `user.meta` xattr on every file (a PAX record); 0 for none. */
  xattrBytes?: number;
  /** Every file a symlink with a target of this many bytes (else an empty file). */
  linkTargetBytes?: number;
  /** Strings with one char past U+00FF: JS then holds them at two bytes a char (the worst case). */
  wide?: boolean;
  /** Makes the names (and so the image) differ from another of the same shape. */
  tag?: string;
  /** gzip every file's header too (a smaller archive, slower to make); else they are stored. */
  compressHeaders?: boolean;
}

/** A gzip member holding `data` in one stored deflate block (no compression work). */
function storedMember(data: Buffer): Buffer {
  if (data.length > 0xffff) throw new Error('stored member too big');
  const head = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff, 1, data.length & 0xff, data.length >> 8, ~data.length & 0xff, (~data.length >> 8) & 0xff]);
  const tail = Buffer.alloc(8);
  tail.writeUInt32LE(zlib.crc32(data), 0);
  tail.writeUInt32LE(data.length, 4);
  return Buffer.concat([head, data, tail]);
}

const text = (n: number, wide: boolean) => (wide ? 'ā' + 'a'.repeat(Math.max(0, n - 2)) : 'a'.repeat(n));

/** One layer: its gzip'd blob and diff_id. */
function layerBlob(shape: StackShape, index: number): { blob: Buffer; diffId: string } {
  const records: [string, string][] = [];
  if (shape.xattrBytes) records.push(['SCHILY.xattr.user.meta', text(shape.xattrBytes, !!shape.wide)]);
  if (shape.linkTargetBytes) records.push(['linkpath', text(shape.linkTargetBytes, !!shape.wide)]);
  const pax = records.length > 0 ? member({ magic: 'ustar', typeflag: 'x', name: 'PaxHeaders/meta' }, paxRecords(records)) : Buffer.alloc(0);
  const paxGz = pax.length > 0 ? zlib.gzipSync(pax, { level: 9 }) : Buffer.alloc(0);
  const hash = createHash('sha256');
  const parts: Buffer[] = [];
  // Headers waiting to be stored: consecutive ones share a member (up to 64 KiB).
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const flush = () => {
    if (pendingBytes > 0) parts.push(storedMember(Buffer.concat(pending)));
    pending = [];
    pendingBytes = 0;
  };
  const store = (bytes: Buffer) => {
    hash.update(bytes);
    if (pendingBytes + bytes.length > 0xffff) flush();
    pending.push(bytes);
    pendingBytes += bytes.length;
  };
  // Every header is this one with its own name (and checksum).
  const template = member({ magic: 'ustar', typeflag: shape.linkTargetBytes ? '2' : '0', name: '', linkname: shape.linkTargetBytes ? 'x' : undefined });
  let baseSum = 8 * 0x20;
  for (let i = 0; i < BLOCK; i++) if (i < 148 || i >= 156) baseSum += template[i];
  for (let i = 0; i < shape.filesPerLayer; i++) {
    const name = Buffer.from(`${shape.tag ?? 't'}${index}/d${i >> 10}/f${i}`, 'latin1');
    const header = Buffer.from(template);
    name.copy(header, 0);
    let sum = baseSum;
    for (const c of name) sum += c;
    header.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
    if (pax.length > 0) {
      flush();
      hash.update(pax);
      parts.push(paxGz);
    }
    if (shape.compressHeaders) {
      hash.update(header);
      parts.push(zlib.gzipSync(header, { level: 1 }));
    } else store(header);
  }
  store(Buffer.alloc(2 * BLOCK));
  flush();
  return { blob: Buffer.concat(parts), diffId: 'sha256:' + hash.digest('hex') };
}

/**
 * An oci-archive of one image (named docker.io/meta/<tag>:v1) shaped as asked, cached under the
 * system temp directory by its shape. Returns its path.
 */
export function stackArchive(shape: StackShape): string {
  const key = createHash('sha256').update(JSON.stringify(shape)).digest('hex').slice(0, 16);
  const dir = join(tmpdir(), 'cloudrootfs-metadata');
  const path = join(dir, `${key}.tar`);
  if (existsSync(path)) return path;
  mkdirSync(dir, { recursive: true });
  const layers = Array.from({ length: shape.layers }, (_, i) => {
    const { blob, diffId } = layerBlob(shape, i);
    return { blob, diffId, mediaType: MT.layerGzip };
  });
  const image = ociImage({ layers, annotations: { 'io.containerd.image.name': `docker.io/meta/${shape.tag ?? 't'}:v1`, 'org.opencontainers.image.ref.name': 'v1' } });
  const tmp = `${path}.${process.pid}`;
  writeFileSync(tmp, tar(ociArchiveRecords(image)));
  renameSync(tmp, path);
  return path;
}

const REPORTER = resolve(__dirname, '..', 'support', 'peak-rss.js');

export interface RssRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Peak resident set size of the CLI process, MiB (undefined when it died before reporting). */
  peakMiB?: number;
}

/** `cloudrootfs argv…` from the compiled CLI (child.ts's compileCli), with its peak RSS. */
export function runWithPeakRss(cliPath: string, argv: string[], env: NodeJS.ProcessEnv = {}): Promise<RssRun> {
  const report = join(tmpdir(), `crfs-rss-${process.pid}-${Math.random().toString(16).slice(2)}`);
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, ['--require', REPORTER, cliPath, ...argv], {
      env: { ...process.env, NODE_PATH: join(__dirname, '..', '..', 'node_modules'), CLOUDROOTFS_PEAK_RSS_FILE: report, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    // Keep the head and the tail of long outputs only (`ls` of 250,000 entries).
    child.stdout.on('data', (c: Buffer) => (stdout = (stdout + c.toString()).slice(-4096)));
    child.stderr.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-16384)));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      let peakMiB: number | undefined;
      if (existsSync(report)) {
        peakMiB = Number(readFileSync(report, 'utf8')) / 1024;
        rmSync(report, { force: true });
      }
      resolvePromise({ code, signal, stdout, stderr, peakMiB });
    });
  });
}
