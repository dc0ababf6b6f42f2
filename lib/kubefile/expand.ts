/**
 * Word splitting and variable expansion with buildkit's shell-lexer rules. The parser keeps
 * arguments as written; the build interpreter expands them here against ARG/--build-arg/ENV
 * values (and `ARCH` for COPY sources).
 */
import { KubefileSyntaxError } from '../errors';
import type { EscapeChar } from './types';

export type VariableLookup = (name: string) => string | undefined;

export interface ExpandOptions {
  /** The Kubefile's escape character (`Kubefile.escape`); default `\`. */
  escape?: EscapeChar;
  /**
   * Whether `'` and `"` quote (and are removed). Default true, as buildkit does for shell-form
   * words; pass false to treat them as ordinary characters.
   */
  quotes?: boolean;
  /** Where the word sits in the Kubefile, so an expansion error points at the right place. */
  at?: { file?: string; line: number; column: number };
}

export interface WordSpan {
  /** The word as written: quotes and escape characters kept. */
  text: string;
  start: number;
  end: number;
}

export type WordScan = WordSpan | { unterminated: '"' | "'"; start: number; quoteAt: number };

const isSpace = (ch: string): boolean => /\s/.test(ch);

/**
 * Reads one word starting at or after `from`, the way buildkit's `parseWords` does: blanks
 * separate words, quotes group, the escape character protects the next character (but not
 * inside single quotes). Returns undefined when only blanks remain.
 */
export function scanWord(text: string, from: number, escape: EscapeChar = '\\'): WordScan | undefined {
  let pos = from;
  while (pos < text.length && isSpace(text[pos])) pos++;
  if (pos >= text.length) return undefined;
  const start = pos;
  let quote: '"' | "'" | undefined;
  let quoteAt = -1;
  while (pos < text.length) {
    const ch = text[pos];
    if (quote === undefined) {
      if (isSpace(ch)) break;
      if (ch === escape) {
        pos += 2;
        continue;
      }
      if (ch === '"' || ch === "'") {
        quote = ch;
        quoteAt = pos;
      }
      pos++;
      continue;
    }
    if (ch === escape && quote === '"') {
      pos += 2;
      continue;
    }
    if (ch === quote) quote = undefined;
    pos++;
  }
  if (quote !== undefined) return { unterminated: quote, start, quoteAt };
  const end = Math.min(pos, text.length);
  return { text: text.slice(start, end), start, end };
}

/** Splits shell-form arguments into words, keeping quotes; throws on an unterminated quote. */
export function splitWords(text: string, options: Pick<ExpandOptions, 'escape' | 'at'> = {}): string[] {
  const words: string[] = [];
  let pos = 0;
  for (;;) {
    const word = scanWord(text, pos, options.escape);
    if (word === undefined) return words;
    if ('unterminated' in word) throw unterminatedQuote(word.unterminated, word.quoteAt, options.at);
    words.push(word.text);
    pos = word.end;
  }
}

/**
 * Splits `KEY=VALUE` at its first `=` that is not escaped. When that `=` sits inside quotes
 * (`"KEY=a b"`), the quote is closed before it and reopened after it, so both halves stay
 * balanced and expand to what the author meant (`KEY`, `a b`). Undefined when there is no `=`.
 */
export function splitAssignment(word: string, escape: EscapeChar = '\\'): { key: string; value: string } | undefined {
  let quote: string | undefined;
  for (let i = 0; i < word.length; i++) {
    const c = word[i];
    if (c === escape && quote !== "'") {
      i++;
      continue;
    }
    if (quote !== undefined) {
      if (c === quote) quote = undefined;
      else if (c === '=') return { key: word.slice(0, i) + quote, value: quote + word.slice(i + 1) };
    } else if (c === '"' || c === "'") {
      quote = c;
    } else if (c === '=') {
      return { key: word.slice(0, i), value: word.slice(i + 1) };
    }
  }
  return undefined;
}

function unterminatedQuote(quote: string, offset: number, at: ExpandOptions['at']): KubefileSyntaxError {
  return new KubefileSyntaxError({
    file: at?.file,
    line: at?.line ?? 1,
    column: (at?.column ?? 1) + offset,
    reason: `unterminated ${quote === '"' ? 'double' : 'single'} quote`,
    expected: `a closing ${quote}`,
  });
}

/** Shell special parameters buildkit recognises after `$`. */
const SPECIAL_PARAMETERS = new Set(['@', '*', '#', '?', '-', '$', '!', '0']);
const NAME_CHAR = /[\p{L}\p{Nd}_]/u;
const DIGIT = /\p{Nd}/u;

/**
 * Expands one word: `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:+alt}`,
 * `${VAR+alt}`, `${VAR:?message}`, `${VAR?message}`; removes quotes (no expansion inside single
 * quotes; inside double quotes only `"`, `$` and the escape character can be escaped) and escape
 * characters. Unset variables expand to the empty string.
 */
export function expandWord(word: string, vars: VariableLookup, options: ExpandOptions = {}): string {
  return new WordExpander(word, vars, options).expand();
}

/**
 * One word's expansion as a loop over an explicit stack of open constructs (the word itself,
 * `"…"`, `${NAME:-…}`), so nesting as deep as the word is long needs no deeper call stack.
 */
type Frame =
  | { kind: 'word'; out: string }
  | { kind: 'double'; out: string; open: number }
  | { kind: 'brace'; out: string; dollarAt: number; name: string; value: string | undefined; colon: boolean; modifier: '-' | '+' | '?' };

