/**
 * A preview of what sealer does to `*.tmpl` files at deploy time (docs/reference/sealer.md#rendering): every template
 * under `etc/`, `charts/`, `manifests/` (and, since v0.10, `application/apps/`) is rendered with
 * Go's text/template against a *flat* map of values, and the output is written next to it without
 * the `.tmpl` suffix.
 *
 * The subset understood here is what CloudRootfs templates use:
 * - text, `{{ pipeline }}`, trim markers `{{-` / `-}}`, comments `{{/* … *\/}}`;
 * - `.Key` (and `.A.B` for nested maps), `.`, string (`"…"`, `` `…` ``), number, `true`/`false`/`nil`;
 * - pipelines `a | f`, parentheses, `if`/`else if`/`else`/`end`;
 * - functions `b64enc`, `b64dec` (sealer's), and Go's `or`, `and`, `not`, `eq`, `ne`, `print`, `len`.
 * A missing key prints `<no value>`, as Go's does for a map. `range`, `with`, `define`, `template`,
 * `block` and other functions are TemplateErrors with `details.unsupported` set, so a linter can
 * tell "cannot preview" from "broken".
 */
import { TemplateError } from '../errors';
import { fileEntry } from '../entry';
import { Rootfs } from '../rootfs/rootfs';

export type TemplateValues = Readonly<Record<string, unknown>>;

/** Where sealer renders templates. */
export const TEMPLATE_DIRS = ['etc', 'charts', 'manifests', 'application/apps'] as const;
export const TEMPLATE_SUFFIX = '.tmpl';

// --- lexing -----------------------------------------------------------------------------------

type Token =
  | { t: 'field'; path: string[]; pos: number }
  | { t: 'dot'; pos: number }
  | { t: 'string'; value: string; pos: number }
  | { t: 'number'; value: number; pos: number }
  | { t: 'ident'; name: string; pos: number }
  | { t: 'pipe'; pos: number }
  | { t: 'lparen'; pos: number }
  | { t: 'rparen'; pos: number };

interface Where {
  file?: string;
  text: string;
}

function lineCol(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let last = -1;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text[i] === '\n') {
      line++;
      last = i;
    }
  }
  return { line, column: offset - last };
}

function fail(where: Where, offset: number, message: string, extra: Record<string, unknown> = {}): never {
  const { line, column } = lineCol(where.text, offset);
  throw new TemplateError(`${where.file ?? 'template'}:${line}:${column}: ${message}`, { file: where.file, line, column, ...extra });
}

function lexAction(src: string, base: number, where: Where): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i];
    const pos = base + i;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '|') {
      out.push({ t: 'pipe', pos });
      i++;
    } else if (c === '(') {
      out.push({ t: 'lparen', pos });
      i++;
    } else if (c === ')') {
      out.push({ t: 'rparen', pos });
      i++;
    } else if (c === '"') {
      let j = i + 1;
      while (j < src.length && src[j] !== '"') j += src[j] === '\\' ? 2 : 1;
      if (j >= src.length) fail(where, pos, 'unterminated quoted string');
      try {
        out.push({ t: 'string', value: JSON.parse(src.slice(i, j + 1)) as string, pos });
      } catch {
        fail(where, pos, `bad string ${src.slice(i, j + 1)}`);
      }
      i = j + 1;
    } else if (c === '`') {
      const j = src.indexOf('`', i + 1);
      if (j < 0) fail(where, pos, 'unterminated raw string');
      out.push({ t: 'string', value: src.slice(i + 1, j), pos });
      i = j + 1;
    } else if (c === '.') {
      const m = /^(\.[A-Za-z_][A-Za-z0-9_]*)+/.exec(src.slice(i));
      if (m) {
        out.push({ t: 'field', path: m[0].slice(1).split('.'), pos });
        i += m[0].length;
      } else {
        out.push({ t: 'dot', pos });
        i++;
      }
    } else if (/[0-9-]/.test(c)) {
      const m = /^-?\d+(\.\d+)?/.exec(src.slice(i));
      if (!m) fail(where, pos, `unexpected ${JSON.stringify(c)}`);
      out.push({ t: 'number', value: Number(m[0]), pos });
      i += m[0].length;
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(i))!;
      out.push({ t: 'ident', name: m[0], pos });
      i += m[0].length;
    } else if (c === '$') {
      fail(where, pos, 'template variables ($x) are not supported by the preview renderer', { unsupported: true });
    } else {
      fail(where, pos, `unexpected ${JSON.stringify(c)} in action`);
    }
  }
  return out;
}

