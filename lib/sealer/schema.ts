/**
 * The JSON schemas of sealer's metadata (the image extension, the container image list and the
 * rootfs `Metadata` file), compiled once per process with the shared ajv helper so their errors
 * name the bad field the same way OCI document errors do.
 */
import type { ValidateFunction } from 'ajv';
import { SchemaValidationError, type SchemaIssue } from '../errors';
import { createAjv, issuesFromAjv } from '../image/schema/ajv';
import imageExtensionSchema from './schemas/image-extension.json';
import containerImagesSchema from './schemas/container-images.json';
import metadataSchema from './schemas/metadata.json';
import { parseJsonText } from '../image/schema';

export type SealerSchemaKind = 'image-extension' | 'container-images' | 'metadata';

const SCHEMAS: Record<SealerSchemaKind, { schema: object; name: string }> = {
  'image-extension': { schema: imageExtensionSchema, name: 'sealer image extension' },
  'container-images': { schema: containerImagesSchema, name: 'sealer container image list' },
  metadata: { schema: metadataSchema, name: 'CloudRootfs Metadata' },
};

const compiled = new Map<SealerSchemaKind, ValidateFunction>();

function validator(kind: SealerSchemaKind): ValidateFunction {
  let v = compiled.get(kind);
  if (!v) {
    v = createAjv().compile(SCHEMAS[kind].schema);
    compiled.set(kind, v);
  }
  return v;
}

/** Every problem with `value` as a `kind` document ([] when valid). */
export function checkSealerDocument(kind: SealerSchemaKind, value: unknown, file?: string): SchemaIssue[] {
  const validate = validator(kind);
  validate(value);
  return issuesFromAjv(validate.errors, file);
}

export function validateSealerDocument(kind: SealerSchemaKind, value: unknown, file?: string): void {
  const issues = checkSealerDocument(kind, value, file);
  if (issues.length > 0) throw new SchemaValidationError(SCHEMAS[kind].name, issues, file);
}

/** Parse JSON text (or UTF-8 bytes) and validate it; bad JSON is a SchemaValidationError too. */
export function parseSealerDocument<T>(kind: SealerSchemaKind, input: string | Uint8Array, file?: string): T {
  let value: unknown;
  try {
    value = parseJsonText(input);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new SchemaValidationError(SCHEMAS[kind].name, [{ field: '', message: `is not valid UTF-8 JSON (${reason})`, ...(file ? { file } : {}) }], file);
  }
  validateSealerDocument(kind, value, file);
  return value as T;
}
