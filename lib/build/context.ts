/**
 * The build context: the directory COPY, ADD and APP read from, on any injected filesystem.
 *
 * It is read once per build into a Rootfs (metadata only: file contents stay on the filesystem
 * and are read when a layer is written), the way Docker sends its context once. While reading:
 * - the ignore file (`.kubefileignore`, else `.dockerignore`) removes paths;
 * - owners become 0:0 (COPY records root unless `--chown` says otherwise);
 * - mtimes are clamped to the source date epoch, so the same files checked out at different
 *   times give the same layers;
 * - files that are hardlinks of each other stay one inode;
 * - fifos, sockets and devices are left out (they cannot be copied into an image).
 * Every later step (source lookup, globs, symlink resolution) works on that Rootfs, so nothing a
 * Kubefile says can reach outside the context directory.
 */
import { posix } from 'node:path';
import { fileContent } from '../content';
import { DirectoryEntry, Entry, directoryEntry, fileEntry, markLinked, symlinkEntry } from '../entry';
import { NotFoundError, UnsupportedEntryError } from '../errors';
import { FileSystem, FsStats, lstatOrUndefined } from '../fs';
import { compareBytes } from '../path';
import { FsNode } from '../rootfs/node';
import { PMap } from '../rootfs/pmap';
import { Rootfs } from '../rootfs/rootfs';
import { IGNORE_FILES, IgnoreRules } from './ignore';

export interface ReadContextOptions {
  fs: FileSystem;
  /** Upper bound for mtimes, in seconds (default 0). */
  sourceDateEpoch?: number;
  /** Rules to use instead of the context's ignore file. */
  ignore?: IgnoreRules;
}

export interface BuildContext {
  /** The context directory as given. */
  dir: string;
  fs: FileSystem;
  /** The context's files (ignored paths left out), owners 0:0, mtimes clamped. */
  rootfs: Rootfs;
  ignore: IgnoreRules;
  /** Which ignore file was used, if any. */
  ignoreFile?: string;
}

/** Read the ignore rules of a context directory (`.kubefileignore`, else `.dockerignore`). */
export async function readIgnoreRules(fs: FileSystem, dir: string): Promise<{ rules: IgnoreRules; file?: string }> {
  for (const name of IGNORE_FILES) {
    const path = posix.join(dir, name);
    const st = await lstatOrUndefined(fs, path);
    if (st?.isFile()) return { rules: IgnoreRules.parse(await fs.promises.readFile(path, 'utf8'), name), file: name };
  }
  return { rules: IgnoreRules.empty() };
}

/** Read a build context directory. */
export async function readBuildContext(dir: string, options: ReadContextOptions): Promise<BuildContext> {
  const { fs } = options;
  const epoch = options.sourceDateEpoch ?? 0;
  const rootStats = await lstatOrUndefined(fs, dir);
  if (!rootStats) throw new NotFoundError(dir, 'build context');
  if (!rootStats.isDirectory()) throw new UnsupportedEntryError(`build context ${dir} is not a directory`, dir, 'file');
  const found = options.ignore ? { rules: options.ignore, file: undefined } : await readIgnoreRules(fs, dir);
  const rules = found.rules;
  const inodes = new Map<string, Entry>();

  const attrs = (st: FsStats) => ({
    mode: st.mode & 0o7777,
    uid: 0,
    gid: 0,
    mtime: Math.max(0, Math.min(Math.floor(st.mtimeMs / 1000), epoch)),
  });

  /** undefined: the directory holds nothing that survives the ignore rules and is itself ignored. */
  const readDir = async (abs: string, rel: string, st: FsStats, excluded: boolean): Promise<FsNode | undefined> => {
    const names = (await fs.promises.readdir(abs)).sort(compareBytes);
    const children: [string, FsNode][] = [];
    for (const name of names) {
      const childRel = rel === '' ? name : `${rel}/${name}`;
      const childAbs = posix.join(abs, name);
      const cst = await fs.promises.lstat(childAbs);
      const childExcluded = rules.ignores(childRel);
      let node: FsNode | undefined;
      if (cst.isDirectory()) {
        if (childExcluded && !rules.hasExceptions) continue;
        node = await readDir(childAbs, childRel, cst, childExcluded);
      } else {
        if (childExcluded) continue;
        node = await readLeaf(childAbs, cst);
      }
      if (node) children.push([name, node]);
    }
    // An excluded directory is kept only as the parent of something re-included by a `!` rule.
    if (excluded && children.length === 0) return undefined;
    return { entry: directoryEntry(attrs(st)) as DirectoryEntry, children: PMap.fromSorted(children) };
  };

  const readLeaf = async (abs: string, st: FsStats): Promise<FsNode | undefined> => {
    if (st.isSymbolicLink()) return { entry: symlinkEntry(await fs.promises.readlink(abs), attrs(st)) };
    if (!st.isFile()) return undefined; // fifo, socket, device: nothing COPY could carry
    if (st.nlink > 1) {
      const key = `${st.dev}:${st.ino}`;
      const seen = inodes.get(key);
      if (seen) return { entry: markLinked(seen) };
      const entry = fileEntry(fileContent(fs, abs, st.size), attrs(st));
      inodes.set(key, entry);
      return { entry };
    }
    return { entry: fileEntry(fileContent(fs, abs, st.size), attrs(st)) };
  };

  const root = await readDir(dir, '', rootStats, false);
  return { dir, fs, rootfs: Rootfs.fromNode(root!), ignore: rules, ignoreFile: found.file };
}

/** A context made from an in-memory Rootfs (tests, programs that generate their files). */
export function contextFromRootfs(rootfs: Rootfs, fs: FileSystem, dir = '(memory)'): BuildContext {
  return { dir, fs, rootfs, ignore: IgnoreRules.empty() };
}
