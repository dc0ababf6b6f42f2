/**
 * Kubefile text → typed instructions with source positions. BuildKit-style lexing (see scan.ts)
 * with sealer's instruction set. It only checks syntax and the ordering rules sealer enforces
 * while reading a Kubefile; what an instruction does to an image is the interpreter's business.
 */
import { KubefileSyntaxError } from '../errors';
import { scanWord, splitAssignment, type WordSpan } from './expand';
import { parseJsonStringArray } from './json-array';
import { scanKubefile, type LogicalLine } from './scan';
import { appNameProblem, sealerCmdText, sealerEnvPairs, sealerPairs, splitSealerWords, type SealerWord } from './sealer-words';
import {
  INSTRUCTION_KINDS,
  type AppSource,
  type ArgDeclaration,
  type EscapeChar,
  type Instruction,
  type InstructionBase,
  type InstructionKind,
  type KeyValue,
  type Kubefile,
  type ParseOptions,
  type ParseWarning,
  type ParseWarningCode,
} from './types';

export function parseKubefile(text: string, options: ParseOptions = {}): Kubefile {
  const { file } = options;
  const scanned = scanKubefile(text, file);
  const warnings: ParseWarning[] = [...scanned.warnings];
  const order = new OrderRules(file, warnings);
  const instructions: Instruction[] = [];
  for (const line of scanned.lines) {
    const instruction = parseInstruction(new InstructionText(line, scanned.escape, file, warnings));
    order.check(instruction);
    instructions.push(instruction);
  }
  order.finish(instructions);
  warnings.sort((a, b) => a.line - b.line || a.column - b.column);
  return { instructions, escape: scanned.escape, directives: scanned.directives, warnings };
}

/** Instructions every Dockerfile user will try; named so the error can say why they fail. */
const DOCKERFILE_ONLY = new Set([
  'WORKDIR',
  'ENTRYPOINT',
  'USER',
  'EXPOSE',
  'VOLUME',
  'HEALTHCHECK',
  'ONBUILD',
  'SHELL',
  'STOPSIGNAL',
]);

const KNOWN = new Set<string>(INSTRUCTION_KINDS);

/** Flags each instruction accepts; `true` marks a repeatable one. */
const ALLOWED_FLAGS: Partial<Record<InstructionKind, Record<string, boolean>>> = {
  FROM: { platform: false },
  COPY: { from: false, chown: false, chmod: false },
  ADD: { from: false, chown: false, chmod: false, checksum: false },
  RUN: { mount: true, network: false, security: false },
};

