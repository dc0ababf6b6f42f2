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

export function printJson(ctx: CommandContext, value: unknown): void {
  ctx.stdout.write(JSON.stringify(value, null, 2) + '\n');
}
