/**
 * umoci as a referee. Helpers to build images with umoci itself, to unpack many tags of a layout
 * cheaply, and to compare two Rootfs trees the way a runtime would see them.
 *
 * Mode: umoci runs either fully privileged or `--rootless`, the same way for every call of a test
 * run. As root (CI) it runs privileged, so it applies owners with lchown and we compare uid/gid;
 * otherwise (or with CLOUDROOTFS_UMOCI_ROOTLESS=1) it runs `--rootless`, which keeps owners only in
 * a `user.rootlesscontainers` xattr that Node cannot read, so owners are not compared.
 *
 * What is compared (see `compareTrees`): paths, types, permission bits incl. setuid/setgid/sticky
 * (not for symlinks: Linux symlinks have no mode of their own), owners (privileged mode), file
 * bytes (sha256), symlink targets, hardlink groups (paths sharing one inode), and mtimes of files,
 * symlinks and directories that the layers state. Not compared: xattrs (no Node API), the mtime
 * of the root and of directories a layer only implies (umoci creates those "now"), and, with
 * `umociNowFrom`, directory mtimes umoci bumped to "now" itself (see CompareOptions).
 */
import { execFileSync, spawn } from 'node:child_process';
import * as nodeFs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { memoDigest } from '../../lib/content';
import { Entry } from '../../lib/entry';
import { diskFs } from '../../lib/fs';
import { isImpliedDirectory } from '../../lib/layer/apply';
import { readRootfsFromDirectory } from '../../lib/rootfs/io';
import { Rootfs } from '../../lib/rootfs/rootfs';

/**
 * A fresh directory for scratch trees: on /dev/shm when it is writable and roomy (fsync is free
 * on tmpfs, which halves the time of writing hundreds of layouts; containers often give it only
 * 64 MiB, hence the 1 GiB floor), else the system temp dir.
 */
export function scratchDir(prefix: string): string {
  let base = tmpdir();
  try {
    nodeFs.accessSync('/dev/shm', nodeFs.constants.W_OK);
    const st = nodeFs.statfsSync('/dev/shm');
    if (st.bavail * st.bsize >= 1 << 30) base = '/dev/shm';
  } catch {
    // no usable tmpfs: the system temp dir will do
  }
  return nodeFs.mkdtempSync(join(base, prefix));
}

export interface UmociMode {
  /** Pass `--rootless` to unpack/repack/insert. */
  rootless: boolean;
  /** Owners are applied on disk, so they can be compared. */
  owners: boolean;
}

export function umociMode(): UmociMode {
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  const rootless = process.env.CLOUDROOTFS_UMOCI_ROOTLESS === '1' || !root;
  return { rootless, owners: !rootless };
}

