/**
 * A Kubefile means what it means to sealer v0.11: the parser's reading of sealer's own
 * instructions, each expected value taken from sealer's source (linked beside it).
 */
import { parseKubefile, type Instruction } from '../../lib/kubefile';

const SEALER = 'https://github.com/sealerio/sealer/blob/v0.11.0';

function one(line: string): Instruction {
  const kf = parseKubefile(`FROM scratch\n${line}\n`);
  return kf.instructions[1];
}

function warnings(text: string): string[] {
  return parseKubefile(text).warnings.map((w) => `${w.line}:${w.column} ${w.code}`);
}

function of<K extends Instruction['kind']>(i: Instruction, kind: K): Extract<Instruction, { kind: K }> {
  expect(i.kind).toBe(kind);
  return i as Extract<Instruction, { kind: K }>;
}

describe('APP sources need a scheme, as in sealer', () => {
  // `default: return nil, errors.New("source schema should be specified with https:// http:// local:// in APP")`
  // ${SEALER}/build/kubefile/parser/app_handler.go#L44-L52; schemes: ${SEALER}/build/kubefile/parser/utils.go#L30-L57
  const message = 'source schema should be specified with https:// http:// local:// in APP';

  it.each([
    ['APP web web.yaml', 9],
    ['APP web local://a.yaml b.yaml', 24],
    ['CNI calico calico.yaml', 12], // processCNI calls processApp: the message says APP (kubefile.go#L246-L254)
    ['CSI openebs ./openebs/', 13],
    ['APP web Local://web.yaml', 9], // HasPrefix is case-sensitive (utils.go#L47-L57)
    ['APP web HTTPS://example.com/web.yaml', 9],
    ['APP web ftp://example.com/web.yaml', 9],
    ['APP ["web", "web.yaml"]', 5],
  ])('%s is refused with sealer\'s message', (line, column) => {
    expect(() => one(line)).toThrow(expect.objectContaining({ code: 'KUBEFILE_SYNTAX', reason: message, line: 2, column }));
  });

  it('accepts local://, http:// and https://', () => {
    expect(of(one('APP web local://web.yaml http://example.com/a.yaml https://example.com/b.yaml'), 'APP').sources.map((s) => s.type)).toEqual([
      'local',
      'remote',
      'remote',
    ]);
  });
});

describe('APPENV: words without = are skipped, values kept as written', () => {
  it('APPENV app k1=v1 word k2=v2', () => {
    // `if kv = strings.SplitN(elem, "=", 2); len(kv) != 2 { continue }`: ${SEALER}/build/kubefile/parser/kubefile.go#L358-L365
    const i = of(one('APPENV app k1=v1 word k2=v2'), 'APPENV');
    expect(i.pairs).toEqual([
      { key: 'k1', value: 'v1' },
      { key: 'k2', value: 'v2' },
    ]);
    expect(i.skipped).toEqual(['word']);
    expect(warnings('FROM scratch\nAPPENV app k1=v1 word k2=v2\n')).toEqual(['2:18 APPENV_WORD_SKIPPED']);
  });

  it('splits on blanks only, keeps quotes and $, splits at the first =, allows an empty key', () => {
    // parseMaybeJSONToList → parseStringsWhitespaceDelimited (no quote processing):
    // ${SEALER}/build/kubefile/parser/parse.go#L218, ${SEALER}/build/kubefile/parser/line_parsers.go#L268-L289
    const i = of(one('APPENV app A="x y" B=$HOME C=a=b =v'), 'APPENV');
    expect(i.pairs).toEqual([
      { key: 'A', value: '"x' },
      { key: 'B', value: '$HOME' },
      { key: 'C', value: 'a=b' },
      { key: '', value: 'v' },
    ]);
    expect(i.skipped).toEqual(['y"']);
  });

  it('takes a JSON array, and a name alone', () => {
    expect(of(one('APPENV ["app", "A=x y", "B"]'), 'APPENV')).toMatchObject({ form: 'json', pairs: [{ key: 'A', value: 'x y' }], skipped: ['B'] });
    // Nothing after the name: sealer records an empty env (kubefile.go#L339-L376).
    expect(of(one('APPENV app'), 'APPENV').pairs).toEqual([]);
  });
});

describe('app names: sealer asks only for a non-empty name', () => {
  // `if appName == "" { return nil, errors.New("app name should be specified in the app cmd") }`:
  // ${SEALER}/build/kubefile/parser/app_handler.go#L55-L57
  it.each(['_hooks', '-x', '.hidden', 'My_App', '1', 'app@v1', 'a\\b', 'ünï'])('%s is a valid app name', (name) => {
    expect(of(one(`APP ${name} local://a.yaml`), 'APP').name).toBe(name);
    expect(of(one(`APPENV ${name} A=1`), 'APPENV').name).toBe(name);
    expect(of(one(`APPCMDS ${name} ["x"]`), 'APPCMDS').name).toBe(name);
    expect(of(one(`LAUNCH ${name}`), 'LAUNCH').apps).toEqual([name]);
  });

  it.each(['..', '.', 'a/b', '../etc'])('%s is refused: it would not be one directory under application/apps/', (name) => {
    expect(() => one(`APP ${name} local://a.yaml`)).toThrow(expect.objectContaining({ code: 'KUBEFILE_SYNTAX' }));
  });
});

