import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { SchemaValidationError, UsageError, type SchemaIssue } from '../../lib/errors';
import {
  OCI_DOCUMENT_KINDS,
  checkOciDocument,
  createAjv,
  createDraft04Ajv,
  decodeStrictBase64,
  digestProblem,
  issuesFromAjv,
  ociDocumentKindForMediaType,
  parseOciDocument,
  validateOciDocument,
  type OciDocumentKind,
  type OciValidationOptions,
} from '../../lib/image/schema';
import { schemaValidator } from '../../lib/image/schema/oci-schemas';
import { specExamples, vectorTables } from './fixtures/oci-schema-vectors';

/** The issues `parseOciDocument` reports for `text`, or [] when it accepts it. */
function issuesForText(kind: OciDocumentKind, text: string, options?: OciValidationOptions): SchemaIssue[] {
  try {
    parseOciDocument(kind, text, options);
    return [];
  } catch (err) {
    if (err instanceof SchemaValidationError) return err.issues;
    throw err;
  }
}

const fields = (issues: SchemaIssue[]): string[] => issues.map((i) => i.field).sort();

const sha256 = (bytes: Buffer | string): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
const HEX64 = 'a'.repeat(64);

function descriptor(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', size: 32, digest: `sha256:${HEX64}`, ...overrides };
}

function manifest(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: descriptor({ mediaType: 'application/vnd.oci.image.config.v1+json' }),
    layers: [descriptor()],
    ...overrides,
  };
}

function config(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [`sha256:${HEX64}`] }, ...overrides };
}

describe('image-spec Go table-test vectors', () => {
  describe.each(vectorTables)('%s (%s)', (kind, _source, vectors) => {
    it.each(vectors.map((v) => [v.name, v] as const))('%s', (_name, vector) => {
      // The Go harness has no history check; compare with it switched off, then with defaults.
      const lenient = issuesForText(kind, vector.json, { checkHistory: false });
      if (vector.valid) expect(lenient).toEqual([]);
      else expect(lenient.length).toBeGreaterThan(0);

      const strict = issuesForText(kind, vector.json);
      if (vector.historyMismatch) expect(strict).toEqual([expect.objectContaining({ field: '/history' })]);
      else expect(strict).toEqual(lenient);
    });
  });

  it('covers the expected number of upstream cases', () => {
    expect(Object.fromEntries(vectorTables.map(([kind, , v]) => [kind, v.length]))).toEqual({
      descriptor: 31,
      manifest: 12,
      index: 12,
      config: 10,
      layout: 2,
    });
  });
});

describe('spec example documents', () => {
  it.each(specExamples.map((e) => [e.name, e] as const))('%s passes', (_name, example) => {
    expect(issuesForText(example.kind, example.json, { checkHistory: !example.historyMismatch })).toEqual([]);
  });

  it('flags the config.md example, whose history has one layer entry for two diff_ids, only by the history check', () => {
    const example = specExamples.find((e) => e.kind === 'config')!;
    expect(issuesForText('config', example.json)).toEqual([
      {
        field: '/history',
        message: 'has 1 entry without empty_layer but rootfs.diff_ids has 2; they must correspond one to one',
      },
    ]);
  });
});

