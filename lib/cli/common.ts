/** Options and helpers several commands share. */
import type { OptionSpec } from './args';
import type { CommandContext } from './command';
import { parsePlatform } from '../image/platform';
import type { Platform } from '../image/types';
import type { LoadOptions } from '../transports';
import { ImageStore, type StoreOptions } from '../store/store';
import { limitsOf } from './limits';

export { LIMIT_OPTION } from './limits';

export const PLATFORM_OPTION: OptionSpec = {
  name: 'platform',
  type: 'string',
  placeholder: 'OS/ARCH[/VARIANT]',
  description: 'which image of a multi-platform index (default: this machine\'s)',
};

export const JSON_OPTION: OptionSpec = { name: 'json', type: 'boolean', description: 'print JSON' };

export const STORE_OPTION: OptionSpec = {
  name: 'store',
  type: 'string',
  placeholder: 'DIR',
  description: 'the local image store (default: $CLOUDROOTFS_STORE, else $XDG_DATA_HOME/cloudrootfs/store, else ~/.local/share/cloudrootfs/store)',
};

export const QUIET_OPTION: OptionSpec = { name: 'quiet', alias: 'q', type: 'boolean', description: 'no progress output' };

export function platformOption(ctx: CommandContext): Platform | undefined {
  const p = ctx.args.options.platform;
  return typeof p === 'string' ? parsePlatform(p) : undefined;
}

/** How to open the store this invocation means (`--store`, else the environment's default). */
export function storeOptions(ctx: CommandContext): StoreOptions {
  const root = ctx.args.options.store;
  // Only the layer bounds: the store's own documents (its index.json grows with every tag) are
  // ours, and a document bound meant for untrusted input must not lock a user out of the store.
  const { layerLimits } = limitsOf(ctx);
  return { fs: ctx.fs, env: ctx.env, ...(layerLimits ? { limits: { layerLimits } } : {}), ...(typeof root === 'string' ? { root } : {}) };
}

export function openStore(ctx: CommandContext): Promise<ImageStore> {
  return ImageStore.open(storeOptions(ctx));
}

/** Options for loadTarget/loadImage: the context's filesystem and store, and `--platform`. */
export function loadOptions(ctx: CommandContext): LoadOptions {
  return { fs: ctx.fs, store: storeOptions(ctx), platform: platformOption(ctx), limits: limitsOf(ctx) };
}

/** Sizes as docker prints them: decimal units, three significant digits (`12.3MB`). */
export function humanSize(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = bytes;
  let u = 0;
  while (v >= 999.5 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  if (u === 0) return `${bytes}B`;
  const text = v >= 99.95 ? v.toFixed(0) : v >= 9.995 ? v.toFixed(1) : v.toFixed(2);
  return `${text.includes('.') ? text.replace(/\.?0+$/, '') : text}${units[u]}`;
}

/** A table with columns padded to their widest cell (three spaces apart, like docker). */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  return [header, ...rows].map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('   ')).join('\n');
}
