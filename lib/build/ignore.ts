/**
 * `.kubefileignore` / `.dockerignore`: which context paths COPY and ADD may not see.
 *
 * The rules are Docker's (moby/patternmatcher), matched with minimatch configured like Go's
 * `filepath.Match` plus `**`:
 * - one pattern per line; blank lines and lines starting with `#` are skipped; blanks around a
 *   pattern are trimmed;
 * - a pattern is cleaned like a path (`./a/../b` → `b`, a leading `/` dropped);
 * - `!pattern` re-includes what an earlier pattern excluded; the last matching line wins;
 * - a pattern excludes a path when it matches the path *or any of its parent directories*
 *   (`node_modules` excludes `node_modules/x/y`);
 * - `*` and `?` never match `/`; `**` matches any number of directories; `[a-z]` classes and
 *   `\` escapes work; braces and extglobs do not (Go has neither).
 */
import { posix } from 'node:path';
import { Minimatch } from 'minimatch';
import { CloudRootfsError } from '../errors';

/** The ignore files looked for at the context root, first found wins. */
export const IGNORE_FILES = ['.kubefileignore', '.dockerignore'] as const;

interface Rule {
  text: string;
  exclude: boolean;
  matcher: Minimatch;
}

const MATCH_OPTIONS = { dot: true, nobrace: true, noext: true, nocomment: true, nonegate: true, optimizationLevel: 0 } as const;

export class IgnoreRules {
  private constructor(
    private readonly rules: readonly Rule[],
    /** Where the rules came from (for messages); undefined when built from a list. */
    readonly source?: string,
  ) {}

  static empty(): IgnoreRules {
    return new IgnoreRules([]);
  }

  /** Parse the text of an ignore file. */
  static parse(text: string, source?: string): IgnoreRules {
    const rules: Rule[] = [];
    const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
    lines.forEach((line, i) => {
      let pattern = line.trim();
      if (pattern === '' || pattern.startsWith('#')) return;
      let exclude = true;
      if (pattern.startsWith('!')) {
        exclude = false;
        pattern = pattern.slice(1).trim();
      }
      pattern = posix.normalize(pattern);
      if (pattern.length > 1 && pattern.startsWith('/')) pattern = pattern.slice(1);
      if (pattern.endsWith('/') && pattern.length > 1) pattern = pattern.slice(0, -1);
      if (pattern === '' || pattern === '.') return;
      if (pattern.startsWith('../') || pattern === '..') {
        throw new CloudRootfsError('USAGE', `${source ?? 'ignore file'}:${i + 1}: pattern ${JSON.stringify(line.trim())} points outside the context`, {
          file: source,
          line: i + 1,
        });
      }
      rules.push({ text: line.trim(), exclude, matcher: new Minimatch(pattern, MATCH_OPTIONS) });
    });
    return new IgnoreRules(rules, source);
  }

  /** Rules from a list of patterns (the API's `ignore: [...]` option). */
  static of(patterns: readonly string[]): IgnoreRules {
    return IgnoreRules.parse(patterns.join('\n'));
  }

  get isEmpty(): boolean {
    return this.rules.length === 0;
  }

  /** True when some `!` rule exists: an excluded directory may then hold re-included paths. */
  get hasExceptions(): boolean {
    return this.rules.some((r) => !r.exclude);
  }

  /** The patterns, as written. */
  get patterns(): string[] {
    return this.rules.map((r) => r.text);
  }

  /** True when the context path `path` (relative, normalized) is excluded. */
  ignores(path: string): boolean {
    if (path === '' || this.rules.length === 0) return false;
    const parents: string[] = [];
    for (let i = path.indexOf('/'); i >= 0; i = path.indexOf('/', i + 1)) parents.push(path.slice(0, i));
    let excluded = false;
    for (const rule of this.rules) {
      if (excluded === rule.exclude) continue; // this rule cannot change the answer
      if (rule.matcher.match(path) || parents.some((p) => rule.matcher.match(p))) excluded = rule.exclude;
    }
    return excluded;
  }

  /**
   * True when nothing below the excluded directory `dir` can be re-included, so a walker may skip
   * it without reading it. Conservative: any `!` rule keeps the walker going.
   */
  prunes(dir: string): boolean {
    return this.ignores(dir) && !this.hasExceptions;
  }
}