describe('issues name the bad field', () => {
  it('reports every problem in one manifest, each at its JSON pointer', () => {
    const doc = manifest({
      schemaVersion: 3,
      config: { mediaType: 'invalid', size: '7', digest: `sha256:${HEX64.toUpperCase()}` },
      layers: [descriptor({ size: -1 }), { mediaType: 'a/b', size: 1 }],
      subject: '.nope',
      annotations: { 'com.example.ok': 'yes', 'com.example.bad': 42 },
    });
    const issues = checkOciDocument('manifest', doc);
    expect(fields(issues)).toEqual(
      [
        '/schemaVersion',
        '/config/mediaType',
        '/config/size',
        '/config/digest',
        '/layers/0/size',
        '/layers/1/digest',
        '/subject',
        '/annotations/com.example.bad',
      ].sort(),
    );
    expect(issues.find((i) => i.field === '/layers/1/digest')?.message).toBe('is required');
    expect(issues.find((i) => i.field === '/config/digest')?.message).toMatch(/64 lowercase hex/);
  });

  it('points at the missing platform field of an index entry', () => {
    const index = { schemaVersion: 2, manifests: [{ ...descriptor(), platform: { os: 'linux' } }] };
    expect(checkOciDocument('index', index)).toEqual([{ field: '/manifests/0/platform/architecture', message: 'is required' }]);
  });

  it('summarises a oneOf by the types it allows, or by the deeper error when the type was right', () => {
    const issues = checkOciDocument('config', config({ config: { Entrypoint: '/bin/sh', Labels: { a: 1 }, Volumes: ['/data'] } }));
    expect(issues).toEqual([
      { field: '/config/Entrypoint', message: 'must be array or null' },
      { field: '/config/Volumes', message: 'must be object or null' },
      { field: '/config/Labels/a', message: 'must be string' },
    ]);
  });

  it('escapes "/" and "~" in field names (RFC 6901)', () => {
    const issues = checkOciDocument('manifest', manifest({ annotations: { 'a/b~c': 1 } }));
    expect(issues).toEqual([{ field: '/annotations/a~1b~0c', message: 'must be string' }]);
  });

  it('reports a document of the wrong type at the root', () => {
    for (const value of [null, [], 'manifest', 2]) {
      expect(checkOciDocument('manifest', value)).toEqual([{ field: '', message: 'must be object' }]);
    }
  });

  it('copies the file name into each issue and the message', () => {
    const doc = manifest({ layers: 'none' });
    const issues = checkOciDocument('manifest', doc, { file: 'blobs/sha256/abc' });
    expect(issues).toEqual([{ field: '/layers', message: expect.any(String), file: 'blobs/sha256/abc' }]);
    expect(() => validateOciDocument('manifest', doc, { file: 'blobs/sha256/abc' })).toThrow(/^blobs\/sha256\/abc: invalid OCI image manifest: \/layers /);
  });
});

