import { checkTemplate, findTemplates, render, renderTemplate } from '../../lib/build/render';
import { tree } from './helpers';

describe('renderTemplate: the Go text/template subset sealer templates use', () => {
  test('fields, a missing key as <no value>, literals', () => {
    expect(renderTemplate('registry: {{ .RegistryURL }}/k8s', { RegistryURL: 'sea.hub:5000' })).toBe('registry: sea.hub:5000/k8s');
    expect(renderTemplate('x={{.Missing}}', {})).toBe('x=<no value>');
    expect(renderTemplate('{{ "a\\tb" }}|{{ `raw\\n` }}|{{ 42 }}|{{ true }}', {})).toBe('a\tb|raw\\n|42|true');
    expect(renderTemplate('{{ .Nested.Key }}', { Nested: { Key: 'deep' } })).toBe('deep');
    expect(renderTemplate('{{ . }}', { b: 2, a: 1 })).toBe('map[a:1 b:2]');
  });

  test('b64enc, b64dec (sealer\'s functions), or, pipelines and parentheses', () => {
    expect(renderTemplate('{{ b64enc .Password }}', { Password: 'secret' })).toBe('c2VjcmV0');
    expect(renderTemplate('{{ .Password | b64enc }}', { Password: 'secret' })).toBe('c2VjcmV0');
    expect(renderTemplate('{{ b64dec "c2VjcmV0" }}', {})).toBe('secret');
    expect(renderTemplate('{{ or .RegistryURL "sea.hub:5000" }}', {})).toBe('sea.hub:5000');
    expect(renderTemplate('{{or .RegistryURL "sea.hub:5000"}}', { RegistryURL: 'my.reg:443' })).toBe('my.reg:443');
    expect(renderTemplate('{{ or .A .B "c" }}', { A: '', B: 'b' })).toBe('b');
    expect(renderTemplate('{{ (or .X "y") | b64enc }}', {})).toBe('eQ==');
    expect(renderTemplate('{{ print "a" 1 2 "b" }} {{ len .L }} {{ not .F }} {{ eq .A "x" }} {{ and 1 0 }}', { L: [1, 2], F: '', A: 'x' })).toBe('a1 2b 2 true true 0');
  });

  test('if / else if / else, trim markers and comments', () => {
    const t = '{{- if .HA }}ha{{ else if .Single }}single{{ else }}none{{ end -}}\n';
    expect(renderTemplate('  ' + t, { HA: 'yes' })).toBe('ha');
    expect(renderTemplate(t, { Single: true })).toBe('single');
    expect(renderTemplate(t, {})).toBe('none');
    expect(renderTemplate('a {{- /* note */ -}} b{{/* x */}}c', {})).toBe('abc');
  });

  test('errors name file, line and column; unsupported actions are flagged', () => {
    expect(() => renderTemplate('ok\n  {{ .A ', {}, 'etc/x.tmpl')).toThrow(/etc\/x\.tmpl:2:3: unclosed action/);
    expect(() => renderTemplate('{{ b64enc .Missing }}', {}, 'f')).toThrow(expect.objectContaining({ code: 'TEMPLATE_ERROR', details: expect.objectContaining({ line: 1 }) }));
    expect(() => renderTemplate('{{ b64dec "!!" }}', {})).toThrow(/illegal base64/);
    expect(() => renderTemplate('{{ .A.B }}', {})).toThrow(/nil pointer/);
    expect(() => renderTemplate('{{ if .A }}x', {})).toThrow(/has no \{\{end\}\}/);
    expect(() => renderTemplate('{{ end }}', {})).toThrow(/unexpected \{\{end\}\}/);
    expect(() => renderTemplate('{{ .A .B }}', {})).toThrow(/non-function/);
    expect(() => checkTemplate('{{ range .Hosts }}{{ . }}{{ end }}')).toThrow(expect.objectContaining({ details: expect.objectContaining({ unsupported: true }) }));
    expect(() => checkTemplate('{{ toYaml .X }}')).toThrow(expect.objectContaining({ details: expect.objectContaining({ unsupported: true }) }));
    expect(() => checkTemplate('{{ $x := 1 }}')).toThrow(/variables/);
  });
});

describe('render(rootfs, values)', () => {
  test('renders every *.tmpl under etc/, charts/, manifests/, application/apps/ next to itself', async () => {
    const rootfs = tree({
      'etc/kubeadm.yml.tmpl': ['imageRepository: {{or .RegistryURL "sea.hub:5000"}}\n', 0o640],
      'manifests/app.yaml.tmpl': 'replicas: {{ .Replicas }}',
      'application/apps/web/cm.yaml.tmpl': 'x: {{ .X }}',
      'statics/not-rendered.tmpl': '{{ .X }}',
      'etc/plain.yml': 'no template',
    });
    expect(findTemplates(rootfs)).toEqual(['etc/kubeadm.yml.tmpl', 'manifests/app.yaml.tmpl', 'application/apps/web/cm.yaml.tmpl']);
    const { rootfs: out, rendered } = await render(rootfs, { Replicas: '3', X: 'y' });
    expect(rendered.map((r) => r.output)).toEqual(['etc/kubeadm.yml', 'manifests/app.yaml', 'application/apps/web/cm.yaml']);
    expect(await out.readText('etc/kubeadm.yml')).toBe('imageRepository: sea.hub:5000\n');
    expect(out.get('etc/kubeadm.yml')?.mode).toBe(0o640);
    expect(await out.readText('manifests/app.yaml')).toBe('replicas: 3');
    expect(out.get('statics/not-rendered')).toBeUndefined();
    expect(out.get('etc/kubeadm.yml.tmpl')).toBe(rootfs.get('etc/kubeadm.yml.tmpl'));
  });
});
