/**
 * The persistent map (lib/rootfs/pmap.ts) against a plain `Map` as the model: random sequences of
 * set, delete and get on maps of up to a few thousand keys (trees of two and three levels), with
 * keys drawn from an alphabet where UTF-16 order and UTF-8 byte order disagree. After every
 * sequence: same contents, iteration in byte order, the B+tree's own invariants, old versions
 * untouched, `diffMaps` equal to a naive diff, and each change copying only one root-to-leaf path.
 *
 * Reproducible: FUZZ_SEED (default fixed; random under FUZZ_RUNS unless given) and FUZZ_RUNS
 * (default 100 sequences per property).
 */
import fc from 'fast-check';
import { compareBytes } from '../../lib/path';
import { PMap, diffMaps } from '../../lib/rootfs/pmap';

const RUNS = Number(process.env.FUZZ_RUNS ?? 100);
const SEED = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) : process.env.FUZZ_RUNS ? Date.now() % 2 ** 31 : 14_014;
const PARAMS = { numRuns: RUNS, seed: SEED };

/** Slots per node (FANOUT in pmap.ts); the tests need it to reason about heights and copies. */
const FANOUT = 32;

/** A value compared by identity, as the Rootfs compares entries. */
interface Val {
  readonly n: number;
}

let counter = 0;
const val = (): Val => ({ n: counter++ });

/** Byte order, the order the map promises. */
const byBytes = (a: string, b: string) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));

// Units chosen so that JS `<` and byte order disagree (a surrogate pair against U+E000..U+FFFF),
// with short and shared prefixes so that neighbouring keys differ late.
const UNITS = ['a', 'b', '.', '/', 'é', '\u{E000}', '\u{FFFD}', '\u{10000}', '\u{1D11E}'];
const keyArb = fc.string({ unit: fc.constantFrom(...UNITS), minLength: 0, maxLength: 5 });

/** Keys of the initial map: distinct, many, and not in key order. */
function initialKeys(n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(`${UNITS[(i * 7) % UNITS.length]}${((i * 7919) % 100_003).toString(36)}${UNITS[i % UNITS.length]}`);
  return out;
}

type Op = { kind: 'set'; key: string } | { kind: 'setSame'; key: string } | { kind: 'delete'; key: string } | { kind: 'get'; key: string };

/** A key from the initial set (by index) or a fresh one, so that ops hit present and absent keys. */
const opKeyArb = (initial: number) => {
  const keys = initialKeys(initial);
  return initial === 0 ? keyArb : fc.oneof(keyArb, fc.nat({ max: initial - 1 }).map((i) => keys[i]));
};

const opArb = (initial: number): fc.Arbitrary<Op> =>
  fc.tuple(fc.constantFrom<Op['kind']>('set', 'set', 'setSame', 'delete', 'delete', 'get'), opKeyArb(initial)).map(([kind, key]) => ({ kind, key }));

const scenarioArb = fc
  .constantFrom(0, 10, 40, 300, 1100, 2500)
  .chain((initial) => fc.record({ initial: fc.constant(initial), ops: fc.array(opArb(initial), { maxLength: 250 }) }));

// --- the tree's shape, through the @internal root --------------------------------------------------

interface LeafShape {
  leaf: true;
  keys: string[];
  values: unknown[];
}
interface BranchShape {
  leaf: false;
  firsts: string[];
  children: NodeShape[];
  size: number;
  height: number;
}
type NodeShape = LeafShape | BranchShape;

const rootOf = (m: PMap<unknown>) => PMap.rootOf(m) as unknown as NodeShape | undefined;

function nodesOf(n: NodeShape | undefined, out = new Set<NodeShape>()): Set<NodeShape> {
  if (!n) return out;
  out.add(n);
  if (!n.leaf) for (const c of n.children) nodesOf(c, out);
  return out;
}

/** How many nodes of `after` are not nodes of `before` (what a change copied). */
function freshNodes(before: PMap<unknown>, after: PMap<unknown>): number {
  const old = nodesOf(rootOf(before));
  return [...nodesOf(rootOf(after))].filter((n) => !old.has(n)).length;
}

