import { inspectTarget } from '../../inspect';
import { loadTarget } from '../../transports';
import type { Command } from '../command';
import { printJson } from '../command';
import { PLATFORM_OPTION, platformOption } from '../common';

export const inspectCommand: Command = {
  name: 'inspect',
  summary: 'print an image as JSON: manifest, config, layer digests and sizes',
  usage: 'inspect REF [--platform OS/ARCH]',
  options: [PLATFORM_OPTION],
  positionals: [1, 1],
  async run(ctx) {
    const [ref] = ctx.args.positionals;
    const target = await loadTarget(ref, { fs: ctx.fs });
    printJson(ctx, await inspectTarget(target, { platform: platformOption(ctx), reference: ref }));
  },
};
