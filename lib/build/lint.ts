/**
 * A CloudRootfs lint: what sealer will trip over at deploy time, found at build time.
 *
 * - **Scripts sealer calls** (docs/reference/sealer.md#the-rootfs-contract) exist, are regular files and are executable:
 *   Era A's entry point `scripts/init.sh` (and `clean.sh`), Era B's `scripts/init-kube.sh`,
 *   `scripts/init-registry.sh` and `scripts/<cri>.sh` (+ `uninstall-<cri>.sh`), where `<cri>` is the
 *   `container-runtime-type` label (default `docker`).
 * - **One Kubernetes version** across `Metadata.version`, the `cluster-runtime-version` label,
 *   `kubernetesVersion` in `etc/kubeadm*.y(a)ml` and in the Clusterfile's ClusterConfiguration.
 * - **Metadata** matches its schema (and the image's architecture); **etc/Clusterfile** is valid;
 *   every `*.tmpl` parses; an image's **sealer extension** is valid and its apps exist.
 * Every issue names the file and, where there is one, the field (a JSON pointer).
 */
import * as yaml from 'js-yaml';
import { CloudRootfsError } from '../errors';
import { Image } from '../image/image';
import { appNameProblem } from '../kubefile';
import type { Platform } from '../image/types';
import { cleanPath } from '../path';
import { Rootfs } from '../rootfs/rootfs';
import { DEFAULT_CONTAINER_RUNTIME, SEALER_LABELS, getImageExtension, parseMetadata, type CloudRootfsMetadata } from '../sealer';
import { APP_ROOT } from './apps';
import { checkClusterfile } from './clusterfile';
import { checkTemplate, findTemplates } from './render';

export type LintSeverity = 'error' | 'warning';

export interface LintIssue {
  severity: LintSeverity;
  /** Stable identifier of the check (`SCRIPT_MISSING`, `KUBE_VERSION_MISMATCH`…). */
  code: string;
  /** Rootfs path (or `label:<key>` / `annotation:<key>` for image metadata). */
  file?: string;
  /** JSON pointer of the field inside the file, when there is one. */
  field?: string;
  message: string;
}

export interface LintReport {
  issues: LintIssue[];
  errors: number;
  warnings: number;
  ok: boolean;
  /** The Kubernetes version the rootfs declares (when its sources agree, or the first found). */
  kubernetesVersion?: string;
}

export interface LintOptions {
  /** Image labels (for the runtime labels); `lintImage` passes the image's. */
  labels?: Readonly<Record<string, string>>;
  /** The image's platform (Metadata.arch must match it). */
  platform?: Platform;
}

const SCRIPT_LIMIT = 1 << 20;

class Collector {
  readonly issues: LintIssue[] = [];
  error(code: string, message: string, file?: string, field?: string): void {
    this.issues.push({ severity: 'error', code, message, ...(file !== undefined ? { file } : {}), ...(field !== undefined ? { field } : {}) });
  }
  warn(code: string, message: string, file?: string, field?: string): void {
    this.issues.push({ severity: 'warning', code, message, ...(file !== undefined ? { file } : {}), ...(field !== undefined ? { field } : {}) });
  }
  report(kubernetesVersion?: string): LintReport {
    const errors = this.issues.filter((i) => i.severity === 'error').length;
    return { issues: this.issues, errors, warnings: this.issues.length - errors, ok: errors === 0, ...(kubernetesVersion ? { kubernetesVersion } : {}) };
  }
}

/** The entry at `path`, following symlinks inside the rootfs; undefined when missing or dangling. */
function resolved(rootfs: Rootfs, path: string) {
  try {
    return rootfs.get(path) ? rootfs.resolveFile(path) : undefined;
  } catch (err) {
    if (err instanceof CloudRootfsError) return undefined;
    throw err;
  }
}

