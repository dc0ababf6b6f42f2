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
import { attachStamp, lstatPrecise, stampFromStats } from '../cache/stamp';
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

/** What the scan found at one path (phase one of reading a context). */
interface Scanned {
  name: string;
  abs: string;
  rel: string;
  st: FsStats;
  excluded: boolean;
  /** Directories: their scanned children, in byte order. */
  children?: Scanned[];
  /** Symlinks: the link text. */
  target?: string;
}

/** Filesystem calls in flight at once while scanning (lstat round trips dominate big contexts). */
const SCAN_CONCURRENCY = 32;

/** A small counting semaphore. */
function limiter(max: number): <T>(fn: () => Promise<T>) => Promise<T> {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async (fn) => {
    if (active >= max) await new Promise<void>((resolve) => waiting.push(resolve));
    active++;
    try {
      return await fn();
    } finally {
      active--;
      waiting.shift()?.();
    }
  };
}

/**
 * Read a build context directory. Two phases: a scan that lstat's (with nanosecond times) many
 * paths at once, then a pass in byte order that makes the entries, so the result (which path of
 * a hardlinked inode comes first, for instance) never depends on the order calls complete in.
 * Each file's Content carries a stamp of its lstat, for the build cache's digest memo.
 */
export async function readBuildContext(dir: string, options: ReadContextOptions): Promise<BuildContext> {
  const { fs } = options;
  const epoch = options.sourceDateEpoch ?? 0;
  const rootStats = await lstatOrUndefined(fs, dir);
  if (!rootStats) throw new NotFoundError(dir, 'build context');
  if (!rootStats.isDirectory()) throw new UnsupportedEntryError(`build context ${dir} is not a directory`, dir, 'file');
  const found = options.ignore ? { rules: options.ignore, file: undefined } : await readIgnoreRules(fs, dir);
  const rules = found.rules;
  const root = posix.isAbsolute(dir) ? posix.normalize(dir) : posix.resolve(dir);
  const limit = limiter(SCAN_CONCURRENCY);

  const scanDir = async (abs: string, rel: string): Promise<Scanned[]> => {
    const names = (await limit(() => fs.promises.readdir(abs))).sort(compareBytes);
    const scanned = await Promise.all(
      names.map(async (name): Promise<Scanned | undefined> => {
        const childRel = rel === '' ? name : `${rel}/${name}`;
        const childAbs = posix.join(abs, name);
        const st = await limit(async () => (await lstatPrecise(fs, childAbs)) ?? fs.promises.lstat(childAbs));
        const excluded = rules.ignores(childRel);
        const item: Scanned = { name, abs: childAbs, rel: childRel, st, excluded };
        if (st.isDirectory()) {
          if (excluded && !rules.hasExceptions) return undefined;
          item.children = await scanDir(childAbs, childRel);
        } else {
          if (excluded) return undefined;
          if (st.isSymbolicLink()) item.target = await limit(() => fs.promises.readlink(childAbs));
        }
        return item;
      }),
    );
    return scanned.filter((x): x is Scanned => x !== undefined);
  };

  const inodes = new Map<string, Entry>();
  const attrs = (st: FsStats) => ({
    mode: Number(st.mode) & 0o7777,
    uid: 0,
    gid: 0,
    mtime: Math.max(0, Math.min(Math.floor(Number(st.mtimeMs) / 1000), epoch)),
  });

  /** undefined: the directory holds nothing that survives the ignore rules and is itself ignored. */
  const makeDir = (st: FsStats, items: Scanned[], excluded: boolean): FsNode | undefined => {
    const children: [string, FsNode][] = [];
    for (const item of items) {
      const node = item.children ? makeDir(item.st, item.children, item.excluded) : makeLeaf(item);
      if (node) children.push([item.name, node]);
    }
    // An excluded directory is kept only as the parent of something re-included by a `!` rule.
    if (excluded && children.length === 0) return undefined;
    return { entry: directoryEntry(attrs(st)) as DirectoryEntry, children: PMap.fromSorted(children) };
  };

  const makeLeaf = (item: Scanned): FsNode | undefined => {
    const { st, abs } = item;
    if (st.isSymbolicLink()) return { entry: symlinkEntry(item.target!, attrs(st)) };
    if (!st.isFile()) return undefined; // fifo, socket, device: nothing COPY could carry
    const key = `${st.dev}:${st.ino}`;
    if (Number(st.nlink) > 1) {
      const seen = inodes.get(key);
      if (seen) return { entry: markLinked(seen) };
    }
    const size = Number(st.size);
    const content = fileContent(fs, abs, size);
    attachStamp(content, fs, abs, stampFromStats(root, item.rel, st));
    const entry = fileEntry(content, attrs(st));
    if (Number(st.nlink) > 1) inodes.set(key, entry);
    return { entry };
  };

  const rootNode = makeDir(rootStats, await scanDir(dir, ''), false);
  return { dir, fs, rootfs: Rootfs.fromNode(rootNode!), ignore: rules, ignoreFile: found.file };
}

/** A context made from an in-memory Rootfs (tests, programs that generate their files). */
export function contextFromRootfs(rootfs: Rootfs, fs: FileSystem, dir = '(memory)'): BuildContext {
  return { dir, fs, rootfs, ignore: IgnoreRules.empty() };
}
