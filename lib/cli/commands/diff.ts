/** `cloudrootfs diff`: paths added, removed and changed between two images' root filesystems. */
import { compareImages, type PathSummary } from '../../compare';
import { loadImage } from '../../transports';
import type { Command } from '../command';
import { print, printJson } from '../command';
import { JSON_OPTION, PLATFORM_OPTION, STORE_OPTION, humanSize, loadOptions, LIMIT_OPTION } from '../common';

function name(s: PathSummary): string {
  return `${s.path}${s.type === 'directory' ? '/' : ''}${s.type === 'symlink' ? ` -> ${s.target}` : ''}`;
}

export const diffCommand: Command = {
  name: 'diff',
  usage: 'diff REF1 REF2 [--json] [--platform OS/ARCH] [--store DIR]',
  options: [JSON_OPTION, PLATFORM_OPTION, LIMIT_OPTION, STORE_OPTION],
  positionals: [2, 2],
  async run(ctx) {
    const [a, b] = ctx.args.positionals;
    const options = loadOptions(ctx);
    const result = await compareImages(await loadImage(a, options), await loadImage(b, options));
    if (ctx.args.options.json) {
      printJson(ctx, result);
      return;
    }
    const rows: [string, string][] = [
      ...result.added.map((s): [string, string] => [s.path, `A ${humanSize(s.size).padStart(18)}  ${name(s)}`]),
      ...result.removed.map((s): [string, string] => [s.path, `D ${humanSize(s.size).padStart(18)}  ${name(s)}`]),
      ...result.changed.map((c): [string, string] => [
        c.path,
        `C ${`${humanSize(c.before.size)} -> ${humanSize(c.after.size)}`.padStart(18)}  ${name(c.after)} (${c.what.join(', ')})`,
      ]),
    ];
    rows.sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
    for (const [, line] of rows) print(ctx, line);
    if (rows.length > 0) {
      const { addedBytes, removedBytes, deltaBytes } = result.totals;
      print(
        ctx,
        `${result.added.length} added (${humanSize(addedBytes)}), ${result.removed.length} removed (${humanSize(removedBytes)}), ` +
          `${result.changed.length} changed; size ${deltaBytes >= 0 ? '+' : '-'}${humanSize(Math.abs(deltaBytes))}`,
      );
    }
  },
};
