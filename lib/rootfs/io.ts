/**
 * A Rootfs from a directory, and a Rootfs written to a directory, on any injected filesystem.
 * Reading records metadata only (contents stay lazy); writing creates a fresh directory under a
 * temporary name and renames it into place, never following a link it did not create itself.
 */
import { posix } from 'node:path';
import { fileContent } from '../content';
import { DirectoryEntry, Entry, directoryEntry, fileEntry, markLinked, symlinkEntry } from '../entry';
import { DestinationExistsError, LimitExceededError, NotFoundError, UnsupportedEntryError, fileSystemError } from '../errors';
import { FileSystem, FsStats, errnoCode, lstatOrUndefined } from '../fs';
import { compareBytes } from '../path';
import { buildDirAtomic, checkParentDirectory, isEmptyOrMissing } from '../util/atomic';
import { FsNode } from './node';
import { PMap } from './pmap';
import { Rootfs } from './rootfs';

export interface ReadDirectoryOptions {
  fs: FileSystem;
  /** Skip a path (relative to the directory) when this returns true. */
  ignore?: (relativePath: string, stats: FsStats) => boolean;
  /** Owner to record instead of the files' own (e.g. 0:0 for COPY without --chown). */
  owner?: { uid: number; gid: number };
  /** mtime to record instead of the files' own, in seconds. */
  mtime?: number;
  /** What to do with fifos, sockets and devices: refuse (default) or leave out. */
  special?: 'error' | 'skip';
}

/**
 * Read the tree under `dir` into a Rootfs. The directory itself becomes the root. Files that are
 * hardlinks of each other (same device and inode) become one entry object at several paths.
 */
export async function readRootfsFromDirectory(dir: string, options: ReadDirectoryOptions): Promise<Rootfs> {
  const { fs } = options;
  const rootStats = await lstatOrUndefined(fs, dir);
  if (!rootStats) throw new NotFoundError(dir, 'directory');
  if (!rootStats.isDirectory()) throw new UnsupportedEntryError(`${dir} is not a directory`, dir, 'file');
  const inodes = new Map<string, Entry>();

  const attrs = (st: FsStats) => ({
    mode: st.mode & 0o7777,
    uid: options.owner ? options.owner.uid : st.uid,
    gid: options.owner ? options.owner.gid : st.gid,
    mtime: options.mtime ?? Math.floor(st.mtimeMs / 1000),
  });

  const readDir = async (abs: string, rel: string, st: FsStats): Promise<FsNode> => {
    const names = (await fs.promises.readdir(abs)).sort(compareBytes);
    const children: [string, FsNode][] = [];
    for (const name of names) {
      const childAbs = posix.join(abs, name);
      const childRel = rel === '' ? name : `${rel}/${name}`;
      const cst = await fs.promises.lstat(childAbs);
      if (options.ignore?.(childRel, cst)) continue;
      const node = await readNode(childAbs, childRel, cst);
      if (node) children.push([name, node]);
    }
    return { entry: directoryEntry(attrs(st)) as DirectoryEntry, children: PMap.fromSorted(children) };
  };

  const readNode = async (abs: string, rel: string, st: FsStats): Promise<FsNode | undefined> => {
    if (st.isDirectory()) return readDir(abs, rel, st);
    if (st.isSymbolicLink()) return { entry: symlinkEntry(await fs.promises.readlink(abs), attrs(st)) };
    if (st.isFile()) {
      if (st.nlink > 1) {
        const key = `${st.dev}:${st.ino}`;
        const seen = inodes.get(key);
        if (seen) return { entry: markLinked(seen) };
        const entry = fileEntry(fileContent(fs, abs, st.size), attrs(st));
        inodes.set(key, entry);
        return { entry };
      }
      return { entry: fileEntry(fileContent(fs, abs, st.size), attrs(st)) };
    }
    if (options.special === 'skip') return undefined;
    throw new UnsupportedEntryError(`${abs} is a special file (fifo, socket or device); a rootfs holds only files, directories and links`, rel, 'special');
  };

  return Rootfs.fromNode(await readDir(dir, '', rootStats));
}

export interface WriteDirectoryOptions {
  fs: FileSystem;
  /** Apply uid/gid (needs root on disk). Default: only when running as root on the real disk. */
  owners?: boolean;
  /** Replace a non-empty destination instead of failing. */
  overwrite?: boolean;
}

/**
 * Write `rootfs` as the directory `dir` (created atomically: a temporary sibling renamed into
 * place; with `overwrite`, an existing tree is swapped out only once the new one is complete).
 * Directory modes and mtimes are applied after their children are written.
 */
