/** `cloudrootfs inspect`: an image as sealer's inspect prints it (id, name, digest, manifestv1, ociv1, imageExtension, containerImageList). */
import { inspectTarget } from '../../inspect';
import { loadTarget } from '../../transports';
import type { Command } from '../command';
import { PLATFORM_OPTION, STORE_OPTION, loadOptions, platformOption, LIMIT_OPTION } from '../common';

export const inspectCommand: Command = {
  name: 'inspect',
  usage: 'inspect REF [--platform OS/ARCH] [--store DIR]',
  options: [PLATFORM_OPTION, LIMIT_OPTION, STORE_OPTION],
  positionals: [1, 1],
  async run(ctx) {
    const [ref] = ctx.args.positionals;
    const target = await loadTarget(ref, loadOptions(ctx));
    // sealer indents with four spaces.
    ctx.stdout.write(JSON.stringify(await inspectTarget(target, { platform: platformOption(ctx), reference: ref }), null, 4) + '\n');
  },
};
