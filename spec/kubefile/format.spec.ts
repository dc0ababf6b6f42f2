import fc from 'fast-check';
import { formatInstruction, parseKubefile, type Instruction } from '../../lib/kubefile';

/** An instruction without where it came from: what it means, not how it was laid out. */
function meaning(i: Instruction): Record<string, unknown> {
  const { line, endLine, column, raw, original, keyword, ...rest } = i;
  void line, endLine, column, raw, original, keyword;
  // A JSON-form CMD's `text` is its array as written; the canonical spacing may differ.
  if (rest.kind === 'CMD' && rest.form === 'json') return { ...rest, text: undefined };
  // APPENV words without `=` set nothing (sealer skips them); the canonical text leaves them out.
  if (rest.kind === 'APPENV') return { ...rest, skipped: undefined };
  return rest;
}

function parseOne(line: string, escape = '\\'): Instruction {
  const directive = escape === '`' ? '# escape=`\n' : '';
  const kf = parseKubefile(`${directive}FROM scratch\n${line}\n`);
  return kf.instructions[kf.instructions.length - 1];
}

describe('formatInstruction', () => {
  it.each([
    ['from  --platform=linux/arm64   kubernetes:v1.19.9   as   Base', 'FROM --platform=linux/arm64 kubernetes:v1.19.9 AS base'],
    ['copy   . .', 'COPY . .'],
    ['COPY --chown=0:0 --from=base a  b \\\n   etc/', 'COPY --from=base --chown=0:0 a b etc/'],
    ['COPY ["a b","c"]', 'COPY ["a b", "c"]'],
    ['ADD --chmod=755 "my file" bin/', 'ADD --chmod=755 "my file" bin/'],
    ['ARG  A  B=1 C="x y"', 'ARG A B=1 C="x y"'],
    ['ENV  A=1   B="two words"', 'ENV A=1 B="two words"'],
    ['ENV A  legacy value', 'ENV A legacy value'],
    ['LABEL io.sealer.version=v0.9.3', 'LABEL io.sealer.version=v0.9.3'],
    ['MAINTAINER  me <me@example.com>', 'MAINTAINER me <me@example.com>'],
    ['RUN  --mount=type=cache,target=/c   echo "a  b" && true', 'RUN --mount=type=cache,target=/c echo "a  b" && true'],
    ['RUN ["bash","-c","echo hi"]', 'RUN ["bash", "-c", "echo hi"]'],
    ['CMD kubectl apply -f a.yaml, kubectl get pods', 'CMD kubectl apply -f a.yaml, kubectl get pods'],
    ['CMD ["a","b"]', 'CMD ["a", "b"]'],
    ['CMDS ["kubectl apply -f \\"x y\\".yaml"]', 'CMDS ["kubectl apply -f \\"x y\\".yaml"]'],
    ['launch calico   mysql', 'LAUNCH calico mysql'],
    ['LAUNCH ["calico","mysql"]', 'LAUNCH ["calico", "mysql"]'],
    ['APP mysql  local://mysql.yaml https://example.com/v.yaml', 'APP mysql local://mysql.yaml https://example.com/v.yaml'],
    ['CNI ["calico","local://calico.yaml"]', 'CNI ["calico", "local://calico.yaml"]'],
    ['csi openebs local://openebs/', 'CSI openebs local://openebs/'],
    ['APPCMDS mysql   ["bash install.sh"]', 'APPCMDS mysql ["bash install.sh"]'],
    // sealer splits APPENV on blanks and keeps quotes; `y"` has no `=` and is skipped:
    // https://github.com/sealerio/sealer/blob/v0.11.0/build/kubefile/parser/line_parsers.go#L361-L372
    ['APPENV mysql  A=1 B="x y"', 'APPENV mysql A=1 B="x'],
    ['APPENV ["mysql", "B=x y"]', 'APPENV ["mysql", "B=x y"]'],
    // sealer puts KUBEVERSION's text, quotes included, in the label:
    // https://github.com/sealerio/sealer/blob/v0.11.0/build/kubefile/parser/kubefile.go#L266-L271
    ['KUBEVERSION ">=1.20.0"', 'KUBEVERSION ">=1.20.0"'],
  ])('%j → %j', (line, expected) => {
    const instruction = parseOne(line);
    const text = formatInstruction(instruction);
    expect(text).toBe(expected);
    // Reading the canonical text back means the same thing.
    expect(meaning(parseOne(text))).toEqual(meaning(instruction));
  });

  it('keeps backtick escapes, to be read back under the same directive', () => {
    const instruction = parseOne('COPY a` b `\n  c', '`');
    const text = formatInstruction(instruction);
    expect(text).toBe('COPY a` b c');
    expect(meaning(parseOne(text, '`'))).toEqual(meaning(instruction));
  });

  it('round-trips any JSON-form command list', () => {
    fc.assert(
      fc.property(fc.array(fc.string(), { minLength: 1, maxLength: 5 }), (commands) => {
        const instruction = parseOne(`CMDS ${JSON.stringify(commands)}`);
        expect(instruction).toMatchObject({ kind: 'CMDS', commands });
        expect(meaning(parseOne(formatInstruction(instruction)))).toEqual(meaning(instruction));
      }),
    );
  });

  it('round-trips COPY with arbitrary JSON-form paths', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ minLength: 1 }), { minLength: 2, maxLength: 4 }), (paths) => {
        const instruction = parseOne(`COPY ${JSON.stringify(paths)}`);
        expect(instruction).toMatchObject({ kind: 'COPY', sources: paths.slice(0, -1), dest: paths[paths.length - 1] });
        expect(meaning(parseOne(formatInstruction(instruction)))).toEqual(meaning(instruction));
      }),
    );
  });
});
