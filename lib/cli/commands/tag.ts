/** `cloudrootfs tag`: another name for a stored image (or import one from any reference). */
import { copyImage, parseImageRef } from '../../transports';
import type { Command } from '../command';
import { print } from '../command';
import { limitsOf } from '../limits';
import { QUIET_OPTION, STORE_OPTION, openStore, storeOptions, LIMIT_OPTION } from '../common';
import { storeName } from '../../store/names';
import { progressFor } from '../progress';

export const tagCommand: Command = {
  name: 'tag',
  usage: 'tag SOURCE TARGET [--store DIR]',
  options: [QUIET_OPTION, LIMIT_OPTION, STORE_OPTION],
  positionals: [2, 2],
  async run(ctx) {
    const [source, target] = ctx.args.positionals;
    const name = storeName(target);
    const src = parseImageRef(source);
    if (src.transport === 'store') {
      await (await openStore(ctx)).tag(src.name, target);
    } else {
      const progress = progressFor(ctx, `importing ${source}`);
      try {
        await copyImage(src, { transport: 'store', name: target }, { fs: ctx.fs, store: storeOptions(ctx), limits: limitsOf(ctx), onProgress: progress.onProgress });
      } finally {
        progress.done();
      }
    }
    print(ctx, `tagged ${name.reference}`);
  },
};
