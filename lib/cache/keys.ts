/**
 * Cache keys. Every key is a sha256 over a canonical JSON description of what decides a result:
 *
 * - chain: what the rootfs below a step is. It starts from the base (`scratch`, or the base
 *   image's diff_ids) and takes one link per layer: the step key of a cacheable step (hit or
 *   miss alike, so a cold and a warm build compute the same chain) or the diff_id of any other
 *   layer (RUN output, batched edits), computed from its tar.
 * - step: chain + the instruction as written + everything it resolved to (copy mode, owner,
 *   chmod, source date epoch, destination) + each source entry (path, type, mode, owner, mtime,
 *   xattrs, link target, size, content digest, hardlink identity). It names the layer's diff_id.
 * - blob: diff_id + the encoding options + the encoder (zlib and Node versions, block format):
 *   it names the compressed blob's digest. The same tar encoded the same way gives the same bytes.
 */
import { createHash } from 'node:crypto';
import type { Entry } from '../entry';
import type { EncodeLayerOptions } from '../tar/write';
import { encodingKey } from '../image/layer';

/** Bump when the meaning of a step (COPY semantics, the key's fields) changes. */
export const STEP_KEY_VERSION = 'cloudrootfs-step-v1';
/** Bump when the parallel gzip encoder's output format changes (block size, stored-block rules). */
export const ENCODER_FORMAT = 'pgzip-1MiB-v1';

export function sha256Hex(text: string | Buffer): string {
  return createHash('sha256').update(text).digest('hex');
}

/** The chain key of a base: `scratch`, or an image's diff_ids in order. */
export function chainStart(diffIds: readonly string[] | 'scratch'): string {
  return sha256Hex(JSON.stringify([STEP_KEY_VERSION, 'base', diffIds]));
}

/** The chain key after one more layer (`step:<key>` or `diff:<diff_id>`). */
export function chainNext(chain: string, identity: string): string {
  return sha256Hex(JSON.stringify([STEP_KEY_VERSION, 'link', chain, identity]));
}

/** Who encodes: the same diff_id and options give the same blob only with the same encoder. */
export function encoderIdentity(): string {
  return JSON.stringify([ENCODER_FORMAT, process.versions.zlib ?? '', process.version]);
}

/** The key of a blob record: the diff_id encoded with these options by this encoder. */
export function blobKey(diffId: string, options: EncodeLayerOptions): string {
  return sha256Hex(JSON.stringify([diffId, encodingKey(options), encoderIdentity()]));
}

/** One entry of a source as the step key sees it. */
export function entryRecord(path: string, entry: Entry, digest: string | undefined, linkIndex: number | undefined): unknown[] {
  const xattrs = entry.xattrs ? Object.keys(entry.xattrs).sort().map((k) => [k, entry.xattrs![k]]) : [];
  const base = [path, entry.type, entry.mode, entry.uid, entry.gid, entry.mtime, xattrs];
  switch (entry.type) {
    case 'file':
      return [...base, entry.content.size, digest ?? null, linkIndex ?? null];
    case 'symlink':
    case 'hardlink':
      return [...base, entry.target];
    default:
      return base;
  }
}
