/** Small helpers shared by the registry specs. */
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import * as tar from 'tar-stream';
import type { BlobSource } from '../../lib/registry/client';

export function sha256(data: Uint8Array | string): string {
  return 'sha256:' + createHash('sha256').update(data).digest('hex');
}

/** Random bytes handed out in chunks of `chunk` bytes, as a file or a compressor would. */
export function chunkedReadable(data: Buffer, chunk = 64 * 1024): Readable {
  let offset = 0;
  return new Readable({
    read() {
      if (offset >= data.length) return void this.push(null);
      this.push(data.subarray(offset, offset + chunk));
      offset += chunk;
    },
  });
}

export interface CountingSource extends BlobSource {
  opens: number;
}

/** A BlobSource over a buffer that counts its `open()` calls. */
export function bufferSource(data: Buffer, declare: { digest?: boolean; size?: boolean } = {}): CountingSource {
  const source: CountingSource = {
    opens: 0,
    open() {
      source.opens++;
      return chunkedReadable(data);
    },
  };
  if (declare.digest) source.digest = sha256(data);
  if (declare.size) source.size = data.length;
  return source;
}

export async function readAll(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}

export function randomData(size: number): Buffer {
  return randomBytes(size);
}

export interface RecordedRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  status?: number;
}

/**
 * A fetch that records every request (and its response status) before handing it to the real
 * one; `rewrite` may replace the response (to add headers the local registry never sends).
 */
export function recordingFetch(rewrite?: (req: RecordedRequest, res: Response) => Response): {
  fetch: typeof fetch;
  requests: RecordedRequest[];
} {
  const requests: RecordedRequest[] = [];
  const wrapped = (async (input: string | URL | Request, init?: RequestInit) => {
    const headers: Record<string, string> = {};
    new Headers(init?.headers).forEach((v, k) => (headers[k] = v));
    const rec: RecordedRequest = { method: init?.method ?? 'GET', url: String(input), headers };
    requests.push(rec);
    const res = await fetch(input, init);
    rec.status = res.status;
    return rewrite ? rewrite(rec, res) : res;
  }) as typeof fetch;
  return { fetch: wrapped, requests };
}

export interface TinyImage {
  layer: Buffer;
  layerDigest: string;
  diffId: string;
  config: Buffer;
  configDigest: string;
  manifest: Buffer;
  manifestDigest: string;
}

/** A minimal valid OCI image made by hand: one gzip tar layer with one file, a config, a manifest. */
export async function buildTinyImage(text = 'hello from cloudrootfs\n'): Promise<TinyImage> {
  const pack = tar.pack();
  pack.entry({ name: 'hello.txt', mode: 0o644, mtime: new Date(0), uid: 0, gid: 0 }, text);
  pack.finalize();
  const parts: Buffer[] = [];
  for await (const chunk of pack) parts.push(chunk as Buffer);
  const tarBytes = Buffer.concat(parts);
  const layer = gzipSync(tarBytes);
  const diffId = sha256(tarBytes);
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Env: ['PATH=/usr/bin'] },
      rootfs: { type: 'layers', diff_ids: [diffId] },
      history: [{ created_by: 'cloudrootfs spec' }],
    }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256(layer), size: layer.length }],
    }),
  );
  return {
    layer,
    layerDigest: sha256(layer),
    diffId,
    config,
    configDigest: sha256(config),
    manifest,
    manifestDigest: sha256(manifest),
  };
}
