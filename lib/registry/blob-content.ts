/**
 * A registry blob as lazy Content: nothing is downloaded until something opens it, and every
 * read is verified (digest and size) by the client as the bytes pass. Each such Content remembers
 * where it lives, so a push to another repository of the same registry mounts the blob instead
 * of downloading and uploading it again.
 */
import { Readable } from 'node:stream';
import type { Content } from '../content';
import { IO_CHUNK } from '../fs';
import type { RegistryClient } from './client';

export interface BlobOrigin {
  /** The registry host (`RegistryClient.registry`). */
  registry: string;
  repository: string;
  digest: string;
}

const origins = new WeakMap<Content, BlobOrigin>();

/** Where a Content read from a registry lives (undefined for any other Content). */
export function blobOrigin(content: Content): BlobOrigin | undefined {
  return origins.get(content);
}

export interface RegistryBlobOptions {
  /** Called as bytes arrive (progress). */
  onBytes?: (digest: string, done: number, total: number) => void;
}

export function registryBlobContent(
  client: RegistryClient,
  repository: string,
  blob: { digest: string; size: number },
  options: RegistryBlobOptions = {},
): Content {
  const content: Content = {
    size: blob.size,
    digest: blob.digest,
    source: `${client.registry}/${repository}@${blob.digest}`,
    // getBlob fails the stream before its end on a wrong size or digest.
    selfVerifying: true,
    open: () => Readable.from(download(client, repository, blob, options), { objectMode: false, highWaterMark: IO_CHUNK }),
  };
  origins.set(content, { registry: client.registry, repository, digest: blob.digest });
  return content;
}

async function* download(
  client: RegistryClient,
  repository: string,
  blob: { digest: string; size: number },
  options: RegistryBlobOptions,
): AsyncGenerator<Buffer> {
  const stream = await client.getBlob(repository, blob.digest, { expectedSize: blob.size });
  let done = 0;
  try {
    // HTTP bodies arrive in ~64 KiB pieces; readers (file writes, hashing) do better with 1 MiB.
    for await (const chunk of coalesce(stream as AsyncIterable<Buffer>, IO_CHUNK)) {
      done += chunk.length;
      options.onBytes?.(blob.digest, done, blob.size);
      yield chunk;
    }
  } finally {
    // Reached early when the reader stops (an error elsewhere): close the connection.
    stream.destroy();
  }
}

/** Regroups small chunks into chunks of about `size` bytes (one copy; big chunks pass as they are). */
export async function* coalesce(source: AsyncIterable<Buffer>, size: number): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let held = 0;
  for await (const chunk of source) {
    if (held === 0 && chunk.length >= size) {
      yield chunk;
      continue;
    }
    parts.push(chunk);
    held += chunk.length;
    if (held >= size) {
      yield Buffer.concat(parts, held);
      parts = [];
      held = 0;
    }
  }
  if (held > 0) yield Buffer.concat(parts, held);
}
