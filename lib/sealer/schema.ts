/**
 * The JSON schemas of sealer's metadata (the image extension, the container image list and the
 * rootfs `Metadata` file), compiled once per process with the shared ajv helper so their errors
 * name the bad field the same way OCI document errors do.
 */
import type { ValidateFunction } from 'ajv';
import { CloudRootfsError, SchemaValidationError, type SchemaIssue } from '../errors';
import { createAjv, issuesFromAjv, type AjvInstance, type AjvOptions } from '../image/schema/ajv';
import imageExtensionSchema from './schemas/image-extension.json';
import containerImagesSchema from './schemas/container-images.json';
import metadataSchema from './schemas/metadata.json';
import { parseJsonText } from '../image/schema';

export type SealerSchemaKind = 'image-extension' | 'container-images' | 'metadata';

/** scripts/compile-schemas.js precompiles these (dist/lib/sealer/compiled-sealer-validators.js). */
const SCHEMAS: Record<SealerSchemaKind, { schema: object; name: string }> = {
  'image-extension': { schema: imageExtensionSchema, name: 'sealer image extension' },
  'container-images': { schema: containerImagesSchema, name: 'sealer container image list' },
  metadata: { schema: metadataSchema, name: 'CloudRootfs Metadata' },
};

const compiled = new Map<SealerSchemaKind, ValidateFunction>();
let precompiled: Partial<Record<SealerSchemaKind, ValidateFunction>> | null | undefined;

/** The build's standalone validators, when present (absent under ts-jest: then ajv compiles). */
function precompiledValidator(kind: SealerSchemaKind): ValidateFunction | undefined {
  if (precompiled === undefined) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      precompiled = require('./compiled-sealer-validators.js') as Partial<Record<SealerSchemaKind, ValidateFunction>>;
    } catch {
      precompiled = null;
    }
  }
  return precompiled?.[kind];
}

/** An ajv holding the sealer schemas (the build passes `code.source` to precompile them). */
export function buildSealerAjv(options: AjvOptions = {}): AjvInstance {
  const ajv = createAjv(options);
  for (const { schema } of Object.values(SCHEMAS)) ajv.addSchema(schema);
  return ajv;
}

/** Each kind's schema `$id` (the exports of the precompiled module). */
export function sealerSchemaIds(): Record<SealerSchemaKind, string> {
  const ids = {} as Record<SealerSchemaKind, string>;
  for (const [kind, { schema }] of Object.entries(SCHEMAS)) ids[kind as SealerSchemaKind] = (schema as { $id: string }).$id;
  return ids;
}

let runtimeAjv: AjvInstance | undefined;

/** The validator of one kind: precompiled when the build made it, else compiled once here. */
export function sealerValidator(kind: SealerSchemaKind): ValidateFunction {
  let v = compiled.get(kind) ?? precompiledValidator(kind);
  if (!v) {
    runtimeAjv ??= buildSealerAjv();
    v = runtimeAjv.getSchema(sealerSchemaIds()[kind]);
    if (!v) throw new Error(`internal: no sealer schema registered for ${kind}`);
    compiled.set(kind, v);
  }
  return v;
}

/** Every problem with `value` as a `kind` document ([] when valid). */
export function checkSealerDocument(kind: SealerSchemaKind, value: unknown, file?: string): SchemaIssue[] {
  const validate = sealerValidator(kind);
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
    if (err instanceof CloudRootfsError) throw err;
    const reason = err instanceof Error ? err.message : String(err);
    throw new SchemaValidationError(SCHEMAS[kind].name, [{ field: '', message: `is not valid UTF-8 JSON (${reason})`, ...(file ? { file } : {}) }], file);
  }
  validateSealerDocument(kind, value, file);
  return value as T;
}
