/**
 * How the builder feeds the build cache (lib/cache, docs/performance.md): which cache a build
 * uses, the chain key of the rootfs each step starts from, and the binding of every new layer.
 *
 * A keyed step (COPY, ADD, APP) enters the chain by its step key; any other layer (RUN output,
 * batched edits) by its diff_id, computed from its tar, which also lets the writer find its blob
 * by diff_id. A RUN layer's identity also names how it ran (executor, network): the same output
 * made on the host or without the sandbox is another chain. Nothing here is awaited: keys need file digests (the memo answers for unchanged
 * files, others are read and hashed), and that work runs in the background while the steps go on
 * and the writer compresses earlier layers. A writer awaits a layer's key only when it asks the
 * cache.
 */
import { BuildCache, chainNext, chainStart, computeDiffId, copyStepKey, layerIdentity, setLayerIdentity, type KeyedSource } from '../cache';
import { UsageError } from '../errors';
import type { Image } from '../image/image';
import type { Layer } from '../layer/layer';
import { ImageStore } from '../store/store';

/** A build's cache and the chain key of the rootfs the next layer applies to. */
export interface CacheLink {
  readonly cache: BuildCache;
  readonly chain: Promise<string>;
}

/** What a COPY-like step's key is made of (sources as resolved, before ADD unpacks archives). */
export interface CopyKeyInput {
  sources: readonly KeyedSource[];
  /** Everything the step resolved to besides its sources (mode, owner, chmod, destination…). */
  settings: Record<string, unknown>;
}

/** How a RUN ran, for its layer's identity in the chain. */
export interface RunKeyInput {
  /** The executor's name (`sandbox`, `host-shell`, `builtin`…). */
  executor: string;
  network: string;
}

/**
 * The cache a build uses: the given BuildCache; none when turned off; else the store's when the
 * store is an ImageStore. `true` without an ImageStore is a usage error.
 */
export function selectBuildCache(option: boolean | BuildCache | undefined, store: unknown): BuildCache | undefined {
  if (option instanceof BuildCache) return option;
  if (option === false) return undefined;
  if (store instanceof ImageStore) return BuildCache.open(store);
  if (option === true) throw new UsageError('cache: true needs an ImageStore as `store` (or pass a BuildCache)');
  return undefined;
}

/** The link of a build from scratch. */
export function scratchLink(cache: BuildCache): CacheLink {
  return { cache, chain: Promise.resolve(chainStart('scratch')) };
}

/**
 * The link of a build on a base image: its layers from scratch, each by the identity it had when
 * this process made it (a stage's steps) or else by its diff_id.
 */
export function baseLink(cache: BuildCache, image: Image, epoch: number): CacheLink {
  const chain = (async () => {
    let key = chainStart('scratch');
    for (const l of image.layers) {
      const identity = l.kind === 'blob' ? `diff:${l.diffId}` : await (layerIdentity(l.layer) ?? computeDiffId(l.layer, epoch).then((d) => `diff:${d}`));
      key = chainNext(key, identity);
    }
    return key;
  })();
  chain.catch(() => undefined); // awaited (and reported as a miss) by whoever needs it
  return { cache, chain };
}

/**
 * Hand a new layer to the cache and return the link after it (undefined without a cache).
 * `copy` makes it a keyed step; without it the layer is known by its diff_id (and, for `run`,
 * by how it ran).
 */
export function linkLayer(
  link: CacheLink | undefined,
  layer: Layer,
  epoch: number,
  instruction: string,
  copy?: CopyKeyInput,
  run?: RunKeyInput,
): CacheLink | undefined {
  if (!link) return undefined;
  const { cache } = link;
  let identity: Promise<string>;
  if (copy) {
    const key = copyStepKey({ chain: link.chain, instruction, settings: { ...copy.settings, sourceDateEpoch: epoch }, sources: copy.sources }, cache.files);
    cache.bindLayer(layer, { stepKey: key, sourceDateEpoch: epoch, instruction });
    identity = key.then((k) => `step:${k.key}`);
  } else {
    const diffId = computeDiffId(layer, epoch);
    cache.bindLayer(layer, { diffId, sourceDateEpoch: epoch, instruction });
    identity = diffId.then((d) => (run ? `run:${JSON.stringify([run.executor, run.network])}:diff:${d}` : `diff:${d}`));
  }
  setLayerIdentity(layer, identity);
  const chain = Promise.all([link.chain, identity]).then(([c, id]) => chainNext(c, id));
  chain.catch(() => undefined); // awaited (and reported as a miss) by whoever needs it
  return { cache, chain };
}
