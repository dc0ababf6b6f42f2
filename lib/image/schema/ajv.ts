/**
 * One way to build ajv instances and to turn ajv's errors into `SchemaIssue`s, shared by every
 * module that validates JSON (OCI documents, the sealer extension, Metadata, Clusterfile), so all
 * of them report errors the same way: a JSON pointer naming the bad field plus a short message.
 *
 * Compile a schema once (keep the ValidateFunction at module level) and call it many times;
 * compiling is far more expensive than validating.
 */
import type Ajv from 'ajv';
import type { ErrorObject, Options } from 'ajv';
import type { SchemaIssue } from '../../errors';

// ajv is loaded only when a schema must be compiled: precompiled validators (dist/) and the
// error mapping below do not need it, and loading it costs ~30 ms of every CLI start.
/* eslint-disable @typescript-eslint/no-require-imports */
const loadAjvDraft04 = () => require('ajv-draft-04').default as new (o: Options) => Ajv;
const loadAjv2019 = () => require('ajv/dist/2019').default as new (o: Options) => Ajv;
const loadAddFormats = () => require('ajv-formats').default as (ajv: Ajv) => Ajv;
const loadDraft07Meta = () => require('ajv/dist/refs/json-schema-draft-07.json') as object;
/* eslint-enable @typescript-eslint/no-require-imports */

export type { ErrorObject, Options as AjvOptions, ValidateFunction } from 'ajv';
export type AjvInstance = Ajv;

/**
 * An ajv for draft-04 schemas (the OCI image-spec dialect: `id`, not `$id`).
 * `strict: false` because the OCI schemas use keywords ajv does not know (`media`).
 */
export function createDraft04Ajv(options: Options = {}): Ajv {
  const AjvDraft04 = loadAjvDraft04();
  const ajv = new AjvDraft04({ allErrors: true, strict: false, ...options });
  loadAddFormats()(ajv);
  // ajv-draft-04 is a separate class with the same core; callers only use the core API.
  return ajv as unknown as Ajv;
}

/**
 * An ajv for our own schemas, written as draft 2019-09 or draft-07 (both meta-schemas are
 * registered, so either `$schema` works). Reports every error, not only the first.
 */
export function createAjv(options: Options = {}): Ajv {
  const Ajv2019 = loadAjv2019();
  const ajv = new Ajv2019({ allErrors: true, allowUnionTypes: true, ...options });
  ajv.addMetaSchema(loadDraft07Meta());
  loadAddFormats()(ajv);
  return ajv as unknown as Ajv;
}

/** Escapes one JSON-pointer segment (RFC 6901). */
export function pointerSegment(key: string | number): string {
  return String(key).replace(/~/g, '~0').replace(/\//g, '~1');
}

/** Joins a base pointer and a key: `('/layers', 0)` → `/layers/0`. */
export function childPointer(base: string, key: string | number): string {
  return `${base}/${pointerSegment(key)}`;
}

/**
 * Turns ajv errors into issues that name the bad field.
 *
 * - `required` points at the missing property itself (`/config/digest is required`),
 *   `additionalProperties` at the unexpected one.
 * - A failed `oneOf`/`anyOf` is summarised: if the branches only disagree on the type of the
 *   value, one issue says which types were allowed (`must be array or null`); otherwise the
 *   branch errors that reach deeper into the value are kept and the wrong-branch type noise is
 *   dropped (`/config/Labels/a must be string`, not also `/config/Labels must be null`).
 * - Duplicates (same field and message) are reported once.
 */
export function issuesFromAjv(errors: readonly ErrorObject[] | null | undefined, file?: string): SchemaIssue[] {
  if (!errors || errors.length === 0) return [];
  const skip = new Set<ErrorObject>();
  const replacements = new Map<ErrorObject, SchemaIssue>();
  const claimed = new Set<ErrorObject>();

  errors.forEach((combo, index) => {
    if (combo.keyword !== 'oneOf' && combo.keyword !== 'anyOf') return;
    const branchErrors = branchErrorsOf(errors, index, claimed);
    if (branchErrors.length === 0) return;
    const samePathTypeErrors = branchErrors.filter((e) => e.keyword === 'type' && e.instancePath === combo.instancePath);
    if (samePathTypeErrors.length === branchErrors.length) {
      // The value had none of the allowed types: one issue listing them.
      const types = unique(samePathTypeErrors.flatMap((e) => typeNames(e.params.type)));
      replacements.set(combo, issue(combo.instancePath, `must be ${types.join(' or ')}`, file));
      branchErrors.forEach((e) => skip.add(e));
    } else {
      // Some branch matched the type and failed deeper in: those errors say what is wrong.
      skip.add(combo);
      samePathTypeErrors.forEach((e) => skip.add(e));
    }
  });

  const issues: SchemaIssue[] = [];
  const seen = new Set<string>();
  for (const error of errors) {
    if (skip.has(error)) continue;
    const converted = replacements.get(error) ?? convert(error, file);
    const key = `${converted.field}\u0000${converted.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    issues.push(converted);
  }
  return issues;
}

/**
 * The errors a failed `oneOf`/`anyOf` at `errors[index]` collected from its branches. ajv (with
 * allErrors) appends branch errors just before the combinator's own error, and they all concern
 * the combinator's value or something inside it. Their schemaPath cannot be used to find them:
 * errors met through a `$ref` carry the referenced file's path (`defs.json#/definitions/...`).
 */
function branchErrorsOf(errors: readonly ErrorObject[], index: number, claimed: Set<ErrorObject>): ErrorObject[] {
  const at = errors[index].instancePath;
  const found: ErrorObject[] = [];
  for (let j = index - 1; j >= 0; j--) {
    const e = errors[j];
    const inside = e.instancePath === at || e.instancePath.startsWith(`${at}/`);
    if (!inside) break;
    if (claimed.has(e)) continue; // a nested combinator's branch, already summarised
    claimed.add(e);
    found.push(e);
  }
  return found.reverse();
}

function convert(error: ErrorObject, file?: string): SchemaIssue {
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'required':
      return issue(childPointer(error.instancePath, String(params.missingProperty)), 'is required', file);
    case 'additionalProperties':
      return issue(childPointer(error.instancePath, String(params.additionalProperty)), 'is not allowed here', file);
    case 'enum':
      return issue(
        error.instancePath,
        `must be one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`,
        file,
      );
    case 'const':
      return issue(error.instancePath, `must be ${JSON.stringify(params.allowedValue)}`, file);
    default:
      return issue(error.instancePath, error.message ?? `fails ${error.keyword}`, file);
  }
}

function issue(field: string, message: string, file?: string): SchemaIssue {
  return file === undefined ? { field, message } : { field, message, file };
}

function typeNames(type: unknown): string[] {
  if (Array.isArray(type)) return type.map(String);
  return typeof type === 'string' ? type.split(',') : [];
}

function unique<T>(values: T[]): T[] {
  return [...new Set(values)];
}