// --- parsing ----------------------------------------------------------------------------------

type Expr =
  | { k: 'field'; path: string[]; pos: number }
  | { k: 'dot'; pos: number }
  | { k: 'literal'; value: unknown; pos: number }
  | { k: 'call'; name: string; args: Expr[]; pos: number };

type Node =
  | { k: 'text'; text: string }
  | { k: 'output'; expr: Expr; pos: number }
  | { k: 'if'; branches: { cond: Expr; body: Node[] }[]; otherwise: Node[]; pos: number };

const FUNCTIONS = new Set(['b64enc', 'b64dec', 'or', 'and', 'not', 'eq', 'ne', 'print', 'len']);
const UNSUPPORTED_KEYWORDS = new Set(['range', 'with', 'define', 'template', 'block', 'break', 'continue']);

class ExprParser {
  private i = 0;
  constructor(
    private readonly tokens: Token[],
    private readonly where: Where,
    private readonly end: number,
  ) {}

  parsePipeline(): Expr {
    let expr = this.parseCommand();
    while (this.peek()?.t === 'pipe') {
      const bar = this.tokens[this.i++];
      const next = this.parseCommand();
      if (next.k !== 'call') fail(this.where, bar.pos, 'only a function can follow "|"');
      expr = { ...next, args: [...next.args, expr] };
    }
    return expr;
  }

  done(): void {
    const t = this.peek();
    if (t) fail(this.where, t.pos, `unexpected ${t.t === 'rparen' ? '")"' : 'token'} in action`);
  }

  private peek(): Token | undefined {
    return this.tokens[this.i];
  }

  private parseCommand(): Expr {
    const first = this.peek();
    if (!first || first.t === 'pipe' || first.t === 'rparen') fail(this.where, first?.pos ?? this.end, 'missing value in action');
    if (first.t === 'ident' && FUNCTIONS.has(first.name)) {
      this.i++;
      const args: Expr[] = [];
      for (let t = this.peek(); t && t.t !== 'pipe' && t.t !== 'rparen'; t = this.peek()) args.push(this.parseOperand());
      return { k: 'call', name: first.name, args, pos: first.pos };
    }
    const operand = this.parseOperand();
    const extra = this.peek();
    if (extra && extra.t !== 'pipe' && extra.t !== 'rparen') fail(this.where, extra.pos, `can't give argument to non-function`);
    return operand;
  }

  private parseOperand(): Expr {
    const t = this.tokens[this.i++];
    if (!t) fail(this.where, this.end, 'missing value');
    switch (t.t) {
      case 'field':
        return { k: 'field', path: t.path, pos: t.pos };
      case 'dot':
        return { k: 'dot', pos: t.pos };
      case 'string':
      case 'number':
        return { k: 'literal', value: t.value, pos: t.pos };
      case 'lparen': {
        const inner = this.parsePipeline();
        const close = this.tokens[this.i++];
        if (close?.t !== 'rparen') fail(this.where, close?.pos ?? this.end, 'unclosed "("');
        return inner;
      }
      case 'ident':
        if (t.name === 'true' || t.name === 'false') return { k: 'literal', value: t.name === 'true', pos: t.pos };
        if (t.name === 'nil') return { k: 'literal', value: undefined, pos: t.pos };
        if (FUNCTIONS.has(t.name)) return { k: 'call', name: t.name, args: [], pos: t.pos };
        return fail(this.where, t.pos, `function ${JSON.stringify(t.name)} not defined (the preview renderer knows ${[...FUNCTIONS].join(', ')})`, {
          unsupported: true,
        });
      default:
        return fail(this.where, t.pos, `unexpected "${t.t === 'pipe' ? '|' : ')'}"`);
    }
  }
}

