/**
 * lib/path.ts as tables: what `cleanPath` (the one validator of paths from outside) accepts and
 * makes of it, what it refuses and with which code, how `parseWhiteout` classifies archive names,
 * and the byte order of `compareBytes`. Lengths are UTF-8 bytes, not JS characters.
 */
import {
  DEFAULT_MAX_PATH_BYTES,
  MAX_NAME_BYTES,
  OPAQUE_WHITEOUT,
  assertNormalPath,
  baseName,
  cleanPath,
  compareBytes,
  isWithin,
  joinPath,
  opaquePathFor,
  parentPath,
  parseWhiteout,
  splitPath,
  whiteoutPathFor,
} from '../lib/path';
import { CloudRootfsError, InvalidPathError } from '../lib/errors';

/** The error `fn` throws (fails the test when it throws nothing). */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected an error, none was thrown');
}

const name = (bytes: number, unit = 'x') => unit.repeat(bytes / Buffer.byteLength(unit));

describe('cleanPath: accepted inputs and what they become', () => {
  test.each([
    ['', ''],
    ['/', ''],
    ['.', ''],
    ['./', ''],
    ['//', ''],
    ['etc/hosts', 'etc/hosts'],
    ['/etc/hosts', 'etc/hosts'],
    ['./etc/hosts', 'etc/hosts'],
    ['etc//hosts', 'etc/hosts'],
    ['etc/./hosts', 'etc/hosts'],
    ['etc/hosts/', 'etc/hosts'],
    ['etc/../hosts', 'hosts'],
    ['a/b/../../c', 'c'],
    ['a/b/..', 'a'],
    ['a/..', ''],
    ['a/../b/../c/./d/', 'c/d'],
    // `..` inside a name, `...`, and dots at the ends are names, not steps.
    ['a..b', 'a..b'],
    ['...', '...'],
    ['..a/b', '..a/b'],
    // Any byte but `/` and NUL is part of a name: spaces, backslashes, newlines, non-ASCII.
    [' ', ' '],
    ['back\\slash', 'back\\slash'],
    ['new\nline', 'new\nline'],
    ['ünï/çødé', 'ünï/çødé'],
    ['\u{1D11E}', '\u{1D11E}'],
    // Whiteout names are ordinary names unless forbidden.
    ['a/.wh.b', 'a/.wh.b'],
    [OPAQUE_WHITEOUT, OPAQUE_WHITEOUT],
  ])('%j → %j', (input, expected) => {
    expect(cleanPath(input)).toBe(expected);
    // Cleaning is idempotent: a clean path is its own clean form.
    expect(cleanPath(expected)).toBe(expected);
    expect(() => assertNormalPath(expected)).not.toThrow();
  });
});

describe('cleanPath: refused inputs, each with INVALID_PATH', () => {
  test.each([
    ['climbs above the root', '..'],
    ['climbs above the root from the root', '/..'],
    ['climbs above the root after a leading ./', './..'],
    ['climbs after going down', 'a/../..'],
    ['climbs in the middle', 'a/../../b'],
    ['climbs deep', 'a/b/../../../etc/passwd'],
    ['NUL at the end', 'etc/hosts\0'],
    ['NUL in a name', 'a\0b'],
    ['NUL that would hide a climb', 'ok\0/../../../evil'],
    ['a name of 256 ASCII bytes', name(256)],
    ['a name of 256 bytes in 128 two-byte characters', name(256, 'é')],
    ['a name of 256 bytes in 64 four-byte characters', name(256, '\u{1D11E}')],
    ['a long name anywhere in the path', `a/${name(256)}/b`],
    ['a path of 4097 bytes', `${name(255)}/`.repeat(16) + 'x'],
    ['a path of 4097 bytes that cleans to nothing', './'.repeat(2048) + '.'],
  ])('%s', (_, input) => {
    const err = thrown(() => cleanPath(input));
    expect(err).toBeInstanceOf(InvalidPathError);
    expect(err).toMatchObject({ code: 'INVALID_PATH' });
    expect((err as CloudRootfsError).details.path).toEqual(expect.any(String));
  });

  test('a value that is not a string', () => {
    for (const input of [42, undefined, null, {}, ['a']]) {
      expect(() => cleanPath(input as unknown as string)).toThrow(expect.objectContaining({ code: 'INVALID_PATH' }));
    }
  });

  test('`what` names the path in the message', () => {
    expect(() => cleanPath('../x', { what: 'COPY destination' })).toThrow(/^COPY destination "..\/x" escapes the root$/);
  });
});