function heightOf(m: PMap<unknown>): number {
  const r = rootOf(m);
  return !r ? -1 : r.leaf ? 0 : r.height;
}

/** Every invariant `get`, `set`, `delete` and `diffMaps` rely on; returns the problems found. */
function treeProblems(m: PMap<unknown>): string[] {
  const problems: string[] = [];
  const root = rootOf(m);
  if (!root) {
    if (m.size !== 0) problems.push(`empty tree of size ${m.size}`);
    return problems;
  }
  if (!root.leaf && root.children.length < 2) problems.push('a branch root with one child');
  let previous: string | undefined;
  const check = (n: NodeShape, depth: number, expectedHeight: number): { size: number; first: string } => {
    if (n.leaf) {
      if (expectedHeight !== 0) problems.push(`leaf at height ${expectedHeight}`);
      if (n.keys.length === 0 || n.keys.length > FANOUT) problems.push(`leaf of ${n.keys.length} keys`);
      if (n.keys.length !== n.values.length) problems.push('leaf keys and values differ in length');
      for (const k of n.keys) {
        if (previous !== undefined && byBytes(previous, k) >= 0) problems.push(`keys out of order: ${JSON.stringify(previous)} then ${JSON.stringify(k)}`);
        previous = k;
      }
      return { size: n.keys.length, first: n.keys[0] };
    }
    if (n.height !== expectedHeight) problems.push(`branch height ${n.height}, expected ${expectedHeight}`);
    if (n.children.length === 0 || n.children.length > FANOUT) problems.push(`branch of ${n.children.length} children`);
    if (n.firsts.length !== n.children.length) problems.push('firsts and children differ in length');
    let size = 0;
    n.children.forEach((c, i) => {
      const sub = check(c, depth + 1, expectedHeight - 1);
      if (n.firsts[i] !== sub.first) problems.push(`firsts[${i}] is ${JSON.stringify(n.firsts[i])}, its child starts at ${JSON.stringify(sub.first)}`);
      size += sub.size;
    });
    if (n.size !== size) problems.push(`branch size ${n.size}, children hold ${size}`);
    return { size, first: n.firsts[0] };
  };
  const { size } = check(root, 0, root.leaf ? 0 : root.height);
  if (size !== m.size) problems.push(`size ${m.size}, tree holds ${size}`);
  return problems;
}

// --- the model -----------------------------------------------------------------------------------

function sortedModel<V>(model: Map<string, V>): [string, V][] {
  const decorated = [...model.entries()].map(([k, v]) => ({ bytes: Buffer.from(k, 'utf8'), entry: [k, v] as [string, V] }));
  return decorated.sort((a, b) => Buffer.compare(a.bytes, b.bytes)).map((d) => d.entry);
}

function naiveDiff<V>(a: Map<string, V>, b: Map<string, V>): [string, V | undefined, V | undefined][] {
  const keys = [...new Set([...a.keys(), ...b.keys()])].sort(byBytes);
  return keys.filter((k) => a.get(k) !== b.get(k)).map((k) => [k, a.get(k), b.get(k)]);
}

function diffOf<V>(a: PMap<V>, b: PMap<V>): [string, V | undefined, V | undefined][] {
  const out: [string, V | undefined, V | undefined][] = [];
  diffMaps(a, b, (k, va, vb) => out.push([k, va, vb]));
  return out;
}

function initialMap(n: number): { map: PMap<Val>; model: Map<string, Val> } {
  const model = new Map<string, Val>();
  for (const k of initialKeys(n)) model.set(k, val());
  return { map: PMap.from(model.entries()), model };
}

// Plain checks for the per-operation loop (jest's expect costs more than the map under test).
function same<T>(actual: T, expected: T, what: string): void {
  if (actual !== expected) throw new Error(`${what}: got ${String(actual)}, expected ${String(expected)}`);
}
function atMost(actual: number, max: number, what: string): void {
  if (actual > max) throw new Error(`${what}: ${actual}, at most ${max} expected`);
}

