/**
 * Validation of OCI image-spec documents (descriptor, manifest, index, config, oci-layout) and
 * of the Docker schema2 manifest and manifest list, which cloudrootfs also reads.
 *
 * Two layers, both always run so one call reports every problem:
 * 1. the image-spec JSON schemas (draft-04, stored in ./json), compiled once per process;
 * 2. the checks the schemas cannot express (./checks.ts): digest encodings, strict base64 in
 *    `data` against `size` and `digest`, `Env` entries, history vs `rootfs.diff_ids`.
 */
import { CloudRootfsError, LimitExceededError, SchemaValidationError, UsageError, type SchemaIssue } from '../../errors';
import { MEDIA_TYPES } from '../../media-types';
import { semanticIssues, type SemanticCheckOptions } from './checks';
import { OCI_DOCUMENT_KINDS, OCI_DOCUMENT_NAMES, schemaValidator, type OciDocumentKind } from './oci-schemas';
import { issuesFromAjv } from './ajv';

export type { OciDocumentKind } from './oci-schemas';
export { OCI_DOCUMENT_KINDS } from './oci-schemas';
export { createAjv, createDraft04Ajv, issuesFromAjv } from './ajv';
export { digestProblem, decodeStrictBase64 } from './checks';

/**
 * How deeply a document's arrays and objects may nest. Go's decoder allows 10,000 levels, but
 * everything that walks a value recursively (JSON.stringify among them) runs out of stack near
 * 5,000; no image document needs more than a handful, so a few hundred is plenty.
 */
export const MAX_JSON_NESTING = 256;

/** The deepest nesting of arrays and objects in JSON text (strings skipped), in one pass. */
export function jsonNesting(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) max = Math.max(max, ++depth);
    else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
}

/**
 * JSON from text or bytes. Bytes must be strict UTF-8; a BOM is not skipped (I-JSON, and what
 * Go's decoder accepts). Nesting deeper than MAX_JSON_NESTING is LimitExceededError; otherwise
 * throws the decoder's or JSON.parse's error.
 */
export function parseJsonText(input: string | Uint8Array): unknown {
  const text = typeof input === 'string' ? input : new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(input);
  const nesting = jsonNesting(text);
  if (nesting > MAX_JSON_NESTING) throw new LimitExceededError('jsonNesting', MAX_JSON_NESTING, `a JSON document nested ${nesting} levels deep`);
  return JSON.parse(text);
}

export interface OciValidationOptions extends SemanticCheckOptions {
  /** Where the document came from; copied into every issue and the error message. */
  file?: string;
}

/** Media types whose documents this module validates, and the kind each one is. */
const KIND_BY_MEDIA_TYPE: Readonly<Record<string, OciDocumentKind>> = {
  'application/vnd.oci.descriptor.v1+json': 'descriptor',
  'application/vnd.oci.layout.header.v1+json': 'layout',
  [MEDIA_TYPES.manifest]: 'manifest',
  [MEDIA_TYPES.index]: 'index',
  [MEDIA_TYPES.config]: 'config',
  // Docker's image config is the OCI config plus Docker-only fields, which the schema allows.
  [MEDIA_TYPES.dockerConfig]: 'config',
  [MEDIA_TYPES.dockerManifest]: 'docker-manifest',
  [MEDIA_TYPES.dockerManifestList]: 'docker-manifest-list',
};

/** The document kind for a media type, or `undefined` when this module has no schema for it. */
export function ociDocumentKindForMediaType(mediaType: string): OciDocumentKind | undefined {
  return Object.prototype.hasOwnProperty.call(KIND_BY_MEDIA_TYPE, mediaType) ? KIND_BY_MEDIA_TYPE[mediaType] : undefined;
}

function assertKind(kind: unknown): asserts kind is OciDocumentKind {
  if (!(OCI_DOCUMENT_KINDS as readonly unknown[]).includes(kind)) {
    throw new UsageError(`unknown OCI document kind ${JSON.stringify(kind)}; expected one of ${OCI_DOCUMENT_KINDS.join(', ')}`);
  }
}

/**
 * Every problem with `value` as a document of `kind`: schema issues first, then those of the
 * extra checks. An empty array means valid.
 */
export function checkOciDocument(kind: OciDocumentKind, value: unknown, options: OciValidationOptions = {}): SchemaIssue[] {
  assertKind(kind);
  const validate = schemaValidator(kind);
  validate(value);
  const issues = [...issuesFromAjv(validate.errors, options.file), ...semanticIssues(kind, value, options)];
  if (options.file === undefined) return issues;
  return issues.map((i) => (i.file === undefined ? { ...i, file: options.file } : i));
}

/** Throws a `SchemaValidationError` listing every problem when `value` is not a valid `kind`. */
export function validateOciDocument(kind: OciDocumentKind, value: unknown, options: OciValidationOptions = {}): void {
  const issues = checkOciDocument(kind, value, options);
  if (issues.length > 0) throw new SchemaValidationError(OCI_DOCUMENT_NAMES[kind], issues, options.file);
}

/**
 * Parses stored bytes (or text) as JSON and validates the result as `kind`, returning it.
 * Bytes must be UTF-8 (I-JSON); text that is not JSON is a `SchemaValidationError` like any other
 * invalid document, so callers need only one catch.
 */
export function parseOciDocument<T = unknown>(
  kind: OciDocumentKind,
  input: string | Uint8Array,
  options: OciValidationOptions = {},
): T {
  assertKind(kind);
  let value: unknown;
  try {
    value = parseJsonText(input);
  } catch (err) {
    if (err instanceof CloudRootfsError) throw err;
    const reason = err instanceof Error ? err.message : String(err);
    const issue: SchemaIssue = { field: '', message: `is not valid UTF-8 JSON (${reason})` };
    if (options.file !== undefined) issue.file = options.file;
    throw new SchemaValidationError(OCI_DOCUMENT_NAMES[kind], [issue], options.file);
  }
  validateOciDocument(kind, value, options);
  return value as T;
}
