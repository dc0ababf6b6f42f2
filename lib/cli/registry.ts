/** The commands the CLI knows, in help order. Add a command: write commands/<name>.ts, list it here. */
import type { Command } from './command';
import { buildCommand } from './commands/build';
import { diffCommand } from './commands/diff';
import { exportCommand } from './commands/export';
import { imagesCommand } from './commands/images';
import { inspectCommand } from './commands/inspect';
import { lintCommand } from './commands/lint';
import { loadCommand } from './commands/load';
import { loginCommand } from './commands/login';
import { logoutCommand } from './commands/logout';
import { lsCommand } from './commands/ls';
import { pullCommand } from './commands/pull';
import { pushCommand } from './commands/push';
import { rmiCommand } from './commands/rmi';
import { saveCommand } from './commands/save';
import { tagCommand } from './commands/tag';

export const COMMANDS: Command[] = [
  buildCommand,
  lintCommand,
  imagesCommand,
  inspectCommand,
  lsCommand,
  diffCommand,
  exportCommand,
  saveCommand,
  loadCommand,
  tagCommand,
  rmiCommand,
  pushCommand,
  pullCommand,
  loginCommand,
  logoutCommand,
];