interface Action {
  body: string;
  start: number;
  end: number;
}

/** Split the text into text runs and actions, applying trim markers and dropping comments. */
function scan(text: string, where: Where): (string | Action)[] {
  const parts: (string | Action)[] = [];
  let pos = 0;
  let trimNext = false;
  for (;;) {
    const open = text.indexOf('{{', pos);
    let run = text.slice(pos, open < 0 ? text.length : open);
    if (trimNext) run = run.replace(/^\s+/, '');
    if (open < 0) {
      parts.push(run);
      return parts;
    }
    let bodyStart = open + 2;
    if (text.startsWith('- ', bodyStart) || text.startsWith('-\t', bodyStart) || text.startsWith('-\n', bodyStart)) {
      run = run.replace(/\s+$/, '');
      bodyStart += 1;
    }
    parts.push(run);
    const comment = /^\s*\/\*/.exec(text.slice(bodyStart, bodyStart + 8));
    if (comment) {
      // A comment runs to `*/`, then the action must close.
      const close = text.indexOf('*/', bodyStart + comment[0].length);
      if (close < 0) fail(where, open, 'unclosed comment');
      const m = /^(\s-)?\}\}/.exec(text.slice(close + 2));
      if (!m) fail(where, close, 'comment ends before closing delimiter');
      trimNext = m[1] !== undefined;
      pos = close + 2 + m[0].length;
      continue;
    }
    // Find the closing `}}` outside quoted strings.
    let i = bodyStart;
    let quote: string | undefined;
    for (; i < text.length; i++) {
      const c = text[i];
      if (quote) {
        if (c === '\\' && quote === '"') i++;
        else if (c === quote) quote = undefined;
      } else if (c === '"' || c === '`') quote = c;
      else if (c === '}' && text[i + 1] === '}') break;
    }
    if (i >= text.length) fail(where, open, 'unclosed action (no "}}")');
    let bodyEnd = i;
    trimNext = false;
    if (bodyEnd - 2 >= bodyStart && text[bodyEnd - 1] === '-' && /\s/.test(text[bodyEnd - 2])) {
      bodyEnd -= 1;
      trimNext = true;
    }
    parts.push({ body: text.slice(bodyStart, bodyEnd), start: bodyStart, end: bodyEnd });
    pos = i + 2;
  }
}

function parseTemplate(text: string, where: Where): Node[] {
  const parts = scan(text, where);
  let index = 0;

  const parseExpr = (a: Action, from: number): Expr => {
    const src = a.body.slice(from);
    const tokens = lexAction(src, a.start + from, where);
    const p = new ExprParser(tokens, where, a.end);
    const expr = p.parsePipeline();
    p.done();
    return expr;
  };

  const keywordOf = (a: Action): string | undefined => /^\s*([a-z]+)\b/.exec(a.body)?.[1];

  /** Parse nodes until `end`/`else` (returned as the stopper) or the end of input. */
  const parseList = (inside: boolean): { nodes: Node[]; stopper?: { word: 'end' | 'else'; action: Action } } => {
    const nodes: Node[] = [];
    while (index < parts.length) {
      const part = parts[index++];
      if (typeof part === 'string') {
        if (part !== '') nodes.push({ k: 'text', text: part });
        continue;
      }
      const word = keywordOf(part);
      if (word === 'end' || word === 'else') {
        if (!inside) fail(where, part.start, `unexpected {{${word}}}`);
        return { nodes, stopper: { word, action: part } };
      }
      if (word === 'if') {
        nodes.push(parseIf(part));
        continue;
      }
      if (word && UNSUPPORTED_KEYWORDS.has(word)) {
        fail(where, part.start, `{{${word}}} is not supported by the preview renderer`, { unsupported: true });
      }
      const body = part.body.trim();
      if (body === '') fail(where, part.start, 'missing value for command');
      nodes.push({ k: 'output', expr: parseExpr(part, 0), pos: part.start });
    }
    return { nodes };
  };

  const parseIf = (first: Action): Node => {
    const branches: { cond: Expr; body: Node[] }[] = [];
    let cond = parseExpr(first, first.body.indexOf('if') + 2);
    for (;;) {
      const { nodes, stopper } = parseList(true);
      if (!stopper) fail(where, first.start, 'unexpected EOF: {{if}} has no {{end}}');
      branches.push({ cond, body: nodes });
      if (stopper.word === 'end') return { k: 'if', branches, otherwise: [], pos: first.start };
      const rest = stopper.action.body.slice(stopper.action.body.indexOf('else') + 4);
      if (/^\s*if\b/.test(rest)) {
        const a = stopper.action;
        cond = parseExpr(a, a.body.indexOf('else') + 4 + rest.indexOf('if') + 2);
        continue;
      }
      if (rest.trim() !== '') fail(where, stopper.action.start, 'unexpected words after {{else}}');
      const tail = parseList(true);
      if (!tail.stopper || tail.stopper.word !== 'end') fail(where, first.start, 'expected {{end}} after {{else}}');
      return { k: 'if', branches, otherwise: tail.nodes, pos: first.start };
    }
  };

  const { nodes } = parseList(false);
  return nodes;
}

