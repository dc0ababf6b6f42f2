/**
 * The bounds on untrusted input (docs/security.md, "Limits") from the command line: `--limit
 * NAME=N` (repeatable) on every command that reads images, over `CLOUDROOTFS_LIMITS`
 * (`NAME=N,NAME=N`) from the environment, over the library's defaults.
 */
import { UsageError } from '../errors';
import type { ArchiveReadLimits } from '../formats/archive';
import type { OptionSpec } from './args';
import type { CommandContext } from './command';

type Setter = (limits: ArchiveReadLimits, value: number) => void;

const layer = (key: 'maxEntries' | 'maxPathBytes' | 'maxUncompressedBytes' | 'maxMetadataBytes'): Setter => (l, v) => {
  l.layerLimits = { ...(l.layerLimits ?? {}), [key]: v };
};

/** CLI name → where it goes, with what it bounds. */
export const CLI_LIMITS: Record<string, { set: Setter; what: string }> = {
  entries: { set: layer('maxEntries'), what: 'entries (with the directories they imply) of one layer, and of all layers of an image' },
  'path-bytes': { set: layer('maxPathBytes'), what: 'path and link-target length in a layer' },
  'layer-bytes': { set: layer('maxUncompressedBytes'), what: 'uncompressed size of one layer' },
  'metadata-bytes': { set: layer('maxMetadataBytes'), what: 'names, link targets and xattrs of one layer, and of all layers of an image' },
  'document-bytes': { set: (l, v) => (l.maxDocumentBytes = v), what: 'size of a manifest, index or config' },
  nesting: { set: (l, v) => (l.maxNesting = v), what: 'index nesting depth' },
  'index-entries': { set: (l, v) => (l.maxIndexEntries = v), what: 'index entries reachable from one index' },
  layers: { set: (l, v) => (l.maxLayers = v), what: 'layers of one image' },
  members: { set: (l, v) => (l.maxMembers = v), what: 'members of an archive' },
  'header-bytes': { set: (l, v) => (l.maxHeaderBytes = v), what: 'extended tar header in an archive' },
  'archive-bytes': { set: (l, v) => (l.maxUncompressedBytes = v), what: 'decompressed size of a compressed archive' },
};

export const LIMIT_OPTION: OptionSpec = {
  name: 'limit',
  type: 'list',
  placeholder: 'NAME=N',
  description: `bound on untrusted input, repeatable (also $CLOUDROOTFS_LIMITS): ${Object.keys(CLI_LIMITS).join(', ')}; N may end in K, M or G (×1024)`,
};

const UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

function parseCount(text: string, name: string): number {
  const m = /^(\d+)([kmg]?)i?b?$/i.exec(text.trim());
  const value = m ? Number(m[1]) * UNITS[m[2].toLowerCase()] : NaN;
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new UsageError(`--limit ${name}: ${JSON.stringify(text)} is not a positive whole number (with an optional K, M or G)`);
  }
  return value;
}

/** Parse `NAME=N` settings (in order: later ones win) into loader limits. */
export function parseLimits(settings: readonly string[]): ArchiveReadLimits {
  const limits: ArchiveReadLimits = {};
  for (const setting of settings) {
    const eq = setting.indexOf('=');
    const name = (eq < 0 ? setting : setting.slice(0, eq)).trim();
    const known = CLI_LIMITS[name];
    if (!known) throw new UsageError(`--limit: unknown limit ${JSON.stringify(name)} (known: ${Object.keys(CLI_LIMITS).join(', ')})`);
    if (eq < 0) throw new UsageError(`--limit ${name}: give a value, as ${name}=N`);
    known.set(limits, parseCount(setting.slice(eq + 1), name));
  }
  return limits;
}

/**
 * The limits this invocation sets: $CLOUDROOTFS_LIMITS, then every `--limit`; none for a command
 * that does not take `--limit` (images, rmi…: they read only the store's own documents).
 */
export function limitsOf(ctx: CommandContext): ArchiveReadLimits {
  if (ctx.declared && !ctx.declared.has('limit')) return {};
  const fromEnv = (ctx.env.CLOUDROOTFS_LIMITS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  const fromFlags = (ctx.args.options.limit as string[] | undefined) ?? [];
  return parseLimits([...fromEnv, ...fromFlags]);
}