async function checkScript(rootfs: Rootfs, c: Collector, path: string, required: LintSeverity | undefined, why: string): Promise<void> {
  const entry = rootfs.get(path);
  if (!entry) {
    if (required === 'error') c.error('SCRIPT_MISSING', `${path} is missing; ${why}`, path);
    else if (required === 'warning') c.warn('SCRIPT_MISSING', `${path} is missing; ${why}`, path);
    return;
  }
  const file = resolved(rootfs, path);
  if (!file) {
    c.error('SCRIPT_NOT_FILE', `${path} is not a regular file (${entry.type === 'symlink' ? 'a dangling or looping symlink' : `a ${entry.type}`})`, path);
    return;
  }
  if ((file.mode & 0o111) === 0) {
    c.error('SCRIPT_NOT_EXECUTABLE', `${path} is not executable (mode ${(file.mode & 0o7777).toString(8).padStart(4, '0')}); sealer runs it directly`, path, '/mode');
  }
  if (file.content.size > 0 && file.content.size <= SCRIPT_LIMIT) {
    const text = await rootfs.readText(path);
    if (!text.startsWith('#!')) c.warn('SCRIPT_NO_SHEBANG', `${path} has no #! line`, path);
  }
}

async function lintScripts(rootfs: Rootfs, c: Collector, labels: Readonly<Record<string, string>>): Promise<void> {
  const cri = labels[SEALER_LABELS.containerRuntimeType] || DEFAULT_CONTAINER_RUNTIME;
  const eraA = rootfs.get('scripts/init.sh') !== undefined;
  const eraB = rootfs.get('scripts/init-kube.sh') !== undefined;
  if (!eraA && !eraB) {
    c.error('SCRIPT_MISSING', 'neither scripts/init.sh (sealer v0.8 and older) nor scripts/init-kube.sh (sealer v0.9+) exists: sealer cannot install a cluster from this rootfs', 'scripts/');
  }
  if (eraA || !eraB) {
    await checkScript(rootfs, c, 'scripts/init.sh', undefined, 'sealer v0.8 and older run it on every node');
    await checkScript(rootfs, c, 'scripts/clean.sh', 'warning', 'sealer runs it when the cluster is deleted');
    await checkScript(rootfs, c, 'scripts/kubelet-pre-start.sh', undefined, '');
  }
  if (eraB || !eraA) {
    await checkScript(rootfs, c, 'scripts/init-kube.sh', undefined, '');
    await checkScript(rootfs, c, `scripts/${cri}.sh`, 'error', `sealer v0.9+ runs it to install the ${cri} container runtime (label ${SEALER_LABELS.containerRuntimeType})`);
    await checkScript(rootfs, c, `scripts/uninstall-${cri}.sh`, 'warning', `sealer v0.9+ runs it to remove ${cri}`);
    await checkScript(rootfs, c, 'scripts/init-registry.sh', 'error', 'sealer v0.9+ runs it on the registry hosts');
  } else {
    // Era A layout: init.sh calls these by convention.
    await checkScript(rootfs, c, `scripts/${cri}.sh`, 'warning', 'init.sh usually calls it to install the container runtime');
    await checkScript(rootfs, c, 'scripts/init-registry.sh', 'warning', 'sealer runs it on the registry host');
  }
}

interface VersionSource {
  version: string;
  file: string;
  field?: string;
  what: string;
}

function normalizeVersion(v: string): string {
  return v.trim().replace(/^v/, '');
}

/** kubernetesVersion of every ClusterConfiguration in a YAML text. */
function kubeadmVersions(text: string, file: string, c: Collector): VersionSource[] {
  let docs: unknown[];
  try {
    docs = yaml.loadAll(text);
  } catch (err) {
    c.error('INVALID_YAML', `${file} is not valid YAML: ${(err as Error).message.split('\n')[0]}`, file);
    return [];
  }
  const out: VersionSource[] = [];
  docs.forEach((d, i) => {
    if (!d || typeof d !== 'object') return;
    const doc = d as Record<string, unknown>;
    if (doc.kind !== 'ClusterConfiguration' || doc.kubernetesVersion === undefined) return;
    if (typeof doc.kubernetesVersion !== 'string') {
      c.error('INVALID_FIELD', `${file}: kubernetesVersion must be a string`, file, `/${i}/kubernetesVersion`);
      return;
    }
    out.push({ version: doc.kubernetesVersion, file, field: `/${i}/kubernetesVersion`, what: `${file} kubernetesVersion` });
  });
  return out;
}

