#!/usr/bin/env node
/**
 * cloudrootfs CLI: parses arguments, calls the public API, prints. Exit 0 on success, 1 on a
 * failure, 2 on a usage error; failures are one line on stderr (`--debug` prints the stack).
 */
import * as fs from 'node:fs';
import { CloudRootfsError, UsageError } from '../errors';
import type { FileSystem } from '../fs';
import { parseArgs } from './args';
import type { Command, CommandContext } from './command';
import type { CommandEntry } from './registry';
import { COMMANDS } from './registry';

const VERSION: string = (() => {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('../../package.json').version as string;
  } catch {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      return require('../../../package.json').version as string;
    } catch {
      return 'unknown';
    }
  }
})();

function help(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'cloudrootfs: compose sealer CloudRootfs images',
    '',
    'Usage: cloudrootfs <command> [options]',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Run `cloudrootfs <command> --help` for a command\'s options.',
    'Image references: NAME[:TAG] (local store), oci:DIR[:TAG], oci-archive:FILE[:TAG],',
    '  docker-archive:FILE[:NAME:TAG], docker://HOST/REPO:TAG',
  ].join('\n');
}

function commandHelp(entry: CommandEntry, c: Command): string {
  const lines = [`Usage: cloudrootfs ${c.usage}`, '', entry.summary];
  if (c.options.length > 0) {
    lines.push('', 'Options:');
    for (const o of c.options) {
      const flag = `${o.alias ? `-${o.alias}, ` : '    '}--${o.name}${o.type === 'boolean' ? '' : ` ${o.placeholder ?? 'VALUE'}`}`;
      lines.push(`  ${flag.padEnd(30)} ${o.description}`);
    }
  }
  return lines.join('\n');
}

export interface RunOptions {
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
  fs?: FileSystem;
  env?: NodeJS.ProcessEnv;
}

/** Run the CLI with `argv` (without `node script`); resolves to the exit code. */
export async function runCli(argv: string[], options: RunOptions = {}): Promise<number> {
  const stdout = (options.stdout ?? process.stdout) as CommandContext['stdout'];
  const stderr = (options.stderr ?? process.stderr) as CommandContext['stderr'];
  const debug = argv.includes('--debug');
  const args = argv.filter((a) => a !== '--debug');
  const [name, ...rest] = args;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    stdout.write(help() + '\n');
    return name ? 0 : 2;
  }
  if (name === '--version' || name === 'version') {
    stdout.write(`cloudrootfs ${VERSION}\n`);
    return 0;
  }
  const entry = COMMANDS.find((c) => c.name === name);
  try {
    if (!entry) throw new UsageError(`unknown command ${JSON.stringify(name)} (see cloudrootfs --help)`);
    const command = entry.load();
    if (rest.includes('--help') || rest.includes('-h')) {
      stdout.write(commandHelp(entry, command) + '\n');
      return 0;
    }
    const parsed = parseArgs(rest, command.options);
    const [min, max] = command.positionals;
    if (parsed.positionals.length < min || parsed.positionals.length > max) {
      throw new UsageError(`usage: cloudrootfs ${command.usage}`);
    }
    const interactive = !!(stderr as unknown as { isTTY?: boolean }).isTTY;
    const code = await command.run({
      args: parsed,
      stdout,
      stderr,
      fs: options.fs ?? (fs as unknown as FileSystem),
      env: options.env ?? process.env,
      interactive,
      declared: new Set(command.options.map((o) => o.name)),
    });
    return code ?? 0;
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const code = err instanceof CloudRootfsError ? ` [${err.code}]` : '';
    stderr.write(`cloudrootfs: error: ${message.split('\n')[0]}${code}\n`);
    if (debug && err instanceof Error && err.stack) stderr.write(err.stack + '\n');
    return err instanceof UsageError ? 2 : 1;
  }
}

/**
 * The exit status when the reader of our output went away (`cloudrootfs ls REF | head -1`): what
 * a shell reports for a Unix tool killed by SIGPIPE (128 + 13). Nothing is printed.
 */
export const EXIT_BROKEN_PIPE = 141;

if (require.main === module) {
  // A closed pipe is not a failure to report: stop quietly, as Unix tools do on SIGPIPE.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') process.exit(EXIT_BROKEN_PIPE);
      process.exitCode = 1;
    });
  }
  runCli(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      process.stderr.write(`cloudrootfs: internal error: ${String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
