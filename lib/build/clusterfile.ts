/**
 * Clusterfile validation (docs/reference/sealer.md#clusterfile). A Clusterfile is one multi-document YAML file holding a
 * `Cluster` (`sealer.io/v2`, sealer v0.9+, or `sealer.cloud/v2`, v0.6–v0.8), any number of
 * `Config`, `Plugin` and `Application` documents, and kubeadm's `InitConfiguration`,
 * `ClusterConfiguration`, `JoinConfiguration`, `KubeletConfiguration` and
 * `KubeProxyConfiguration`. sealer's decoder switches on `kind` only; so do we, then validate each
 * document against its JSON schema (lib/build/schemas) with ajv.
 *
 * Issues name the field as a JSON pointer into the file seen as an array of documents:
 * `/0/spec/hosts/1/ips/0` is the first IP of the second host of the first document.
 */
import { isIP } from 'node:net';
import type { ValidateFunction } from 'ajv';
import * as yaml from 'js-yaml';
import { SchemaIssue, ValidationError } from '../errors';
import { createAjv, issuesFromAjv } from '../image/schema/ajv';
import applicationSchema from './schemas/application.json';
import clusterCloudV2Schema from './schemas/cluster-sealer-cloud-v2.json';
import clusterV2Schema from './schemas/cluster-sealer-io-v2.json';
import configSchema from './schemas/config.json';
import kubeadmSchema from './schemas/kubeadm.json';
import pluginSchema from './schemas/plugin.json';

export const KUBEADM_KINDS = ['InitConfiguration', 'ClusterConfiguration', 'JoinConfiguration', 'KubeletConfiguration', 'KubeProxyConfiguration'] as const;

/** apiVersions a kubeadm-family kind may carry. */
const KUBEADM_API_VERSIONS: Record<(typeof KUBEADM_KINDS)[number], RegExp> = {
  InitConfiguration: /^kubeadm\.k8s\.io\/v1beta[1-4]$/,
  ClusterConfiguration: /^kubeadm\.k8s\.io\/v1beta[1-4]$/,
  JoinConfiguration: /^kubeadm\.k8s\.io\/v1beta[1-4]$/,
  KubeletConfiguration: /^kubelet\.config\.k8s\.io\/v1beta1$/,
  KubeProxyConfiguration: /^kubeproxy\.config\.k8s\.io\/v1alpha1$/,
};

export interface ClusterfileDocument {
  /** 0-based position in the file. */
  index: number;
  kind?: string;
  apiVersion?: string;
  name?: string;
  value: unknown;
}

export interface ClusterfileReport {
  documents: ClusterfileDocument[];
  /** Problems that make sealer reject the file (or misread it). */
  issues: SchemaIssue[];
  /** Things sealer would ignore (unknown kinds…). */
  warnings: SchemaIssue[];
}

const compiled = new Map<object, ValidateFunction>();
function validatorFor(schema: object): ValidateFunction {
  let v = compiled.get(schema);
  if (!v) {
    const ajv = createAjv({ strict: false });
    // One format for "an IPv4 or IPv6 address" (sealer parses host IPs with Go's net.ParseIP).
    ajv.addFormat('ip', (s: string) => isIP(s) !== 0);
    v = ajv.compile(schema);
    compiled.set(schema, v);
  }
  return v;
}

function schemaFor(kind: string, apiVersion: string | undefined): object | undefined {
  switch (kind) {
    case 'Cluster':
      return apiVersion === 'sealer.cloud/v2' ? clusterCloudV2Schema : clusterV2Schema;
    case 'Config':
      return configSchema;
    case 'Plugin':
      return pluginSchema;
    case 'Application':
      return applicationSchema;
    default:
      return (KUBEADM_KINDS as readonly string[]).includes(kind) ? kubeadmSchema : undefined;
  }
}

function prefix(issues: SchemaIssue[], index: number): SchemaIssue[] {
  return issues.map((i) => ({ ...i, field: `/${index}${i.field}` }));
}

/** Check a Clusterfile's text; never throws for bad input (everything is an issue). */
export function checkClusterfile(text: string, file = 'Clusterfile'): ClusterfileReport {
  const issues: SchemaIssue[] = [];
  const warnings: SchemaIssue[] = [];
  const documents: ClusterfileDocument[] = [];
  let values: unknown[];
  try {
    values = yaml.loadAll(text, undefined, { filename: file, json: false });
  } catch (err) {
    const e = err as yaml.YAMLException;
    const where = e.mark ? ` (line ${e.mark.line + 1}, column ${e.mark.column + 1})` : '';
    return { documents, issues: [{ field: '', message: `is not valid YAML${where}: ${e.reason ?? e.message}`, file }], warnings };
  }
  let clusters = 0;
  values.forEach((value, index) => {
    if (value === null || value === undefined) return; // an empty document (`---` at the end)
    if (typeof value !== 'object' || Array.isArray(value)) {
      issues.push({ field: `/${index}`, message: 'must be a mapping with apiVersion and kind', file });
      return;
    }
    const doc = value as Record<string, unknown>;
    const kind = typeof doc.kind === 'string' ? doc.kind : undefined;
    const apiVersion = typeof doc.apiVersion === 'string' ? doc.apiVersion : undefined;
    const meta = doc.metadata as Record<string, unknown> | undefined;
    documents.push({ index, kind, apiVersion, name: typeof meta?.name === 'string' ? meta.name : undefined, value });
    if (!kind) {
      issues.push({ field: `/${index}/kind`, message: 'is required', file });
      return;
    }
    const schema = schemaFor(kind, apiVersion);
    if (!schema) {
      warnings.push({ field: `/${index}/kind`, message: `${JSON.stringify(kind)} is not a kind sealer reads; the document is ignored`, file });
      return;
    }
    if (kind === 'Cluster') {
      clusters++;
      if (clusters === 2) issues.push({ field: `/${index}`, message: 'is a second Cluster document; a Clusterfile holds one', file });
      if (apiVersion !== 'sealer.io/v2' && apiVersion !== 'sealer.cloud/v2') {
        issues.push({ field: `/${index}/apiVersion`, message: `must be "sealer.io/v2" or "sealer.cloud/v2" (got ${JSON.stringify(apiVersion ?? null)})`, file });
        return;
      }
    }
    if (kind in KUBEADM_API_VERSIONS && (apiVersion === undefined || !KUBEADM_API_VERSIONS[kind as keyof typeof KUBEADM_API_VERSIONS].test(apiVersion))) {
      issues.push({ field: `/${index}/apiVersion`, message: `${JSON.stringify(apiVersion ?? null)} is not an apiVersion of ${kind}`, file });
    }
    const validate = validatorFor(schema);
    validate(value);
    issues.push(...prefix(issuesFromAjv(validate.errors, file), index));
  });
  return { documents, issues, warnings };
}

/** Validate a Clusterfile; throws a ValidationError (code VALIDATION_FAILED) listing every issue. */
export function validateClusterfile(text: string, file = 'Clusterfile'): ClusterfileDocument[] {
  const report = checkClusterfile(text, file);
  if (report.issues.length > 0) {
    throw new ValidationError(
      `${file}: invalid Clusterfile: ${report.issues.map((i) => `${i.field || '(file)'} ${i.message}`).join('; ')}`,
      report.issues,
    );
  }
  return report.documents;
}