// --- evaluation -------------------------------------------------------------------------------

const NO_VALUE = '<no value>';

function truthy(v: unknown): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object') return Object.keys(v as object).length > 0;
  return true;
}

/** How Go's fmt prints a value with %v. */
function show(v: unknown): string {
  if (v === undefined || v === null) return NO_VALUE;
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) return `[${v.map(show).join(' ')}]`;
  if (typeof v === 'object') {
    const keys = Object.keys(v as object).sort();
    return `map[${keys.map((k) => `${k}:${show((v as Record<string, unknown>)[k])}`).join(' ')}]`;
  }
  return String(v);
}

function evaluate(expr: Expr, data: TemplateValues, where: Where): unknown {
  switch (expr.k) {
    case 'literal':
      return expr.value;
    case 'dot':
      return data;
    case 'field': {
      let v: unknown = data;
      for (let i = 0; i < expr.path.length; i++) {
        if (v === undefined || v === null) fail(where, expr.pos, `nil pointer evaluating .${expr.path.slice(0, i + 1).join('.')}`);
        if (typeof v !== 'object' || Array.isArray(v)) fail(where, expr.pos, `can't evaluate field ${expr.path[i]} in a ${typeof v}`);
        v = Object.prototype.hasOwnProperty.call(v, expr.path[i]) ? (v as Record<string, unknown>)[expr.path[i]] : undefined;
      }
      return v;
    }
    case 'call':
      return callFunction(expr, data, where);
  }
}

function stringArg(name: string, v: unknown, expr: Expr, where: Where): string {
  if (typeof v !== 'string') fail(where, expr.pos, `error calling ${name}: expected a string, got ${v === undefined || v === null ? 'nil' : typeof v}`);
  return v;
}

