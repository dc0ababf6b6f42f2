/**
 * The tar reader's decisions one by one (Go's archive/tar Reader.Next; docs/reference/tar.md),
 * on hand-built archives, with no referee needed: gotar.spec.ts checks the same against Go.
 */
import { Readable } from 'node:stream';
import { readContent } from '../../lib/content';
import type { Entry } from '../../lib/entry';
import { CloudRootfsError } from '../../lib/errors';
import { StreamInput } from '../../lib/tar/input';
import { readLayerTar } from '../../lib/tar/read';
import { TarEntry, TarReader } from '../../lib/tar/reader';
import { BLOCK, Header, member, padded, paxRecords } from '../differential/tar-forms';

const end = Buffer.alloc(2 * BLOCK);
const archive = (...parts: Buffer[]) => Buffer.concat([...parts, end]);
const ustar = (h: Partial<Header> & { name: string | Buffer }, data?: Buffer | string): Buffer =>
  member({ magic: 'ustar', typeflag: '0', ...h }, data === undefined ? undefined : Buffer.from(data));
const pax = (records: [string, string | Buffer][]) => member({ magic: 'ustar', typeflag: 'x', name: 'PaxHeaders/x' }, paxRecords(records));
const gnuLong = (type: 'L' | 'K', text: string) => member({ magic: 'gnu', typeflag: type, name: '././@LongLink' }, Buffer.from(text));

/** Every entry, reading the input in chunks of `chunk` bytes. */
async function entries(tar: Buffer, chunk = 1 << 16): Promise<TarEntry[]> {
  const chunks: Buffer[] = [];
  for (let at = 0; at < tar.length; at += chunk) chunks.push(tar.subarray(at, at + chunk));
  const reader = new TarReader(new StreamInput(Readable.from(chunks)[Symbol.asyncIterator]() as AsyncIterator<Buffer>), { source: 't' });
  const out: TarEntry[] = [];
  for (let e = await reader.next(); e; e = await reader.next()) out.push(e);
  return out;
}

const layerOf = async (tar: Buffer, options = {}) => (await readLayerTar(() => Readable.from([tar]), options)).layer;

async function text(entry: Entry | undefined): Promise<string> {
  if (entry?.type !== 'file') throw new Error(`not a file: ${JSON.stringify(entry)}`);
  return (await readContent(entry.content, 1 << 24)).toString('latin1');
}

async function refusal(p: Promise<unknown>): Promise<CloudRootfsError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof CloudRootfsError)) throw new Error(`expected a typed refusal, got ${err instanceof Error ? err.stack : 'success'}`);
  return err;
}

describe('names and links: GNU long names are applied after PAX records', () => {
  test('a GNU long name beats a PAX path, in either order', async () => {
    for (const tar of [archive(gnuLong('L', 'gnu-name'), pax([['path', 'pax-name']]), ustar({ name: 'hdr' }, 'x')), archive(pax([['path', 'pax-name']]), gnuLong('L', 'gnu-name'), ustar({ name: 'hdr' }, 'x'))]) {
      expect((await entries(tar)).map((e) => e.name)).toEqual(['gnu-name']);
      expect(await text((await layerOf(tar)).get('gnu-name'))).toBe('x');
    }
  });

  test('a GNU long link beats a PAX linkpath', async () => {
    const tar = archive(pax([['linkpath', 'pax-link']]), gnuLong('K', 'gnu-link'), ustar({ name: 'l', typeflag: '2', linkname: 'hdr-link' }));
    expect((await entries(tar))[0].linkname).toBe('gnu-link');
    expect((await layerOf(tar)).get('l')).toMatchObject({ type: 'symlink', target: 'gnu-link' });
  });

  test('a later x header replaces an earlier one (records are not merged); an empty value keeps the header field', async () => {
    const tar = archive(pax([['path', 'a']]), pax([['uid', '5'], ['path', '']]), ustar({ name: 'hdr' }, 'x'));
    const [e] = await entries(tar);
    expect([e.name, e.uid]).toEqual(['hdr', 5]);
  });

  test('a name field without NUL runs to 100 bytes; the USTAR prefix joins with one /', async () => {
    const tar = archive(ustar({ name: 'n'.repeat(100), prefix: 'a/' }, 'x'));
    expect((await entries(tar))[0].name).toBe(`a//${'n'.repeat(100)}`);
  });
});

