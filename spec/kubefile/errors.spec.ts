import { CloudRootfsError, KubefileSyntaxError } from '../../lib/errors';
import { parseKubefile } from '../../lib/kubefile';

/** Parses and returns the KubefileSyntaxError it must throw. */
function syntaxError(text: string, file?: string): KubefileSyntaxError {
  try {
    parseKubefile(text, file === undefined ? {} : { file });
  } catch (err) {
    expect(err).toBeInstanceOf(KubefileSyntaxError);
    return err as KubefileSyntaxError;
  }
  throw new Error(`expected a syntax error for ${JSON.stringify(text)}`);
}

/** `line:column: reason` of the error, for compact expectations. */
function where(text: string): string {
  const e = syntaxError(text);
  return `${e.line}:${e.column}: ${e.reason}`;
}

describe('KubefileSyntaxError', () => {
  it('carries code, file, line, column and expected, and says where in its message', () => {
    const e = syntaxError('FROM kubernetes:v1.19.9\n\n# patch docker\n\n\n\nCOPY daemon.json\n', 'build/Kubefile');
    expect(e).toBeInstanceOf(CloudRootfsError);
    expect(e.code).toBe('KUBEFILE_SYNTAX');
    expect(e.message).toBe('build/Kubefile:7:5: COPY needs at least a source and a destination (got 1 argument)');
    expect(e).toMatchObject({ file: 'build/Kubefile', line: 7, column: 5, expected: 'COPY <source>… <destination>' });
    expect(e.details).toMatchObject({ line: 7, column: 5 });
  });

  it('names the file Kubefile when none is given', () => {
    expect(syntaxError('FROM scratch\nCOPY a\n').message).toBe(
      'Kubefile:2:5: COPY needs at least a source and a destination (got 1 argument)',
    );
  });
});

describe('unknown instructions', () => {
  it('rejects Dockerfile-only instructions by name', () => {
    expect(where('FROM scratch\n  WORKDIR /app\n')).toBe('2:3: WORKDIR is a Dockerfile instruction that Kubefiles do not support');
  });

  it('suggests the closest instruction for a typo', () => {
    expect(where('FROM scratch\nCPOY a b\n')).toBe('2:1: unknown instruction "CPOY"; did you mean COPY?');
    expect(where('FROM scratch\nAPPCMD x ["a"]\n')).toBe('2:1: unknown instruction "APPCMD"; did you mean APPCMDS?');
    expect(where('FROM scratch\nFROBNICATE\n')).toBe('2:1: unknown instruction "FROBNICATE"');
  });

  it('lists the valid instructions as expected', () => {
    expect(syntaxError('FROM scratch\nXYZ\n').expected).toContain('KUBEVERSION');
  });
});

describe('missing arguments', () => {
  it.each([
    ['FROM', '1:5: FROM needs an image (got no arguments)'],
    ['FROM scratch\nCOPY', '2:5: COPY needs at least a source and a destination (got no arguments)'],
    ['FROM scratch\nADD x', '2:4: ADD needs at least a source and a destination (got 1 argument)'],
    ['FROM scratch\nARG', '2:4: ARG needs a variable name'],
    ['FROM scratch\nENV   ', '2:4: ENV needs at least one KEY=VALUE pair'],
    ['FROM scratch\nLABEL', '2:6: LABEL needs at least one KEY=VALUE pair'],
    ['FROM scratch\nMAINTAINER', '2:11: MAINTAINER needs a name'],
    ['FROM scratch\nRUN', '2:4: RUN needs a command'],
    ['FROM scratch\nCMD', '2:4: CMD needs a command'],
    ['FROM scratch\nCMDS', '2:5: CMDS needs a JSON array of commands'],
    ['FROM scratch\nLAUNCH', '2:7: LAUNCH needs at least one app name'],
    ['FROM scratch\nAPP mysql', '2:4: APP needs an app name and at least one source (got 1 argument)'],
    ['FROM scratch\nCNI', '2:4: CNI needs an app name and at least one source (got no arguments)'],
    ['FROM scratch\nAPPCMDS', '2:8: APPCMDS needs an app name followed by a JSON array of commands'],
    ['FROM scratch\nAPPCMDS mysql', '2:14: APPCMDS mysql needs a JSON array of commands after the app name'],
    ['FROM scratch\nAPPENV', '2:7: APPENV needs an app name'],
    ['FROM scratch\nKUBEVERSION', '2:12: KUBEVERSION needs a semver range'],
    ['FROM scratch\nENV PATH', '2:9: ENV PATH needs a value'],
  ])('%j', (text, expected) => {
    expect(where(text)).toBe(expected);
  });
});