function callFunction(expr: Extract<Expr, { k: 'call' }>, data: TemplateValues, where: Where): unknown {
  const arity = (n: number) => {
    if (expr.args.length !== n) fail(where, expr.pos, `wrong number of args for ${expr.name}: want ${n} got ${expr.args.length}`);
  };
  const arg = (i: number) => evaluate(expr.args[i], data, where);
  switch (expr.name) {
    case 'b64enc':
      arity(1);
      return Buffer.from(stringArg('b64enc', arg(0), expr, where), 'utf8').toString('base64');
    case 'b64dec': {
      arity(1);
      const s = stringArg('b64dec', arg(0), expr, where);
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 !== 0) fail(where, expr.pos, `error calling b64dec: illegal base64 data`);
      return Buffer.from(s, 'base64').toString('utf8');
    }
    case 'or':
    case 'and': {
      if (expr.args.length === 0) fail(where, expr.pos, `wrong number of args for ${expr.name}: want at least 1 got 0`);
      let v: unknown;
      for (let i = 0; i < expr.args.length; i++) {
        v = arg(i);
        if (expr.name === 'or' ? truthy(v) : !truthy(v)) return v;
      }
      return v;
    }
    case 'not':
      arity(1);
      return !truthy(arg(0));
    case 'eq':
    case 'ne': {
      if (expr.args.length < 2) fail(where, expr.pos, `wrong number of args for ${expr.name}: want at least 2`);
      const first = arg(0);
      const equal = expr.args.slice(1).some((_, i) => arg(i + 1) === first);
      return expr.name === 'eq' ? equal : !equal;
    }
    case 'print': {
      // Go's fmt.Sprint: a space between operands when neither is a string.
      const vals = expr.args.map((_, i) => arg(i));
      let out = '';
      vals.forEach((v, i) => {
        if (i > 0 && typeof v !== 'string' && typeof vals[i - 1] !== 'string') out += ' ';
        out += show(v);
      });
      return out;
    }
    case 'len': {
      arity(1);
      const v = arg(0);
      if (typeof v === 'string') return Buffer.byteLength(v);
      if (Array.isArray(v)) return v.length;
      if (v && typeof v === 'object') return Object.keys(v).length;
      return fail(where, expr.pos, `error calling len: len of ${v === undefined ? 'nil' : typeof v}`);
    }
    default:
      return fail(where, expr.pos, `function ${JSON.stringify(expr.name)} not defined`, { unsupported: true });
  }
}

function execute(nodes: Node[], data: TemplateValues, where: Where): string {
  let out = '';
  for (const node of nodes) {
    if (node.k === 'text') out += node.text;
    else if (node.k === 'output') out += show(evaluate(node.expr, data, where));
    else {
      const hit = node.branches.find((b) => truthy(evaluate(b.cond, data, where)));
      out += execute(hit ? hit.body : node.otherwise, data, where);
    }
  }
  return out;
}

/** Render one template text. `file` names it in errors (`etc/kubeadm.yml.tmpl:3:14: …`). */
export function renderTemplate(text: string, values: TemplateValues, file?: string): string {
  const where = { file, text };
  return execute(parseTemplate(text, where), values, where);
}

/** Parse only (syntax check): throws the TemplateError rendering would. */
export function checkTemplate(text: string, file?: string): void {
  parseTemplate(text, { file, text });
}

export interface RenderedFile {
  template: string;
  output: string;
}

export interface RenderResult {
  /** The rootfs with every output written next to its template (the templates stay). */
  rootfs: Rootfs;
  rendered: RenderedFile[];
}

export interface RenderOptions {
  /** Directories searched (default: sealer's, {@link TEMPLATE_DIRS}). */
  dirs?: readonly string[];
}

/** Every `*.tmpl` file under the template directories, in archive order. */
export function findTemplates(rootfs: Rootfs, dirs: readonly string[] = TEMPLATE_DIRS): string[] {
  const out: string[] = [];
  for (const dir of dirs) {
    if (rootfs.get(dir)?.type !== 'directory') continue;
    for (const { path, entry } of rootfs.walk(dir)) {
      if (entry.type === 'file' && path.endsWith(TEMPLATE_SUFFIX) && path.length > TEMPLATE_SUFFIX.length) out.push(path);
    }
  }
  return out;
}

/**
 * Render the rootfs's templates as sealer would at deploy time with `values` (its cluster env:
 * `spec.env` plus built-ins such as `RegistryURL`). Each output keeps its template's mode and
 * owner. The first failing template throws a TemplateError naming the file, line and column.
 */
export async function render(rootfs: Rootfs, values: TemplateValues, options: RenderOptions = {}): Promise<RenderResult> {
  let out = rootfs;
  const rendered: RenderedFile[] = [];
  for (const template of findTemplates(rootfs, options.dirs)) {
    const entry = rootfs.resolveFile(template);
    const text = renderTemplate(await rootfs.readText(template), values, template);
    const output = template.slice(0, -TEMPLATE_SUFFIX.length);
    out = out.with(output, fileEntry(text, { mode: entry.mode, uid: entry.uid, gid: entry.gid, mtime: entry.mtime }));
    rendered.push({ template, output });
  }
  return { rootfs: out, rendered };
}
