import fc from 'fast-check';
import { KubefileSyntaxError } from '../../lib/errors';
import { expandWord, parseKubefile, splitWords, type VariableLookup } from '../../lib/kubefile';

const env: Record<string, string> = { ARCH: 'amd64', EMPTY: '', VERSION: 'v1.19.9', SPACED: 'a  b', 'ÄRGER': 'unicode' };
const lookup: VariableLookup = (name) => (Object.hasOwn(env, name) ? env[name] : undefined);
const expand = (word: string): string => expandWord(word, lookup);

describe('expandWord: variables', () => {
  it.each([
    ['$ARCH', 'amd64'],
    ['${ARCH}', 'amd64'],
    ['bin/${ARCH}/kubectl', 'bin/amd64/kubectl'],
    ['bin/$ARCH/kubectl', 'bin/amd64/kubectl'],
    ['$ARCH.tar', 'amd64.tar'],
    ['${ARCH}64', 'amd6464'],
    ['$ARCH64', ''], // the name runs on: ARCH64 is unset
    ['$UNSET', ''],
    ['${UNSET}', ''],
    ['x$UNSET-y', 'x-y'],
    ['$', '$'],
    ['a$', 'a$'],
    ['$/x', '$/x'],
    ['100$%', '100$%'],
    ['$1', ''],
    ['$ÄRGER', 'unicode'],
    ['$SPACED', 'a  b'],
  ])('%s → %j', (word, value) => {
    expect(expand(word)).toBe(value);
  });
});

