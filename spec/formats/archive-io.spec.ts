import { execFileSync } from 'node:child_process';
import * as nodeFs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { readContent } from '../../lib/content';
import { diskFs } from '../../lib/fs';
import { TarArchive, writeTarArchive } from '../../lib/formats/archive-io';
import { requireTool } from '../support/tools';
import { makeTar, memfs } from './archive-support';

const long = `${'d'.repeat(120)}/${'f'.repeat(140)}`;

describe('TarArchive (reading archives in place)', () => {
  test('seeking (plain) and streaming (gzip) scans agree; long names via PAX; links resolve inside', async () => {
    const fs = memfs();
    const tar = await makeTar([
      { name: './a/', type: 'directory' },
      { name: './a/file', data: 'hello' },
      { name: long, data: 'long name' },
      { name: 'link', type: 'symlink', linkname: 'a/file' },
      { name: 'dirlink', type: 'symlink', linkname: 'a' },
      { name: 'hard', type: 'link', linkname: 'a/file' },
      { name: 'empty', data: '' },
    ]);
    await fs.promises.writeFile('/p.tar', tar);
    await fs.promises.writeFile('/p.tar.gz', gzipSync(tar));
    const plain = await TarArchive.open('/p.tar', { fs });
    const gz = await TarArchive.open('/p.tar.gz', { fs });
    expect(plain.compression).toBe('none');
    expect(gz.compression).toBe('gzip');
    expect(gz.members).toEqual(plain.members);
    for (const a of [plain, gz]) {
      expect(a.names()).toEqual(['a', 'a/file', long, 'link', 'dirlink', 'hard', 'empty']);
      for (const name of ['a/file', 'link', 'hard', 'dirlink/file']) expect((await readContent(a.content(name))).toString()).toBe('hello');
      expect((await a.read(long)).toString()).toBe('long name');
      expect((await a.read('empty')).length).toBe(0);
      expect(a.resolve('missing')).toBeUndefined();
      expect(() => a.file('a')).toThrow(expect.objectContaining({ code: 'CORRUPT_ARCHIVE' }));
      a.close();
    }
    // Plain archives are served by offset: the Content knows its file window.
    expect(plain.content('a/file').file).toMatchObject({ path: '/p.tar' });
  });

  test('GNU long names (the L records GNU tar writes)', async () => {
    if (!requireTool('tar')) return;
    const dir = nodeFs.mkdtempSync(join(tmpdir(), 'crfs-gnutar-'));
    try {
      nodeFs.mkdirSync(join(dir, 'src', 'd'.repeat(120)), { recursive: true });
      nodeFs.writeFileSync(join(dir, 'src', 'd'.repeat(120), 'f'.repeat(140)), 'gnu');
      execFileSync('tar', ['--format=gnu', '-cf', join(dir, 'g.tar'), '-C', join(dir, 'src'), '.']);
      const a = await TarArchive.open(join(dir, 'g.tar'), { fs: diskFs });
      expect((await a.read(long)).toString()).toBe('gnu');
    } finally {
      nodeFs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('limits and refusals', async () => {
    const fs = memfs();
    await fs.promises.writeFile('/many.tar', await makeTar(Array.from({ length: 20 }, (_, i) => ({ name: `f${i}`, data: 'x' }))));
    await expect(TarArchive.open('/many.tar', { fs, maxMembers: 10 })).rejects.toMatchObject({ code: 'LIMIT_EXCEEDED' });
    await expect(TarArchive.open('/nope.tar', { fs })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await fs.promises.mkdir('/dir');
    await expect(TarArchive.open('/dir', { fs })).rejects.toMatchObject({ code: 'CORRUPT_ARCHIVE' });
    await fs.promises.writeFile('/x.tar.xz', Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0, 0]));
    await expect(TarArchive.open('/x.tar.xz', { fs })).rejects.toMatchObject({ code: 'UNSUPPORTED' });
    // A loop of symlinks is refused, not followed forever.
    await fs.promises.writeFile('/loop.tar', await makeTar([{ name: 'a', type: 'symlink', linkname: 'b' }, { name: 'b', type: 'symlink', linkname: 'a' }]));
    const loop = await TarArchive.open('/loop.tar', { fs });
    expect(() => loop.resolve('a')).toThrow(expect.objectContaining({ code: 'CORRUPT_ARCHIVE' }));
  });
});

describe('writeTarArchive', () => {
  test('fixed headers, given order, verified digests, atomic output', async () => {
    const fs = memfs();
    await writeTarArchive(
      '/o.tar',
      [
        { name: 'dir', type: 'directory' },
        { name: 'dir/a', type: 'file', data: Buffer.from('abc'), digest: 'sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad' },
      ],
      { fs, mtime: 1234 },
    );
    const a = await TarArchive.open('/o.tar', { fs });
    expect(a.names()).toEqual(['dir', 'dir/a']);
    expect((await a.read('dir/a')).toString()).toBe('abc');
    const bytes = await fs.promises.readFile('/o.tar');
    expect(bytes.length % 512).toBe(0);
    // uid/gid 0 and empty user names in every header; mtime as given.
    expect(parseInt(bytes.toString('latin1', 108, 116), 8)).toBe(0);
    expect(parseInt(bytes.toString('latin1', 116, 124), 8)).toBe(0);
    expect(bytes.toString('latin1', 265, 266)).toBe('\0');
    expect(parseInt(bytes.toString('latin1', 136, 147), 8)).toBe(1234);
    // A blob whose bytes do not match its digest fails and leaves nothing behind.
    await expect(
      writeTarArchive('/bad.tar', [{ name: 'x', type: 'file', data: Buffer.from('abc'), digest: `sha256:${'0'.repeat(64)}` }], { fs }),
    ).rejects.toMatchObject({ code: 'DIGEST_MISMATCH' });
    expect((await fs.promises.readdir('/')).sort()).toEqual(['o.tar']);
  });
});