describe('old-style files (typeflag NUL)', () => {
  test('a trailing / makes a directory, and what follows its header is the next header', async () => {
    // The "data" of d/ is a header: Go reads it as the next entry, so do we.
    const hidden = ustar({ name: 'hidden' }, 'h');
    const tar = archive(member({ magic: 'ustar', typeflag: '\0', name: 'd/', size: hidden.length }), hidden);
    expect((await entries(tar)).map((e) => [e.typeflag, e.name])).toEqual([
      ['5', 'd/'],
      ['0', 'hidden'],
    ]);
    const layer = await layerOf(tar);
    expect(layer.get('d')?.type).toBe('directory');
    expect(await text(layer.get('hidden'))).toBe('h');
  });

  test('without the slash it is a regular file; a 0 type named like a directory stays a file', async () => {
    const tar = archive(member({ magic: 'ustar', typeflag: '\0', name: 'f' }, Buffer.from('abc')), ustar({ name: 'g/' }, 'def'));
    expect((await entries(tar)).map((e) => [e.typeflag, e.name])).toEqual([
      ['0', 'f'],
      ['0', 'g/'],
    ]);
    expect(await text((await layerOf(tar)).get('g'))).toBe('def');
  });
});

describe('formats', () => {
  test('STAR: a 131-byte prefix, then atime and ctime', async () => {
    const prefix = 'p'.repeat(131);
    const tar = archive(member({ magic: 'star', typeflag: '0', name: 'n', prefix, starTimes: [7, 9] }, Buffer.from('x')));
    const [e] = await entries(tar);
    expect(e.name).toBe(`${prefix}/n`);
    expect([e.atime?.sec, e.ctime?.sec]).toEqual([7, 9]);
  });

  test('GNU: no prefix; atime that does not parse makes bytes 345.. a prefix when ASCII (pre-Go 1.8 writers)', async () => {
    expect((await entries(archive(member({ magic: 'gnu', typeflag: '0', name: 'n', prefix: 'pfx' }))))[0].name).toBe('pfx/n');
    expect((await entries(archive(member({ magic: 'gnu', typeflag: '0', name: 'n', prefix: 'n\xe9' }))))[0].name).toBe('n');
    expect((await entries(archive(member({ magic: 'gnu', typeflag: '0', name: 'n', gnuTimes: [1, 2] }))))[0]).toMatchObject({ name: 'n', atime: { sec: 1 } });
  });

  test('V7 ("ustar " with version "00"): no prefix, no user names', async () => {
    const [e] = await entries(archive(member({ magic: 'gnu-version-00', typeflag: '0', name: 'n', prefix: 'pfx', uname: 'root' })));
    expect([e.name, e.uname]).toEqual(['n', '']);
  });

  test('checksums: the signed sum counts; a wrong or all-space checksum does not', async () => {
    expect((await entries(archive(ustar({ name: 'n', uname: 'r\xf6\xf6t', checksum: 'signed' }))))[0].name).toBe('n');
    for (const checksum of ['bad', 'spaces'] as const) expect((await refusal(entries(archive(ustar({ name: 'n', checksum }))))).code).toBe('CORRUPT_ARCHIVE');
  });

  test('numbers: octal trimmed of spaces and NULs and cut at a NUL; base-256; 8 and 9 refused', async () => {
    const uid = async (field: Buffer | bigint) => (await entries(archive(ustar({ name: 'n', uid: field }))))[0].uid;
    expect(await uid(Buffer.from('  755  \0'))).toBe(0o755);
    expect(await uid(Buffer.from('12\0zz\0\0\0'))).toBe(0o12);
    expect(await uid(Buffer.from('00000012'))).toBe(0o12);
    expect(await uid(2n ** 40n)).toBe(2 ** 40);
    expect((await refusal(uid(Buffer.from('0000648\0')))).code).toBe('CORRUPT_ARCHIVE');
    // Go accepts 2^53+1; a JS number cannot hold it: refused by design, except for an owner id,
    // passed on with its exact decimal for the entry model to refuse.
    const mode = async (field: bigint) => (await entries(archive(ustar({ name: 'n', mode: field }))))[0].mode;
    expect(await refusal(mode(2n ** 53n + 1n))).toMatchObject({ code: 'AMBIGUOUS_ARCHIVE', details: { reason: 'number-range' } });
    const [big] = await entries(archive(pax([['gid', '9007199254740993']]), ustar({ name: 'n', uid: 2n ** 53n + 1n })));
    expect([big.uidText, big.gidText]).toEqual(['9007199254740993', '9007199254740993']);
  });

  test('the end: two zero blocks stop the reader (what follows is never read); one zero block then a header is corrupt', async () => {
    const tail = ustar({ name: 'after' });
    expect((await entries(Buffer.concat([ustar({ name: 'a' }), end, tail]))).map((e) => e.name)).toEqual(['a']);
    expect((await refusal(entries(Buffer.concat([ustar({ name: 'a' }), Buffer.alloc(BLOCK), tail, end])))).code).toBe('CORRUPT_ARCHIVE');
  });

  test('header boundaries do not depend on how the input is chunked', async () => {
    const tar = archive(pax([['path', 'p'.repeat(300)]]), ustar({ name: 'x' }, 'y'.repeat(1000)), gnuLong('L', 'l'.repeat(700)), ustar({ name: 'z' }, 'zz'));
    const whole = (await entries(tar)).map((e) => [e.name, e.dataOffset, e.dataSize]);
    for (const chunk of [1, 7, 511, 513]) expect((await entries(tar, chunk)).map((e) => [e.name, e.dataOffset, e.dataSize])).toEqual(whole);
  });
});

