/**
 * `WWW-Authenticate` parsing (RFC 7235). One header may carry several challenges
 * (`Basic realm="r", Bearer realm="…",service="…"`), fetch joins repeated headers with `, `, and
 * registries in the wild send unquoted URLs, odd spacing and escaped quotes; the parser takes all
 * of that and never throws.
 */

export interface AuthChallenge {
  /** Lowercased scheme: `bearer`, `basic`, … */
  scheme: string;
  /** Parameters with lowercased names: `realm`, `service`, `scope`, `error`, … */
  params: Record<string, string>;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+/;

export function parseChallenges(header: string | null | undefined): AuthChallenge[] {
  const out: AuthChallenge[] = [];
  if (!header) return out;
  const n = header.length;
  let i = 0;
  const skipSpace = (): void => {
    while (i < n && (header[i] === ' ' || header[i] === '\t')) i++;
  };
  const readToken = (): string => {
    const m = TOKEN.exec(header.slice(i));
    if (!m) return '';
    i += m[0].length;
    return m[0];
  };
  const readQuoted = (): string => {
    i++; // opening quote
    let value = '';
    while (i < n && header[i] !== '"') {
      if (header[i] === '\\' && i + 1 < n) i++;
      value += header[i++];
    }
    i++; // closing quote (or end of input)
    return value;
  };
  const readBare = (): string => {
    const start = i;
    while (i < n && header[i] !== ',' && header[i] !== ' ' && header[i] !== '\t') i++;
    return header.slice(start, i);
  };

  while (i < n) {
    skipSpace();
    if (header[i] === ',') {
      i++;
      continue;
    }
    const scheme = readToken();
    if (!scheme) {
      i++; // junk: step over it
      continue;
    }
    const challenge: AuthChallenge = { scheme: scheme.toLowerCase(), params: {} };
    out.push(challenge);
    for (;;) {
      skipSpace();
      const paramStart = i;
      const name = readToken();
      skipSpace();
      if (!name || header[i] !== '=') {
        // Not `name=`: the start of the next challenge (or a token68 we have no use for).
        i = paramStart;
        break;
      }
      i++;
      skipSpace();
      challenge.params[name.toLowerCase()] = header[i] === '"' ? readQuoted() : readBare();
      skipSpace();
      // Tolerate a missing comma: the next `name=` still belongs to this challenge.
      if (header[i] === ',') i++;
    }
  }
  return out;
}