describe('validateOciDocument', () => {
  it('throws a SchemaValidationError carrying every issue', () => {
    const doc = config({ os: 7, config: { Env: ['=x', 'OK=1', 'NOEQUALS'] } });
    let error: unknown;
    try {
      validateOciDocument('config', doc);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(SchemaValidationError);
    const e = error as SchemaValidationError;
    expect(e.code).toBe('SCHEMA_VALIDATION');
    expect(e.schema).toBe('OCI image config');
    expect(fields(e.issues)).toEqual(['/config/Env/0', '/config/Env/2', '/os']);
    expect(e.details.issues).toBe(e.issues);
  });

  it('returns quietly for a valid document', () => {
    expect(() => validateOciDocument('manifest', manifest())).not.toThrow();
  });

  it('rejects an unknown kind with a UsageError', () => {
    expect(() => checkOciDocument('manifesto' as OciDocumentKind, {})).toThrow(UsageError);
    expect(() => parseOciDocument('manifesto' as OciDocumentKind, '{}')).toThrow(UsageError);
  });
});

describe('digests', () => {
  it.each([
    [`sha256:${HEX64}`, undefined],
    [`sha512:${'0'.repeat(128)}`, undefined],
    [`blake3:${'0'.repeat(64)}`, undefined],
    ['sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564', undefined],
    ['unknown-algo:anything=_-', undefined],
    [`sha256:${'a'.repeat(63)}`, /64 lowercase hex/],
    [`sha256:${'a'.repeat(65)}`, /64 lowercase hex/],
    [`sha256:${'g'.repeat(64)}`, /64 lowercase hex/],
    [`sha512:${'a'.repeat(64)}`, /128 lowercase hex/],
    [`blake3:${'A'.repeat(64)}`, /64 lowercase hex/],
    ['sha256', /not a digest/],
    [`SHA256:${HEX64}`, /not a digest/],
    [`sha256:${HEX64} `, /not a digest/],
  ] as const)('%s', (digest, expected) => {
    const problem = digestProblem(digest);
    if (expected === undefined) expect(problem).toBeUndefined();
    else expect(problem).toMatch(expected);
  });

  it('checks rootfs.diff_ids, which the config schema only types as strings', () => {
    const issues = checkOciDocument('config', config({ rootfs: { type: 'layers', diff_ids: [`sha256:${HEX64}`, 'nope', `sha256:${HEX64.slice(1)}`] } }));
    expect(fields(issues)).toEqual(['/rootfs/diff_ids/1', '/rootfs/diff_ids/2']);
  });

  it('does not report a digest twice when the schema pattern already rejected it', () => {
    expect(checkOciDocument('descriptor', descriptor({ digest: 'sha256' }))).toHaveLength(1);
  });
});

describe('embedded data', () => {
  const bytes = Buffer.from('{"hello":"world"}');
  const good = descriptor({ mediaType: 'application/json', size: bytes.length, digest: sha256(bytes), data: bytes.toString('base64') });

  it('accepts data that matches size and digest', () => {
    expect(checkOciDocument('descriptor', good)).toEqual([]);
  });

  it('rejects data whose length differs from size', () => {
    expect(checkOciDocument('descriptor', { ...good, size: bytes.length + 1 })).toEqual([
      { field: '/data', message: `decodes to ${bytes.length} bytes but size is ${bytes.length + 1}` },
    ]);
  });

  it('rejects data whose sha256 differs from the digest', () => {
    const issues = checkOciDocument('descriptor', { ...good, digest: `sha256:${HEX64}` });
    expect(issues).toEqual([{ field: '/data', message: expect.stringContaining(`does not match digest sha256:${HEX64}`) }]);
  });

  it('checks sha512 digests of data too, and leaves unknown algorithms alone', () => {
    const sha512 = `sha512:${createHash('sha512').update(bytes).digest('hex')}`;
    expect(checkOciDocument('descriptor', { ...good, digest: sha512 })).toEqual([]);
    expect(checkOciDocument('descriptor', { ...good, digest: `sha512:${'0'.repeat(128)}` })).toHaveLength(1);
    expect(checkOciDocument('descriptor', { ...good, digest: 'multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8' })).toEqual([]);
  });

  it.each([
    ['missing padding', 'e30'],
    ['stray bits in the last character', 'e31='],
    ['whitespace', 'e3 0='],
    ['a newline', 'e30=\n'],
    ['URL-safe alphabet', '-_8='],
    ['padding in the middle', 'e3=0'],
  ])('rejects base64 with %s', (_what, data) => {
    expect(decodeStrictBase64(data)).toBeUndefined();
    expect(checkOciDocument('descriptor', descriptor({ size: 2, data }))).toEqual([{ field: '/data', message: 'is not standard padded base64' }]);
  });

  it('checks data in every descriptor of a manifest and an index', () => {
    const bad = descriptor({ size: 3, data: 'e30=', digest: sha256('{}') }); // data is 2 bytes
    expect(fields(checkOciDocument('manifest', manifest({ config: bad, layers: [descriptor(), bad], subject: bad })))).toEqual(
      ['/config/data', '/layers/1/data', '/subject/data'],
    );
    expect(fields(checkOciDocument('index', { schemaVersion: 2, manifests: [bad] }))).toEqual(['/manifests/0/data']);
  });

  it('round-trips any bytes: data built from them passes, a wrong size fails', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (array) => {
        const buf = Buffer.from(array);
        const d = descriptor({ size: buf.length, digest: sha256(buf), data: buf.toString('base64') });
        expect(decodeStrictBase64(buf.toString('base64'))?.equals(buf)).toBe(true);
        expect(checkOciDocument('descriptor', d)).toEqual([]);
        expect(checkOciDocument('descriptor', { ...d, size: buf.length + 1 })).toHaveLength(1);
      }),
      { numRuns: 100 },
    );
  });
});