class WordExpander {
  private pos = 0;
  private readonly escape: EscapeChar;
  private readonly quotes: boolean;
  private readonly stack: Frame[] = [{ kind: 'word', out: '' }];

  constructor(
    private readonly text: string,
    private readonly vars: VariableLookup,
    private readonly options: ExpandOptions,
  ) {
    this.escape = options.escape ?? '\\';
    this.quotes = options.quotes ?? true;
  }

  private fail(offset: number, reason: string, expected: string): never {
    const at = this.options.at;
    throw new KubefileSyntaxError({
      file: at?.file,
      line: at?.line ?? 1,
      column: (at?.column ?? 1) + offset,
      reason,
      expected,
    });
  }

  private get top(): Frame {
    return this.stack[this.stack.length - 1];
  }

  expand(): string {
    const { text } = this;
    while (this.pos < text.length) {
      const frame = this.top;
      if (frame.kind === 'double') this.stepDouble(frame);
      else this.stepPlain(frame);
    }
    const frame = this.top;
    if (frame.kind === 'double') throw unterminatedQuote('"', frame.open, this.options.at);
    if (frame.kind === 'brace') this.fail(frame.dollarAt, `missing } in ${text.slice(frame.dollarAt)}`, 'a closing }');
    return frame.out;
  }

  /** One step in the word or in a `${…}` default: escapes, quotes, `$`, and the closing `}`. */
  private stepPlain(frame: Frame): void {
    const { text } = this;
    const ch = text[this.pos];
    if (frame.kind === 'brace' && ch === '}') {
      this.pos++;
      this.stack.pop();
      this.top.out += this.resolveBrace(frame);
      return;
    }
    if (ch === this.escape) {
      // The escape character makes the next one literal; a trailing one vanishes.
      this.pos++;
      if (this.pos < text.length) frame.out += text[this.pos++];
      return;
    }
    if (this.quotes && ch === "'") {
      const open = this.pos;
      const close = text.indexOf("'", open + 1);
      if (close < 0) throw unterminatedQuote("'", open, this.options.at);
      this.pos = close + 1;
      frame.out += text.slice(open + 1, close);
      return;
    }
    if (this.quotes && ch === '"') {
      this.stack.push({ kind: 'double', out: '', open: this.pos++ });
      return;
    }
    if (ch === '$') {
      this.dollar(frame);
      return;
    }
    frame.out += ch;
    this.pos++;
  }

  /** One step inside double quotes: only `"`, `$` and the escape character are special. */
  private stepDouble(frame: Extract<Frame, { kind: 'double' }>): void {
    const { text } = this;
    const ch = text[this.pos];
    if (ch === '"') {
      this.pos++;
      this.stack.pop();
      this.top.out += frame.out;
      return;
    }
    if (ch === '$') {
      this.dollar(frame);
      return;
    }
    this.pos++;
    if (ch === this.escape) {
      const next = text[this.pos];
      if (next === '"' || next === '$' || next === this.escape) {
        frame.out += next;
        this.pos++;
        return;
      }
    }
    // Any other escaped character keeps its escape, as in sh.
    frame.out += ch;
  }

  private name(): string {
    const { text } = this;
    const first = text[this.pos];
    if (first === undefined) return '';
    if (DIGIT.test(first)) {
      const start = this.pos;
      while (this.pos < text.length && DIGIT.test(text[this.pos])) this.pos++;
      return text.slice(start, this.pos);
    }
    if (SPECIAL_PARAMETERS.has(first)) {
      this.pos++;
      return first;
    }
    const start = this.pos;
    while (this.pos < text.length && NAME_CHAR.test(text[this.pos])) this.pos++;
    return text.slice(start, this.pos);
  }

  /** `$NAME`, `${NAME}` (appended to `frame`), or the start of `${NAME<modifier>…}` (a new frame). */
  private dollar(frame: Frame): void {
    const { text } = this;
    const dollarAt = this.pos++;
    if (text[this.pos] !== '{') {
      const name = this.name();
      frame.out += name === '' ? '$' : (this.vars(name) ?? '');
      return;
    }
    this.pos++;
    const name = this.name();
    if (name === '') this.fail(dollarAt, `bad substitution ${text.slice(dollarAt)}: no variable name`, 'a variable name after ${');
    const value = this.vars(name);
    let colon = false;
    let modifier = text[this.pos];
    if (modifier === '}') {
      this.pos++;
      frame.out += value ?? '';
      return;
    }
    if (modifier === ':') {
      colon = true;
      modifier = text[++this.pos];
    }
    if (modifier !== '-' && modifier !== '+' && modifier !== '?') {
      if (modifier === undefined) this.fail(dollarAt, `missing } in ${text.slice(dollarAt)}`, 'a closing }');
      this.fail(
        this.pos,
        `unsupported modifier ${colon ? ':' : ''}${modifier} in \${${name}…}`,
        '}, :-, -, :+, +, :? or ?',
      );
    }
    this.pos++;
    this.stack.push({ kind: 'brace', out: '', dollarAt, name, value, colon, modifier });
  }

  /** What a closed `${NAME<modifier>word}` expands to. */
  private resolveBrace(frame: Extract<Frame, { kind: 'brace' }>): string {
    const { name, value, colon, modifier, out: word } = frame;
    const empty = colon ? value === undefined || value === '' : value === undefined;
    switch (modifier) {
      case '-':
        return empty ? word : (value as string);
      case '+':
        return empty ? '' : word;
      default:
        if (empty) {
          this.fail(frame.dollarAt, `${name}: ${word || (colon ? 'is not set or empty' : 'is not set')}`, `${name} to be set`);
        }
        return value as string;
    }
  }
}
