/** Options and helpers several commands share. */
import type { OptionSpec } from './args';
import type { CommandContext } from './command';
import { parsePlatform } from '../image/platform';
import type { Platform } from '../image/types';

export const PLATFORM_OPTION: OptionSpec = {
  name: 'platform',
  type: 'string',
  placeholder: 'OS/ARCH[/VARIANT]',
  description: 'which image of a multi-platform index (default: this machine\'s)',
};

export const JSON_OPTION: OptionSpec = { name: 'json', type: 'boolean', description: 'print JSON' };

export function platformOption(ctx: CommandContext): Platform | undefined {
  const p = ctx.args.options.platform;
  return typeof p === 'string' ? parsePlatform(p) : undefined;
}
