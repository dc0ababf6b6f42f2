/**
 * The image-config labels sealer reads (docs/reference/sealer.md#image-extension-annotations-and-labels),
 * with typed getters and setters.
 * Getters take an Image or a plain label map, so a builder can use them before an Image exists.
 */
import { Image } from '../image/image';

export const SEALER_LABELS = {
  version: 'io.sealer.version',
  clusterRuntimeType: 'cluster.alpha.sealer.io/cluster-runtime-type',
  clusterRuntimeVersion: 'cluster.alpha.sealer.io/cluster-runtime-version',
  containerRuntimeType: 'cluster.alpha.sealer.io/container-runtime-type',
  containerRuntimeVersion: 'cluster.alpha.sealer.io/container-runtime-version',
  kubeCniPrefix: 'cluster.alpha.sealer.io/kube-cni-',
  kubeCsiPrefix: 'cluster.alpha.sealer.io/kube-csi-',
  supportedKubeVersion: 'app.alpha.sealer.io/supported-kube-version',
} as const;

/** What sealer's inspect prints in place of the per-plugin CNI/CSI labels: a JSON list of names. */
export const SEALER_COLLAPSED_LABELS = {
  kubeCni: 'cluster.alpha.sealer.io/kube-cni',
  kubeCsi: 'cluster.alpha.sealer.io/kube-csi',
} as const;

/** sealer's defaults when the labels are absent. */
export const DEFAULT_CLUSTER_RUNTIME = 'kubernetes';
export const DEFAULT_CONTAINER_RUNTIME = 'docker';

export type LabelSource = Image | Readonly<Record<string, string>>;

function labelsOf(source: LabelSource): Readonly<Record<string, string>> {
  return source instanceof Image ? source.labels : source;
}

export interface RuntimeInfo {
  type: string;
  version?: string;
}

/** The sealer version that built the image (`io.sealer.version`). */
export function getSealerVersion(source: LabelSource): string | undefined {
  return labelsOf(source)[SEALER_LABELS.version];
}

export function withSealerVersion(image: Image, version: string): Image {
  return image.withLabel(SEALER_LABELS.version, version);
}

/** Cluster runtime (`kubernetes` unless labelled, e.g. `k0s`) and its version. */
export function getClusterRuntime(source: LabelSource): RuntimeInfo {
  const l = labelsOf(source);
  const version = l[SEALER_LABELS.clusterRuntimeVersion];
  return { type: l[SEALER_LABELS.clusterRuntimeType] || DEFAULT_CLUSTER_RUNTIME, ...(version ? { version } : {}) };
}

export function withClusterRuntime(image: Image, runtime: RuntimeInfo): Image {
  return setRuntime(image, SEALER_LABELS.clusterRuntimeType, SEALER_LABELS.clusterRuntimeVersion, runtime);
}

/** Container runtime sealer installs (`docker` unless labelled, e.g. `containerd`) and its version. */
export function getContainerRuntime(source: LabelSource): RuntimeInfo {
  const l = labelsOf(source);
  const version = l[SEALER_LABELS.containerRuntimeVersion];
  return { type: l[SEALER_LABELS.containerRuntimeType] || DEFAULT_CONTAINER_RUNTIME, ...(version ? { version } : {}) };
}

export function withContainerRuntime(image: Image, runtime: RuntimeInfo): Image {
  return setRuntime(image, SEALER_LABELS.containerRuntimeType, SEALER_LABELS.containerRuntimeVersion, runtime);
}

function setRuntime(image: Image, typeKey: string, versionKey: string, runtime: RuntimeInfo): Image {
  const out = image.withLabel(typeKey, runtime.type);
  return runtime.version !== undefined ? out.withLabel(versionKey, runtime.version) : out.withoutLabel(versionKey);
}

function namesWithPrefix(source: LabelSource, prefix: string): string[] {
  return Object.keys(labelsOf(source))
    .filter((k) => k.startsWith(prefix) && k.length > prefix.length)
    .map((k) => k.slice(prefix.length))
    .sort();
}

/** CNI plugins the image offers (`CNI name …` → label `cluster.alpha.sealer.io/kube-cni-<name>=true`). */
export function getKubeCnis(source: LabelSource): string[] {
  return namesWithPrefix(source, SEALER_LABELS.kubeCniPrefix);
}

export function withKubeCni(image: Image, name: string): Image {
  return image.withLabel(SEALER_LABELS.kubeCniPrefix + name, 'true');
}

/** CSI plugins the image offers (label `cluster.alpha.sealer.io/kube-csi-<name>=true`). */
export function getKubeCsis(source: LabelSource): string[] {
  return namesWithPrefix(source, SEALER_LABELS.kubeCsiPrefix);
}

export function withKubeCsi(image: Image, name: string): Image {
  return image.withLabel(SEALER_LABELS.kubeCsiPrefix + name, 'true');
}

/** `KUBEVERSION` of an app image: the Kubernetes versions it supports (a SemVer range). */
export function getSupportedKubeVersion(source: LabelSource): string | undefined {
  return labelsOf(source)[SEALER_LABELS.supportedKubeVersion];
}

export function withSupportedKubeVersion(image: Image, range: string): Image {
  return image.withLabel(SEALER_LABELS.supportedKubeVersion, range);
}

/**
 * Labels as sealer's inspect prints them: every `kube-cni-<name>` / `kube-csi-<name>` label
 * replaced by one `cluster.alpha.sealer.io/kube-cni` (or `-csi`) label whose value is the sorted
 * names as a JSON list (`["calico","flannel"]`); other labels unchanged.
 */
export function collapseSealerLabels(labels: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels)) {
    if (k.startsWith(SEALER_LABELS.kubeCniPrefix) || k.startsWith(SEALER_LABELS.kubeCsiPrefix)) continue;
    out[k] = v;
  }
  const cni = getKubeCnis(labels);
  const csi = getKubeCsis(labels);
  if (cni.length > 0) out[SEALER_COLLAPSED_LABELS.kubeCni] = JSON.stringify(cni);
  if (csi.length > 0) out[SEALER_COLLAPSED_LABELS.kubeCsi] = JSON.stringify(csi);
  return out;
}