async function readMetadataChecked(rootfs: Rootfs, c: Collector): Promise<CloudRootfsMetadata | undefined> {
  if (!rootfs.get('Metadata')) return undefined;
  if (!resolved(rootfs, 'Metadata')) {
    c.error('INVALID_METADATA', 'Metadata is not a regular file', 'Metadata');
    return undefined;
  }
  try {
    return parseMetadata(await rootfs.readFile('Metadata'), 'Metadata');
  } catch (err) {
    if (!(err instanceof CloudRootfsError)) throw err;
    const issues = (err.details.issues as { field: string; message: string }[] | undefined) ?? [{ field: '', message: err.message }];
    for (const i of issues) c.error('INVALID_METADATA', `Metadata ${i.field || ''} ${i.message}`.replace(/\s+/g, ' '), 'Metadata', i.field || undefined);
    return undefined;
  }
}

async function lintVersions(rootfs: Rootfs, c: Collector, metadata: CloudRootfsMetadata | undefined, labels: Readonly<Record<string, string>>): Promise<string | undefined> {
  const sources: VersionSource[] = [];
  if (rootfs.get('etc')?.type === 'directory') {
    for (const name of rootfs.list('etc')) {
      if (!/^kubeadm.*\.ya?ml$/.test(name)) continue; // templates (`.tmpl`) hold unrendered values
      const file = `etc/${name}`;
      if (!resolved(rootfs, file)) continue;
      sources.push(...kubeadmVersions(await rootfs.readText(file), file, c));
    }
  }
  if (resolved(rootfs, 'etc/Clusterfile')) {
    sources.push(...kubeadmVersions(await rootfs.readText('etc/Clusterfile'), 'etc/Clusterfile', new Collector()));
  }
  if (metadata?.version) sources.push({ version: metadata.version, file: 'Metadata', field: '/version', what: 'Metadata version' });
  const label = labels[SEALER_LABELS.clusterRuntimeVersion];
  if (label) sources.push({ version: label, file: `label:${SEALER_LABELS.clusterRuntimeVersion}`, what: `label ${SEALER_LABELS.clusterRuntimeVersion}` });
  if (sources.length === 0) return undefined;
  for (const s of sources) {
    if (!/^v?\d+\.\d+\.\d+([-+].*)?$/.test(s.version.trim())) {
      c.error('INVALID_KUBE_VERSION', `${s.what} ${JSON.stringify(s.version)} is not a Kubernetes version (vX.Y.Z)`, s.file, s.field);
    }
  }
  const reference = sources[0];
  for (const s of sources.slice(1)) {
    if (normalizeVersion(s.version) !== normalizeVersion(reference.version)) {
      c.error('KUBE_VERSION_MISMATCH', `${s.what} is ${s.version} but ${reference.what} is ${reference.version}`, s.file, s.field);
    }
  }
  return reference.version;
}

async function lintTemplates(rootfs: Rootfs, c: Collector): Promise<void> {
  for (const t of findTemplates(rootfs)) {
    try {
      checkTemplate(await rootfs.readText(t), t);
    } catch (err) {
      if (!(err instanceof CloudRootfsError) || err.code !== 'TEMPLATE_ERROR') throw err;
      if (err.details.unsupported) c.warn('TEMPLATE_UNSUPPORTED', `${err.message} (sealer may still render it)`, t);
      else c.error('TEMPLATE_ERROR', err.message, t);
    }
  }
}

async function lintClusterfile(rootfs: Rootfs, c: Collector): Promise<void> {
  if (!rootfs.get('etc/Clusterfile')) return;
  if (!resolved(rootfs, 'etc/Clusterfile')) {
    c.error('INVALID_CLUSTERFILE', 'etc/Clusterfile is not a regular file', 'etc/Clusterfile');
    return;
  }
  const report = checkClusterfile(await rootfs.readText('etc/Clusterfile'), 'etc/Clusterfile');
  for (const i of report.issues) c.error('INVALID_CLUSTERFILE', `etc/Clusterfile ${i.field || ''} ${i.message}`.replace(/\s+/g, ' '), 'etc/Clusterfile', i.field || undefined);
  for (const i of report.warnings) c.warn('CLUSTERFILE_WARNING', `etc/Clusterfile ${i.field} ${i.message}`, 'etc/Clusterfile', i.field || undefined);
}

