import { resolve } from 'node:path';
import { checkDirectoryDestination, writeRootfsToDirectory } from '../../rootfs/io';
import { loadImage } from '../../transports';
import type { Command } from '../command';
import { print } from '../command';
import { PLATFORM_OPTION, STORE_OPTION, loadOptions, LIMIT_OPTION } from '../common';

export const exportCommand: Command = {
  name: 'export',
  usage: 'export REF OUTDIR [--platform OS/ARCH] [--force] [--store DIR]',
  options: [PLATFORM_OPTION, { name: 'force', type: 'boolean', description: 'replace OUTDIR if it exists and is not empty' }, LIMIT_OPTION, STORE_OPTION],
  positionals: [2, 2],
  async run(ctx) {
    const [ref, out] = ctx.args.positionals;
    // The destination is checked before the image is read and flattened (that may take a while).
    await checkDirectoryDestination(ctx.fs, resolve(out), !!ctx.args.options.force);
    const image = await loadImage(ref, loadOptions(ctx));
    const rootfs = await image.flatten();
    await writeRootfsToDirectory(rootfs, resolve(out), { fs: ctx.fs, overwrite: !!ctx.args.options.force });
    print(ctx, `exported ${rootfs.size} entries to ${out}`);
  },
};