/** Apply `op` to both; returns the new map and checks the one-path promise on the way. */
function step(map: PMap<Val>, model: Map<string, Val>, op: Op): PMap<Val> {
  switch (op.kind) {
    case 'get':
      same(map.get(op.key), model.get(op.key), `get(${JSON.stringify(op.key)})`);
      same(map.has(op.key), model.has(op.key), `has(${JSON.stringify(op.key)})`);
      return map;
    case 'setSame': {
      const current = model.get(op.key);
      if (!current) return step(map, model, { kind: 'set', key: op.key });
      // Setting the value already there changes nothing: the very same map comes back.
      same(map.set(op.key, current), map, 'set of the same value returns the same map');
      return map;
    }
    case 'set': {
      const v = val();
      const next = map.set(op.key, v);
      model.set(op.key, v);
      // One root-to-leaf path is copied; a split adds at most one sibling per level, and a new root.
      atMost(freshNodes(map, next), 2 * (heightOf(map) + 1) + 1, `nodes copied by set(${JSON.stringify(op.key)})`);
      return next;
    }
    case 'delete': {
      const had = model.delete(op.key);
      const next = map.delete(op.key);
      if (!had) {
        same(next, map, 'delete of an absent key returns the same map');
        return map;
      }
      // One path is copied (a merge of two leaves makes one new leaf); nothing else is new.
      atMost(freshNodes(map, next), heightOf(map) + 1, `nodes copied by delete(${JSON.stringify(op.key)})`);
      return next;
    }
  }
}