describe('bad arguments', () => {
  it.each([
    ['FROM a b', '1:8: FROM takes an image and an optional "AS name" (got 2 arguments)'],
    ['FROM a AS b c', '1:13: FROM takes an image and an optional "AS name" (got 4 arguments)'],
    ['FROM a AS 1st', '1:11: invalid stage name "1st"'],
    ['FROM scratch\nENV A=1 B', '2:9: ENV expects KEY=VALUE pairs, but "B" has no ='],
    ['FROM scratch\nLABEL =x', '2:7: LABEL: empty key in "=x"'],
    ['FROM scratch\nARG "A B"=1', '2:5: invalid ARG name "\\"A B\\""'],
    ['FROM scratch\nAPP ../etc local://x', '2:5: APP: invalid app name "../etc": it contains "/" (it must be one directory name under application/apps/)'],
    ['FROM scratch\nAPP .. local://x', '2:5: APP: invalid app name "..": it is "..", which would not be a directory of its own under application/apps/'],
    ['FROM scratch\nLAUNCH ok bad/name', '2:11: LAUNCH: invalid app name "bad/name": it contains "/" (it must be one directory name under application/apps/)'],
    ['FROM scratch\nAPP x git://example.com/x.git', '2:7: source schema should be specified with https:// http:// local:// in APP'],
    ['FROM scratch\nAPP x local://', '2:7: APP: local:// needs a path'],
    ['FROM scratch\nKUBEVERSION >=1.20; rm -rf /', '2:19: KUBEVERSION: ";" cannot appear in a semver range'],
    ['FROM scratch\nKUBEVERSION latest', '2:13: KUBEVERSION: "latest" is not a semver range'],
    ['FROM scratch\nCMDS kubectl apply -f x', '2:6: CMDS takes commands as a JSON array, e.g. ["…", "…"]'],
    ['FROM scratch\nCMDS []', '2:6: CMDS needs at least one entry in its JSON array'],
    ['FROM scratch\nRUN []', '2:5: RUN needs a command (the JSON array is empty)'],
  ])('%j', (text, expected) => {
    expect(where(text)).toBe(expected);
  });
});

describe('flags', () => {
  it.each([
    ['FROM --plat=x a', '1:6: FROM does not accept --plat (it accepts --platform)'],
    ['FROM scratch\nCOPY --link a b', '2:6: COPY does not accept --link (it accepts --from, --chown, --chmod)'],
    ['FROM scratch\nCOPY --from a b', '2:6: --from needs a value'],
    ['FROM scratch\nCOPY --from= a b', '2:6: --from needs a value'],
    ['FROM scratch\nCOPY --chown=1 --chown=2 a b', '2:16: --chown is given more than once'],
    ['FROM scratch\nAPP --source x local://x', '2:5: APP does not accept flags (found --source)'],
    ['FROM scratch\nRUN --network=none --network=host true', '2:20: --network is given more than once'],
  ])('%j', (text, expected) => {
    expect(where(text)).toBe(expected);
  });
});

describe('malformed JSON', () => {
  it.each([
    ['FROM scratch\nCMDS ["a", ]', '2:12: CMDS has a malformed JSON array: expected a "string" but found "]"'],
    ['FROM scratch\nCMDS ["a" "b"]', '2:11: CMDS has a malformed JSON array: expected , or ] after an array element but found "\\""'],
    ['FROM scratch\nCMDS ["a"', '2:10: CMDS has a malformed JSON array: expected , or ] after an array element but found the end of the line'],
    ['FROM scratch\nCMDS ["a"] x', '2:12: CMDS has a malformed JSON array: unexpected "x" after the closing ]'],
    ["FROM scratch\nCMDS ['a']", '2:7: CMDS has a malformed JSON array: expected a "string" but found "\'"'],
    ['FROM scratch\nCMDS ["bad \\q"]', '2:7: CMDS has a malformed JSON array: invalid escape sequence in a JSON string'],
    ['FROM scratch\nCMDS ["open', '2:7: CMDS has a malformed JSON array: unterminated JSON string'],
    ['FROM scratch\nLAUNCH ["a",', '2:13: LAUNCH has a malformed JSON array: expected a "string" but found the end of the line'],
    ['FROM scratch\nCOPY ["a" "b"]', '2:11: COPY has a malformed JSON array: expected , or ] after an array element but found "\\""'],
    ['FROM scratch\nAPP ["x", 1]', '2:11: APP has a malformed JSON array: JSON array elements must be strings'],
    ['FROM scratch\nRUN ["echo", 1]', '2:14: RUN has a malformed JSON array: JSON array elements must be strings'],
    ['FROM scratch\nAPPCMDS x "kubectl apply -f a"', '2:11: APPCMDS takes commands as a JSON array, e.g. ["…", "…"]'],
    ['FROM scratch\nAPPCMDS x ["a"', '2:15: APPCMDS has a malformed JSON array: expected , or ] after an array element but found the end of the line'],
  ])('%j', (text, expected) => {
    expect(where(text)).toBe(expected);
  });
});

