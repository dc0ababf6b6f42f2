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
import { OciLayout, reachableBlobs } from '../formats/layout';
import { TEMP_PREFIX, isAbandonedTemp, removeTree } from '../util/atomic';

export { reachableBlobs };

export interface GcResult {
  removedBlobs: number;
  removedBytes: number;
  removedTemp: number;
  /** True when some referenced document could not be read: nothing was swept, to be safe. */
  incomplete: boolean;
}

const HEX = { sha256: /^[a-f0-9]{64}$/, sha512: /^[a-f0-9]{128}$/ } as const;
/** What a lock breaker that died mid-break leaves next to the lock (lock.ts). */
const STALE_LOCK = /^index\.lock\.stale-/;

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
    // The store's directories are ours: leftovers of earlier versions (unsigned names) go too.
    if (st && isAbandonedTemp(name, st.mtimeMs, now, { ownDirectory: true })) {
      await removeTree(fs, path);
      result.removedTemp++;
    }
  };
  for (const name of await fs.promises.readdir(dir)) {
    if (name.startsWith(TEMP_PREFIX) || STALE_LOCK.test(name)) await sweepTemp(posix.join(dir, name), name);
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