describe('GNU sparse files: the real name and size, holes read as zeros', () => {
  // Map {2+3, 7+2} of a 10-byte file: "\0\0abc\0\0de\0".
  const expanded = '\0\0abc\0\0de\0';
  const stored = Buffer.from('abcde');

  const forms: [string, Buffer][] = [
    [
      '0.0',
      archive(
        pax([
          ['GNU.sparse.name', 'real'],
          ['GNU.sparse.size', '10'],
          ['GNU.sparse.numblocks', '2'],
          ['GNU.sparse.offset', '2'],
          ['GNU.sparse.numbytes', '3'],
          ['GNU.sparse.offset', '7'],
          ['GNU.sparse.numbytes', '2'],
        ]),
        ustar({ name: 'GNUSparseFile.1/real' }, stored),
      ),
    ],
    [
      '0.1',
      archive(
        pax([
          ['GNU.sparse.name', 'real'],
          ['GNU.sparse.size', '10'],
          ['GNU.sparse.numblocks', '2'],
          ['GNU.sparse.map', '2,3,7,2'],
        ]),
        ustar({ name: 'GNUSparseFile.1/real' }, stored),
      ),
    ],
    [
      '1.0',
      archive(
        pax([
          ['GNU.sparse.major', '1'],
          ['GNU.sparse.minor', '0'],
          ['GNU.sparse.name', 'real'],
          ['GNU.sparse.realsize', '10'],
        ]),
        ustar({ name: 'GNUSparseFile.1/real' }, Buffer.concat([padded(Buffer.from('2\n2\n3\n7\n2\n')), stored])),
      ),
    ],
  ];

  test.each(forms)('PAX %s', async (_form, tar) => {
    const [e] = await entries(tar);
    expect([e.name, e.size, e.sparse]).toEqual([
      'real',
      10,
      [
        { offset: 2, length: 3 },
        { offset: 7, length: 2 },
      ],
    ]);
    expect(await text((await layerOf(tar)).get('real'))).toBe(expanded);
  });

  test('old GNU S: expanded by the decoder, refused in a layer (containerd, Docker and umoci refuse the type)', async () => {
    const tar = archive(Buffer.concat([member({ magic: 'gnu', typeflag: 'S', name: 'real', size: 5, gnuSparse: { fragments: [[2, 3], [7, 2]], extended: false, realSize: 10 } }), padded(stored)]));
    const [e] = await entries(tar);
    expect([e.typeflag, e.size, e.dataSize]).toEqual(['S', 10, 5]);
    expect((await refusal(layerOf(tar))).code).toBe('UNSUPPORTED_ENTRY');
  });

  test('stored bytes that do not match the map are refused (Go fails when it reads them)', async () => {
    const tar = archive(pax([['GNU.sparse.size', '10'], ['GNU.sparse.numblocks', '1'], ['GNU.sparse.map', '2,3']]), ustar({ name: 'f' }, stored));
    expect(await refusal(entries(tar))).toMatchObject({ code: 'CORRUPT_ARCHIVE', details: { reason: 'sparse-data' } });
  });

  test('holes count towards the uncompressed bound (a tiny layer cannot declare a huge file)', async () => {
    const tar = archive(pax([['GNU.sparse.size', String(2 ** 40)], ['GNU.sparse.numblocks', '1'], ['GNU.sparse.map', '0,5']]), ustar({ name: 'f' }, stored));
    expect(await refusal(layerOf(tar, { maxUncompressedBytes: 1 << 30 }))).toMatchObject({ code: 'LIMIT_EXCEEDED', details: { limit: 'maxUncompressedBytes' } });
  });
});

