/** The commands the CLI knows, in help order. Add a command: write commands/<name>.ts, list it here. */
import type { Command } from './command';
import { exportCommand } from './commands/export';
import { inspectCommand } from './commands/inspect';
import { lsCommand } from './commands/ls';

export const COMMANDS: Command[] = [lsCommand, inspectCommand, exportCommand];
