/**
 * Garbage collection of the store's blobs: mark everything index.json reaches (indexes,
 * manifests, configs, layers), sweep blob files nothing reaches, and temporary files (`.tmp-*`)
 * left by writers that died. Runs under the store lock.
 *
 * Safe against writers in other processes: a writer first stores its blobs (unlocked), then,
 * under the lock, checks that every one of them still exists before it tags — so a blob swept
 * between the two steps is noticed and written again (see ImageStore.put).
 */
import { posix } from 'node:path';
import { errnoCode, lstatOrUndefined } from '../fs';
import { OciLayout } from '../formats/layout';
import type { Descriptor } from '../image/types';
import { isIndexMediaType, isManifestMediaType } from '../media-types';
import { TEMP_PREFIX } from '../util/atomic';

export interface GcResult {
  removedBlobs: number;
  removedBytes: number;
  removedTemp: number;
  /** True when some referenced document could not be read: nothing was swept, to be safe. */
  incomplete: boolean;
}

/** Temp files of a live writer are kept; those of dead writers, or older than this, go. */
const TEMP_MAX_AGE_MS = 24 * 3600_000;
const HEX = { sha256: /^[a-f0-9]{64}$/, sha512: /^[a-f0-9]{128}$/ } as const;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoCode(err) === 'EPERM';
  }
}

/** `.tmp-<name>-<pid>-<random>` (util/atomic's tempSibling): is its writer gone? */
function abandoned(name: string, mtimeMs: number, now: number): boolean {
  if (now - mtimeMs > TEMP_MAX_AGE_MS) return true;
  const m = /-(\d+)-[0-9a-f]{12}$/.exec(name);
  if (!m) return false;
  const pid = Number(m[1]);
  // Temp names carry no host: on a store shared between hosts, rely on the age rule there.
  return pid !== process.pid && !alive(pid);
}

/** Every blob digest reachable from `roots`; undefined when a document could not be read. */
export async function reachableBlobs(layout: OciLayout, roots: readonly Descriptor[]): Promise<Set<string> | undefined> {
  const marked = new Set<string>();
  let complete = true;
  const visit = async (d: Descriptor, depth: number): Promise<void> => {
    if (marked.has(d.digest) || depth > 16) return;
    marked.add(d.digest);
    const isManifest = isManifestMediaType(d.mediaType);
    const isIndex = isIndexMediaType(d.mediaType);
    if (!isManifest && !isIndex) return;
    let doc: { config?: Descriptor; layers?: Descriptor[]; manifests?: Descriptor[] };
    try {
      doc = JSON.parse((await layout.readBlob(d)).toString('utf8'));
    } catch {
      complete = false;
      return;
    }
    const children = [...(doc.config ? [doc.config] : []), ...(doc.layers ?? []), ...(doc.manifests ?? [])];
    for (const c of children) if (c && typeof c.digest === 'string') await visit(c, depth + 1);
  };
  for (const r of roots) await visit(r, 0);
  return complete ? marked : undefined;
}

/** Sweep unreferenced blobs and abandoned temp files. The caller holds the store lock. */
export async function collectGarbage(layout: OciLayout): Promise<GcResult> {
  const { fs, dir } = layout;
  const result: GcResult = { removedBlobs: 0, removedBytes: 0, removedTemp: 0, incomplete: false };
  const index = await layout.readIndex();
  const marked = await reachableBlobs(layout, index.manifests);
  if (!marked) result.incomplete = true;
  const now = Date.now();
  const sweepTemp = async (path: string, name: string) => {
    const st = await lstatOrUndefined(fs, path);
    if (st && abandoned(name, st.mtimeMs, now)) {
      await fs.promises.rm(path, { recursive: true, force: true });
      result.removedTemp++;
    }
  };
  for (const name of await fs.promises.readdir(dir)) {
    if (name.startsWith(TEMP_PREFIX)) await sweepTemp(posix.join(dir, name), name);
  }
  for (const alg of Object.keys(HEX) as (keyof typeof HEX)[]) {
    const algDir = posix.join(dir, 'blobs', alg);
    let names: string[];
    try {
      names = await fs.promises.readdir(algDir);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') continue;
      throw err;
    }
    for (const name of names) {
      const path = posix.join(algDir, name);
      if (name.startsWith(TEMP_PREFIX)) {
        await sweepTemp(path, name);
        continue;
      }
      if (!marked || !HEX[alg].test(name) || marked.has(`${alg}:${name}`)) continue;
      const st = await lstatOrUndefined(fs, path);
      if (!st || !st.isFile()) continue;
      await fs.promises.unlink(path).catch((err) => {
        if (errnoCode(err) !== 'ENOENT') throw err;
      });
      result.removedBlobs++;
      result.removedBytes += st.size;
    }
  }
  return result;
}
