/**
 * Checks the JSON schemas cannot express, run after the schema on the same document (the Go
 * harness does the same in Go code): digest algorithm/encoding, strict base64 in `data` and its
 * agreement with `size` and `digest`, `Env` entries, and history entries vs `rootfs.diff_ids`.
 *
 * Every function here tolerates a document of the wrong shape (the schema has already reported
 * that) and only looks at values of the type it expects.
 */
import { createHash } from 'node:crypto';
import type { SchemaIssue } from '../../errors';
import { childPointer } from './ajv';
import type { OciDocumentKind } from './oci-schemas';

/** The digest grammar of image-spec's descriptor.md (docs/reference/oci.md#digests-and-descriptors). */
export const DIGEST_GRAMMAR = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

/**
 * Registered algorithms whose encoded part has a fixed form. Algorithms not listed here but that
 * fit the grammar pass: the spec says unsupported digests SHOULD pass validation.
 * blake3 is registered in the unreleased spec (lowercase hex, 256-bit by default).
 */
const REGISTERED_ALGORITHMS: Readonly<Record<string, { pattern: RegExp; describe: string; node?: string }>> = {
  sha256: { pattern: /^[a-f0-9]{64}$/, describe: '64 lowercase hex characters', node: 'sha256' },
  sha512: { pattern: /^[a-f0-9]{128}$/, describe: '128 lowercase hex characters', node: 'sha512' },
  blake3: { pattern: /^[a-f0-9]{64}$/, describe: '64 lowercase hex characters' },
};

/** Why a digest string is invalid, or `undefined` when it is fine. */
export function digestProblem(digest: string): string | undefined {
  if (!DIGEST_GRAMMAR.test(digest)) return 'is not a digest (<algorithm>:<encoded>)';
  const colon = digest.indexOf(':');
  const algorithm = digest.slice(0, colon);
  const registered = REGISTERED_ALGORITHMS[algorithm];
  if (registered && !registered.pattern.test(digest.slice(colon + 1))) {
    return `is not a valid ${algorithm} digest: the encoded part must be ${registered.describe}`;
  }
  return undefined;
}

const STRICT_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Decodes standard, padded base64 (RFC 4648 §4), or returns `undefined` when the text is not
 * exactly that: no whitespace, no URL-safe alphabet, no missing padding, and no stray bits in the
 * last character (so each byte string has one encoding). Node's decoder is lenient about all of
 * these, hence the checks before and after it.
 */
export function decodeStrictBase64(text: string): Buffer | undefined {
  if (!STRICT_BASE64.test(text)) return undefined;
  const bytes = Buffer.from(text, 'base64');
  return bytes.toString('base64') === text ? bytes : undefined;
}

/** Go's check on `config.Env`: `KEY=value` with a non-empty key. Values may span lines. */
const ENV_ENTRY = /^[^=]+=.*$/s;

export interface SemanticCheckOptions {
  /** Check that history entries without `empty_layer` match `rootfs.diff_ids` one to one. Default true. */
  checkHistory?: boolean;
}

type Json = { [key: string]: unknown };

function isObject(value: unknown): value is Json {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** Runs the checks that apply to `kind` and returns every problem found. */
export function semanticIssues(
  kind: OciDocumentKind,
  value: unknown,
  options: SemanticCheckOptions = {},
): SchemaIssue[] {
  const issues: SchemaIssue[] = [];
  for (const [pointer, descriptor] of descriptorsOf(kind, value)) checkDescriptor(descriptor, pointer, issues);
  if (kind === 'config' && isObject(value)) checkConfig(value, options, issues);
  return issues;
}

/** Where descriptors sit in each kind of document. */
function descriptorsOf(kind: OciDocumentKind, value: unknown): Array<[string, Json]> {
  if (!isObject(value)) return [];
  const found: Array<[string, Json]> = [];
  const one = (key: string): void => {
    const child = value[key];
    if (isObject(child)) found.push([childPointer('', key), child]);
  };
  const many = (key: string): void => {
    const list = value[key];
    if (!Array.isArray(list)) return;
    list.forEach((child, i) => {
      if (isObject(child)) found.push([childPointer(childPointer('', key), i), child]);
    });
  };
  switch (kind) {
    case 'descriptor':
      found.push(['', value]);
      break;
    case 'manifest':
    case 'docker-manifest':
      one('config');
      many('layers');
      one('subject');
      break;
    case 'index':
    case 'docker-manifest-list':
      many('manifests');
      one('subject');
      break;
    default:
      break;
  }
  return found;
}

function checkDescriptor(descriptor: Json, pointer: string, issues: SchemaIssue[]): void {
  const { digest, data, size } = descriptor;
  const digestOk = typeof digest === 'string' && DIGEST_GRAMMAR.test(digest);
  if (digestOk) {
    // A digest that misses the grammar was already reported by the schema's pattern.
    const problem = digestProblem(digest);
    if (problem) issues.push({ field: childPointer(pointer, 'digest'), message: problem });
  }
  if (typeof data !== 'string') return;
  const dataField = childPointer(pointer, 'data');
  const bytes = decodeStrictBase64(data);
  if (!bytes) {
    issues.push({ field: dataField, message: 'is not standard padded base64' });
    return;
  }
  if (typeof size === 'number' && Number.isSafeInteger(size) && size >= 0 && bytes.length !== size) {
    issues.push({ field: dataField, message: `decodes to ${bytes.length} bytes but size is ${size}` });
  }
  if (digestOk && digestProblem(digest) === undefined) {
    const algorithm = digest.slice(0, digest.indexOf(':'));
    const nodeAlgorithm = REGISTERED_ALGORITHMS[algorithm]?.node;
    if (nodeAlgorithm) {
      const actual = `${algorithm}:${createHash(nodeAlgorithm).update(bytes).digest('hex')}`;
      if (actual !== digest) issues.push({ field: dataField, message: `does not match digest ${digest} (it hashes to ${actual})` });
    }
  }
}

function checkConfig(config: Json, options: SemanticCheckOptions, issues: SchemaIssue[]): void {
  const runtime = config.config;
  if (isObject(runtime) && Array.isArray(runtime.Env)) {
    runtime.Env.forEach((entry, i) => {
      if (typeof entry === 'string' && !ENV_ENTRY.test(entry)) {
        issues.push({ field: `/config/Env/${i}`, message: `must have the form KEY=value (got ${JSON.stringify(entry)})` });
      }
    });
  }

  const rootfs = config.rootfs;
  const diffIds = isObject(rootfs) && Array.isArray(rootfs.diff_ids) ? rootfs.diff_ids : undefined;
  diffIds?.forEach((diffId, i) => {
    if (typeof diffId !== 'string') return; // the schema reports non-strings
    const problem = digestProblem(diffId);
    if (problem) issues.push({ field: `/rootfs/diff_ids/${i}`, message: problem });
  });

  const history = config.history;
  if (options.checkHistory !== false && diffIds && Array.isArray(history) && history.length > 0) {
    const layerEntries = history.filter((entry) => !(isObject(entry) && entry.empty_layer === true)).length;
    if (layerEntries !== diffIds.length) {
      issues.push({
        field: '/history',
        message:
          `has ${layerEntries} entr${layerEntries === 1 ? 'y' : 'ies'} without empty_layer ` +
          `but rootfs.diff_ids has ${diffIds.length}; they must correspond one to one`,
      });
    }
  }
}
