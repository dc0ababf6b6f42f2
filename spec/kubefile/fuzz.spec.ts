import fc from 'fast-check';
import { KubefileSyntaxError } from '../../lib/errors';
import { expandWord, formatInstruction, parseKubefile, splitWords, INSTRUCTION_KINDS } from '../../lib/kubefile';

const runs = Number(process.env.FUZZ_RUNS ?? 300);

/** Either a result or a KubefileSyntaxError with a sane position: never anything else. */
function parsesOrFailsCleanly(text: string): void {
  try {
    const kf = parseKubefile(text);
    const lines = text.split(/\r?\n/).length;
    for (const i of kf.instructions) {
      expect(i.line).toBeGreaterThanOrEqual(1);
      expect(i.endLine).toBeGreaterThanOrEqual(i.line);
      expect(i.endLine).toBeLessThanOrEqual(lines);
      expect(typeof formatInstruction(i)).toBe('string');
    }
  } catch (err) {
    if (!(err instanceof KubefileSyntaxError)) throw err;
    expect(err.line).toBeGreaterThanOrEqual(1);
    expect(err.column).toBeGreaterThanOrEqual(1);
    expect(err.expected.length).toBeGreaterThan(0);
  }
}

const fragment = fc.oneof(
  fc.constantFrom(...INSTRUCTION_KINDS, 'from scratch', '\\', '`', '#', '# escape=`', '"', "'", '[', ']', '",', '=', '--from=', '${', '}', ' ', '\t', '\n', '\r\n'),
  fc.string({ maxLength: 6 }),
);

describe('robustness', () => {
  it('never crashes on arbitrary text', () => {
    fc.assert(fc.property(fc.string({ maxLength: 200 }), parsesOrFailsCleanly), { numRuns: runs });
  });

  it('never crashes on Kubefile-shaped noise', () => {
    fc.assert(
      fc.property(fc.array(fragment, { maxLength: 40 }), (parts) => parsesOrFailsCleanly(`FROM scratch\n${parts.join('')}`)),
      { numRuns: runs },
    );
  });

  it('expands or rejects any word cleanly', () => {
    fc.assert(
      fc.property(fc.array(fragment, { maxLength: 12 }), fc.constantFrom('\\' as const, '`' as const), (parts, escape) => {
        const word = parts.join('');
        for (const fn of [() => expandWord(word, (n) => (n.length % 2 ? n : undefined), { escape }), () => splitWords(word, { escape })]) {
          try {
            fn();
          } catch (err) {
            if (!(err instanceof KubefileSyntaxError)) throw err;
          }
        }
      }),
      { numRuns: runs },
    );
  });
});
