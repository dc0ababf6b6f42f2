/**
 * The `created_by` text of each history entry, made by `formatInstruction` from the values a step
 * was given. Both front doors (the fluent builder and the Kubefile interpreter) call the builder
 * with *expanded* values and the builder formats them here, so the same step gives the same
 * history (and digest) whichever door it came through.
 */
import { formatInstruction } from '../kubefile';
import type { AppSource, Instruction, InstructionKind } from '../kubefile';

type Fields<K extends InstructionKind> = Omit<Extract<Instruction, { kind: K }>, 'kind' | 'keyword' | 'line' | 'endLine' | 'column' | 'raw' | 'original'>;

function make<K extends InstructionKind>(kind: K, fields: Fields<K>): Instruction {
  return { kind, keyword: kind, line: 1, endLine: 1, column: 1, raw: '', original: '', ...fields } as unknown as Instruction;
}

/** True when a word must be quoted to read back as itself in shell form. */
function needsQuoting(word: string): boolean {
  return word === '' || /[\s"'\\$`]/.test(word);
}

/** Words as a Kubefile would write them: plain when they can be, else as a JSON array. */
function words(list: readonly string[]): { form: 'shell' | 'json' } {
  return { form: list.some(needsQuoting) ? 'json' : 'shell' };
}

/** A `KEY=value` word that reads back as itself. */
function pairWord(text: string): string {
  return needsQuoting(text) ? JSON.stringify(text) : text;
}

export interface CopyHistory {
  sources: readonly string[];
  dest: string;
  from?: string;
  chown?: string;
  chmod?: string;
  checksum?: string;
}

export function copyHistory(kind: 'COPY' | 'ADD', h: CopyHistory): string {
  const all = [...h.sources, h.dest];
  return formatInstruction(make(kind, { ...words(all), sources: [...h.sources], dest: h.dest, from: h.from, chown: h.chown, chmod: h.chmod, checksum: h.checksum }));
}

export function keyValueHistory(kind: 'ENV' | 'LABEL', pairs: Readonly<Record<string, string>>): string {
  return formatInstruction(
    make(kind, { form: 'pairs', pairs: Object.entries(pairs).map(([k, v]) => ({ key: pairWord(k), value: pairWord(v) })) }),
  );
}

export function runHistory(run: { command?: string; argv?: readonly string[] }): string {
  // RunInstruction is a union over its form, which Fields<> cannot spread; build it whole.
  const fields = run.command !== undefined ? { form: 'shell', command: run.command } : { form: 'json', args: [...(run.argv ?? [])] };
  return formatInstruction(make('RUN', { mounts: [], ...fields } as unknown as Fields<'RUN'>));
}

export function appHistory(kind: 'APP' | 'CNI' | 'CSI', name: string, sources: readonly string[]): string {
  const list: AppSource[] = sources.map((text) => ({ text, type: 'local', location: text }));
  return formatInstruction(make(kind, { ...words([name, ...sources]), name, sources: list }));
}

export function simpleHistory(kind: 'MAINTAINER', text: string): string;
export function simpleHistory(kind: 'KUBEVERSION', range: string): string;
export function simpleHistory(kind: 'MAINTAINER' | 'KUBEVERSION', text: string): string {
  return kind === 'MAINTAINER' ? formatInstruction(make('MAINTAINER', { text })) : formatInstruction(make('KUBEVERSION', { range: text, text }));
}

export function listHistory(kind: 'CMDS', commands: readonly string[]): string;
export function listHistory(kind: 'LAUNCH', apps: readonly string[]): string;
export function listHistory(kind: 'CMDS' | 'LAUNCH', list: readonly string[]): string {
  return kind === 'CMDS'
    ? formatInstruction(make('CMDS', { commands: [...list] }))
    : formatInstruction(make('LAUNCH', { form: 'json', apps: [...list] }));
}

export function cmdHistory(text: string): string {
  return formatInstruction(make('CMD', { form: 'shell', text, commands: [text] }));
}

export function appCmdsHistory(name: string, commands: readonly string[]): string {
  return formatInstruction(make('APPCMDS', { name, commands: [...commands] }));
}

/** APPENV words are taken as written (no quotes), so a pair with a blank needs the JSON form. */
export function appEnvHistory(name: string, env: Readonly<Record<string, string>>): string {
  const pairs = Object.entries(env).map(([key, value]) => ({ key, value }));
  const json = [name, ...pairs.map((p) => `${p.key}=${p.value}`)].some((w) => /[\t\v\f\r ]/.test(w) || w.startsWith('['));
  return formatInstruction(make('APPENV', { form: json ? 'json' : 'shell', name, pairs, skipped: [] }));
}