const SAFE_TAG = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** Run umoci (umask 022, so directories it creates are 0755 like ours); returns stdout, throws with stderr. */
export function umoci(args: string[], options: { cwd?: string } = {}): string {
  try {
    return execFileSync('sh', ['-c', 'umask 022; exec umoci "$@"', 'umoci', ...args], {
      cwd: options.cwd,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (err) {
    const e = err as { stderr?: string; status?: number };
    throw new Error(`umoci ${args.join(' ')} failed (exit ${e.status}): ${String(e.stderr ?? '').trim()}`);
  }
}

function rootlessFlag(): string[] {
  return umociMode().rootless ? ['--rootless'] : [];
}

export type UnpackResult = { ok: true; rootfs: string } | { ok: false; error: string };

/**
 * `umoci unpack` every tag of `layout` into `outDir/<tag>`. Tags are split over `concurrency`
 * shell loops (one process per loop, not per tag), which costs about 11 ms per unpack.
 */
export async function unpackTags(layout: string, tags: readonly string[], outDir: string, concurrency = 2): Promise<Map<string, UnpackResult>> {
  for (const t of tags) if (!SAFE_TAG.test(t)) throw new Error(`unsafe tag ${t}`);
  nodeFs.mkdirSync(outDir, { recursive: true });
  const script = [
    'umask 022',
    'L="$1"; O="$2"; F="$3"; shift 3',
    'for t in "$@"; do',
    '  umoci unpack $F --image "$L:$t" "$O/$t" >"$O/$t.log" 2>&1',
    '  echo $? >"$O/$t.rc"',
    'done',
  ].join('\n');
  const chunks: string[][] = Array.from({ length: Math.max(1, concurrency) }, () => []);
  tags.forEach((t, i) => chunks[i % chunks.length].push(t));
  await Promise.all(
    chunks
      .filter((c) => c.length > 0)
      .map(
        (chunk) =>
          new Promise<void>((resolve, reject) => {
            const child = spawn('sh', ['-c', script, 'unpack', layout, outDir, rootlessFlag().join(' '), ...chunk], { stdio: 'ignore' });
            child.on('error', reject);
            child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`unpack loop exited ${code}`))));
          }),
      ),
  );
  const results = new Map<string, UnpackResult>();
  for (const t of tags) {
    const rc = nodeFs.readFileSync(join(outDir, `${t}.rc`), 'utf8').trim();
    const log = nodeFs.readFileSync(join(outDir, `${t}.log`), 'utf8').trim();
    results.set(t, rc === '0' ? { ok: true, rootfs: join(outDir, t, 'rootfs') } : { ok: false, error: `exit ${rc}: ${log}` });
  }
  return results;
}

/** The tree umoci unpacked, read back (hardlinks become one entry object, as in ours). */
export function readUnpacked(rootfsDir: string): Promise<Rootfs> {
  return readRootfsFromDirectory(rootfsDir, { fs: diskFs });
}

/**
 * Build images with umoci itself: `edit` unpacks a tag into a bundle, lets the test change the
 * bundle's rootfs with ordinary file operations, and repacks it as a new tag (umoci computes the
 * layer, whiteouts included, from its mtree manifest); `insert` adds a directory, a file, a
 * whiteout or an opaque directory as a new layer.
 */
export class UmociImageBuilder {
  private bundles = 0;

  constructor(
    readonly layout: string,
    readonly work: string,
  ) {}

  init(baseTag = 'base'): this {
    nodeFs.mkdirSync(this.work, { recursive: true });
    umoci(['init', '--layout', this.layout]);
    umoci(['new', '--image', `${this.layout}:${baseTag}`]);
    return this;
  }

  async edit(from: string, to: string, change: (rootfs: string) => void | Promise<void>): Promise<this> {
    const bundle = join(this.work, `bundle-${++this.bundles}-${to}`);
    umoci(['unpack', ...rootlessFlag(), '--image', `${this.layout}:${from}`, bundle]);
    await change(join(bundle, 'rootfs'));
    umoci(['repack', '--no-history', '--image', `${this.layout}:${to}`, bundle]);
    return this;
  }

  /** `umoci insert [--opaque] SOURCE TARGET` from tag `from` into tag `to`. */
  insert(from: string, to: string, source: string, target: string, options: { opaque?: boolean } = {}): this {
    umoci(['insert', ...rootlessFlag(), ...(options.opaque ? ['--opaque'] : []), '--no-history', '--image', `${this.layout}:${from}`, '--tag', to, source, target]);
    return this;
  }

  /** `umoci insert --whiteout TARGET` from tag `from` into tag `to`. */
  whiteout(from: string, to: string, target: string): this {
    umoci(['insert', ...rootlessFlag(), '--whiteout', '--no-history', '--image', `${this.layout}:${from}`, '--tag', to, target]);
    return this;
  }
}

// --- comparing trees ------------------------------------------------------------------------------

export interface TreeRow {
  path: string;
  type: Entry['type'];
  mode?: string;
  uid?: number;
  gid?: number;
  mtime?: number;
  size?: number;
  sha256?: string;
  target?: string;
  /** For a file at several paths: the first of them (walk order), the same on both sides. */
  linkGroup?: string;
  xattrs?: string;
}

