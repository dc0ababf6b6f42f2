/** Docker reference parsing and normalization, table-driven (docker's ParseNormalizedNamed behaviour). */
import { InvalidReferenceError } from '../../lib/errors';
import { digestProblem, isDigest, parseDigest, createDigestHasher, digestOfBytes } from '../../lib/reference/digest';
import {
  familiarName,
  formatReference,
  isValidRepository,
  normalizeReference,
  parseDockerReference,
  repositoryWithoutDomain,
  withDefaultTag,
} from '../../lib/reference/docker';

const D = 'sha256:' + 'a'.repeat(64);

describe('parseDockerReference', () => {
  it.each([
    ['nginx', { registry: 'docker.io', repository: 'library/nginx' }],
    ['nginx:1.25', { registry: 'docker.io', repository: 'library/nginx', tag: '1.25' }],
    ['library/nginx', { registry: 'docker.io', repository: 'library/nginx' }],
    ['docker.io/nginx', { registry: 'docker.io', repository: 'library/nginx' }],
    ['index.docker.io/nginx:latest', { registry: 'docker.io', repository: 'library/nginx', tag: 'latest' }],
    ['index.docker.io/user/app', { registry: 'docker.io', repository: 'user/app' }],
    ['user/app:v1', { registry: 'docker.io', repository: 'user/app', tag: 'v1' }],
    ['quay.io/coreos/flannel:v0.14.0', { registry: 'quay.io', repository: 'coreos/flannel', tag: 'v0.14.0' }],
    ['localhost/foo', { registry: 'localhost', repository: 'foo' }],
    ['localhost:5000/foo/bar:tag', { registry: 'localhost:5000', repository: 'foo/bar', tag: 'tag' }],
    ['127.0.0.1:5000/a_b/c-d/e.f__g:T_1.x-y', { registry: '127.0.0.1:5000', repository: 'a_b/c-d/e.f__g', tag: 'T_1.x-y' }],
    ['[::1]:5000/img', { registry: '[::1]:5000', repository: 'img' }],
    // a bare "host:port" is a name with a tag, as in docker
    ['localhost:5000', { registry: 'docker.io', repository: 'library/localhost', tag: '5000' }],
    // an upper-case first component is a host (docker's rule)
    ['Registry/app', { registry: 'Registry', repository: 'app' }],
    [`nginx@${D}`, { registry: 'docker.io', repository: 'library/nginx', digest: D }],
    [`ghcr.io/o/r:1@${D}`, { registry: 'ghcr.io', repository: 'o/r', tag: '1', digest: D }],
    ['registry.k8s.io/kube-apiserver:v1.28.0', { registry: 'registry.k8s.io', repository: 'kube-apiserver', tag: 'v1.28.0' }],
    ['a/b---c', { registry: 'docker.io', repository: 'a/b---c' }],
  ])('%s', (input, expected) => {
    expect(parseDockerReference(input)).toEqual(expected);
  });

  it.each([
    ['', 'empty'],
    ['Nginx', 'upper-case repository'],
    ['docker.io/Library/nginx', 'upper-case path'],
    ['nginx:', 'empty tag'],
    ['nginx:-bad', 'tag starting with -'],
    [`nginx:${'t'.repeat(129)}`, 'tag too long'],
    ['nginx@', 'empty digest'],
    ['nginx@sha256:abc', 'short sha256'],
    [`nginx@sha256:${'A'.repeat(64)}`, 'upper-case hex'],
    ['a//b', 'empty component'],
    ['a/b_', 'trailing separator'],
    ['_a', 'leading separator'],
    ['a/b.-c', 'double separator'],
    ['host:port/x', 'non-numeric port'],
    ['-bad.host/x', 'bad host'],
    [':tag', 'missing name'],
    ['a'.repeat(64), 'image id'],
    [`reg.io/${'a'.repeat(250)}`, 'name too long'],
    ['nginx latest', 'whitespace'],
    [`a@${D}@${D}`, 'two digests'],
  ])('rejects %s (%s)', (input) => {
    expect(() => parseDockerReference(input)).toThrow(InvalidReferenceError);
  });

  it('gives a typed error with a code and the input', () => {
    try {
      parseDockerReference('Bad');
      throw new Error('unreachable');
    } catch (err) {
      expect(err).toBeInstanceOf(InvalidReferenceError);
      expect((err as InvalidReferenceError).code).toBe('INVALID_REFERENCE');
      expect((err as InvalidReferenceError).reference).toBe('Bad');
    }
  });
});

describe('formatting', () => {
  it.each([
    ['nginx', 'docker.io/library/nginx:latest', 'nginx:latest', 'library/nginx'],
    ['docker.io/library/nginx:latest', 'docker.io/library/nginx:latest', 'nginx:latest', 'library/nginx'],
    ['user/app', 'docker.io/user/app:latest', 'user/app:latest', 'user/app'],
    ['docker.io/library/a/b:1', 'docker.io/library/a/b:1', 'library/a/b:1', 'library/a/b'],
    ['quay.io/coreos/flannel:v1', 'quay.io/coreos/flannel:v1', 'quay.io/coreos/flannel:v1', 'coreos/flannel'],
    [`localhost:5000/x@${D}`, `localhost:5000/x@${D}`, `localhost:5000/x@${D}`, 'x'],
  ])('%s', (input, normalized, familiar, repo) => {
    expect(normalizeReference(input)).toBe(normalized);
    expect(familiarName(withDefaultTag(parseDockerReference(input)))).toBe(familiar);
    expect(repositoryWithoutDomain(input)).toBe(repo);
  });

  it('keeps the familiar name free of tags the input did not have', () => {
    expect(familiarName('docker.io/library/nginx')).toBe('nginx');
    expect(familiarName(parseDockerReference('index.docker.io/user/app:v2'))).toBe('user/app:v2');
  });

  it('round-trips every normalized form', () => {
    for (const input of ['nginx', 'a/b:c', `reg.io:443/x/y:z@${D}`, '[::1]:5000/img:v']) {
      const once = formatReference(parseDockerReference(input));
      expect(formatReference(parseDockerReference(once))).toBe(once);
    }
  });

  it('does not invent a tag when a digest is given', () => {
    expect(normalizeReference(`nginx@${D}`)).toBe(`docker.io/library/nginx@${D}`);
  });

  it('validates bare repository paths', () => {
    expect(isValidRepository('library/nginx')).toBe(true);
    expect(isValidRepository('Library/nginx')).toBe(false);
    expect(isValidRepository('')).toBe(false);
    expect(isValidRepository('a/../b')).toBe(false);
  });
});

describe('digests', () => {
  it('accepts registered algorithms with fixed-length lowercase hex, and unknown ones by grammar', () => {
    expect(isDigest(D)).toBe(true);
    expect(isDigest('sha512:' + 'b'.repeat(128))).toBe(true);
    expect(isDigest('multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8')).toBe(true);
    expect(digestProblem('sha512:' + 'b'.repeat(64))).toMatch(/128/);
    expect(isDigest('sha256')).toBe(false);
    expect(isDigest('SHA256:' + 'a'.repeat(64))).toBe(false);
    expect(parseDigest(D)).toEqual({ algorithm: 'sha256', encoded: 'a'.repeat(64) });
  });

  it('hashes with the named algorithm', () => {
    expect(digestOfBytes(Buffer.from(''))).toBe('sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    const h = createDigestHasher('sha512');
    h.update(Buffer.from('abc'));
    expect(h.digest()).toMatch(/^sha512:ddaf35a1/);
    expect(h.digest()).toBe(h.digest());
    expect(() => createDigestHasher('blake3')).toThrow(/blake3/);
  });
});