describe('config checks', () => {
  it.each([
    ['PATH=/bin', true],
    ['EMPTY=', true],
    ['A=b=c', true],
    ['MULTI=line\nvalue', true],
    ['=value', false],
    ['NOVALUE', false],
    ['', false],
  ])('Env entry %j valid=%s', (entry, valid) => {
    const issues = checkOciDocument('config', config({ config: { Env: [entry] } }));
    expect(issues).toEqual(valid ? [] : [{ field: '/config/Env/0', message: expect.stringContaining('KEY=value') }]);
  });

  const twoLayers = { type: 'layers', diff_ids: [`sha256:${HEX64}`, `sha256:${'b'.repeat(64)}`] };

  it('accepts history whose non-empty entries match diff_ids', () => {
    const history = [{ created_by: 'ADD' }, { created_by: 'ENV', empty_layer: true }, { created_by: 'RUN' }];
    expect(checkOciDocument('config', config({ rootfs: twoLayers, history }))).toEqual([]);
  });

  it('rejects history with more or fewer layer entries than diff_ids', () => {
    const tooFew = checkOciDocument('config', config({ rootfs: twoLayers, history: [{ created_by: 'ADD' }, { empty_layer: true }] }));
    expect(tooFew).toEqual([{ field: '/history', message: expect.stringContaining('1 entry without empty_layer but rootfs.diff_ids has 2') }]);
    const tooMany = checkOciDocument('config', config({ history: [{}, {}, { empty_layer: false }] }));
    expect(tooMany).toEqual([{ field: '/history', message: expect.stringContaining('3 entries') }]);
  });

  it('skips the history check when history is absent or empty, or when asked to', () => {
    expect(checkOciDocument('config', config())).toEqual([]);
    expect(checkOciDocument('config', config({ history: [] }))).toEqual([]);
    expect(checkOciDocument('config', config({ history: [{}, {}] }), { checkHistory: false })).toEqual([]);
  });
});

describe('schemaVersion and layout', () => {
  it.each(['manifest', 'index', 'docker-manifest', 'docker-manifest-list'] as const)('%s requires schemaVersion 2', (kind) => {
    const docs: Record<string, Record<string, unknown>> = {
      manifest: manifest(),
      index: { schemaVersion: 2, manifests: [] },
      'docker-manifest': {
        schemaVersion: 2,
        mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
        config: descriptor(),
        layers: [],
      },
      'docker-manifest-list': { schemaVersion: 2, mediaType: 'application/vnd.docker.distribution.manifest.list.v2+json', manifests: [] },
    };
    expect(checkOciDocument(kind, docs[kind])).toEqual([]);
    for (const version of [1, 3, '2']) {
      expect(fields(checkOciDocument(kind, { ...docs[kind], schemaVersion: version }))).toEqual(['/schemaVersion']);
    }
    const { schemaVersion: _dropped, ...withoutVersion } = docs[kind];
    expect(checkOciDocument(kind, withoutVersion)).toEqual([{ field: '/schemaVersion', message: 'is required' }]);
  });

  it('accepts only layout version 1.0.0', () => {
    expect(checkOciDocument('layout', { imageLayoutVersion: '1.0.0', extra: true })).toEqual([]);
    expect(checkOciDocument('layout', { imageLayoutVersion: '1.1.0' })).toEqual([
      { field: '/imageLayoutVersion', message: 'must be one of "1.0.0"' },
    ]);
  });

  it('rejects a bad created time in a config', () => {
    expect(checkOciDocument('config', config({ created: 'yesterday' }))).toEqual([{ field: '/created', message: 'must match format "date-time"' }]);
  });
});