export interface DescribeOptions {
  owners: boolean;
  mtimes: boolean;
  /** Also the root's mtime and that of implied directories (in-memory comparisons only). */
  exact?: boolean;
  xattrs?: boolean;
}

/**
 * One row per path (the root is `''`), in walk order. For `ours`, directories the layers only
 * imply (isImpliedDirectory) and the root get no mtime: their on-disk time is umoci's "now".
 */
export async function describeRootfs(rootfs: Rootfs, options: DescribeOptions): Promise<TreeRow[]> {
  const rows: TreeRow[] = [];
  const entries = [{ path: '', entry: rootfs.rootEntry as Entry }, ...rootfs.walk()];
  const paths = new Map<Entry, string[]>();
  for (const { path, entry } of entries) {
    if (entry.type !== 'file') continue;
    const list = paths.get(entry);
    if (list) list.push(path);
    else paths.set(entry, [path]);
  }
  for (const { path, entry } of entries) {
    const row: TreeRow = { path, type: entry.type };
    if (entry.type !== 'symlink') row.mode = (entry.mode & 0o7777).toString(8).padStart(4, '0');
    if (options.owners) {
      row.uid = entry.uid;
      row.gid = entry.gid;
    }
    const timed = options.exact || (path !== '' && !isImpliedDirectory(entry));
    if (options.mtimes && timed) row.mtime = entry.mtime;
    if (options.xattrs && entry.xattrs) row.xattrs = JSON.stringify(Object.entries(entry.xattrs).sort());
    if (entry.type === 'symlink') row.target = entry.target;
    if (entry.type === 'file') {
      row.size = entry.content.size;
      row.sha256 = await memoDigest(entry.content);
      const group = paths.get(entry)!;
      if (group.length > 1) row.linkGroup = group[0];
    }
    rows.push(row);
  }
  return rows;
}

/**
 * Human-readable differences between our rows and theirs (umoci's, or the expected tree), empty
 * when identical. An mtime is compared only where ours states one (see describeRootfs).
 */
export interface CompareOptions {
  /**
   * A directory mtime of theirs at or after this (seconds) is umoci's own "now": its mkdir -p of
   * an implied directory changes the parent's mtime and nothing restores it, even after the
   * implied directory is restated or removed. Use when no layer states times that recent.
   */
  umociNowFrom?: number;
  max?: number;
}

export function compareTrees(ours: readonly TreeRow[], theirs: readonly TreeRow[], options: CompareOptions = {}): string[] {
  const max = options.max ?? 30;
  const out: string[] = [];
  const a = new Map(ours.map((r) => [r.path, r]));
  const b = new Map(theirs.map((r) => [r.path, r]));
  const fields: (keyof TreeRow)[] = ['type', 'mode', 'uid', 'gid', 'mtime', 'size', 'sha256', 'target', 'linkGroup', 'xattrs'];
  for (const [path, ra] of a) {
    const rb = b.get(path);
    if (!rb) {
      out.push(`only ours: ${JSON.stringify(path)} (${ra.type})`);
      continue;
    }
    for (const f of fields) {
      if (f === 'mtime' && ra.mtime === undefined) continue;
      if (f === 'mtime' && ra.type === 'directory' && options.umociNowFrom !== undefined && (rb.mtime ?? 0) >= options.umociNowFrom) continue;
      if (ra[f] !== rb[f]) out.push(`${JSON.stringify(path)}: ${f} ours=${String(ra[f])} theirs=${String(rb[f])}`);
    }
  }
  for (const [path, rb] of b) if (!a.has(path)) out.push(`only theirs: ${JSON.stringify(path)} (${rb.type})`);
  return out.slice(0, max);
}

/** Describe both trees with the same options and compare them. */
export async function treeDifferences(ours: Rootfs, theirs: Rootfs, options: DescribeOptions & CompareOptions): Promise<string[]> {
  return compareTrees(await describeRootfs(ours, options), await describeRootfs(theirs, options), options);
}