describe('cleanPath: the byte limits, exactly at the edge', () => {
  test('255 bytes is the longest name, counted in UTF-8', () => {
    expect(MAX_NAME_BYTES).toBe(255);
    for (const unit of ['x', 'é', '€', '\u{1D11E}']) {
      const longest = unit.repeat(Math.floor(255 / Buffer.byteLength(unit)));
      expect(cleanPath(`d/${longest}`)).toBe(`d/${longest}`);
      expect(() => cleanPath(`d/${longest}${unit}`)).toThrow(expect.objectContaining({ code: 'INVALID_PATH' }));
    }
    // 128 characters of 'é' is 256 bytes: refused although its JS length is 128.
    expect('é'.repeat(128).length).toBe(128);
    expect(() => cleanPath('é'.repeat(128))).toThrow(expect.objectContaining({ code: 'INVALID_PATH' }));
  });

  test('4096 bytes is the longest path by default, counted on the input as given', () => {
    expect(DEFAULT_MAX_PATH_BYTES).toBe(4096);
    const exact = `${name(255)}/`.repeat(16); // 16 × 256 = 4096 bytes
    expect(Buffer.byteLength(exact)).toBe(4096);
    expect(cleanPath(exact)).toBe(exact.slice(0, -1));
    const multibyte = `${'é'.repeat(127)}a/`.repeat(16); // 16 × (254 + 1 + 1) = 4096 bytes, 2048 characters
    expect(cleanPath(multibyte)).toBe(multibyte.slice(0, -1));
    expect(() => cleanPath(multibyte + 'é')).toThrow(expect.objectContaining({ code: 'INVALID_PATH' }));
  });

  test('maxPathBytes moves the path limit, not the name limit', () => {
    expect(cleanPath('abcd', { maxPathBytes: 4 })).toBe('abcd');
    expect(() => cleanPath('abcde', { maxPathBytes: 4 })).toThrow(expect.objectContaining({ code: 'INVALID_PATH' }));
    expect(() => cleanPath('éé€', { maxPathBytes: 6 })).toThrow(expect.objectContaining({ code: 'INVALID_PATH' }));
    expect(() => cleanPath(name(256), { maxPathBytes: 10_000 })).toThrow(expect.objectContaining({ code: 'INVALID_PATH' }));
  });
});

describe('cleanPath: forbidWhiteoutNames', () => {
  const forbid = { forbidWhiteoutNames: true };
  test.each(['.wh.x', 'a/.wh.x', '.wh.a/b', 'a/.wh.b/c', OPAQUE_WHITEOUT, 'd/.wh..wh.plnk', '/.wh.x/', '.wh.'])('refuses %j', (input) => {
    expect(() => cleanPath(input, forbid)).toThrow(expect.objectContaining({ code: 'INVALID_PATH' }));
  });
  test.each([
    ['.wh', '.wh'],
    ['.whx', '.whx'],
    ['a.wh.b', 'a.wh.b'],
    ['.WH.x', '.WH.x'], // the prefix is case-sensitive, as in every peer
    ['x.wh.', 'x.wh.'],
    // Only the names of the cleaned path count: a `.wh.` component that `..` removes is gone.
    ['.wh.x/../y', 'y'],
  ])('accepts %j as %j', (input, expected) => {
    expect(cleanPath(input, forbid)).toBe(expected);
  });
});

describe('assertNormalPath', () => {
  test.each(['/a', 'a/', './a', 'a//b', 'a/./b', 'a/../b', '.'])('refuses the unnormalized %j with INVALID_PATH', (p) => {
    expect(() => assertNormalPath(p)).toThrow(expect.objectContaining({ code: 'INVALID_PATH' }));
  });
  test('refuses what cleanPath refuses', () => {
    expect(() => assertNormalPath('..')).toThrow(expect.objectContaining({ code: 'INVALID_PATH' }));
    expect(() => assertNormalPath('a\0')).toThrow(expect.objectContaining({ code: 'INVALID_PATH' }));
  });
  test.each(['', 'a', 'a/b', '.wh.x'])('accepts %j', (p) => {
    expect(() => assertNormalPath(p)).not.toThrow();
  });
});

describe('path helpers', () => {
  test.each([
    // path, split, parent, base
    ['', [], '', ''],
    ['a', ['a'], '', 'a'],
    ['a/b', ['a', 'b'], 'a', 'b'],
    ['a/b/c', ['a', 'b', 'c'], 'a/b', 'c'],
  ])('%j', (path, parts, parent, base) => {
    expect(splitPath(path)).toEqual(parts);
    expect(parentPath(path)).toBe(parent);
    expect(baseName(path)).toBe(base);
    expect(joinPath(parent, base)).toBe(path);
  });

  test('joinPath skips empty parts (the root)', () => {
    expect(joinPath('', 'a', '', 'b')).toBe('a/b');
    expect(joinPath()).toBe('');
  });

  test.each([
    ['a/b', 'a', true],
    ['a', 'a', true],
    ['a', '', true],
    ['', '', true],
    ['ab', 'a', false], // a sibling sharing a prefix is not inside
    ['a', 'a/b', false],
    ['b/a', 'a', false],
  ])('isWithin(%j, %j) is %s', (path, ancestor, expected) => {
    expect(isWithin(path, ancestor)).toBe(expected);
  });

  test('whiteoutPathFor and opaquePathFor invert parseWhiteout', () => {
    for (const p of ['x', 'a/x', 'a/b/.hidden']) {
      expect(parseWhiteout(whiteoutPathFor(p))).toEqual({ kind: 'whiteout', path: p });
    }
    expect(whiteoutPathFor('a/b')).toBe('a/.wh.b');
    for (const d of ['', 'a', 'a/b']) {
      expect(parseWhiteout(opaquePathFor(d))).toEqual({ kind: 'opaque', dir: d });
    }
    expect(opaquePathFor('')).toBe('.wh..wh..opq');
  });
});