function isClusterRootfs(rootfs: Rootfs): boolean {
  return ['scripts', 'bin/kubeadm', 'etc/kubeadm.yml', 'etc/kubeadm.yaml', 'etc/kubeadm-config.yaml', 'cri'].some((p) => rootfs.get(p) !== undefined);
}

/** Lint a CloudRootfs tree. */
export async function lintRootfs(rootfs: Rootfs, options: LintOptions = {}): Promise<LintReport> {
  const c = new Collector();
  const labels = options.labels ?? {};
  const metadata = await readMetadataChecked(rootfs, c);
  if (metadata?.arch && options.platform && metadata.arch !== options.platform.architecture) {
    c.error('ARCH_MISMATCH', `Metadata arch is ${metadata.arch} but the image is ${options.platform.architecture}`, 'Metadata', '/arch');
  }
  if (isClusterRootfs(rootfs)) {
    await lintScripts(rootfs, c, labels);
    for (const { path, entry } of rootfs.bin.entries()) {
      if (entry.type === 'file' && (entry.mode & 0o111) === 0) c.warn('BIN_NOT_EXECUTABLE', `bin/${path} is not executable`, `bin/${path}`, '/mode');
    }
  }
  const version = await lintVersions(rootfs, c, metadata, labels);
  await lintClusterfile(rootfs, c);
  await lintTemplates(rootfs, c);
  return c.report(version);
}

/** Whether `<dir>/<file>` (joined as Go's filepath.Join does) names something inside `dir`. */
function appFileExists(rootfs: Rootfs, dir: string, file: string): boolean {
  try {
    const path = cleanPath(`${dir}/${file}`);
    return path.startsWith(`${dir}/`) && rootfs.get(path) !== undefined;
  } catch {
    return false;
  }
}

/** Lint an image: its merged rootfs with its labels and platform, plus its sealer extension. */
export async function lintImage(image: Image): Promise<LintReport> {
  const rootfs = await image.flatten();
  const report = await lintRootfs(rootfs, { labels: image.labels, platform: image.platform });
  const c = new Collector();
  c.issues.push(...report.issues);
  try {
    const ext = getImageExtension(image);
    if (!ext) {
      c.warn('NO_SEALER_EXTENSION', 'the image has no sealer.image.extension annotation: sealer v0.9+ run and inspect need it', 'annotation:sealer.image.extension');
    } else {
      ext.applications.forEach((app, i) => {
        const problem = appNameProblem(app.name);
        if (problem !== undefined) {
          c.error('APP_NAME_INVALID', `app name ${JSON.stringify(app.name)} ${problem}`, 'annotation:sealer.image.extension', `/applications/${i}/name`);
          return;
        }
        const dir = `${APP_ROOT}/${app.name}`;
        if (rootfs.get(dir)?.type !== 'directory') {
          c.error('APP_MISSING', `app ${app.name} is declared but ${dir}/ does not exist`, 'annotation:sealer.image.extension', `/applications/${i}`);
          return;
        }
        if (app.type === 'helm') return;
        app.files.forEach((f, j) => {
          // sealer joins them with filepath.Join, so `/a.yaml` (what sealer records) is `a.yaml`.
          if (!appFileExists(rootfs, dir, f)) c.error('APP_FILE_MISSING', `app ${app.name} lists ${f}, which is not in ${dir}/`, 'annotation:sealer.image.extension', `/applications/${i}/files/${j}`);
        });
      });
      const names = new Set(ext.applications.map((a) => a.name));
      (ext.launch.app_names ?? []).forEach((n, i) => {
        if (!names.has(n)) c.error('LAUNCH_UNKNOWN_APP', `LAUNCH names ${n}, which is not an app of the image`, 'annotation:sealer.image.extension', `/launch/app_names/${i}`);
      });
    }
  } catch (err) {
    if (!(err instanceof CloudRootfsError)) throw err;
    c.error('INVALID_SEALER_EXTENSION', err.message, 'annotation:sealer.image.extension');
  }
  return c.report(report.kubernetesVersion);
}
