/**
 * How sealer v0.11's own Kubefile parser reads the arguments of its instructions, where that
 * differs from buildkit's word splitting (docs/kubefile.md, "Where we differ from sealer"):
 *
 * - APP, CNI, CSI, APPENV and LAUNCH take a JSON array of strings, or else the text split on
 *   blanks with no quote or escape processing (`parseMaybeJSONToList`,
 *   https://github.com/sealerio/sealer/blob/v0.11.0/build/kubefile/parser/line_parsers.go#L361-L372,
 *   https://github.com/sealerio/sealer/blob/v0.11.0/build/kubefile/parser/parse.go#L215-L222);
 * - an app name only has to be non-empty
 *   (https://github.com/sealerio/sealer/blob/v0.11.0/build/kubefile/parser/app_handler.go#L55-L57);
 * - `ENV` is also read from the line's original text, split on single spaces
 *   (https://github.com/sealerio/sealer/blob/v0.11.0/build/kubefile/parser/kubefile.go#L380-L400).
 */
import type { KeyValue } from './types';

/** sealer's `tokenWhitespace`: the blanks its whitespace-delimited parser splits on. */
const SEALER_BLANKS = /[\t\v\f\r ]+/;

/** A word of a whitespace-split argument list and its offset in the text it came from. */
export interface SealerWord {
  text: string;
  start: number;
}

/** The text split as sealer's `parseStringsWhitespaceDelimited` does (quotes stay in the words). */
export function splitSealerWords(text: string, offset = 0): SealerWord[] {
  const out: SealerWord[] = [];
  const re = new RegExp(SEALER_BLANKS.source, 'g');
  let start = 0;
  for (;;) {
    const m = re.exec(text);
    const end = m ? m.index : text.length;
    if (end > start) out.push({ text: text.slice(start, end), start: offset + start });
    if (!m) return out;
    start = m.index + m[0].length;
  }
}

/**
 * Why `name` cannot be an app name, or undefined when it can. sealer asks only for a non-empty
 * name; the name also becomes the directory `application/apps/<name>/`, so it must be one path
 * segment that stays inside `application/apps/` (`.`, `..` and `/` are refused, and NUL, which
 * no path may hold).
 */
export function appNameProblem(name: string): string | undefined {
  if (name === '') return 'is empty';
  if (name === '.' || name === '..') return `is ${JSON.stringify(name)}, which would not be a directory of its own under application/apps/`;
  if (name.includes('/')) return 'contains "/" (it must be one directory name under application/apps/)';
  if (name.includes('\0')) return 'contains a NUL character';
  if (Buffer.byteLength(name) > 255) return 'is longer than 255 bytes (a directory name cannot be)';
  return undefined;
}

/**
 * `APPENV`'s pairs as sealer reads them: every word after the app name that holds an `=` is a
 * pair (split at the first `=`; the key may be empty), words without one are skipped, and nothing
 * is unquoted or expanded
 * (https://github.com/sealerio/sealer/blob/v0.11.0/build/kubefile/parser/kubefile.go#L358-L365).
 */
export function sealerPairs(words: readonly string[]): { pairs: KeyValue[]; skipped: string[] } {
  const pairs: KeyValue[] = [];
  const skipped: string[] = [];
  for (const word of words) {
    const eq = word.indexOf('=');
    if (eq < 0) skipped.push(word);
    else pairs.push({ key: word.slice(0, eq), value: word.slice(eq + 1) });
  }
  return { pairs, skipped };
}

/**
 * What sealer v0.10+ records in the image extension's `env` for one `ENV` line: the original
 * line after its first `ENV ` (upper case, one space; sealer refuses the line without one), split
 * on single spaces, each word with an `=` a pair, quotes and `$` kept as written.
 */
export function sealerEnvPairs(original: string): { pairs: KeyValue[]; refused: boolean } {
  const at = original.indexOf('ENV ');
  if (at < 0) return { pairs: [], refused: true };
  const words = original.slice(at + 'ENV '.length).split(' ').filter((w) => w !== '');
  return { pairs: sealerPairs(words).pairs, refused: false };
}

/**
 * What sealer records for `CMD …`: the original line between its first `CMD ` and the next one
 * (sealer splits the line on `CMD ` and keeps the second piece;
 * https://github.com/sealerio/sealer/blob/v0.11.0/build/kubefile/parser/kubefile.go#L402-L408),
 * without surrounding blanks. Undefined when the line holds no `CMD ` (sealer fails on it).
 */
export function sealerCmdText(original: string): string | undefined {
  const parts = original.split('CMD ');
  return parts.length >= 2 ? parts[1].trim() : undefined;
}