describe('ordering rules', () => {
  it('rejects an instruction before FROM but allows ARG', () => {
    expect(where('ARG V=1\n\nCOPY a b\nFROM scratch\n')).toBe(
      '3:1: COPY before FROM: a Kubefile starts with FROM (only ARG may come before it)',
    );
  });

  it('rejects a second LAUNCH or CMDS', () => {
    expect(where('FROM scratch\nLAUNCH a\nLAUNCH b\n')).toBe('3:1: LAUNCH can be used only once (it is already on line 2)');
    expect(where('FROM scratch\nCMDS ["a"]\ncmds ["b"]\n')).toBe('3:1: CMDS can be used only once (it is already on line 2)');
  });

  it('rejects CMD together with LAUNCH, in either order', () => {
    expect(where('FROM scratch\nCMD kubectl get nodes\nLAUNCH app\n')).toBe(
      '3:1: LAUNCH cannot be combined with CMD (line 2); move those commands into CMDS or APPCMDS',
    );
    expect(where('FROM scratch\nLAUNCH app\nCMD kubectl get nodes\n')).toBe(
      '3:1: CMD cannot be combined with LAUNCH (line 2); use CMDS or APPCMDS instead',
    );
  });

  it('requires LAUNCH and CMDS to be last', () => {
    expect(where('FROM scratch\nLAUNCH app\nCOPY a b\n')).toBe('3:1: COPY after LAUNCH: LAUNCH (line 2) must be the last instruction');
    expect(where('FROM scratch\nCMDS ["x"]\nLAUNCH app\n')).toBe('3:1: LAUNCH after CMDS: CMDS (line 2) must be the last instruction');
  });

  it('rejects a file without instructions or without FROM', () => {
    expect(where('')).toBe('1:1: the Kubefile has no instructions');
    expect(where('# only a comment\n\n')).toBe('1:1: the Kubefile has no instructions');
    expect(where('ARG A=1\n')).toBe('1:1: the Kubefile has no FROM instruction');
  });
});

describe('lexical errors', () => {
  it('rejects a continuation that runs into the end of the file', () => {
    expect(where('FROM scratch\nCOPY a \\')).toBe(
      '2:8: the line continues with \\ but the file ends before the instruction does',
    );
    // Comment and blank lines after it do not finish the instruction either.
    expect(where('FROM scratch\nCOPY a \\\n  b \\\n# trailing comment\n\n')).toBe(
      '3:5: the line continues with \\ but the file ends before the instruction does',
    );
    expect(where('# escape=`\nFROM scratch\nRUN a `\n')).toBe(
      '3:7: the line continues with ` but the file ends before the instruction does',
    );
  });

  it('rejects unterminated quotes where words are split', () => {
    expect(where('FROM scratch\nCOPY "my file a\n')).toBe('2:6: unterminated double quote');
    expect(where("FROM scratch\nENV A='x\n")).toBe('2:7: unterminated single quote');
    expect(where('FROM scratch\nCOPY \\\n  a "b\n')).toBe('3:5: unterminated double quote');
  });

  it('treats an escaped quote as a character', () => {
    const kf = parseKubefile('FROM scratch\nCOPY a\\"b c\n');
    expect(kf.instructions[1]).toMatchObject({ sources: ['a\\"b'], dest: 'c' });
  });

  it('rejects a bad or repeated escape directive', () => {
    expect(where('# escape=x\nFROM scratch')).toBe('1:10: invalid escape character "x" in the escape directive');
    expect(where('# escape=`\n# escape=\\\nFROM scratch')).toBe('2:1: the escape parser directive can be used only once');
  });
});
