import { parseKubefile, type Instruction } from '../../lib/kubefile';

function shellCommand(i: Instruction): string {
  if (i.kind !== 'RUN' || i.form !== 'shell') throw new Error(`expected a shell-form RUN, got ${i.kind}`);
  return i.command;
}

describe('line continuation', () => {
  it('joins lines ending in \\ and records the span', () => {
    const text = 'FROM scratch\nCOPY a \\\n     b \\\n     dest/\nRUN true\n';
    const kf = parseKubefile(text);
    const copy = kf.instructions[1];
    expect(copy).toMatchObject({ kind: 'COPY', line: 2, endLine: 4, sources: ['a', 'b'], dest: 'dest/' });
    expect(copy.raw).toBe('COPY a \\\n     b \\\n     dest/');
    // Like buildkit's Original: continuation characters gone, continuation-line indent kept.
    expect(copy.original).toBe('COPY a      b      dest/');
    expect(kf.instructions[2].line).toBe(5);
  });

  it('allows blanks after the escape character', () => {
    const kf = parseKubefile('FROM scratch\nRUN echo a \\   \t\n  b\n');
    expect(shellCommand(kf.instructions[1])).toBe('echo a   b');
  });

  it('skips comment lines inside a continuation, as buildkit does', () => {
    const text = [
      'FROM scratch',
      'RUN apt-get update && \\',
      '# the mirror is slow',
      '    # an indented comment',
      '    apt-get install -y curl',
      'COPY a b',
    ].join('\n');
    const kf = parseKubefile(text);
    expect(shellCommand(kf.instructions[1])).toBe('apt-get update &&     apt-get install -y curl');
    expect(kf.instructions[1]).toMatchObject({ line: 2, endLine: 5 });
    expect(kf.instructions[1].raw.split('\n')).toHaveLength(4);
    expect(kf.instructions[2].line).toBe(6);
    expect(kf.warnings).toEqual([]);
  });

  it('skips blank lines inside a continuation and warns about each', () => {
    const kf = parseKubefile('FROM scratch\nRUN echo a \\\n\n   \n  b\n');
    expect(shellCommand(kf.instructions[1])).toBe('echo a   b');
    expect(kf.instructions[1].endLine).toBe(5);
    expect(kf.warnings.map((w) => [w.code, w.line])).toEqual([
      ['EMPTY_CONTINUATION_LINE', 3],
      ['EMPTY_CONTINUATION_LINE', 4],
    ]);
  });

  it('treats an escaped-looking backslash at the end as a continuation too (buildkit does)', () => {
    const kf = parseKubefile('FROM scratch\nRUN echo \\\\\nCOPY a b\n');
    expect(shellCommand(kf.instructions[1])).toBe('echo \\COPY a b');
    expect(kf.instructions).toHaveLength(2);
  });

  it('reports positions across continuation lines', () => {
    // The bad flag value sits on line 3, column 3.
    expect(() => parseKubefile('FROM scratch\nCOPY \\\n  --nope=1 a b\n')).toThrow(
      'Kubefile:3:3: COPY does not accept --nope (it accepts --from, --chown, --chmod)',
    );
  });
});

describe('the escape directive', () => {
  it('makes ` the continuation character and \\ an ordinary one', () => {
    const text = '# escape=`\nFROM scratch\nCOPY C:\\rootfs\\etc `\n   etc\\\nRUN echo a`\n  b\n';
    const kf = parseKubefile(text);
    expect(kf.escape).toBe('`');
    expect(kf.directives).toEqual({ escape: '`' });
    expect(kf.instructions[1]).toMatchObject({ sources: ['C:\\rootfs\\etc'], dest: 'etc\\', line: 3, endLine: 4 });
    expect(shellCommand(kf.instructions[2])).toBe('echo a  b');
  });

  it('accepts spacing and case variations, and # escape=\\', () => {
    expect(parseKubefile('#  ESCAPE = `  \nFROM scratch').escape).toBe('`');
    expect(parseKubefile('# escape=\\\nFROM scratch').escape).toBe('\\');
  });

  it('records syntax and check directives alongside escape', () => {
    const kf = parseKubefile('# syntax=docker/dockerfile:1\n# check=skip=JSONArgsRecommended\n# escape=`\nFROM scratch');
    expect(kf.directives).toEqual({ syntax: 'docker/dockerfile:1', check: 'skip=JSONArgsRecommended', escape: '`' });
  });

  it('ignores a directive after an ordinary comment, with a warning', () => {
    const kf = parseKubefile('# my cluster image\n# escape=`\nFROM scratch\nRUN a \\\n  b\n');
    expect(kf.escape).toBe('\\');
    expect(kf.directives).toEqual({});
    expect(shellCommand(kf.instructions[1])).toBe('a   b');
    expect(kf.warnings).toMatchObject([{ code: 'MISPLACED_DIRECTIVE', line: 2, column: 1 }]);
  });

  it('ignores a directive after a blank line or an instruction', () => {
    expect(parseKubefile('\n# escape=`\nFROM scratch').escape).toBe('\\');
    const kf = parseKubefile('FROM scratch\n# escape=`\n');
    expect(kf.escape).toBe('\\');
    expect(kf.warnings.map((w) => w.code)).toEqual(['MISPLACED_DIRECTIVE']);
  });

  it('an unknown name ends the directive section', () => {
    const kf = parseKubefile('# foo=bar\n# escape=`\nFROM scratch');
    expect(kf.directives).toEqual({});
    expect(kf.escape).toBe('\\');
  });
});

describe('line endings, BOM and comments', () => {
  it('reads Windows CRLF line endings, continuation included', () => {
    const text = 'FROM scratch\r\nCOPY a \\\r\n  b\r\nCMDS ["echo hi"]\r\n';
    const kf = parseKubefile(text);
    expect(kf.instructions[1]).toMatchObject({ sources: ['a'], dest: 'b', line: 2, endLine: 3, raw: 'COPY a \\\n  b' });
    expect(kf.instructions[2]).toMatchObject({ kind: 'CMDS', commands: ['echo hi'], line: 4 });
  });

  it('reads CRLF with the backtick escape directive', () => {
    const kf = parseKubefile('# escape=`\r\nFROM scratch\r\nRUN dir `\r\n  /b\r\n');
    expect(kf.escape).toBe('`');
    expect(shellCommand(kf.instructions[1])).toBe('dir   /b');
  });

  it('strips a UTF-8 BOM, even before a directive', () => {
    const kf = parseKubefile('\uFEFF# escape=`\nFROM scratch');
    expect(kf.escape).toBe('`');
    expect(kf.instructions[0]).toMatchObject({ kind: 'FROM', line: 2, column: 1 });
    expect(parseKubefile('\uFEFFFROM scratch').instructions[0].column).toBe(1);
  });

  it('skips comment lines (also indented) and blank lines, keeping line numbers', () => {
    const kf = parseKubefile('# base image\n\nFROM scratch\n   # indented comment\n\n\nCOPY . .\n');
    expect(kf.instructions.map((i) => i.line)).toEqual([3, 7]);
  });

  it('keeps a missing final newline and trailing blanks harmless', () => {
    const kf = parseKubefile('FROM scratch   \nCOPY . .   ');
    expect(kf.instructions[1]).toMatchObject({ sources: ['.'], dest: '.', original: 'COPY . .' });
  });
});