describe('PMap against a plain Map', () => {
  test('random set/delete/get sequences: same contents, byte order, sound tree, old versions intact', () => {
    fc.assert(
      fc.property(scenarioArb, ({ initial, ops }) => {
        let { map, model } = initialMap(initial);
        expect(treeProblems(map)).toEqual([]);
        const snapshots: { map: PMap<Val>; entries: [string, Val][] }[] = [{ map, entries: sortedModel(model) }];
        ops.forEach((op, i) => {
          map = step(map, model, op);
          same(map.size, model.size, 'size');
          if (i % 50 === 49) snapshots.push({ map, entries: sortedModel(model) });
        });
        expect(treeProblems(map)).toEqual([]);
        // Iteration: every entry once, in UTF-8 byte order (not UTF-16 order).
        const expected = sortedModel(model);
        expect([...map.entries()]).toEqual(expected);
        expect([...map.keys()]).toEqual(expected.map((e) => e[0]));
        expect([...map.values()]).toEqual(expected.map((e) => e[1]));
        expect([...map]).toEqual(expected);
        // Persistence: every earlier version still holds what it held.
        for (const s of snapshots) expect([...s.map.entries()]).toEqual(s.entries);
      }),
      PARAMS,
    );
  });

  test('diffMaps equals a naive diff, for related versions (shared subtrees) and unrelated copies', () => {
    fc.assert(
      fc.property(scenarioArb, ({ initial, ops }) => {
        const start = initialMap(initial);
        const before = new Map(start.model);
        let map = start.map;
        const model = start.model;
        for (const op of ops) map = step(map, model, op);
        const expected = naiveDiff(before, model);
        // Related: `map` shares every untouched subtree with `start.map`.
        expect(diffOf(start.map, map)).toEqual(expected);
        expect(diffOf(map, start.map)).toEqual(naiveDiff(model, before));
        // Unrelated: the same contents rebuilt from scratch share no node.
        expect(diffOf(PMap.from(before.entries()), PMap.from(model.entries()))).toEqual(expected);
        // Mixed: one side rebuilt, one side derived.
        expect(diffOf(start.map, PMap.from(model.entries()))).toEqual(expected);
        // A map against itself, or against an equal copy, has no difference.
        expect(diffOf(map, map)).toEqual([]);
        expect(diffOf(map, PMap.from(map.entries()))).toEqual([]);
      }),
      PARAMS,
    );
  });

  test('diffMaps between versions skips what they share: one change in 50,000 keys is one visit and few nodes', () => {
    const entries = Array.from({ length: 50_000 }, (_, i) => [`k${String(i).padStart(6, '0')}`, val()] as const);
    const a = PMap.fromSorted(entries);
    expect(treeProblems(a)).toEqual([]);
    expect(heightOf(a)).toBe(3); // 50,000 keys over leaves of 32: three levels of branches
    const changed = val();
    const b = a.set('k025000', changed);
    const visits: string[] = [];
    diffMaps(a, b, (k) => visits.push(k));
    expect(visits).toEqual(['k025000']);
    // The two versions share all but one root-to-leaf path.
    expect(freshNodes(a, b)).toBe(heightOf(a) + 1);
    // Deleting and re-adding a key gives a map equal to the original, and diff sees no change.
    const c = a.delete('k000007').set('k000007', a.get('k000007')!);
    expect(diffOf(a, c)).toEqual([]);
  });

  test('byte order where UTF-16 order disagrees, and edge keys', () => {
    const keys = ['\u{FFFD}', '\u{10000}', '\u{E000}', '', 'a', 'a/b', 'a.b', 'a\u{1D11E}', 'a\u{FFFF}'];
    const m = PMap.from(keys.map((k) => [k, k] as const));
    expect([...m.keys()]).toEqual(['', 'a', 'a.b', 'a/b', 'a\u{FFFF}', 'a\u{1D11E}', '\u{E000}', '\u{FFFD}', '\u{10000}']);
    expect(m.get('')).toBe('');
    // A later duplicate in `from` wins, as in a Map.
    expect([...PMap.from([['x', 1], ['x', 2]]).entries()]).toEqual([['x', 2]]);
    // The empty map is one shared value; emptying a map gives it back.
    expect(PMap.empty()).toBe(PMap.empty());
    expect(PMap.from([])).toBe(PMap.empty());
    expect(PMap.empty<number>().set('a', 1).delete('a')).toBe(PMap.empty());
    expect(PMap.empty<number>().delete('a')).toBe(PMap.empty());
    expect([...PMap.empty().entries()]).toEqual([]);
  });

  test('a map emptied one key at a time stays sound, never grows in height, and ends as the empty map', () => {
    const n = 40 * FANOUT;
    let m = PMap.fromSorted(Array.from({ length: n }, (_, i) => [`${String(i).padStart(5, '0')}`, i] as const));
    const heights: number[] = [];
    // Delete from the middle outwards so that leaves empty, merge and branches collapse.
    const order = Array.from({ length: n }, (_, i) => (i % 2 === 0 ? n / 2 + i / 2 : n / 2 - (i + 1) / 2));
    order.forEach((i, done) => {
      m = m.delete(String(i).padStart(5, '0'));
      heights.push(heightOf(m as PMap<unknown>));
      if (done % 97 === 0) expect(treeProblems(m as PMap<unknown>)).toEqual([]);
    });
    expect(m).toBe(PMap.empty());
    expect(heights[0]).toBe(2);
    expect(heights.every((h, i) => i === 0 || h <= heights[i - 1])).toBe(true);
    expect(heights[heights.length - 1]).toBe(-1);
  });
});

describe('compareBytes (the order of the map)', () => {
  test('agrees with Buffer.compare of the UTF-8 bytes for any well-formed strings', () => {
    const near = fc.string({ unit: fc.constantFrom(...UNITS), maxLength: 6 });
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary' }), near), fc.oneof(fc.string({ unit: 'binary' }), near), (a, b) => {
        expect(Math.sign(compareBytes(a, b))).toBe(Math.sign(byBytes(a, b)));
        expect(Math.sign(compareBytes(b, a))).toBe(Math.sign(byBytes(b, a)));
        expect(compareBytes(a, a)).toBe(0);
      }),
      { ...PARAMS, numRuns: RUNS * 20 },
    );
  });
});
