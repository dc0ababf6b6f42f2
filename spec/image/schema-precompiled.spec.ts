/**
 * The validators `npm run build` precompiles (scripts/compile-schemas.js, ajv standalone) must
 * judge every document exactly as the runtime-compiled ones do.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import standalone from 'ajv/dist/standalone';
import { buildOciAjv, rootSchemaIds, schemaValidator, type OciDocumentKind } from '../../lib/image/schema/oci-schemas';
import { specExamples, vectorTables } from './fixtures/oci-schema-vectors';

describe('precompiled OCI validators', () => {
  let dir: string;
  let compiled: Record<OciDocumentKind, (data: unknown) => boolean>;
  beforeAll(() => {
    // Inside the project, so the generated code resolves ajv's runtime from node_modules as in dist/.
    const parent = join(__dirname, '..', '..', '.tmp');
    mkdirSync(parent, { recursive: true });
    dir = mkdtempSync(join(parent, 'schemas-'));
    const file = join(dir, 'validators.js');
    writeFileSync(file, standalone(buildOciAjv({ code: { source: true, lines: false } }), rootSchemaIds()));
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    compiled = require(file);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const parses = (json: string) => {
    try {
      JSON.parse(json);
      return true;
    } catch {
      return false; // text that is not JSON never reaches a validator
    }
  };
  const cases = [
    ...vectorTables.flatMap(([kind, , vectors]) => vectors.map((v) => [kind, v.name, v.json] as const)),
    ...specExamples.map((e) => [e.kind, e.name, e.json] as const),
  ].filter(([, , json]) => parses(json));

  test.each(cases)('%s: %s', (kind, _name, json) => {
    const doc = JSON.parse(json);
    const runtime = schemaValidator(kind);
    expect(compiled[kind](doc)).toBe(runtime(doc));
  });
});
