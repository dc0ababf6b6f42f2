import type { Entry } from '../../entry';
import { NotFoundError } from '../../errors';
import { cleanPath } from '../../path';
import { loadImage } from '../../transports';
import type { Command } from '../command';
import { printJsonPaced, printPaced } from '../command';
import { JSON_OPTION, PLATFORM_OPTION, STORE_OPTION, loadOptions, LIMIT_OPTION } from '../common';

const TYPE_CHAR: Record<Entry['type'], string> = { file: '-', directory: 'd', symlink: 'l', hardlink: 'h' };

/** `drwxr-xr-x`, with setuid/setgid/sticky shown as ls does. */
export function modeString(entry: Entry): string {
  const m = entry.mode;
  const rwx = (shift: number, special: boolean, specialChar: string) => {
    const r = m & (4 << shift) ? 'r' : '-';
    const w = m & (2 << shift) ? 'w' : '-';
    const xBit = m & (1 << shift);
    const x = special ? (xBit ? specialChar : specialChar.toUpperCase()) : xBit ? 'x' : '-';
    return r + w + x;
  };
  return TYPE_CHAR[entry.type] + rwx(6, !!(m & 0o4000), 's') + rwx(3, !!(m & 0o2000), 's') + rwx(0, !!(m & 0o1000), 't');
}

export const lsCommand: Command = {
  name: 'ls',
  usage: 'ls REF [PATH] [--platform OS/ARCH] [--json] [--store DIR]',
  options: [PLATFORM_OPTION, JSON_OPTION, LIMIT_OPTION, STORE_OPTION],
  positionals: [1, 2],
  async run(ctx) {
    const [ref, under = ''] = ctx.args.positionals;
    const image = await loadImage(ref, loadOptions(ctx));
    const rootfs = await image.flatten();
    const start = cleanPath(under, { what: 'path' });
    const top = start === '' ? rootfs.rootEntry : rootfs.get(start);
    if (!top) throw new NotFoundError(under);
    const rows = top.type === 'directory' ? [...rootfs.walk(start)] : [{ path: start, entry: top }];
    const firstPath = new Map<Entry, string>();
    if (ctx.args.options.json) {
      await printJsonPaced(
        ctx,
        rows.map(({ path, entry }) => ({
          path,
          type: entry.type,
          mode: '0' + (entry.mode & 0o7777).toString(8),
          uid: entry.uid,
          gid: entry.gid,
          size: entry.type === 'file' ? entry.content.size : 0,
          ...(entry.type === 'symlink' ? { target: entry.target } : {}),
        })),
      );
      return;
    }
    for (const { path, entry } of rows) {
      const size = entry.type === 'file' ? entry.content.size : 0;
      let suffix = '';
      if (entry.type === 'symlink') suffix = ` -> ${entry.target}`;
      if (entry.type === 'file') {
        const first = firstPath.get(entry);
        if (first !== undefined) suffix = ` => ${first}`;
        else firstPath.set(entry, path);
      }
      const name = entry.type === 'directory' ? `${path}/` : path;
      await printPaced(ctx, `${modeString(entry)} ${`${entry.uid}:${entry.gid}`.padEnd(9)} ${String(size).padStart(10)} ${name}${suffix}`);
    }
  },
};