describe('expandWord: modifiers', () => {
  it.each([
    ['${UNSET:-fallback}', 'fallback'],
    ['${EMPTY:-fallback}', 'fallback'],
    ['${ARCH:-fallback}', 'amd64'],
    ['${UNSET-fallback}', 'fallback'],
    ['${EMPTY-fallback}', ''],
    ['${ARCH-fallback}', 'amd64'],
    ['${UNSET:+alt}', ''],
    ['${EMPTY:+alt}', ''],
    ['${ARCH:+alt}', 'alt'],
    ['${UNSET+alt}', ''],
    ['${EMPTY+alt}', 'alt'],
    ['${ARCH+alt}', 'alt'],
    ['${UNSET:-}', ''],
    ['${UNSET:-${ARCH}}', 'amd64'],
    ['${UNSET:-$VERSION-$ARCH}', 'v1.19.9-amd64'],
    ['${UNSET:-"a }b"}', 'a }b'],
    ["${UNSET:-'$ARCH'}", '$ARCH'],
    ['${UNSET:-a\\}b}', 'a}b'],
    ['${ARCH:?must be set}', 'amd64'],
    ['${EMPTY?must be set}', ''],
  ])('%s → %j', (word, value) => {
    expect(expand(word)).toBe(value);
  });

  it('fails ${VAR:?message} when unset or empty, and ${VAR?} only when unset', () => {
    expect(() => expand('${UNSET:?set VERSION first}')).toThrow('UNSET: set VERSION first');
    expect(() => expand('${EMPTY:?}')).toThrow('EMPTY: is not set or empty');
    expect(() => expand('${UNSET?}')).toThrow('UNSET: is not set');
  });

  it.each([
    ['${}', 1, 'bad substitution ${}: no variable name'],
    ['ab${ARCH', 3, 'missing } in ${ARCH'],
    ['${ARCH:-x', 1, 'missing } in ${ARCH:-x'],
    ['${ARCH:x}', 8, 'unsupported modifier :x in ${ARCH…}'],
    ['${ARCH/a/b}', 7, 'unsupported modifier / in ${ARCH…}'],
  ])('rejects %s at offset column %i', (word, column, reason) => {
    let error: unknown;
    try {
      expand(word);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(KubefileSyntaxError);
    expect(error).toMatchObject({ column, reason, line: 1 });
  });
});

describe('expandWord: quotes and escapes', () => {
  it.each([
    ["'$ARCH'", '$ARCH'],
    ["'a \\ b'", 'a \\ b'],
    ['"$ARCH"', 'amd64'],
    ['"a  b"', 'a  b'],
    ['"${UNSET:-x y}"', 'x y'],
    ['pre"mid"post', 'premidpost'],
    ['"it\'s"', "it's"],
    ["'say \"hi\"'", 'say "hi"'],
    ['\\$ARCH', '$ARCH'],
    ['\\${ARCH}', '${ARCH}'],
    ['a\\ b', 'a b'],
    ['\\\\', '\\'],
    ['a\\', 'a'],
    ['"\\$ARCH"', '$ARCH'],
    ['"\\""', '"'],
    ['"\\\\"', '\\'],
    ['"\\n"', '\\n'],
    ['""', ''],
    ["''", ''],
  ])('%s → %j', (word, value) => {
    expect(expand(word)).toBe(value);
  });

  it('uses ` as the escape character under # escape=`, leaving \\ alone', () => {
    const opts = { escape: '`' as const };
    expect(expandWord('C:\\rootfs\\$ARCH', lookup, opts)).toBe('C:\\rootfs\\amd64');
    expect(expandWord('`$ARCH', lookup, opts)).toBe('$ARCH');
    expect(expandWord('"a`"b"', lookup, opts)).toBe('a"b');
    expect(expandWord('"a\\"', lookup, opts)).toBe('a\\');
  });

  it('can treat quotes as ordinary characters', () => {
    expect(expandWord(`it's "$ARCH"`, lookup, { quotes: false })).toBe('it\'s "amd64"');
  });

  it('reports unterminated quotes at their Kubefile position', () => {
    const at = { file: 'Kubefile', line: 4, column: 10 };
    expect(() => expandWord('ab"cd', lookup, { at })).toThrow('Kubefile:4:12: unterminated double quote');
    expect(() => expandWord("'x", lookup, { at })).toThrow('Kubefile:4:10: unterminated single quote');
  });

  it('inserts a value verbatim, never re-reading quotes or $ in it', () => {
    fc.assert(
      fc.property(fc.string(), (value) => {
        const vars: VariableLookup = (name) => (name === 'X' ? value : undefined);
        expect(expandWord('${X}', vars)).toBe(value);
        expect(expandWord('"$X"', vars)).toBe(value);
      }),
    );
  });

  it('returns single-quoted text unchanged', () => {
    fc.assert(
      fc.property(
        fc.string().filter((s) => !s.includes("'")),
        (text) => {
          expect(expandWord(`'${text}'`, () => 'never')).toBe(text);
        },
      ),
    );
  });
});

describe('splitWords', () => {
  it.each([
    ['', []],
    ['   ', []],
    ['a b  c', ['a', 'b', 'c']],
    ['\ta\t b ', ['a', 'b']],
    ['"a b" c', ['"a b"', 'c']],
    ["'a \"b' c", ["'a \"b'", 'c']],
    ['pre"a b"post x', ['pre"a b"post', 'x']],
    ['a\\ b c', ['a\\ b', 'c']],
    ['"a\\" b" c', ['"a\\" b"', 'c']],
    ['k="v w" k2=x', ['k="v w"', 'k2=x']],
  ])('%j → %j', (text, words) => {
    expect(splitWords(text)).toEqual(words);
  });

  it('follows the escape character', () => {
    expect(splitWords('a` b c\\ d', { escape: '`' })).toEqual(['a` b', 'c\\', 'd']);
  });

  it('throws on an unterminated quote', () => {
    expect(() => splitWords('a "b c')).toThrow(KubefileSyntaxError);
    expect(() => splitWords("a 'b", { at: { line: 3, column: 7 } })).toThrow('Kubefile:3:9: unterminated single quote');
  });

  it('splits then expands to the values a shell would see', () => {
    const words = splitWords('"bin/${ARCH}/my tool" etc/${UNSET:-default}.yaml');
    expect(words.map((w) => expand(w))).toEqual(['bin/amd64/my tool', 'etc/default.yaml']);
  });

  it('round-trips plain words', () => {
    fc.assert(
      fc.property(fc.array(fc.stringMatching(/^[A-Za-z0-9_./:-]+$/), { maxLength: 8 }), (words) => {
        expect(splitWords(words.join('  '))).toEqual(words);
      }),
    );
  });
});

describe('expanding parsed Kubefile words (the interpreter flow)', () => {
  it('expands ARG defaults into COPY sources and ENV values', () => {
    const kf = parseKubefile(
      'ARG ARCH=arm64\nFROM kubernetes:v1.19.9\nCOPY bin/${ARCH}/kubectl "etc/my ${ARCH}.yaml" bin/\nENV TARGET="$ARCH linux"\n',
    );
    const args = new Map<string, string>();
    for (const i of kf.instructions) if (i.kind === 'ARG') for (const a of i.args) args.set(a.name, expandWord(a.default ?? '', (n) => args.get(n)));
    const vars: VariableLookup = (n) => args.get(n);
    const copy = kf.instructions[2];
    const env2 = kf.instructions[3];
    if (copy.kind !== 'COPY' || env2.kind !== 'ENV') throw new Error('unexpected instructions');
    expect(copy.sources.map((s) => expandWord(s, vars, { escape: kf.escape }))).toEqual(['bin/arm64/kubectl', 'etc/my arm64.yaml']);
    expect(expandWord(env2.pairs[0].value, vars)).toBe('arm64 linux');
  });
});