export async function writeRootfsToDirectory(rootfs: Rootfs, dir: string, options: WriteDirectoryOptions): Promise<void> {
  const { fs } = options;
  const replace = await checkDirectoryDestination(fs, dir, options.overwrite);
  const owners = options.owners ?? (typeof process.getuid === 'function' && process.getuid() === 0 && !!fs.promises.lchown);
  // With overwrite, the old tree stays in place until the new one is complete.
  await buildDirAtomic(
    fs,
    dir,
    async (tmp) => {
      await materialize(rootfs, tmp, fs, owners);
    },
    { replace },
  );
}

/**
 * Check, before any work, that a tree can be written at `dir`: it is missing or an empty
 * directory (anything else is DESTINATION_EXISTS unless `overwrite`), and the nearest existing
 * ancestor is a directory (the rest is created). Returns whether something at `dir` is replaced.
 */
export async function checkDirectoryDestination(fs: FileSystem, dir: string, overwrite = false): Promise<boolean> {
  const replace = !(await isEmptyOrMissing(fs, dir).catch((err) => Promise.reject(fileSystemError(err, dir, 'read'))));
  if (replace && !overwrite) throw new DestinationExistsError(dir);
  await checkParentDirectory(fs, dir);
  return replace;
}

/**
 * Write the tree into an existing empty directory `root` (also used for RUN's scratch tree).
 * Owners are applied before modes, as `tar -xp` does: chown clears setuid and setgid, so a
 * chmod first would lose them. Failures are typed errors naming the path.
 */
export async function materialize(rootfs: Rootfs, root: string, fs: FileSystem, owners = false): Promise<void> {
  const firstPath = new Map<Entry, string>();
  const dirs: [string, Entry][] = [];
  const chown = owners && fs.promises.lchown ? fs.promises.lchown.bind(fs.promises) : undefined;
  for (const { path, entry } of rootfs.walk()) {
    const abs = posix.join(root, path);
    try {
      switch (entry.type) {
        case 'directory':
          await fs.promises.mkdir(abs, { mode: 0o700 });
          dirs.push([abs, entry]);
          continue;
        case 'symlink':
          await fs.promises.symlink(entry.target, abs);
          await chown?.(abs, entry.uid, entry.gid);
          if (fs.promises.lutimes) await fs.promises.lutimes(abs, entry.mtime, entry.mtime).catch(() => undefined);
          continue;
        case 'file': {
          const first = firstPath.get(entry);
          if (first) {
            await fs.promises.link(first, abs);
            continue;
          }
          firstPath.set(entry, abs);
          await writeContent(fs, abs, entry);
          await chown?.(abs, entry.uid, entry.gid);
          await fs.promises.chmod(abs, entry.mode);
          await fs.promises.utimes(abs, entry.mtime, entry.mtime);
          continue;
        }
        default:
          continue;
      }
    } catch (err) {
      throw typedWriteError(err, abs);
    }
  }
  // Parents last, deepest first: writing children would otherwise bump their mtimes, and a
  // read-only mode would stop the writes.
  dirs.push([root, rootfs.rootEntry]);
  for (const [abs, entry] of dirs.reverse()) {
    try {
      await chown?.(abs, entry.uid, entry.gid);
      await fs.promises.chmod(abs, entry.mode);
      await fs.promises.utimes(abs, entry.mtime, entry.mtime);
    } catch (err) {
      throw typedWriteError(err, abs);
    }
  }
}

/**
 * What the image asked for that the disk cannot hold, as typed errors: a path longer than the
 * system allows (a valid 4096-byte rootfs path under a deep destination), a name that already
 * exists (names that differ only where the filesystem does not: case, normalization), a full
 * disk, a refused permission. (Written under a temporary directory, the path is reported under
 * the destination: see buildDirAtomic.)
 */
function typedWriteError(err: unknown, abs: string): unknown {
  if (err instanceof DestinationExistsError || err instanceof LimitExceededError) return err;
  const code = errnoCode(err);
  if (code === 'ENAMETOOLONG') return new LimitExceededError('PATH_MAX', 4096, `the path ${abs.slice(0, 120)}… (${Buffer.byteLength(abs)} bytes)`);
  if (code === 'EEXIST') return new DestinationExistsError(abs);
  return fileSystemError(err, abs, 'write');
}

async function writeContent(fs: FileSystem, abs: string, entry: Extract<Entry, { type: 'file' }>): Promise<void> {
  // 'wx': never write through something that appeared at this path.
  const out = fs.createWriteStream(abs, { flags: 'wx', mode: 0o600 });
  const source = entry.content.open();
  await new Promise<void>((resolve, reject) => {
    const fail = (err: unknown) => {
      source.destroy();
      out.destroy();
      reject(err);
    };
    source.on('error', fail);
    out.on('error', fail);
    out.on('close', () => resolve());
    source.pipe(out);
  });
}