describe('Docker schema2 documents', () => {
  const dockerManifest = {
    schemaVersion: 2,
    mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
    config: { mediaType: 'application/vnd.docker.container.image.v1+json', size: 7023, digest: `sha256:${HEX64}` },
    layers: [
      { mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', size: 32654, digest: `sha256:${'b'.repeat(64)}` },
      {
        mediaType: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
        size: 52,
        digest: `sha256:${'c'.repeat(64)}`,
        urls: ['https://mcr.microsoft.com/v2/layer'],
      },
    ],
  };
  const dockerList = {
    schemaVersion: 2,
    mediaType: 'application/vnd.docker.distribution.manifest.list.v2+json',
    manifests: [
      {
        mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
        size: 7143,
        digest: `sha256:${HEX64}`,
        platform: { architecture: 'arm', os: 'linux', variant: 'v7', features: ['sse4'] },
      },
    ],
  };

  it('accepts a schema2 manifest and manifest list', () => {
    expect(checkOciDocument('docker-manifest', dockerManifest)).toEqual([]);
    expect(checkOciDocument('docker-manifest-list', dockerList)).toEqual([]);
  });

  it('rejects the wrong mediaType, a missing platform and bad digests', () => {
    expect(checkOciDocument('docker-manifest', { ...dockerManifest, mediaType: 'application/vnd.oci.image.manifest.v1+json' })).toEqual([
      { field: '/mediaType', message: 'must be one of "application/vnd.docker.distribution.manifest.v2+json"' },
    ]);
    const { platform: _p, ...noPlatform } = dockerList.manifests[0];
    expect(checkOciDocument('docker-manifest-list', { ...dockerList, manifests: [noPlatform] })).toEqual([
      { field: '/manifests/0/platform', message: 'is required' },
    ]);
    const badDigest = { ...dockerManifest, layers: [{ ...dockerManifest.layers[0], digest: `sha256:${'B'.repeat(64)}` }] };
    expect(fields(checkOciDocument('docker-manifest', badDigest))).toEqual(['/layers/0/digest']);
  });
});

describe('parseOciDocument', () => {
  it('returns the parsed document from text or bytes', () => {
    const text = JSON.stringify(manifest());
    expect(parseOciDocument('manifest', text)).toEqual(manifest());
    expect(parseOciDocument('manifest', new TextEncoder().encode(text))).toEqual(manifest());
  });

  it('reports text that is not JSON, invalid UTF-8 and a byte-order mark as one root issue', () => {
    const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"imageLayoutVersion":"1.0.0"}')]);
    for (const input of ['{"schemaVersion": 2,', Buffer.from([0x7b, 0xff, 0x7d]), bom]) {
      let error: unknown;
      try {
        parseOciDocument('layout', input, { file: 'oci-layout' });
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(SchemaValidationError);
      expect((error as SchemaValidationError).issues).toEqual([
        { field: '', message: expect.stringMatching(/^is not valid UTF-8 JSON/), file: 'oci-layout' },
      ]);
    }
  });
});

describe('media types and caching', () => {
  it('maps media types to kinds', () => {
    expect(ociDocumentKindForMediaType('application/vnd.oci.image.index.v1+json')).toBe('index');
    expect(ociDocumentKindForMediaType('application/vnd.docker.distribution.manifest.list.v2+json')).toBe('docker-manifest-list');
    expect(ociDocumentKindForMediaType('application/vnd.docker.container.image.v1+json')).toBe('config');
    expect(ociDocumentKindForMediaType('application/vnd.oci.image.layer.v1.tar')).toBeUndefined();
    expect(ociDocumentKindForMediaType('toString')).toBeUndefined();
  });

  it('compiles each schema once and reuses it', () => {
    for (const kind of OCI_DOCUMENT_KINDS) expect(schemaValidator(kind)).toBe(schemaValidator(kind));
  });
});

describe('shared ajv helpers', () => {
  const schema = {
    type: 'object',
    properties: {
      name: { type: 'string', minLength: 1 },
      url: { type: 'string', format: 'uri' },
      nested: { type: 'object', properties: { count: { type: 'integer' } }, required: ['count'], additionalProperties: false },
    },
    required: ['name'],
  };

  it.each([
    ['draft-07', createAjv, { $schema: 'http://json-schema.org/draft-07/schema#', ...schema }],
    ['2019-09', createAjv, { $schema: 'https://json-schema.org/draft/2019-09/schema', ...schema }],
    ['draft-04', createDraft04Ajv, { $schema: 'http://json-schema.org/draft-04/schema#', ...schema }],
  ] as const)('%s: reports every error with the field it concerns', (_dialect, create, s) => {
    const validate = create().compile(s);
    expect(validate({ name: 'ok', url: 'https://example.com', nested: { count: 1 } })).toBe(true);
    expect(validate({ url: 'not a uri', nested: { extra: 1 } })).toBe(false);
    expect(issuesFromAjv(validate.errors, 'Clusterfile')).toEqual([
      { field: '/name', message: 'is required', file: 'Clusterfile' },
      { field: '/url', message: 'must match format "uri"', file: 'Clusterfile' },
      { field: '/nested/count', message: 'is required', file: 'Clusterfile' },
      { field: '/nested/extra', message: 'is not allowed here', file: 'Clusterfile' },
    ]);
  });

  it('returns no issues for no errors', () => {
    expect(issuesFromAjv(null)).toEqual([]);
    expect(issuesFromAjv(undefined)).toEqual([]);
  });
});
