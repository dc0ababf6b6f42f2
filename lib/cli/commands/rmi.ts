/** `cloudrootfs rmi`: untag images and collect the blobs nothing uses any more. */
import type { Command } from '../command';
import { print } from '../command';
import { STORE_OPTION, openStore } from '../common';

export const rmiCommand: Command = {
  name: 'rmi',
  usage: 'rmi REF [REF...] [--store DIR]',
  options: [STORE_OPTION],
  positionals: [1, 256],
  async run(ctx) {
    const store = await openStore(ctx);
    let blobs = 0;
    for (const ref of ctx.args.positionals) {
      const r = await store.remove(ref);
      for (const name of r.untagged) print(ctx, `Untagged: ${name}`);
      blobs += r.removedBlobs;
    }
    print(ctx, `Deleted ${blobs} blob${blobs === 1 ? '' : 's'}`);
  },
};
