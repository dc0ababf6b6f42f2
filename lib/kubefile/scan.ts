/**
 * The first pass over Kubefile text, as buildkit's parser does it: strip a UTF-8 BOM, read the
 * parser directives at the top, then join physical lines into logical lines. A line ending in the
 * escape character (plus optional blanks) continues on the next line; comment lines and blank
 * lines inside a continuation are skipped (blank ones earn a warning). Each logical line keeps a
 * map back to source positions so later errors can point at the exact line and column.
 */
import { KubefileSyntaxError } from '../errors';
import type { EscapeChar, ParseWarning } from './types';

export interface SourcePosition {
  line: number;
  column: number;
}

/** A stretch of a logical line copied from one physical line. */
interface Segment {
  offset: number;
  line: number;
  column: number;
}

export class LogicalLine {
  constructor(
    /** Joined text: continuation characters removed, the first line's indent removed. */
    readonly text: string,
    readonly line: number,
    readonly endLine: number,
    readonly raw: string,
    private readonly segments: Segment[],
  ) {}

  /** Source position of `text[offset]` (an offset at the end maps just past the last character). */
  position(offset: number): SourcePosition {
    let segment = this.segments[0];
    for (const s of this.segments) {
      if (s.offset > offset) break;
      segment = s;
    }
    return { line: segment.line, column: segment.column + (offset - segment.offset) };
  }
}

export interface ScanResult {
  escape: EscapeChar;
  directives: Record<string, string>;
  lines: LogicalLine[];
  warnings: ParseWarning[];
}

const BOM = '\uFEFF';
/** buildkit's directive shape: `# name = value`; only known names count as directives. */
const DIRECTIVE = /^#[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=[ \t]*(.+?)[ \t]*$/;
const KNOWN_DIRECTIVES = new Set(['escape', 'syntax', 'check']);

function continuationPattern(escape: EscapeChar): RegExp {
  return escape === '`' ? /`[ \t]*$/ : /\\[ \t]*$/;
}

function isComment(line: string): boolean {
  return line.trimStart().startsWith('#');
}

export function splitPhysicalLines(text: string): string[] {
  const body = text.startsWith(BOM) ? text.slice(1) : text;
  const lines = body.split(/\r?\n/);
  // A final newline does not start another line.
  if (lines.length > 1 && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

function readDirectives(
  lines: string[],
  file: string | undefined,
): { escape: EscapeChar; directives: Record<string, string>; end: number } {
  const directives: Record<string, string> = {};
  let escape: EscapeChar = '\\';
  let i = 0;
  for (; i < lines.length; i++) {
    const trimmed = lines[i].trimStart();
    const match = DIRECTIVE.exec(trimmed);
    if (!match) break; // a blank line, an instruction or an ordinary comment ends the section
    const name = match[1].toLowerCase();
    if (!KNOWN_DIRECTIVES.has(name)) break;
    const column = lines[i].length - trimmed.length + 1;
    if (name in directives) {
      throw new KubefileSyntaxError({
        file,
        line: i + 1,
        column,
        reason: `the ${name} parser directive can be used only once`,
        expected: 'at most one directive of each name',
      });
    }
    const value = match[2];
    if (name === 'escape') {
      if (value !== '\\' && value !== '`') {
        throw new KubefileSyntaxError({
          file,
          line: i + 1,
          column: column + trimmed.indexOf(value, trimmed.indexOf('=')),
          reason: `invalid escape character ${JSON.stringify(value)} in the escape directive`,
          expected: '\\ or `',
        });
      }
      escape = value;
    }
    directives[name] = value;
  }
  return { escape, directives, end: i };
}

export function scanKubefile(text: string, file?: string): ScanResult {
  const physical = splitPhysicalLines(text);
  const { escape, directives, end: directivesEnd } = readDirectives(physical, file);
  const continuation = continuationPattern(escape);
  const warnings: ParseWarning[] = [];
  const lines: LogicalLine[] = [];

  const warnMisplacedDirective = (index: number): void => {
    if (index < directivesEnd) return;
    const trimmed = physical[index].trimStart();
    const match = DIRECTIVE.exec(trimmed);
    if (match && KNOWN_DIRECTIVES.has(match[1].toLowerCase())) {
      warnings.push({
        code: 'MISPLACED_DIRECTIVE',
        message: `"${trimmed}" is only a comment: parser directives must come first, before any other line`,
        line: index + 1,
        column: physical[index].length - trimmed.length + 1,
        file,
      });
    }
  };

  let i = 0;
  while (i < physical.length) {
    const first = physical[i];
    const trimmed = first.trimStart();
    if (trimmed === '' || trimmed.startsWith('#')) {
      if (trimmed.startsWith('#')) warnMisplacedDirective(i);
      i++;
      continue;
    }

    const startIndex = i;
    const indent = first.length - trimmed.length;
    const segments: Segment[] = [{ offset: 0, line: i + 1, column: indent + 1 }];
    let joined: string;
    let match = continuation.exec(trimmed);
    i++;
    if (!match) {
      joined = trimmed;
    } else {
      joined = trimmed.slice(0, match.index);
      let lastEscape: SourcePosition = { line: startIndex + 1, column: indent + match.index + 1 };
      const emptyLines: number[] = [];
      let open = true;
      while (open && i < physical.length) {
        const next = physical[i];
        if (isComment(next)) {
          i++;
          continue;
        }
        if (next.trim() === '') {
          emptyLines.push(i + 1);
          i++;
          continue;
        }
        segments.push({ offset: joined.length, line: i + 1, column: 1 });
        match = continuation.exec(next);
        if (match) {
          joined += next.slice(0, match.index);
          lastEscape = { line: i + 1, column: match.index + 1 };
        } else {
          joined += next;
          open = false;
        }
        i++;
      }
      if (open) {
        throw new KubefileSyntaxError({
          file,
          ...lastEscape,
          reason: `the line continues with ${escape} but the file ends before the instruction does`,
          expected: 'another line after the line continuation',
        });
      }
      for (const line of emptyLines) {
        warnings.push({
          code: 'EMPTY_CONTINUATION_LINE',
          message: `empty continuation line inside the instruction that starts on line ${startIndex + 1}; buildkit will reject these in a future release`,
          line,
          column: 1,
          file,
        });
      }
    }
    // Interleaved comment lines keep their place in `raw`: it is the source span verbatim.
    const raw = physical.slice(startIndex, i).join('\n');
    lines.push(new LogicalLine(joined, startIndex + 1, i, raw, segments));
  }
  return { escape, directives, lines, warnings };
}