/** `ADD --checksum=`: the digests BuildKit accepts, with their hex lengths. */
const CHECKSUM = /^(sha256:[0-9a-f]{64}|sha384:[0-9a-f]{96}|sha512:[0-9a-f]{128})$/;
const STAGE_NAME = /^[A-Za-z][A-Za-z0-9_.-]*$/;
const ARG_NAME = /^[^\s"'$=`\\]+$/;
const SEMVER_RANGE = /^[0-9A-Za-z.*^~<>=|,\s+-]+$/;

interface Flag {
  name: string;
  value: string;
  offset: number;
}

/** One logical line being read: keyword, flags, arguments, and helpers to report positions. */
class InstructionText {
  readonly text: string;
  readonly keyword: string;
  readonly keywordOffset: number;
  readonly keywordEnd: number;
  readonly flags: Flag[] = [];
  /** Offset of the first argument after the flags (or the end of the line). */
  argsOffset: number;

  constructor(
    readonly line: LogicalLine,
    readonly escape: EscapeChar,
    readonly file: string | undefined,
    private readonly warnings: ParseWarning[],
  ) {
    this.text = line.text.trimEnd();
    const match = /^\s*(\S+)/.exec(this.text) as RegExpExecArray; // scan.ts never yields blank lines
    this.keyword = match[1];
    this.keywordOffset = match.index + match[0].length - match[1].length;
    this.keywordEnd = this.keywordOffset + this.keyword.length;
    this.argsOffset = this.skipBlanks(this.keywordEnd);
  }

  get kind(): string {
    return this.keyword.toUpperCase();
  }

  /** Everything after the keyword and flags, as written. */
  get args(): string {
    return this.text.slice(this.argsOffset);
  }

  skipBlanks(from: number): number {
    let pos = from;
    while (pos < this.text.length && /\s/.test(this.text[pos])) pos++;
    return pos;
  }

  fail(offset: number, reason: string, expected: string): never {
    const { line, column } = this.line.position(offset);
    throw new KubefileSyntaxError({ file: this.file, line, column, reason, expected });
  }

  /** For complaints about the arguments as a whole: points just after the keyword. */
  failArgs(reason: string, expected: string): never {
    return this.fail(this.keywordEnd, reason, expected);
  }

  warn(offset: number, code: ParseWarningCode, message: string): void {
    const { line, column } = this.line.position(offset);
    this.warnings.push({ code, message, line, column, file: this.file });
  }

  base<K extends InstructionKind>(kind: K): InstructionBase<K> {
    return {
      kind,
      keyword: this.keyword,
      line: this.line.line,
      endLine: this.line.endLine,
      column: this.line.position(this.keywordOffset).column,
      raw: this.line.raw,
      original: this.text.slice(this.keywordOffset),
    };
  }

  /** Reads leading `--name=value` words, as buildkit does for every instruction. */
  readFlags(kind: InstructionKind): void {
    const allowed = ALLOWED_FLAGS[kind] ?? {};
    let pos = this.argsOffset;
    for (;;) {
      pos = this.skipBlanks(pos);
      if (!this.text.startsWith('--', pos)) break;
      const word = this.wordAt(pos);
      if (word === undefined) break;
      pos = word.end;
      if (word.text === '--') {
        pos = this.skipBlanks(pos);
        break;
      }
      const eq = word.text.indexOf('=');
      const name = eq < 0 ? word.text.slice(2) : word.text.slice(2, eq);
      const names = Object.keys(allowed);
      if (!(name in allowed)) {
        this.fail(
          word.start,
          names.length === 0
            ? `${kind} does not accept flags (found --${name})`
            : `${kind} does not accept --${name} (it accepts ${names.map((n) => `--${n}`).join(', ')})`,
          names.length === 0 ? `${kind} arguments` : names.map((n) => `--${n}=…`).join(' or '),
        );
      }
      const value = eq < 0 ? '' : word.text.slice(eq + 1);
      if (value === '') this.fail(word.start, `--${name} needs a value`, `--${name}=<value>`);
      if (!allowed[name] && this.flags.some((f) => f.name === name)) {
        this.fail(word.start, `--${name} is given more than once`, `a single --${name}`);
      }
      this.flags.push({ name, value, offset: word.start });
    }
    this.argsOffset = Math.min(pos, this.text.length);
  }

  flag(name: string): string | undefined {
    return this.flags.find((f) => f.name === name)?.value;
  }

  wordAt(from: number): WordSpan | undefined {
    const word = scanWord(this.text, from, this.escape);
    if (word !== undefined && 'unterminated' in word) {
      this.fail(
        word.quoteAt,
        `unterminated ${word.unterminated === '"' ? 'double' : 'single'} quote`,
        `a closing ${word.unterminated}`,
      );
    }
    return word;
  }

  /** The shell-form words from `from` on (default: the arguments). */
  words(from = this.argsOffset): WordSpan[] {
    const words: WordSpan[] = [];
    let pos = from;
    for (;;) {
      const word = this.wordAt(pos);
      if (word === undefined) return words;
      words.push(word);
      pos = word.end;
    }
  }

  /** Shell-form words, warning about a `#` that the author probably meant as a comment. */
  argumentWords(kind: string): WordSpan[] {
    const words = this.words();
    const hash = words.find((w) => w.text.startsWith('#'));
    if (hash) {
      this.warn(hash.start, 'INLINE_COMMENT', `"${hash.text}" is an argument to ${kind}: a comment must be on its own line`);
    }
    return words;
  }

  /**
   * JSON or shell form, buildkit's `parseMaybeJSONToList`: arguments starting with `["` or `[]`
   * must be a valid JSON array; anything else starting with `[` (a glob like `[a-c].yaml`) is
   * shell form.
   */
  jsonOrWords(kind: string): { form: 'json'; values: string[] } | { form: 'shell'; words: WordSpan[] } {
    const args = this.args;
    if (args.startsWith('[')) {
      const parsed = parseJsonStringArray(args);
      if (parsed.ok) return { form: 'json', values: parsed.values };
      if (parsed.notStrings || /^\[\s*["\]]/.test(args)) {
        this.fail(this.argsOffset + parsed.offset, `${kind} has a malformed JSON array: ${parsed.reason}`, parsed.expected);
      }
    }
    return { form: 'shell', words: this.argumentWords(kind) };
  }

  /**
   * sealer's own reading of APP, CNI, CSI, APPENV and LAUNCH arguments: a JSON array as above,
   * else the text split on blanks with quotes and escapes left in the words (sealer-words.ts).
   */
  sealerList(kind: string): { form: 'json' | 'shell'; words: SealerWord[] } {
    const args = this.args;
    if (args.startsWith('[')) {
      const parsed = parseJsonStringArray(args);
      if (parsed.ok) return { form: 'json', words: parsed.values.map((text) => ({ text, start: this.argsOffset })) };
      if (parsed.notStrings || /^\[\s*["\]]/.test(args)) {
        this.fail(this.argsOffset + parsed.offset, `${kind} has a malformed JSON array: ${parsed.reason}`, parsed.expected);
      }
    }
    const words = splitSealerWords(args, this.argsOffset);
    const hash = words.find((w) => w.text.startsWith('#'));
    if (hash) {
      this.warn(hash.start, 'INLINE_COMMENT', `"${hash.text}" is an argument to ${kind}: a comment must be on its own line`);
    }
    return { form: 'shell', words };
  }

  /** JSON form for RUN and CMD: malformed JSON falls back to shell form (sh has a `[` command). */
  jsonOrShell(kind: string): { form: 'json'; values: string[] } | { form: 'shell' } {
    const args = this.args;
    if (!args.startsWith('[')) return { form: 'shell' };
    const parsed = parseJsonStringArray(args);
    if (parsed.ok) return { form: 'json', values: parsed.values };
    if (parsed.notStrings) {
      this.fail(this.argsOffset + parsed.offset, `${kind} has a malformed JSON array: ${parsed.reason}`, parsed.expected);
    }
    if (/^\[\s*"/.test(args)) {
      this.warn(
        this.argsOffset + parsed.offset,
        'JSON_FALLBACK',
        `${kind} arguments look like a JSON array but are not one (${parsed.reason}); they run as a shell command`,
      );
    }
    return { form: 'shell' };
  }

  /** A JSON array that must be there, starting at `from`. */
  requiredJson(from: number, kind: string, what: string): string[] {
    const text = this.text.slice(from);
    if (!text.startsWith('[')) this.fail(from, `${kind} takes ${what} as a JSON array, e.g. ["…", "…"]`, 'a JSON array of strings');
    const parsed = parseJsonStringArray(text);
    if (!parsed.ok) this.fail(from + parsed.offset, `${kind} has a malformed JSON array: ${parsed.reason}`, parsed.expected);
    if (parsed.values.length === 0) this.fail(from, `${kind} needs at least one entry in its JSON array`, `${what}`);
    return parsed.values;
  }

  appName(name: string, offset: number, kind: string): string {
    const problem = appNameProblem(name);
    if (problem !== undefined) {
      this.fail(offset, `${kind}: invalid app name ${JSON.stringify(name)}: it ${problem}`, 'a non-empty app name that is one directory name');
    }
    return name;
  }
}

function plural(n: number, word: string): string {
  return n === 0 ? `no ${word}s` : `${n} ${word}${n === 1 ? '' : 's'}`;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length];
}

function unknownInstruction(t: InstructionText): never {
  const name = t.kind;
  const expected = `an instruction: ${INSTRUCTION_KINDS.join(', ')}`;
  if (DOCKERFILE_ONLY.has(name)) {
    t.fail(t.keywordOffset, `${name} is a Dockerfile instruction that Kubefiles do not support`, expected);
  }
  const close = INSTRUCTION_KINDS.filter((k) => editDistance(k, name) <= 2).sort(
    (a, b) => editDistance(a, name) - editDistance(b, name),
  );
  t.fail(
    t.keywordOffset,
    `unknown instruction ${JSON.stringify(t.keyword)}${close.length > 0 ? `; did you mean ${close[0]}?` : ''}`,
    expected,
  );
}

function parseInstruction(t: InstructionText): Instruction {
  if (!KNOWN.has(t.kind)) unknownInstruction(t);
  const kind = t.kind as InstructionKind;
  t.readFlags(kind);
  switch (kind) {
    case 'FROM':
      return parseFrom(t);
    case 'COPY':
    case 'ADD':
      return parseCopy(t, kind);
    case 'ARG':
      return { ...t.base('ARG'), args: parseArgs(t) };
    case 'ENV':
      return parseEnv(t);
    case 'LABEL':
      return { ...t.base(kind), ...parseKeyValues(t, kind) };
    case 'MAINTAINER':
      if (t.args === '') t.failArgs('MAINTAINER needs a name', 'a maintainer name or e-mail');
      return { ...t.base('MAINTAINER'), text: t.args };
    case 'RUN':
      return parseRun(t);
    case 'CMD':
      return parseCmd(t);
    case 'CMDS':
      if (t.args === '') t.failArgs('CMDS needs a JSON array of commands', 'CMDS ["command", …]');
      return { ...t.base('CMDS'), commands: t.requiredJson(t.argsOffset, 'CMDS', 'commands') };
    case 'LAUNCH':
      return parseLaunch(t);
    case 'APP':
    case 'CNI':
    case 'CSI':
      return parseApp(t, kind);
    case 'APPCMDS':
      return parseAppCmds(t);
    case 'APPENV':
      return parseAppEnv(t);
    case 'KUBEVERSION':
      return { ...t.base('KUBEVERSION'), range: parseKubeVersion(t), text: t.args };
  }
}

function parseFrom(t: InstructionText): Instruction {
  const words = t.argumentWords('FROM');
  const expected = 'FROM <image> [AS <name>]';
  if (words.length === 0) t.failArgs('FROM needs an image (got no arguments)', expected);
  let stage: string | undefined;
  if (words.length === 3 && words[1].text.toLowerCase() === 'as') {
    if (!STAGE_NAME.test(words[2].text)) {
      t.fail(words[2].start, `invalid stage name ${JSON.stringify(words[2].text)}`, 'a name of letters, digits, "_", "." and "-" starting with a letter');
    }
    stage = words[2].text.toLowerCase();
  } else if (words.length !== 1) {
    // Point at the word that breaks the shape: the one in place of AS, or the first extra one.
    const at = words.length > 3 && words[1].text.toLowerCase() === 'as' ? words[3] : words[1];
    t.fail(at.start, `FROM takes an image and an optional "AS name" (got ${plural(words.length, 'argument')})`, expected);
  }
  const platform = t.flag('platform');
  return {
    ...t.base('FROM'),
    image: words[0].text,
    ...(stage !== undefined ? { stage } : {}),
    ...(platform !== undefined ? { platform } : {}),
  };
}

function parseCopy(t: InstructionText, kind: 'COPY' | 'ADD'): Instruction {
  const args = t.jsonOrWords(kind);
  const values = args.form === 'json' ? args.values : args.words.map((w) => w.text);
  if (values.length < 2) {
    t.failArgs(
      `${kind} needs at least a source and a destination (got ${plural(values.length, 'argument')})`,
      `${kind} <source>… <destination>`,
    );
  }
  const optional: { from?: string; chown?: string; chmod?: string; checksum?: string } = {};
  for (const name of ['from', 'chown', 'chmod', 'checksum'] as const) {
    const value = t.flag(name);
    if (value !== undefined) optional[name] = value;
  }
  if (optional.checksum !== undefined) {
    const at = t.flags.find((f) => f.name === 'checksum')!.offset;
    if (!CHECKSUM.test(optional.checksum)) {
      t.fail(at, `ADD --checksum=${optional.checksum} is not a digest`, '--checksum=sha256:<64 hex digits> (or sha384, sha512)');
    }
    const sources = values.slice(0, -1);
    if (sources.length > 1) t.fail(at, 'ADD --checksum takes a single source (the digest names one file)', 'ADD --checksum=<digest> <url> <destination>');
    const local = sources.find((s) => !/^https?:\/\//.test(s));
    if (local !== undefined) t.fail(at, `ADD --checksum needs http:// or https:// sources (${JSON.stringify(local)} is not one)`, 'ADD --checksum=<digest> <url> <destination>');
  }
  return {
    ...t.base(kind),
    form: args.form,
    sources: values.slice(0, -1),
    dest: values[values.length - 1],
    ...optional,
  };
}

function parseArgs(t: InstructionText): ArgDeclaration[] {
  const words = t.argumentWords('ARG');
  if (words.length === 0) t.failArgs('ARG needs a variable name', 'ARG <name>[=<default>] …');
  return words.map((word) => {
    const assignment = splitAssignment(word.text, t.escape);
    const name = assignment ? assignment.key : word.text;
    if (!ARG_NAME.test(name)) {
      t.fail(word.start, `invalid ARG name ${JSON.stringify(name)}`, 'a variable name without blanks, quotes, $ or =');
    }
    if (!assignment) return { name };
    const value = assignment.value;
    if (/,\s*[A-Za-z_][A-Za-z0-9_]*=/.test(value)) {
      t.warn(
        word.start,
        'ARG_COMMA_LIST',
        `ARG ${word.text}: sealer v0.7–v0.8 split ARG on commas, but here the value of ${name} is ${JSON.stringify(value)}; write one NAME=value per word`,
      );
    }
    return { name, default: value };
  });
}

function keyValuePairs(t: InstructionText, kind: string, words: WordSpan[]): KeyValue[] {
  return words.map((word) => {
    const pair = splitAssignment(word.text, t.escape);
    if (!pair) t.fail(word.start, `${kind} expects KEY=VALUE pairs, but ${JSON.stringify(word.text)} has no =`, 'KEY=VALUE');
    if (pair.key === '' || pair.key === '""' || pair.key === "''") {
      t.fail(word.start, `${kind}: empty key in ${JSON.stringify(word.text)}`, 'KEY=VALUE with a non-empty KEY');
    }
    return pair;
  });
}

function parseKeyValues(t: InstructionText, kind: 'ENV' | 'LABEL'): { form: 'pairs' | 'legacy'; pairs: KeyValue[] } {
  const words = t.argumentWords(kind);
  if (words.length === 0) t.failArgs(`${kind} needs at least one KEY=VALUE pair`, `${kind} KEY=VALUE …`);
  if (splitAssignment(words[0].text, t.escape)) return { form: 'pairs', pairs: keyValuePairs(t, kind, words) };
  // The legacy form `ENV key value…`: buildkit decides by whether the first word has an `=`.
  if (words.length < 2) {
    t.fail(words[0].end, `${kind} ${words[0].text} needs a value`, `${kind} ${words[0].text}=<value>`);
  }
  t.warn(
    words[0].start,
    'LEGACY_KEY_VALUE',
    `"${kind} ${words[0].text} <value>" is the legacy form; write ${kind} ${words[0].text}=<value>` +
      (kind === 'ENV' ? ' (sealer records only KEY=VALUE pairs in the image env)' : ''),
  );
  return { form: 'legacy', pairs: [{ key: words[0].text, value: t.text.slice(words[1].start) }] };
}

function parseEnv(t: InstructionText): Instruction {
  const base = { ...t.base('ENV'), ...parseKeyValues(t, 'ENV') };
  const sealer = sealerEnvPairs(base.original);
  if (sealer.refused) {
    t.warn(t.keywordOffset, 'SEALER_DIFFERENCE', `sealer v0.11 refuses this ENV line: it reads ENV only when written "ENV " (upper case, one space)`);
  }
  return { ...base, sealerPairs: sealer.pairs };
}

function parseRun(t: InstructionText): Instruction {
  if (t.args === '') t.failArgs('RUN needs a command', 'RUN <command> or RUN ["executable", "arg", …]');
  const flags = {
    mounts: t.flags.filter((f) => f.name === 'mount').map((f) => f.value),
    ...(t.flag('network') !== undefined ? { network: t.flag('network') } : {}),
    ...(t.flag('security') !== undefined ? { security: t.flag('security') } : {}),
  };
  const args = t.jsonOrShell('RUN');
  if (args.form === 'json') {
    if (args.values.length === 0) t.fail(t.argsOffset, 'RUN needs a command (the JSON array is empty)', '["executable", "arg", …]');
    return { ...t.base('RUN'), ...flags, form: 'json', args: args.values };
  }
  return { ...t.base('RUN'), ...flags, form: 'shell', command: t.args };
}

function parseCmd(t: InstructionText): Instruction {
  if (t.args === '') t.failArgs('CMD needs a command', 'CMD <command>[, <command>…]');
  const args = t.jsonOrShell('CMD');
  const commands =
    args.form === 'json'
      ? args.values
      : t.args
          .split(',')
          .map((c) => c.trim())
          .filter((c) => c !== '');
  if (commands.length === 0) t.fail(t.argsOffset, 'CMD needs a command', 'CMD <command>[, <command>…]');
  const base = t.base('CMD');
  const sealer = sealerCmdText(base.original);
  if (sealer === undefined) {
    t.warn(t.keywordOffset, 'SEALER_DIFFERENCE', 'sealer v0.11 fails on this CMD line: it reads CMD only when written "CMD " (upper case, one space)');
  } else if (sealer !== t.args) {
    t.warn(t.argsOffset, 'SEALER_DIFFERENCE', `sealer v0.11 cuts a CMD line at its next "CMD ": the command recorded is ${JSON.stringify(sealer)}`);
  }
  return { ...base, form: args.form, text: sealer ?? t.args, commands };
}

function parseLaunch(t: InstructionText): Instruction {
  const args = t.sealerList('LAUNCH');
  // sealer trims each name (kubefile.go#L422).
  const names = args.words.map((w) => ({ text: w.text.trim(), start: w.start }));
  if (names.length === 0) t.failArgs('LAUNCH needs at least one app name', 'LAUNCH ["app", …]');
  const apps: string[] = [];
  for (const { text, start } of names) {
    t.appName(text, start, 'LAUNCH');
    if (apps.includes(text)) t.warn(start, 'DUPLICATE_LAUNCH_APP', `LAUNCH names ${text} more than once`);
    apps.push(text);
  }
  return { ...t.base('LAUNCH'), form: args.form, apps };
}

/** sealer's message for a source without `local://`, `http://` or `https://` (CNI and CSI say APP too). */
export const APP_SOURCE_SCHEME_MESSAGE = 'source schema should be specified with https:// http:// local:// in APP';

/**
 * One APP/CNI/CSI source. As in sealer, the scheme is matched case-sensitively and every other
 * word is refused with sealer's own message
 * (https://github.com/sealerio/sealer/blob/v0.11.0/build/kubefile/parser/app_handler.go#L44-L52).
 */
function appSource(t: InstructionText, kind: string, text: string, offset: number): AppSource {
  if (text.startsWith('local://')) {
    const location = text.slice('local://'.length);
    if (location === '') t.fail(offset, `${kind}: local:// needs a path`, 'local://<path in the build context>');
    return { text, type: 'local', location };
  }
  if (text.startsWith('http://') || text.startsWith('https://')) return { text, type: 'remote', location: text };
  return t.fail(offset, APP_SOURCE_SCHEME_MESSAGE, 'local://<path in the build context>, http://<url> or https://<url>');
}

function parseApp(t: InstructionText, kind: 'APP' | 'CNI' | 'CSI'): Instruction {
  const args = t.sealerList(kind);
  const words = args.words;
  if (words.length < 2) {
    t.failArgs(
      `${kind} needs an app name and at least one source (got ${plural(words.length, 'argument')})`,
      `${kind} <name> local://<path>|http(s)://<url> …`,
    );
  }
  const name = t.appName(words[0].text, words[0].start, kind);
  const sources = words.slice(1).map((w) => appSource(t, kind, w.text, w.start));
  return { ...t.base(kind), form: args.form, name, sources };
}

function parseAppCmds(t: InstructionText): Instruction {
  const expected = 'APPCMDS <app> ["command", …]';
  const nameWord = t.words().at(0);
  if (nameWord === undefined || nameWord.text.startsWith('[')) {
    t.failArgs('APPCMDS needs an app name followed by a JSON array of commands', expected);
  }
  const name = t.appName(nameWord.text, nameWord.start, 'APPCMDS');
  const jsonAt = t.skipBlanks(nameWord.end);
  if (jsonAt >= t.text.length) t.fail(jsonAt, `APPCMDS ${name} needs a JSON array of commands after the app name`, expected);
  return { ...t.base('APPCMDS'), name, commands: t.requiredJson(jsonAt, 'APPCMDS', 'commands') };
}

function parseAppEnv(t: InstructionText): Instruction {
  const args = t.sealerList('APPENV');
  const words = args.words;
  if (words.length === 0) t.failArgs('APPENV needs an app name', 'APPENV <app> KEY=VALUE …');
  const name = t.appName(words[0].text, words[0].start, 'APPENV');
  const { pairs, skipped } = sealerPairs(words.slice(1).map((w) => w.text));
  for (const w of words.slice(1)) {
    if (!w.text.includes('=')) t.warn(w.start, 'APPENV_WORD_SKIPPED', `APPENV ${name}: ${JSON.stringify(w.text)} has no "=", so it sets nothing (sealer skips it too)`);
  }
  return { ...t.base('APPENV'), form: args.form, name, pairs, skipped };
}

function parseKubeVersion(t: InstructionText): string {
  const expected = 'a semver range such as >=1.20.0 or 1.19.x || 1.20.x';
  let range = t.args;
  let offset = t.argsOffset;
  if (range === '') t.failArgs('KUBEVERSION needs a semver range', expected);
  const quote = range[0];
  if ((quote === '"' || quote === "'") && range.length >= 2 && range.endsWith(quote)) {
    range = range.slice(1, -1).trim();
    offset++;
  }
  if (range === '') t.fail(offset, 'KUBEVERSION needs a semver range', expected);
  const bad = [...range].findIndex((ch) => !SEMVER_RANGE.test(ch));
  if (bad >= 0) t.fail(offset + bad, `KUBEVERSION: ${JSON.stringify(range[bad])} cannot appear in a semver range`, expected);
  if (!/[0-9xX*]/.test(range)) t.fail(offset, `KUBEVERSION: ${JSON.stringify(range)} is not a semver range`, expected);
  return range;
}

/** The ordering rules sealer (v0.9+) and buildkit enforce over the whole file. */
class OrderRules {
  private seenFrom = false;
  private launch?: Instruction;
  private cmds?: Instruction;
  private cmd?: Instruction;

  constructor(
    private readonly file: string | undefined,
    private readonly warnings: ParseWarning[],
  ) {}

  private fail(at: { line: number; column: number }, reason: string, expected: string): never {
    throw new KubefileSyntaxError({ file: this.file, line: at.line, column: at.column, reason, expected });
  }

  check(i: Instruction): void {
    if (i.kind === 'FROM') this.seenFrom = true;
    else if (!this.seenFrom && i.kind !== 'ARG') {
      this.fail(i, `${i.kind} before FROM: a Kubefile starts with FROM (only ARG may come before it)`, 'FROM');
    }
    if (i.kind === 'LAUNCH' && this.launch) {
      this.fail(i, `LAUNCH can be used only once (it is already on line ${this.launch.line})`, 'a single LAUNCH');
    }
    if (i.kind === 'CMDS' && this.cmds) {
      this.fail(i, `CMDS can be used only once (it is already on line ${this.cmds.line})`, 'a single CMDS');
    }
    if (i.kind === 'LAUNCH' && this.cmd) {
      this.fail(
        i,
        `LAUNCH cannot be combined with CMD (line ${this.cmd.line}); move those commands into CMDS or APPCMDS`,
        'either LAUNCH or CMD',
      );
    }
    if (i.kind === 'CMD' && this.launch) {
      this.fail(i, `CMD cannot be combined with LAUNCH (line ${this.launch.line}); use CMDS or APPCMDS instead`, 'either LAUNCH or CMD');
    }
    const last = this.launch ?? this.cmds;
    if (last) {
      this.fail(i, `${i.kind} after ${last.kind}: ${last.kind} (line ${last.line}) must be the last instruction`, `${last.kind} as the last instruction`);
    }
    if (i.kind === 'LAUNCH') this.launch = i;
    if (i.kind === 'CMDS') this.cmds = i;
    if (i.kind === 'CMD' && !this.cmd) {
      this.cmd = i;
      this.warnings.push({
        code: 'DEPRECATED_CMD',
        message: 'CMD is deprecated since sealer v0.9; use CMDS ["command", …] or LAUNCH ["app", …]',
        line: i.line,
        column: i.column,
        file: this.file,
      });
    }
  }

  finish(instructions: Instruction[]): void {
    if (instructions.length === 0) this.fail({ line: 1, column: 1 }, 'the Kubefile has no instructions', 'FROM');
    if (!this.seenFrom) this.fail({ line: 1, column: 1 }, 'the Kubefile has no FROM instruction', 'FROM');
  }
}
