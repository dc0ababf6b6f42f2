/**
 * ADD: COPY, except that a local tar archive (plain, gzip or zstd) is unpacked into the
 * destination instead of copied as a file, as Docker does. Whether a file is an archive is
 * decided by its bytes, not its name. Remote sources (`http(s)://`) need a fetcher, which the
 * builder does not have: they are refused with a clear error (download first, then COPY).
 */
import { Content } from '../content';
import { UnsupportedError } from '../errors';
import { applyLayer } from '../layer/apply';
import { readLayerTar } from '../tar/read';
import { Rootfs } from '../rootfs/rootfs';
import { FsNode } from '../rootfs/node';
import { ResolvedSource } from './copy';

export type ArchiveKind = 'tar' | 'gzip' | 'zstd' | 'bzip2' | 'xz';

/** What the first bytes say (tar: `ustar` at offset 257). */
export function sniffArchive(head: Buffer): ArchiveKind | undefined {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  if (head.length >= 3 && head.toString('latin1', 0, 3) === 'BZh') return 'bzip2';
  if (head.length >= 6 && head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (head.length >= 262 && head.toString('latin1', 257, 262) === 'ustar') return 'tar';
  return undefined;
}

async function readHead(content: Content, bytes = 512): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  const stream = content.open();
  try {
    for await (const chunk of stream) {
      chunks.push(chunk as Buffer);
      n += (chunk as Buffer).length;
      if (n >= bytes) break;
    }
  } finally {
    stream.destroy();
  }
  return Buffer.concat(chunks).subarray(0, bytes);
}

/**
 * The tree inside a local archive, or undefined when the file is not an archive ADD unpacks.
 * The archive's entries keep their bytes in the archive (read again when a layer is written).
 */
export async function archiveTree(content: Content, name: string): Promise<FsNode | undefined> {
  if (content.size === 0) return undefined;
  const kind = sniffArchive(await readHead(content));
  if (kind === undefined) return undefined;
  if (kind === 'bzip2' || kind === 'xz') {
    throw new UnsupportedError(`ADD ${name}: ${kind} archives are not supported (use a plain, gzip or zstd tar)`, `add-${kind}`);
  }
  // A gzip or zstd file that holds no tar is copied as it is, as Docker does.
  let layer;
  try {
    layer = (await readLayerTar(() => content.open(), { source: `ADD ${name}` })).layer;
  } catch (err) {
    if (kind === 'tar') throw err;
    return undefined;
  }
  return applyLayer(Rootfs.empty(), layer).root;
}

/** ADD's sources: each local archive becomes the directory of its contents. */
export async function unpackArchives(sources: readonly ResolvedSource[]): Promise<ResolvedSource[]> {
  const out: ResolvedSource[] = [];
  for (const s of sources) {
    const entry = s.node.entry;
    if (entry?.type === 'file') {
      const tree = await archiveTree(entry.content, s.path);
      if (tree) {
        out.push({ ...s, node: tree });
        continue;
      }
    }
    out.push(s);
  }
  return out;
}

/** True for the sources ADD cannot take from the context. */
export function isRemoteSource(source: string): boolean {
  return /^(https?|git):\/\//i.test(source) || /^git@/.test(source);
}
