/**
 * Loads the OCI image-spec schemas (and our two Docker schema2 schemas) into one draft-04 ajv
 * and hands out a compiled validator per document kind, compiled on first use and then cached
 * for the life of the process.
 *
 * The JSON files are imported (not read from disk at run time) so they travel with the compiled
 * code into dist/.
 */
import type { ValidateFunction } from 'ajv';
import { createDraft04Ajv, type AjvInstance, type AjvOptions } from './ajv';
import defs from './json/defs.json';
import defsDescriptor from './json/defs-descriptor.json';
import contentDescriptor from './json/content-descriptor.json';
import imageManifest from './json/image-manifest-schema.json';
import imageIndex from './json/image-index-schema.json';
import config from './json/config-schema.json';
import imageLayout from './json/image-layout-schema.json';
import dockerManifest from './json/docker-manifest.json';
import dockerManifestList from './json/docker-manifest-list.json';

export type OciDocumentKind =
  | 'descriptor'
  | 'manifest'
  | 'index'
  | 'config'
  | 'layout'
  | 'docker-manifest'
  | 'docker-manifest-list';

export const OCI_DOCUMENT_KINDS: readonly OciDocumentKind[] = [
  'descriptor',
  'manifest',
  'index',
  'config',
  'layout',
  'docker-manifest',
  'docker-manifest-list',
];

/** What each kind is called in error messages. */
export const OCI_DOCUMENT_NAMES: Readonly<Record<OciDocumentKind, string>> = {
  descriptor: 'OCI content descriptor',
  manifest: 'OCI image manifest',
  index: 'OCI image index',
  config: 'OCI image config',
  layout: 'OCI image layout (oci-layout)',
  'docker-manifest': 'Docker schema2 manifest',
  'docker-manifest-list': 'Docker schema2 manifest list',
};

const SCHEMA_BASE = 'https://opencontainers.org/schema/';

/** The schema each kind is validated against (its top-level id after preparation). */
const ROOT_SCHEMAS: Readonly<Record<OciDocumentKind, object>> = {
  descriptor: contentDescriptor,
  manifest: imageManifest,
  index: imageIndex,
  config,
  layout: imageLayout,
  'docker-manifest': dockerManifest,
  'docker-manifest-list': dockerManifestList,
};

type JsonObject = { [key: string]: unknown };

/**
 * A deep copy fit for ajv:
 * - nested `id`s are dropped. Draft-04 says `id` beside `$ref` is ignored, but ajv rebases the
 *   `$ref` on it, and the OCI files put such ids everywhere (`…/descriptor/annotations`), which
 *   breaks every relative ref under them. Only string-valued `id` keys go, so a property that
 *   happens to be named "id" would survive.
 * - the top-level `id` becomes `id` (given), and `$schema` goes: the layout schema names the
 *   meta-schema with `https://`, which ajv does not know, and every file is draft-04 anyway.
 */
function prepare(schema: object, id: string | undefined): JsonObject {
  const copy = stripNestedIds(schema) as JsonObject;
  delete copy.$schema;
  if (id === undefined) delete copy.id;
  else copy.id = id;
  return copy;
}

function stripNestedIds(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(stripNestedIds);
  if (value === null || typeof value !== 'object') return value;
  const out: JsonObject = {};
  for (const [key, child] of Object.entries(value)) {
    if (key === 'id' && typeof child === 'string') continue;
    out[key] = stripNestedIds(child);
  }
  return out;
}

/**
 * The manifest schema says `layers` has `minItems: 1`, but the spec's prose only says it SHOULD
 * have an entry "for portability" (docs/reference/oci.md#image-manifest): an image with no layers
 * (`layers: []`, `rootfs.diff_ids: []`) is valid, and sealer builds them (a Kubefile of metadata
 * only). skopeo, umoci and containerd read them; oci-image-tool, which applies the schema as it
 * is, does not.
 */
function allowNoLayers(schema: JsonObject): void {
  const layers = (schema.properties as JsonObject | undefined)?.layers as JsonObject | undefined;
  if (layers) delete layers.minItems;
}

function topLevelId(schema: object): string | undefined {
  const id = (schema as JsonObject).id;
  return typeof id === 'string' ? id : undefined;
}

let ajvInstance: AjvInstance | undefined;
const validators = new Map<OciDocumentKind, ValidateFunction>();

/**
 * The shared-definition files are reached by relative refs from schemas whose ids sit at two
 * depths (`…/schema/descriptor` and `…/schema/image/manifest`), so each is registered under both
 * `…/schema/X` and `…/schema/image/X`, as the Go harness does.
 */
export function buildOciAjv(options: AjvOptions = {}): AjvInstance {
  const ajv = createDraft04Ajv(options);
  for (const base of [SCHEMA_BASE, `${SCHEMA_BASE}image/`]) {
    ajv.addSchema(prepare(defs, `${base}defs.json`));
    ajv.addSchema(prepare(defsDescriptor, `${base}defs-descriptor.json`));
    ajv.addSchema(prepare(contentDescriptor, `${base}content-descriptor.json`));
  }
  for (const kind of OCI_DOCUMENT_KINDS) {
    if (kind === 'descriptor') continue; // registered above; compiled through its own id below
    const schema = prepare(ROOT_SCHEMAS[kind], topLevelId(ROOT_SCHEMAS[kind]));
    if (kind === 'manifest') allowNoLayers(schema);
    ajv.addSchema(schema);
  }
  ajv.addSchema(prepare(contentDescriptor, topLevelId(contentDescriptor)));
  return ajv;
}

/** The top-level schema id of each kind (what `scripts/compile-schemas.js` precompiles). */
export function rootSchemaIds(): Record<OciDocumentKind, string> {
  const out = {} as Record<OciDocumentKind, string>;
  for (const kind of OCI_DOCUMENT_KINDS) out[kind] = topLevelId(ROOT_SCHEMAS[kind])!;
  return out;
}

/**
 * Validators compiled at build time (ajv standalone code, in dist/ only): loading them costs a
 * few milliseconds where compiling costs ~80 ms, which every CLI command that reads an image paid.
 * Missing (tests run from sources) or stale, the schemas are compiled here instead.
 */
let precompiled: Partial<Record<OciDocumentKind, ValidateFunction>> | null | undefined;

function precompiledValidator(kind: OciDocumentKind): ValidateFunction | undefined {
  if (precompiled === undefined) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      precompiled = require('./compiled-oci-validators.js') as Partial<Record<OciDocumentKind, ValidateFunction>>;
    } catch {
      precompiled = null;
    }
  }
  return precompiled?.[kind];
}

/** The compiled validator for one kind; the first call compiles, later calls reuse it. */
export function schemaValidator(kind: OciDocumentKind): ValidateFunction {
  let validate = validators.get(kind) ?? precompiledValidator(kind);
  if (!validate) {
    ajvInstance ??= buildOciAjv();
    const id = topLevelId(ROOT_SCHEMAS[kind]);
    validate = id === undefined ? undefined : ajvInstance.getSchema(id);
    if (!validate) throw new Error(`internal: no schema registered for ${kind}`);
    validators.set(kind, validate);
  }
  return validate;
}
