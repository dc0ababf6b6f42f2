/** Digest strings from outside are checked before they become file names or URLs. */
import { digestAlgorithm } from '../compress';
import { InvalidImageError } from '../errors';
import { digestProblem } from './schema/checks';

/**
 * `[algorithm, encoded]` of a valid digest; anything else (e.g. `sha256:../../x`) is refused, and
 * an algorithm we cannot verify (anything but sha256 and sha512) is UNSUPPORTED, in the words
 * every reader uses.
 */
export function checkDigest(digest: string): [string, string] {
  const problem = typeof digest === 'string' ? digestProblem(digest) : 'is not a string';
  if (problem) throw new InvalidImageError(`invalid digest ${JSON.stringify(digest)}: ${problem}`, { digest });
  const i = digest.indexOf(':');
  return [digestAlgorithm(digest), digest.slice(i + 1)];
}
