/** Digest strings from outside are checked before they become file names or URLs. */
import { InvalidImageError } from '../errors';
import { digestProblem } from './schema/checks';

/** `[algorithm, encoded]` of a valid digest; anything else (e.g. `sha256:../../x`) is refused. */
export function checkDigest(digest: string): [string, string] {
  const problem = typeof digest === 'string' ? digestProblem(digest) : 'is not a string';
  if (problem) throw new InvalidImageError(`invalid digest ${JSON.stringify(digest)}: ${problem}`, { digest });
  const i = digest.indexOf(':');
  const alg = digest.slice(0, i);
  const hex = digest.slice(i + 1);
  if (alg !== 'sha256' && alg !== 'sha512') {
    throw new InvalidImageError(`unsupported digest algorithm ${JSON.stringify(alg)}`, { digest });
  }
  return [alg, hex];
}
