/** Shared helpers for the build specs: memfs contexts from a listing, tree listings. */
import { Volume, createFsFromVolume } from 'memfs';
import type { FileSystem } from '../../lib/fs';
import { Rootfs } from '../../lib/rootfs/rootfs';

export function memfs(): FileSystem {
  return createFsFromVolume(new Volume()) as unknown as FileSystem;
}

/**
 * Files on a filesystem from a map: `'dir/'` is a directory, `'l -> target'` a symlink, anything
 * else a file with the given content (`{ mode }` via a tuple).
 */
export async function writeTree(fs: FileSystem, root: string, tree: Record<string, string | [string, number]>): Promise<void> {
  await fs.promises.mkdir(root, { recursive: true });
  for (const [spec, value] of Object.entries(tree)) {
    const link = spec.match(/^(.+?) -> (.+)$/);
    const path = `${root}/${link ? link[1] : spec.replace(/\/$/, '')}`;
    await fs.promises.mkdir(path.slice(0, path.lastIndexOf('/')), { recursive: true });
    if (link) await fs.promises.symlink(link[2], path);
    else if (spec.endsWith('/')) await fs.promises.mkdir(path, { recursive: true });
    else {
      const [content, mode] = Array.isArray(value) ? value : [value, 0o644];
      await fs.promises.writeFile(path, content);
      await fs.promises.chmod(path, mode);
    }
  }
}

/** Sorted listing: `d/`, `f`, `l -> t`. */
export function listing(rootfs: Rootfs, under = ''): string[] {
  const out: string[] = [];
  for (const { path, entry } of rootfs.walk(under)) {
    if (entry.type === 'directory') out.push(path + '/');
    else if (entry.type === 'symlink') out.push(`${path} -> ${entry.target}`);
    else out.push(path);
  }
  return out;
}

/** A Rootfs from a map like writeTree's (in memory). */
export function tree(spec: Record<string, string | [string, number]>): Rootfs {
  let r = Rootfs.empty();
  for (const [key, value] of Object.entries(spec)) {
    const link = key.match(/^(.+?) -> (.+)$/);
    if (link) r = r.withSymlink(link[1], link[2]);
    else if (key.endsWith('/')) r = r.withDirectory(key);
    else {
      const [content, mode] = Array.isArray(value) ? value : [value, 0o644];
      r = r.withFile(key, content, { mode });
    }
  }
  return r;
}
