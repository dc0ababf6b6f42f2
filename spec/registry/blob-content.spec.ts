/** Small pieces of the pull path that need no registry. */
import { coalesce } from '../../lib/registry/blob-content';
import { parseRemoteReference } from '../../lib/registry/remote';

async function collect(parts: Buffer[], size: number): Promise<number[]> {
  async function* source() {
    yield* parts;
  }
  const out: number[] = [];
  const all: Buffer[] = [];
  for await (const chunk of coalesce(source(), size)) {
    out.push(chunk.length);
    all.push(chunk);
  }
  expect(Buffer.concat(all)).toEqual(Buffer.concat(parts));
  return out;
}

describe('coalesce', () => {
  it('regroups small chunks into chunks of at least the size, keeping every byte in order', async () => {
    const parts = Array.from({ length: 10 }, (_, i) => Buffer.alloc(30, i));
    expect(await collect(parts, 100)).toEqual([120, 120, 60]);
  });
  it('passes big chunks through untouched and handles empty input', async () => {
    expect(await collect([Buffer.alloc(500, 1), Buffer.alloc(10, 2), Buffer.alloc(500, 3)], 100)).toEqual([500, 510]);
    expect(await collect([], 100)).toEqual([]);
  });
});

describe('parseRemoteReference', () => {
  it.each([
    ['docker://127.0.0.1:5000/team/app:v1', { registry: '127.0.0.1:5000', repository: 'team/app', tag: 'v1', name: '127.0.0.1:5000/team/app:v1' }],
    ['nginx', { registry: 'docker.io', repository: 'library/nginx', tag: 'latest', name: 'docker.io/library/nginx:latest' }],
    [`quay.io/a/b@sha256:${'a'.repeat(64)}`, { registry: 'quay.io', repository: 'a/b', digest: `sha256:${'a'.repeat(64)}` }],
  ])('%s', (input, expected) => {
    expect(parseRemoteReference(input)).toMatchObject(expected);
  });
  it.each(['oci:/tmp/x', 'https://example.com/x', '', 'docker://'])('refuses %j', (input) => {
    expect(() => parseRemoteReference(input)).toThrow(expect.objectContaining({ code: 'INVALID_REFERENCE' }));
  });
});
