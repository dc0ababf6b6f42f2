/** Bounded parallelism, shared by every module that runs several reads, writes or uploads at once. */

/**
 * `fn` over `items` with at most `limit` running; results in item order. After the first failure
 * no new item starts, and the failure is reported only once every running item has settled, so a
 * caller that cleans up (or a registry that must not see a manifest) never races work in flight.
 */
export async function mapLimited<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  let failed = false;
  let firstError: unknown;
  await Promise.all(
    Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
      while (!failed && next < items.length) {
        const i = next++;
        try {
          out[i] = await fn(items[i], i);
        } catch (err) {
          if (!failed) firstError = err;
          failed = true;
        }
      }
    }),
  );
  if (failed) throw firstError;
  return out;
}
