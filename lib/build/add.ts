/**
 * ADD: COPY, except that a local tar archive (plain, gzip or zstd) is unpacked into the
 * destination instead of copied as a file, as Docker does. Whether a file is an archive is
 * decided by its bytes, not its name. `http(s)://` sources are downloaded (remote-fetch.ts) and
 * never unpacked, as buildah does; git sources are refused.
 */
import { Content, readContentHead } from '../content';
import { detectCompression } from '../compress';
import { UnsupportedError } from '../errors';
import { applyLayer } from '../layer/apply';
import { readLayerTar } from '../tar/read';
import { Rootfs } from '../rootfs/rootfs';
import { FsNode } from '../rootfs/node';
import { ResolvedSource } from './copy';

export type ArchiveKind = 'tar' | 'gzip' | 'zstd' | 'bzip2' | 'xz';

/** What the first bytes say: a compression magic, or `ustar` at offset 257 for a plain tar. */
export function sniffArchive(head: Buffer): ArchiveKind | undefined {
  const compressed = detectCompression(head);
  if (compressed) return compressed;
  if (head.length >= 262 && head.toString('latin1', 257, 262) === 'ustar') return 'tar';
  return undefined;
}

/**
 * The tree inside a local archive, or undefined when the file is not an archive ADD unpacks.
 * The archive's entries keep their bytes in the archive (read again when a layer is written).
 */
export async function archiveTree(content: Content, name: string): Promise<FsNode | undefined> {
  if (content.size === 0) return undefined;
  const kind = sniffArchive(await readContentHead(content, 512));
  if (kind === undefined) return undefined;
  if (kind === 'bzip2' || kind === 'xz') {
    throw new UnsupportedError(`ADD ${name}: ${kind} archives are not supported (use a plain, gzip or zstd tar)`, `add-${kind}`);
  }
  // A gzip or zstd file that holds no tar is copied as it is, as Docker does.
  let layer;
  try {
    // Unpacked as `docker build` unpacks it: PAX global headers are skipped.
    layer = (await readLayerTar(() => content.open(), { source: `ADD ${name}`, globalHeaders: 'ignore' })).layer;
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

/** True for the sources that are not in the context: URLs (`http(s)://`, downloaded) and git sources (refused). */
export function isRemoteSource(source: string): boolean {
  return /^(https?|git):\/\//i.test(source) || /^git@/.test(source);
}
