/** `cloudrootfs images`: the local store as a table (like `sealer images`), or JSON. */
import { formatPlatform } from '../../image/platform';
import type { Command } from '../command';
import { print, printJson } from '../command';
import { JSON_OPTION, STORE_OPTION, humanSize, openStore, table } from '../common';

function when(created: string | undefined): string {
  if (!created) return '-';
  const d = new Date(created);
  return Number.isNaN(d.getTime()) ? created : d.toISOString().replace('T', ' ').replace(/\.\d+Z$|Z$/, '');
}

export const imagesCommand: Command = {
  name: 'images',
  usage: 'images [--json] [-q] [--store DIR]',
  options: [JSON_OPTION, { name: 'quiet', alias: 'q', type: 'boolean', description: 'print image IDs only' }, STORE_OPTION],
  positionals: [0, 0],
  async run(ctx) {
    const entries = await (await openStore(ctx)).list();
    // A broken image is listed (marked) and explained on stderr; the others are listed as usual.
    for (const e of entries) {
      if (e.broken) ctx.stderr.write(`cloudrootfs: warning: ${e.familiar ?? e.digest} cannot be read: ${e.broken.message} [${e.broken.code}]\n`);
    }
    if (ctx.args.options.json) {
      printJson(ctx, entries);
      return;
    }
    if (ctx.args.options.quiet) {
      for (const id of new Set(entries.map((e) => e.id.replace(/^sha256:/, '').slice(0, 12)))) print(ctx, id);
      return;
    }
    const rows = entries.map((e) => [
      e.name,
      e.tag,
      e.id.replace(/^sha256:/, '').slice(0, 12),
      e.platforms.map(formatPlatform).join(',') || '-',
      when(e.created),
      e.broken ? `BROKEN (${e.broken.code})` : humanSize(e.size),
    ]);
    print(ctx, table(['REPOSITORY', 'TAG', 'IMAGE ID', 'PLATFORM', 'CREATED', 'SIZE'], rows));
  },
};
