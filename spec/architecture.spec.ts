/**
 * The architecture as a test: no import cycles between modules, and dependencies only point the
 * way docs/architecture.md draws them (model → layers → formats/transports → build → CLI).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const LIB = resolve(__dirname, '..', 'lib');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

function resolveImport(from: string, spec: string): string | undefined {
  if (!spec.startsWith('.')) return undefined;
  const base = resolve(dirname(from), spec);
  for (const c of [base + '.ts', join(base, 'index.ts')]) {
    try {
      if (statSync(c).isFile()) return c;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/** Runtime imports only (`import type` and `export type` do not load modules). */
function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  const re = /^(?:import|export)\s+(type\s+)?(?:[^'"]*?\s+from\s+)?['"]([^'"]+)['"]/gm;
  for (const m of text.matchAll(re)) {
    if (m[1]) continue;
    const target = resolveImport(file, m[2]);
    if (target) out.push(target);
  }
  return out;
}

/** The module a file belongs to: `lib/x.ts` → `x`, `lib/x/y.ts` → `x`. */
function moduleOf(file: string): string {
  const rel = relative(LIB, file).replace(/\\/g, '/');
  return rel.includes('/') ? rel.split('/')[0] : rel.replace(/\.ts$/, '');
}

// Lower rank = lower layer. A module may import only modules of lower or equal rank.
const RANK: Record<string, number> = {
  errors: 0, path: 1, fs: 1, 'media-types': 1, util: 2, compress: 2, content: 3, entry: 4, kubefile: 4,
  rootfs: 5, layer: 6, tar: 7, image: 8, formats: 9, inspect: 10, compare: 10, reference: 9, sealer: 9,
  store: 10, registry: 11, transports: 12, cache: 13, build: 14, cli: 20, index: 30,
};

describe('architecture', () => {
  const all = files(LIB).filter((f) => !f.endsWith('.d.ts'));
  const graph = new Map(all.map((f) => [f, imports(f)]));

  test('every module has a rank', () => {
    expect([...new Set(all.map(moduleOf))].filter((m) => RANK[m] === undefined)).toEqual([]);
  });

  test('dependencies point one way', () => {
    const violations: string[] = [];
    for (const [file, deps] of graph) {
      const from = moduleOf(file);
      for (const dep of deps) {
        const to = moduleOf(dep);
        if (to !== from && RANK[to] > RANK[from]) violations.push(`${relative(LIB, file)} -> ${relative(LIB, dep)}`);
      }
    }
    expect(violations).toEqual([]);
  });

  test('no import cycles between modules', () => {
    const edges = new Map<string, Set<string>>();
    for (const [file, deps] of graph) {
      const from = moduleOf(file);
      for (const dep of deps) {
        const to = moduleOf(dep);
        if (to !== from) (edges.get(from) ?? edges.set(from, new Set()).get(from)!).add(to);
      }
    }
    const cycles: string[] = [];
    const state = new Map<string, 'visiting' | 'done'>();
    const visit = (m: string, stack: string[]) => {
      if (state.get(m) === 'done') return;
      if (state.get(m) === 'visiting') {
        cycles.push([...stack.slice(stack.indexOf(m)), m].join(' -> '));
        return;
      }
      state.set(m, 'visiting');
      for (const n of edges.get(m) ?? []) visit(n, [...stack, m]);
      state.set(m, 'done');
    };
    for (const m of edges.keys()) visit(m, []);
    expect(cycles).toEqual([]);
  });
});
