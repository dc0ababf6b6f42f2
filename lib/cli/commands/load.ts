/** `cloudrootfs load`: every image of an archive (oci-archive, docker-archive) into the store. */
import { resolve } from 'node:path';
import { loadArchiveIntoStore } from '../../store/load';
import type { Command } from '../command';
import { print } from '../command';
import { QUIET_OPTION, STORE_OPTION, openStore, LIMIT_OPTION } from '../common';
import { limitsOf } from '../limits';
import { progressFor } from '../progress';

export const loadCommand: Command = {
  name: 'load',
  usage: 'load FILE [-t NAME]... [-q] [--store DIR]',
  options: [
    { name: 'tag', alias: 't', type: 'list', placeholder: 'NAME', description: 'name the (single) image this instead of what the archive says' },
    QUIET_OPTION,
    LIMIT_OPTION,
    STORE_OPTION,
  ],
  positionals: [1, 1],
  async run(ctx) {
    const [file] = ctx.args.positionals;
    const store = await openStore(ctx);
    const progress = progressFor(ctx, `loading ${file}`);
    try {
      const result = await loadArchiveIntoStore(store, resolve(file), {
        fs: ctx.fs,
        names: (ctx.args.options.tag as string[] | undefined) ?? [],
        limits: limitsOf(ctx),
        onProgress: progress.onProgress,
      });
      progress.done();
      for (const image of result.images) {
        if (image.names.length === 0) print(ctx, `Loaded image ID: ${image.descriptor.digest}`);
        for (const name of image.names) print(ctx, `Loaded image: ${name}`);
      }
    } finally {
      progress.done();
    }
  },
};