describe('ENV, CMD, KUBEVERSION and LAUNCH as sealer records them', () => {
  it('ENV: the extension gets the original text split on single spaces, as written', () => {
    // `valueList := strings.SplitN(node.Original, "ENV ", 2)` … `strings.Split(envs, " ")`:
    // ${SEALER}/build/kubefile/parser/kubefile.go#L380-L400
    const i = of(one('ENV A=1 B="x y" C=$A'), 'ENV');
    expect(i.pairs).toEqual([
      { key: 'A', value: '1' },
      { key: 'B', value: '"x y"' },
      { key: 'C', value: '$A' },
    ]); // buildkit's words (the config gets them expanded)
    expect(i.sealerPairs).toEqual([
      { key: 'A', value: '1' },
      { key: 'B', value: '"x' },
      { key: 'C', value: '$A' },
    ]);
    // The legacy form: its words with `=` count for sealer all the same.
    expect(of(one('ENV K v=1'), 'ENV').sealerPairs).toEqual([{ key: 'v', value: '1' }]);
    // Without an upper-case `ENV `, sealer refuses the line ("invalid ENV instruction", kubefile.go#L381-L384).
    expect(warnings('FROM scratch\nenv A=1\n')).toEqual(['2:1 SEALER_DIFFERENCE']);
  });

  it('CMD: the text after "CMD ", cut at a second one', () => {
    // `cmd := strings.Split(original, "CMD ")`; `node.Next.Value = cmd[1]`: ${SEALER}/build/kubefile/parser/kubefile.go#L402-L408
    expect(of(one('CMD kubectl apply -f a.yaml, kubectl apply -f b.yaml'), 'CMD').text).toBe('kubectl apply -f a.yaml, kubectl apply -f b.yaml');
    expect(of(one('CMD ["kubectl", "apply"]'), 'CMD').text).toBe('["kubectl", "apply"]');
    expect(of(one('CMD echo CMD done'), 'CMD').text).toBe('echo');
    expect(warnings('FROM scratch\nCMD echo CMD done\n')).toEqual(['2:1 DEPRECATED_CMD', '2:5 SEALER_DIFFERENCE']);
  });

  it('KUBEVERSION: the label is the text as written', () => {
    // `LABEL %s=%s` with strconv.Quote(node.Next.Value): ${SEALER}/build/kubefile/parser/kubefile.go#L266-L271
    expect(of(one('KUBEVERSION >=1.20.0'), 'KUBEVERSION')).toMatchObject({ range: '>=1.20.0', text: '>=1.20.0' });
    expect(of(one('KUBEVERSION ">=1.20.0"'), 'KUBEVERSION')).toMatchObject({ range: '>=1.20.0', text: '">=1.20.0"' });
  });

  it('LAUNCH: names split on blanks and trimmed', () => {
    // ${SEALER}/build/kubefile/parser/kubefile.go#L418-L430
    expect(of(one('LAUNCH a\tb'), 'LAUNCH').apps).toEqual(['a', 'b']);
    expect(of(one('LAUNCH [" a ", "b"]'), 'LAUNCH').apps).toEqual(['a', 'b']);
  });
});

describe('ADD --checksum (BuildKit)', () => {
  it('pins the digest of a downloaded file', () => {
    const hex = 'a'.repeat(64);
    expect(of(one(`ADD --checksum=sha256:${hex} https://example.com/a.tgz bin/`), 'ADD').checksum).toBe(`sha256:${hex}`);
  });

  it.each([
    ['ADD --checksum=sha256:abc https://example.com/a bin/', 'is not a digest'],
    [`ADD --checksum=md5:${'a'.repeat(32)} https://example.com/a bin/`, 'is not a digest'],
    [`ADD --checksum=sha256:${'a'.repeat(64)} a.tgz bin/`, 'needs http:// or https:// sources'],
    [`ADD --checksum=sha256:${'a'.repeat(64)} https://x/a https://x/b bin/`, 'takes a single source'],
    [`COPY --checksum=sha256:${'a'.repeat(64)} a bin/`, 'COPY does not accept --checksum'],
  ])('%s', (line, reason) => {
    expect(() => one(line)).toThrow(expect.objectContaining({ code: 'KUBEFILE_SYNTAX', reason: expect.stringContaining(reason) }));
  });
});