describe('PAX global headers', () => {
  const tar = archive(member({ magic: 'ustar', typeflag: 'g', name: 'pax_global_header' }, paxRecords([['path', 'gpath'], ['uid', '7']])), ustar({ name: 'f' }, 'x'));

  test('are entries of their own, named by their path record, never merged into later entries', async () => {
    expect((await entries(tar)).map((e) => [e.typeflag, e.name, e.uid])).toEqual([
      ['g', 'gpath', 0],
      ['0', 'f', 0],
    ]);
  });

  test('are refused in layers (unpackers disagree on them), skipped when ADD unpacks an archive', async () => {
    expect(await refusal(layerOf(tar))).toMatchObject({ code: 'AMBIGUOUS_ARCHIVE', details: { reason: 'global-header' } });
    const layer = await layerOf(tar, { globalHeaders: 'ignore' });
    expect([...layer.entries()].map((e) => [e.path, e.entry.uid])).toEqual([['f', 0]]);
  });
});

describe('what a layer cannot hold is a typed refusal', () => {
  test('an owner the entry model refuses (base-256 uid -1) is CORRUPT_ARCHIVE naming the entry, not a crash', async () => {
    const err = await refusal(layerOf(archive(ustar({ name: 'f', uid: -1n }, 'x'))));
    expect(err).toMatchObject({ code: 'CORRUPT_ARCHIVE', details: { path: 'f' } });
    expect(err.message).toContain('uid -1');
  });

  test('names, link targets and xattrs that are not UTF-8 (Go keeps the bytes; a string cannot)', async () => {
    for (const tar of [
      archive(ustar({ name: Buffer.from([0x66, 0xff]) }, 'x')),
      archive(ustar({ name: 'l', typeflag: '2', linkname: Buffer.from([0xfe]) })),
      archive(pax([['SCHILY.xattr.user.k', Buffer.from([0xff])]]), ustar({ name: 'f' }, 'x')),
    ]) {
      expect(await refusal(layerOf(tar))).toMatchObject({ code: 'AMBIGUOUS_ARCHIVE', details: { reason: 'encoding' } });
    }
  });

  test('xattrs: every SCHILY.xattr record, an empty value too (as containerd sets them); an empty name is refused', async () => {
    const layer = await layerOf(archive(pax([['SCHILY.xattr.user.e', ''], ['SCHILY.xattr.user.v', 'v\0w']]), ustar({ name: 'f' }, 'x')));
    expect(layer.get('f')?.xattrs).toEqual({ 'user.e': '', 'user.v': 'v\0w' });
    const err = await refusal(layerOf(archive(pax([['SCHILY.xattr.', 'v']]), ustar({ name: 'f' }, 'x'))));
    expect(err.details.reason).toBe('xattr-name');
  });
});
