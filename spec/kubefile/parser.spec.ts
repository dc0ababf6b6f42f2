import { parseKubefile, type Instruction, type InstructionKind } from '../../lib/kubefile';

/** Parses `FROM scratch` + one line and returns that line's instruction. */
function one(line: string): Instruction {
  const { instructions } = parseKubefile(`FROM scratch\n${line}\n`);
  expect(instructions).toHaveLength(2);
  return instructions[1];
}

function ofKind<K extends InstructionKind>(i: Instruction, kind: K): Extract<Instruction, { kind: K }> {
  expect(i.kind).toBe(kind);
  return i as Extract<Instruction, { kind: K }>;
}

describe('realistic sealer Kubefiles', () => {
  it('reads the base image Kubefile (FROM scratch / COPY . .)', () => {
    const kf = parseKubefile('FROM scratch\nCOPY . .\n');
    expect(kf.instructions).toEqual([
      { kind: 'FROM', keyword: 'FROM', line: 1, endLine: 1, column: 1, raw: 'FROM scratch', original: 'FROM scratch', image: 'scratch' },
      {
        kind: 'COPY',
        keyword: 'COPY',
        line: 2,
        endLine: 2,
        column: 1,
        raw: 'COPY . .',
        original: 'COPY . .',
        form: 'shell',
        sources: ['.'],
        dest: '.',
      },
    ]);
    expect(kf.escape).toBe('\\');
    expect(kf.directives).toEqual({});
    expect(kf.warnings).toEqual([]);
  });

  it('reads a child image that patches etc/', () => {
    const kf = parseKubefile('FROM kubernetes:v1.19.9\nCOPY daemon.json etc/\n');
    const [from, copy] = kf.instructions;
    expect(ofKind(from, 'FROM').image).toBe('kubernetes:v1.19.9');
    expect(ofKind(copy, 'COPY')).toMatchObject({ sources: ['daemon.json'], dest: 'etc/', line: 2 });
  });

  it('reads an app image with APP, CNI, APPCMDS, APPENV, KUBEVERSION and LAUNCH', () => {
    const text = [
      'FROM docker.io/sealerio/kubernetes:v1.22.15',
      'KUBEVERSION >=1.20.0',
      'CNI calico local://calico.yaml',
      'APP mysql local://mysql/ https://charts.example.com/mysql-values.yaml',
      'APPCMDS mysql ["helm install mysql mysql/ -f mysql-values.yaml"]',
      'APPENV mysql MYSQL_ROOT_PASSWORD=secret "NAMESPACE=db"',
      'LAUNCH ["calico", "mysql"]',
    ].join('\n');
    const kf = parseKubefile(text);
    expect(kf.instructions.map((i) => i.kind)).toEqual(['FROM', 'KUBEVERSION', 'CNI', 'APP', 'APPCMDS', 'APPENV', 'LAUNCH']);
    expect(kf.instructions.map((i) => i.line)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(ofKind(kf.instructions[1], 'KUBEVERSION').range).toBe('>=1.20.0');
    expect(ofKind(kf.instructions[2], 'CNI')).toMatchObject({
      name: 'calico',
      sources: [{ text: 'local://calico.yaml', type: 'local', location: 'calico.yaml' }],
    });
    expect(ofKind(kf.instructions[3], 'APP').sources).toEqual([
      { text: 'local://mysql/', type: 'local', location: 'mysql/' },
      {
        text: 'https://charts.example.com/mysql-values.yaml',
        type: 'remote',
        location: 'https://charts.example.com/mysql-values.yaml',
      },
    ]);
    expect(ofKind(kf.instructions[4], 'APPCMDS')).toMatchObject({
      name: 'mysql',
      commands: ['helm install mysql mysql/ -f mysql-values.yaml'],
    });
    // Words as sealer splits them: on blanks, quotes kept, split at the first `=`
    // (https://github.com/sealerio/sealer/blob/v0.11.0/build/kubefile/parser/kubefile.go#L358-L365).
    expect(ofKind(kf.instructions[5], 'APPENV')).toMatchObject({
      name: 'mysql',
      pairs: [
        { key: 'MYSQL_ROOT_PASSWORD', value: 'secret' },
        { key: '"NAMESPACE', value: 'db"' },
      ],
    });
    expect(ofKind(kf.instructions[6], 'LAUNCH')).toMatchObject({ form: 'json', apps: ['calico', 'mysql'] });
    expect(kf.warnings).toEqual([]);
  });

  it('reads a v0.8-style Kubefile with ARG, RUN and comma-separated CMD', () => {
    const text = [
      'FROM kubernetes:v1.19.8',
      'ARG Version=4.0.0',
      'COPY helm /bin',
      'RUN wget https://example.com/app-${Version}.tgz && tar xf app-${Version}.tgz -C manifests',
      'CMD kubectl apply -f manifests/tigera-operator.yaml, kubectl apply -f manifests/custom-resources.yaml',
    ].join('\n');
    const kf = parseKubefile(text);
    const cmd = ofKind(kf.instructions[4], 'CMD');
    expect(cmd.form).toBe('shell');
    expect(cmd.commands).toEqual([
      'kubectl apply -f manifests/tigera-operator.yaml',
      'kubectl apply -f manifests/custom-resources.yaml',
    ]);
    expect(cmd.text).toBe('kubectl apply -f manifests/tigera-operator.yaml, kubectl apply -f manifests/custom-resources.yaml');
    const run = ofKind(kf.instructions[3], 'RUN');
    expect(run.form === 'shell' && run.command).toBe(
      'wget https://example.com/app-${Version}.tgz && tar xf app-${Version}.tgz -C manifests',
    );
    expect(kf.warnings.map((w) => [w.code, w.line])).toEqual([['DEPRECATED_CMD', 5]]);
  });
});

describe('keywords', () => {
  it.each(['copy', 'Copy', 'cOpY', 'COPY'])('accepts %s case-insensitively and remembers the spelling', (kw) => {
    const i = one(`${kw} a b`);
    expect(i.kind).toBe('COPY');
    expect(i.keyword).toBe(kw);
  });

  it('accepts every instruction in lower case', () => {
    const kf = parseKubefile(
      [
        'arg A',
        'from scratch',
        'copy a b',
        'add a b',
        'env K=v',
        'label k=v',
        'maintainer me',
        'run true',
        'app x local://x',
        'cni c local://c',
        'csi s local://s',
        'appcmds x ["true"]',
        'appenv x K=v',
        'kubeversion 1.2.x',
        'launch x',
      ].join('\n'),
    );
    expect(kf.instructions.map((i) => i.kind)).toEqual([
      'ARG',
      'FROM',
      'COPY',
      'ADD',
      'ENV',
      'LABEL',
      'MAINTAINER',
      'RUN',
      'APP',
      'CNI',
      'CSI',
      'APPCMDS',
      'APPENV',
      'KUBEVERSION',
      'LAUNCH',
    ]);
  });

  it('reports the column of an indented keyword', () => {
    const i = one('    COPY a b');
    expect(i.column).toBe(5);
    expect(i.original).toBe('COPY a b');
    expect(i.raw).toBe('    COPY a b');
  });
});

describe('FROM', () => {
  it('takes a stage name after AS (any case) and lower-cases it', () => {
    const from = ofKind(parseKubefile('FROM kubernetes:v1.22.15 as Base').instructions[0], 'FROM');
    expect(from).toMatchObject({ image: 'kubernetes:v1.22.15', stage: 'base' });
  });

  it('takes --platform', () => {
    const from = ofKind(parseKubefile('FROM --platform=linux/arm64 kubernetes:v1.22.15').instructions[0], 'FROM');
    expect(from.platform).toBe('linux/arm64');
    expect(from.image).toBe('kubernetes:v1.22.15');
    expect(from.stage).toBeUndefined();
  });

  it('allows several stages', () => {
    const kf = parseKubefile('FROM a AS one\nCOPY x y\nFROM scratch\nCOPY --from=one y z\n');
    expect(ofKind(kf.instructions[3], 'COPY').from).toBe('one');
  });
});

describe('COPY and ADD', () => {
  it('reads several sources, the destination last', () => {
    expect(ofKind(one('COPY a.yaml b.yaml manifests/'), 'COPY')).toMatchObject({
      form: 'shell',
      sources: ['a.yaml', 'b.yaml'],
      dest: 'manifests/',
    });
  });

  it('reads the JSON form, including names with blanks', () => {
    expect(ofKind(one('COPY ["my file.yaml", "other.yaml", "etc/"]'), 'COPY')).toMatchObject({
      form: 'json',
      sources: ['my file.yaml', 'other.yaml'],
      dest: 'etc/',
    });
  });

  it('reads --from, --chown and --chmod in any order, with the JSON form too', () => {
    const copy = ofKind(one('COPY --chmod=0644 --from=builder --chown=0:0 ["a", "b"]'), 'COPY');
    expect(copy).toMatchObject({ from: 'builder', chown: '0:0', chmod: '0644', form: 'json', sources: ['a'], dest: 'b' });
  });

  it('keeps quotes and variables in words for the interpreter to expand', () => {
    expect(ofKind(one('COPY "bin/${ARCH}/kubectl" \'a b\' bin/'), 'COPY').sources).toEqual([
      '"bin/${ARCH}/kubectl"',
      "'a b'",
    ]);
  });

  it('reads a glob starting with [ as shell form', () => {
    expect(ofKind(one('COPY [a-c]*.yaml manifests'), 'COPY')).toMatchObject({
      form: 'shell',
      sources: ['[a-c]*.yaml'],
      dest: 'manifests',
    });
  });

  it('reads ADD like COPY', () => {
    expect(ofKind(one('ADD --chown=1000 https://example.com/a.tgz images/'), 'ADD')).toMatchObject({
      chown: '1000',
      sources: ['https://example.com/a.tgz'],
      dest: 'images/',
    });
  });

  it('ends flags at --', () => {
    expect(ofKind(one('COPY -- --weird-name dest'), 'COPY').sources).toEqual(['--weird-name']);
  });

  it('warns that # inside an instruction is an argument', () => {
    const kf = parseKubefile('FROM scratch\nCOPY a b # copy a\n');
    expect(ofKind(kf.instructions[1], 'COPY')).toMatchObject({ sources: ['a', 'b', '#', 'copy'], dest: 'a' });
    expect(kf.warnings).toMatchObject([{ code: 'INLINE_COMMENT', line: 2, column: 10 }]);
  });
});

describe('ARG', () => {
  it('declares several names per line, with and without defaults', () => {
    expect(ofKind(one('ARG A B=2 C= D="x y"'), 'ARG').args).toEqual([
      { name: 'A' },
      { name: 'B', default: '2' },
      { name: 'C', default: '' },
      { name: 'D', default: '"x y"' },
    ]);
  });

  it('may come before FROM', () => {
    const kf = parseKubefile('ARG BASE=kubernetes:v1.19.9\nFROM ${BASE}\n');
    expect(kf.instructions.map((i) => i.kind)).toEqual(['ARG', 'FROM']);
    expect(ofKind(kf.instructions[1], 'FROM').image).toBe('${BASE}');
  });

  it('warns about the v0.8 comma list', () => {
    const kf = parseKubefile('FROM scratch\nARG a=1,b=2\n');
    expect(ofKind(kf.instructions[1], 'ARG').args).toEqual([{ name: 'a', default: '1,b=2' }]);
    expect(kf.warnings.map((w) => w.code)).toEqual(['ARG_COMMA_LIST']);
  });
});

describe('ENV and LABEL', () => {
  it('reads ENV key=value pairs', () => {
    expect(ofKind(one('ENV PodCIDR=100.64.0.0/10 SvcCIDR="10.96.0.0/16" EMPTY='), 'ENV')).toMatchObject({
      form: 'pairs',
      pairs: [
        { key: 'PodCIDR', value: '100.64.0.0/10' },
        { key: 'SvcCIDR', value: '"10.96.0.0/16"' },
        { key: 'EMPTY', value: '' },
      ],
    });
  });

  it('reads the legacy ENV key value form, value = rest of the line, with a warning', () => {
    const kf = parseKubefile('FROM scratch\nENV GREETING hello  big world\n');
    expect(ofKind(kf.instructions[1], 'ENV')).toMatchObject({
      form: 'legacy',
      pairs: [{ key: 'GREETING', value: 'hello  big world' }],
    });
    expect(kf.warnings).toMatchObject([{ code: 'LEGACY_KEY_VALUE', line: 2, column: 5 }]);
  });

  it('splits a wholly quoted pair at its = and keeps both halves balanced', () => {
    expect(ofKind(one('ENV "GREETING=hello world" X=\'a=b\''), 'ENV').pairs).toEqual([
      { key: '"GREETING"', value: '"hello world"' },
      { key: 'X', value: "'a=b'" },
    ]);
  });

  it('reads LABEL pairs with quoted values', () => {
    expect(
      ofKind(one('LABEL cluster.alpha.sealer.io/kube-cni-calico="true" "description"="a cluster image"'), 'LABEL').pairs,
    ).toEqual([
      { key: 'cluster.alpha.sealer.io/kube-cni-calico', value: '"true"' },
      { key: '"description"', value: '"a cluster image"' },
    ]);
  });

  it('reads legacy LABEL key value', () => {
    expect(ofKind(one('LABEL maintainer someone'), 'LABEL')).toMatchObject({
      form: 'legacy',
      pairs: [{ key: 'maintainer', value: 'someone' }],
    });
  });
});

describe('MAINTAINER and KUBEVERSION', () => {
  it('keeps MAINTAINER text as written', () => {
    expect(ofKind(one('MAINTAINER  Jane Doe <jane@example.com>'), 'MAINTAINER').text).toBe('Jane Doe <jane@example.com>');
  });

  it.each([
    ['>=1.20.0', '>=1.20.0'],
    ['1.19.x || 1.20.x', '1.19.x || 1.20.x'],
    ['">= 1.20.0 < 1.25.0"', '>= 1.20.0 < 1.25.0'],
    ['~1.22', '~1.22'],
  ])('reads KUBEVERSION %s', (written, range) => {
    expect(ofKind(one(`KUBEVERSION ${written}`), 'KUBEVERSION').range).toBe(range);
  });
});

describe('RUN and CMD', () => {
  it('reads RUN shell form as written', () => {
    const run = ofKind(one('RUN  sed -i "s/a/b/" etc/kubeadm.yml && echo \'$HOME\''), 'RUN');
    expect(run.form).toBe('shell');
    expect(run.form === 'shell' && run.command).toBe('sed -i "s/a/b/" etc/kubeadm.yml && echo \'$HOME\'');
    expect(run.mounts).toEqual([]);
  });

  it('reads RUN JSON form', () => {
    const run = ofKind(one('RUN ["bash", "-c", "echo hi"]'), 'RUN');
    expect(run.form === 'json' && run.args).toEqual(['bash', '-c', 'echo hi']);
  });

  it('reads RUN flags (--mount repeatable)', () => {
    const run = ofKind(one('RUN --mount=type=cache,target=/root/.cache --mount=type=tmpfs,target=/tmp --network=none make'), 'RUN');
    expect(run).toMatchObject({ mounts: ['type=cache,target=/root/.cache', 'type=tmpfs,target=/tmp'], network: 'none' });
    expect(run.form === 'shell' && run.command).toBe('make');
  });

  it('reads a shell test command that starts with [ as shell form', () => {
    const run = ofKind(one('RUN [ -f etc/kubeadm.yml ] && echo ok'), 'RUN');
    expect(run.form).toBe('shell');
  });

  it('falls back to shell form for broken JSON, with a warning', () => {
    const kf = parseKubefile('FROM scratch\nRUN ["echo", "hi"\n');
    const run = ofKind(kf.instructions[1], 'RUN');
    expect(run.form === 'shell' && run.command).toBe('["echo", "hi"');
    expect(kf.warnings).toMatchObject([{ code: 'JSON_FALLBACK', line: 2 }]);
  });

  it('reads CMD JSON form as the command list', () => {
    const kf = parseKubefile('FROM scratch\nCMD ["kubectl apply -f a.yaml", "kubectl apply -f b.yaml"]\nCMD echo, done\n');
    expect(ofKind(kf.instructions[1], 'CMD')).toMatchObject({
      form: 'json',
      commands: ['kubectl apply -f a.yaml', 'kubectl apply -f b.yaml'],
    });
    expect(ofKind(kf.instructions[2], 'CMD').commands).toEqual(['echo', 'done']);
    // Deprecation is said once, at the first CMD.
    expect(kf.warnings.map((w) => [w.code, w.line])).toEqual([['DEPRECATED_CMD', 2]]);
  });
});

describe('CMDS, LAUNCH and the app instructions', () => {
  it('reads CMDS as a JSON array', () => {
    expect(ofKind(one('CMDS ["kubectl apply -f manifests/", "helm install x charts/x"]'), 'CMDS').commands).toEqual([
      'kubectl apply -f manifests/',
      'helm install x charts/x',
    ]);
  });

  it('reads LAUNCH in shell form too', () => {
    expect(ofKind(one('LAUNCH calico mysql'), 'LAUNCH')).toMatchObject({ form: 'shell', apps: ['calico', 'mysql'] });
  });

  it('warns when LAUNCH names an app twice', () => {
    const kf = parseKubefile('FROM scratch\nLAUNCH a b a\n');
    expect(kf.warnings).toMatchObject([{ code: 'DUPLICATE_LAUNCH_APP', line: 2, column: 12 }]);
  });

  it('refuses APP sources without a scheme, with sealer\'s message; reads the JSON form', () => {
    // https://github.com/sealerio/sealer/blob/v0.11.0/build/kubefile/parser/app_handler.go#L44-L52
    const message = 'source schema should be specified with https:// http:// local:// in APP';
    for (const line of ['APP nginx manifests/nginx.yaml', 'CNI calico calico.yaml', 'APP a HTTPS://example.com/a.yaml', 'APP a git://example.com/a.git']) {
      expect(() => one(line)).toThrow(expect.objectContaining({ code: 'KUBEFILE_SYNTAX', reason: message }));
    }
    expect(ofKind(one('APP ["dashboard", "local://dash board.yaml"]'), 'APP')).toMatchObject({
      form: 'json',
      name: 'dashboard',
      sources: [{ type: 'local', location: 'dash board.yaml' }],
    });
  });

  it('reads CSI like APP', () => {
    expect(ofKind(one('CSI openebs http://example.com/openebs.yaml'), 'CSI')).toMatchObject({
      name: 'openebs',
      sources: [{ type: 'remote' }],
    });
  });

  it('reads APPCMDS with several commands and blanks around the array', () => {
    expect(ofKind(one('APPCMDS nginx   [ "kubectl apply -f a.yaml" , "bash b.sh" ] '), 'APPCMDS').commands).toEqual([
      'kubectl apply -f a.yaml',
      'bash b.sh',
    ]);
  });
});
