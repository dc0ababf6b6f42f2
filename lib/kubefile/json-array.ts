/**
 * A strict reader for the one JSON shape a Kubefile uses: an array of strings. Written by hand
 * (rather than JSON.parse) so a mistake is reported at its exact offset with what was expected.
 */

export type JsonArrayResult =
  | { ok: true; values: string[] }
  | {
      ok: false;
      offset: number;
      reason: string;
      expected: string;
      /** Valid JSON whose elements are not all strings (buildkit rejects this outright). */
      notStrings?: boolean;
    };

const WHITESPACE = /[ \t\n\r]/;

/** True when the whole text is valid JSON and an array (of anything). */
function isJsonArray(text: string): boolean {
  try {
    return Array.isArray(JSON.parse(text));
  } catch {
    return false;
  }
}

export function parseJsonStringArray(text: string): JsonArrayResult {
  let pos = 0;
  const skip = (): void => {
    while (pos < text.length && WHITESPACE.test(text[pos])) pos++;
  };
  const fail = (reason: string, expected: string, notStrings = false): JsonArrayResult => ({
    ok: false,
    offset: pos,
    reason,
    expected,
    notStrings,
  });
  const describe = (): string => (pos < text.length ? JSON.stringify(text[pos]) : 'the end of the line');

  skip();
  if (text[pos] !== '[') return fail(`expected [ but found ${describe()}`, '[');
  pos++;
  const values: string[] = [];
  skip();
  if (text[pos] === ']') {
    pos++;
  } else {
    for (;;) {
      skip();
      if (text[pos] !== '"') {
        const notStrings = isJsonArray(text);
        return fail(
          notStrings ? 'JSON array elements must be strings' : `expected a "string" but found ${describe()}`,
          'a JSON string in double quotes',
          notStrings,
        );
      }
      const start = pos;
      pos++;
      while (pos < text.length && text[pos] !== '"') {
        if (text.charCodeAt(pos) < 0x20) return fail('control character inside a JSON string', 'an escaped character such as \\n');
        pos += text[pos] === '\\' ? 2 : 1;
      }
      if (pos >= text.length) {
        pos = start;
        return fail('unterminated JSON string', 'a closing "');
      }
      pos++;
      try {
        values.push(JSON.parse(text.slice(start, pos)) as string);
      } catch {
        pos = start;
        return fail('invalid escape sequence in a JSON string', 'a JSON escape such as \\" \\\\ \\n or \\u00e9');
      }
      skip();
      if (text[pos] === ',') {
        pos++;
        continue;
      }
      if (text[pos] === ']') {
        pos++;
        break;
      }
      return fail(`expected , or ] after an array element but found ${describe()}`, ', or ]');
    }
  }
  skip();
  if (pos < text.length) return fail(`unexpected ${describe()} after the closing ]`, 'nothing after ]');
  return { ok: true, values };
}