describe('parseWhiteout: how a cleaned archive name is read', () => {
  test.each([
    // Ordinary entries.
    ['', undefined],
    ['etc/hosts', undefined],
    ['.whx', undefined],
    ['a/.WH.x', undefined],
    ['x.wh.y', undefined],
    // Only the basename's prefix counts: a `.wh.` directory above is an ordinary path (containerd).
    ['.wh.etc/file', undefined],
    ['a/.wh.b/c', undefined],
    // Whiteouts name the sibling they delete.
    ['.wh.x', { kind: 'whiteout', path: 'x' }],
    ['a/.wh.x', { kind: 'whiteout', path: 'a/x' }],
    ['a/b/.wh..hidden', { kind: 'whiteout', path: 'a/b/.hidden' }],
    ['a/.wh.x.wh.y', { kind: 'whiteout', path: 'a/x.wh.y' }],
    ['.wh..wh', { kind: 'whiteout', path: '.wh' }],
    ['.wh.a/.wh.b', { kind: 'whiteout', path: '.wh.a/b' }],
    // The opaque marker names its directory.
    ['.wh..wh..opq', { kind: 'opaque', dir: '' }],
    ['a/b/.wh..wh..opq', { kind: 'opaque', dir: 'a/b' }],
    // AUFS bookkeeping names, and anything below an AUFS bookkeeping directory, are skipped.
    ['.wh..wh.plnk', { kind: 'aufs-meta' }],
    ['.wh..wh.aufs', { kind: 'aufs-meta' }],
    ['a/.wh..wh.orph', { kind: 'aufs-meta' }],
    ['.wh..wh..opqx', { kind: 'aufs-meta' }],
    ['.wh..wh.plnk/1234.5678', { kind: 'aufs-meta' }],
    ['a/.wh..wh.plnk/b/c', { kind: 'aufs-meta' }],
    ['.wh..wh..opq/x', { kind: 'aufs-meta' }],
  ])('%j → %j', (path, expected) => {
    expect(parseWhiteout(path)).toEqual(expected);
  });

  test.each(['.wh.', 'a/.wh.', '.wh..', 'a/.wh..', '.wh...', 'a/b/.wh...'])('%j names no file: INVALID_WHITEOUT', (path) => {
    expect(() => parseWhiteout(path)).toThrow(expect.objectContaining({ code: 'INVALID_WHITEOUT', details: { path } }));
  });
});

describe('compareBytes: UTF-8 byte order', () => {
  test.each([
    ['', '', 0],
    ['', 'a', -1],
    ['a', 'b', -1],
    ['a', 'ab', -1],
    ['a/b', 'a.b', 1], // '/' 0x2f sorts after '.' 0x2e
    ['Z', 'a', -1],
    ['é', 'z', 1],
    ['\u{FFFF}', '\u{10000}', -1], // JS `<` says the opposite: '\uFFFF' > '\uD800'
    ['\u{E000}', '\u{1D11E}', -1],
    ['\u{D7FF}', '\u{10000}', -1],
    ['\u{10000}', '\u{10001}', -1],
    ['\u{1D11E}x', '\u{1D11E}', 1],
  ])('%j vs %j: %d', (a, b, sign) => {
    expect(Math.sign(compareBytes(a, b))).toBe(sign);
    expect(Math.sign(compareBytes(b, a))).toBe(-sign || 0);
    expect(Math.sign(Buffer.compare(Buffer.from(a), Buffer.from(b)))).toBe(sign);
  });

  test('sorting with it is `LC_ALL=C sort`, not JS sort', () => {
    const names = ['\u{10000}', '\u{FFFD}', 'b', 'a/', 'a', '\u{E000}'];
    expect([...names].sort(compareBytes)).toEqual(['a', 'a/', 'b', '\u{E000}', '\u{FFFD}', '\u{10000}']);
    expect([...names].sort()).not.toEqual([...names].sort(compareBytes));
  });
});
