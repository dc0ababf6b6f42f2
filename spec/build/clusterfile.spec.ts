import { checkClusterfile, validateClusterfile } from '../../lib/build/clusterfile';

const valid = `apiVersion: sealer.io/v2
kind: Cluster
metadata:
  name: my-cluster
spec:
  image: docker.io/sealerio/kubernetes:v1.22.15
  env:
    - PodCIDR=100.64.0.0/10
  ssh:
    user: root
    passwd: xxx
    port: "22"
  hosts:
    - ips: [192.168.0.2]
      roles: [master]
    - ips: [192.168.0.3, "fd00::3"]
      roles: [node]
  registry:
    localRegistry:
      domain: sea.hub
      port: 5000
      ha: true
---
apiVersion: kubeadm.k8s.io/v1beta2
kind: ClusterConfiguration
kubernetesVersion: v1.22.15
networking:
  podSubnet: 101.64.0.0/10
---
apiVersion: sealer.io/v1
kind: Config
metadata:
  name: my-config
spec:
  path: etc/my.yaml
  strategy: merge
  data: |
    a: b
---
apiVersion: sealer.io/v1
kind: Plugin
metadata:
  name: hostname
spec:
  type: SHELL
  action: PostInstall
  data: echo hi
---
`;

describe('Clusterfile validation', () => {
  test('a valid sealer.io/v2 file with kubeadm, Config and Plugin documents', () => {
    const report = checkClusterfile(valid);
    expect(report.issues).toEqual([]);
    expect(report.documents.map((d) => [d.index, d.kind, d.apiVersion, d.name])).toEqual([
      [0, 'Cluster', 'sealer.io/v2', 'my-cluster'],
      [1, 'ClusterConfiguration', 'kubeadm.k8s.io/v1beta2', undefined],
      [2, 'Config', 'sealer.io/v1', 'my-config'],
      [3, 'Plugin', 'sealer.io/v1', 'hostname'],
    ]);
    expect(validateClusterfile(valid)).toHaveLength(4);
  });

  test('sealer.cloud/v2 (sealer v0.6-v0.8) has its own schema', () => {
    const old = 'apiVersion: sealer.cloud/v2\nkind: Cluster\nmetadata: {name: c}\nspec:\n  image: k:v1\n  hosts: [{ips: [10.0.0.1], roles: [master]}]\n';
    expect(checkClusterfile(old).issues).toEqual([]);
    const withNewField = old + '  containerRuntime: {type: containerd}\n';
    expect(checkClusterfile(withNewField).issues).toEqual([{ field: '/0/spec/containerRuntime', message: 'is not allowed here', file: 'Clusterfile' }]);
  });

  test('every issue names the document and field', () => {
    const bad = valid
      .replace('192.168.0.2', '192.168.0.999')
      .replace('- PodCIDR=100.64.0.0/10', '- PodCIDR')
      .replace('kubernetesVersion: v1.22.15', 'kubernetesVersion: latest')
      .replace('strategy: merge', 'strategy: append')
      .replace('action: PostInstall', 'action: Whenever');
    const fields = checkClusterfile(bad, 'etc/Clusterfile').issues.map((i) => i.field);
    expect(fields).toEqual(['/0/spec/env/0', '/0/spec/hosts/0/ips/0', '/1/kubernetesVersion', '/2/spec/strategy', '/3/spec/action']);
    expect(() => validateClusterfile(bad, 'etc/Clusterfile')).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
    expect(() => validateClusterfile(bad, 'etc/Clusterfile')).toThrow(/etc\/Clusterfile: invalid Clusterfile: \/0\/spec\/env\/0/);
  });

  test('structure errors: YAML syntax, missing kind, wrong apiVersions, two Clusters, unknown kinds', () => {
    expect(checkClusterfile('a: [b\n').issues[0].message).toMatch(/not valid YAML \(line 2/);
    expect(checkClusterfile('apiVersion: v1\n').issues).toEqual([{ field: '/0/kind', message: 'is required', file: 'Clusterfile' }]);
    expect(checkClusterfile('- a\n').issues[0].message).toMatch(/mapping/);
    expect(checkClusterfile('apiVersion: sealer.aliyun.com/v1alpha1\nkind: Cluster\n').issues[0].field).toBe('/0/apiVersion');
    expect(checkClusterfile('apiVersion: kubeadm.k8s.io/v1\nkind: InitConfiguration\n').issues[0]).toMatchObject({ field: '/0/apiVersion' });
    const two = valid.split('---')[0] + '---\n' + valid.split('---')[0];
    expect(checkClusterfile(two).issues.map((i) => i.message)).toContain('is a second Cluster document; a Clusterfile holds one');
    const unknown = checkClusterfile('apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n');
    expect(unknown.issues).toEqual([]);
    expect(unknown.warnings[0].message).toMatch(/ConfigMap.*ignored/);
  });
});
