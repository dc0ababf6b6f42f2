/** What a CLI command is. Each command is one module under commands/ and only calls the public API. */
import type { Writable } from 'node:stream';
import type { FileSystem } from '../fs';
import type { OptionSpec, ParsedArgs } from './args';

export interface CommandContext {
  args: ParsedArgs;
  stdout: Writable;
  stderr: Writable;
  fs: FileSystem;
  env: NodeJS.ProcessEnv;
  /** True when stderr is a terminal (progress bars are drawn only then). */
  interactive: boolean;
  /** The option names the running command declares (others are not read, not even from the environment). */
  declared?: ReadonlySet<string>;
}

export interface Command {
  name: string;
  usage: string;
  options: OptionSpec[];
  /** Inclusive bounds on positional arguments. */
  positionals: [min: number, max: number];
  run(ctx: CommandContext): Promise<number | void>;
}

export function print(ctx: CommandContext, text = ''): void {
  ctx.stdout.write(text + '\n');
}

/**
 * `print`, then wait while the reader of stdout lags behind: a listing of a large image through a
 * slow pipe (`| less`) would otherwise queue all of itself in memory.
 */
export async function printPaced(ctx: CommandContext, text = ''): Promise<void> {
  await writePaced(ctx, text + '\n');
}

async function writePaced(ctx: CommandContext, text: string): Promise<void> {
  if (ctx.stdout.write(text)) return;
  const out = ctx.stdout;
  if (out.destroyed || out.writableEnded) return; // a closed pipe: nothing will drain
  await new Promise<void>((resolve) => {
    const done = () => {
      out.off('drain', done);
      out.off('error', done);
      out.off('close', done);
      resolve();
    };
    out.on('drain', done);
    out.on('error', done);
    out.on('close', done);
  });
}

export function printJson(ctx: CommandContext, value: unknown): void {
  ctx.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

/**
 * The text of JSON.stringify(value, null, 2), in pieces: arrays and objects of the top two levels
 * are written member by member (a long listing is never one string).
 */
function* jsonPieces(value: unknown, indent: string, depth: number): Generator<string> {
  const isObject = value !== null && typeof value === 'object';
  if (!isObject || depth >= 2) {
    yield (JSON.stringify(value, null, 2) ?? 'null').replace(/\n/g, `\n${indent}`);
    return;
  }
  const inner = `${indent}  `;
  const members: [string | undefined, unknown][] = Array.isArray(value)
    ? value.map((v): [undefined, unknown] => [undefined, v === undefined || typeof v === 'function' ? null : v])
    : Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined && typeof v !== 'function');
  const [open, close] = Array.isArray(value) ? ['[', ']'] : ['{', '}'];
  if (members.length === 0) {
    yield open + close;
    return;
  }
  yield `${open}\n`;
  for (const [i, [key, v]] of members.entries()) {
    yield `${i > 0 ? ',\n' : ''}${inner}${key === undefined ? '' : `${JSON.stringify(key)}: `}`;
    yield* jsonPieces(v, inner, depth + 1);
  }
  yield `\n${indent}${close}`;
}

/** `printJson`, written piece by piece at the pace of the reader of stdout (see printPaced). */
export async function printJsonPaced(ctx: CommandContext, value: unknown): Promise<void> {
  let batch = '';
  for (const piece of jsonPieces(value, '', 0)) {
    batch += piece;
    if (batch.length >= 1 << 16) {
      await writePaced(ctx, batch);
      batch = '';
    }
  }
  await writePaced(ctx, batch + '\n');
}
