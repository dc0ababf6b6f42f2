/**
 * Content digests (`algorithm:encoded`), as the OCI image spec defines them (docs/reference/oci.md#digests-and-descriptors):
 * the grammar is open, but the registered algorithms pin their encoding to fixed-length
 * lowercase hex. Only algorithms node:crypto can compute are verifiable.
 */
import { createHash, type Hash } from 'node:crypto';
import { InvalidReferenceError, UnsupportedError } from '../errors';

const DIGEST_GRAMMAR = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

/** Registered algorithms and the length of their lowercase hex encoding (blake3: unreleased spec). */
const HEX_LENGTH: Readonly<Record<string, number>> = { sha256: 64, sha384: 96, sha512: 128, blake3: 64 };
/** What node:crypto computes for us. */
const COMPUTABLE = new Set(['sha256', 'sha384', 'sha512']);

export interface ParsedDigest {
  algorithm: string;
  encoded: string;
}

/** Why `s` is not a digest, or undefined when it is one. */
export function digestProblem(s: string): string | undefined {
  if (!DIGEST_GRAMMAR.test(s)) return 'digest must look like algorithm:encoded (e.g. sha256:<64 hex>)';
  const [algorithm, encoded] = splitDigest(s);
  const length = HEX_LENGTH[algorithm];
  if (length !== undefined && !new RegExp(`^[a-f0-9]{${length}}$`).test(encoded)) {
    return `${algorithm} digests need ${length} lowercase hex characters`;
  }
  return undefined;
}

export function isDigest(s: string): boolean {
  return digestProblem(s) === undefined;
}

/** Parses a digest; throws InvalidReferenceError when it is malformed. */
export function parseDigest(s: string): ParsedDigest {
  const problem = digestProblem(s);
  if (problem) throw new InvalidReferenceError(s, problem);
  const [algorithm, encoded] = splitDigest(s);
  return { algorithm, encoded };
}

function splitDigest(s: string): [string, string] {
  const i = s.indexOf(':');
  return [s.slice(0, i), s.slice(i + 1)];
}

/** True when this library can compute (and so verify) digests of `algorithm`. */
export function canVerifyAlgorithm(algorithm: string): boolean {
  return COMPUTABLE.has(algorithm);
}

/** A running hash for `algorithm` whose `digest()` gives the `algorithm:hex` string. */
export interface DigestHasher {
  readonly algorithm: string;
  update(chunk: Uint8Array): void;
  digest(): string;
}

export function createDigestHasher(algorithm = 'sha256'): DigestHasher {
  if (!canVerifyAlgorithm(algorithm)) {
    throw new UnsupportedError(`cannot compute ${algorithm} digests`, 'digest-algorithm', { algorithm });
  }
  const hash: Hash = createHash(algorithm);
  let result: string | undefined;
  return {
    algorithm,
    update(chunk) {
      hash.update(chunk);
    },
    digest() {
      // A node Hash can only be finalized once; remember the answer.
      result ??= `${algorithm}:${hash.digest('hex')}`;
      return result;
    },
  };
}

/** Digest of bytes already in memory (manifests, configs: small things). */
export function digestOfBytes(bytes: Uint8Array, algorithm = 'sha256'): string {
  const hasher = createDigestHasher(algorithm);
  hasher.update(bytes);
  return hasher.digest();
}
