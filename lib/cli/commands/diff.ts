/** `cloudrootfs diff`: paths added, removed and changed between two images' root filesystems. */
import { compareImages, type PathChange, type PathSummary } from '../../compare';
import { loadImage } from '../../transports';
import type { Command } from '../command';
import { print, printJsonPaced, printPaced } from '../command';
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
      await printJsonPaced(ctx, result);
      return;
    }
    // Each line is made as it is printed: a diff of two large images lists every path of both.
    const rows: (PathSummary | PathChange)[] = [...result.added, ...result.removed, ...result.changed];
    const kind = new Map<PathSummary | PathChange, 'A' | 'D'>();
    for (const s of result.added) kind.set(s, 'A');
    for (const s of result.removed) kind.set(s, 'D');
    rows.sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0));
    for (const row of rows) {
      const k = kind.get(row);
      if (k) await printPaced(ctx, `${k} ${humanSize((row as PathSummary).size).padStart(18)}  ${name(row as PathSummary)}`);
      else {
        const c = row as PathChange;
        await printPaced(ctx, `C ${`${humanSize(c.before.size)} -> ${humanSize(c.after.size)}`.padStart(18)}  ${name(c.after)} (${c.what.join(', ')})`);
      }
    }
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
