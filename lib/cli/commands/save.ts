/** `cloudrootfs save`: images (from the store or any reference) into an oci-archive or docker-archive. */
import { resolve } from 'node:path';
import { UsageError } from '../../errors';
import { Image, ImageIndex, selectImage } from '../../image/image';
import { writeOciArchiveImages } from '../../formats/oci-archive';
import { writeDockerArchiveImages } from '../../formats/docker-archive';
import { loadTarget, parseImageRef } from '../../transports';
import type { Command } from '../command';
import { print } from '../command';
import { PLATFORM_OPTION, QUIET_OPTION, STORE_OPTION, humanSize, loadOptions, platformOption, LIMIT_OPTION } from '../common';
import { progressFor } from '../progress';
import { checkFileDestination } from '../../util/atomic';

const FORMATS = ['oci-archive', 'docker-archive'] as const;

export const saveCommand: Command = {
  name: 'save',
  usage: 'save REF [REF...] -o FILE [--format oci-archive|docker-archive] [--platform OS/ARCH] [-q] [--store DIR]',
  options: [
    { name: 'output', alias: 'o', type: 'string', placeholder: 'FILE', description: 'the archive to write (replaced atomically)' },
    { name: 'format', type: 'string', placeholder: 'FORMAT', description: 'oci-archive (default) or docker-archive' },
    { ...PLATFORM_OPTION, description: 'oci-archive: save only this platform; docker-archive: the platform manifest.json describes (default: this machine\'s)' },
    QUIET_OPTION,
    LIMIT_OPTION,
    STORE_OPTION,
  ],
  positionals: [1, 64],
  async run(ctx) {
    const output = ctx.args.options.output;
    if (typeof output !== 'string' || output === '') throw new UsageError('save needs -o FILE');
    const format = (ctx.args.options.format as string | undefined) ?? 'oci-archive';
    if (!(FORMATS as readonly string[]).includes(format)) throw new UsageError(`--format must be one of ${FORMATS.join(', ')}`);
    const platform = platformOption(ctx);
    const file = resolve(output);
    // The archive's place is checked before any image is read.
    await checkFileDestination(ctx.fs, file);
    const images: { target: Image | ImageIndex; name?: string }[] = [];
    for (const ref of ctx.args.positionals) {
      const parsed = parseImageRef(ref);
      let target = await loadTarget(parsed, loadOptions(ctx));
      if (format === 'oci-archive' && platform) target = selectImage(target, platform, ref);
      images.push({ target, ...(parsed.transport === 'store' ? { name: parsed.name } : {}) });
    }
    const progress = progressFor(ctx, `saving ${output}`);
    try {
      const options = { fs: ctx.fs, onProgress: progress.onProgress };
      const written =
        format === 'oci-archive'
          ? await writeOciArchiveImages(images.map((i) => ({ target: i.target, name: i.name })), file, options)
          : await writeDockerArchiveImages(images.map((i) => ({ target: i.target, names: i.name ? [i.name] : [] })), file, { ...options, platform });
      progress.done();
      const size = (await ctx.fs.promises.stat(file)).size;
      written.forEach((d, i) => print(ctx, `saved ${ctx.args.positionals[i]} (${d.digest})`));
      print(ctx, `wrote ${output} (${format}, ${humanSize(size)})`);
    } finally {
      progress.done();
    }
  },
};
