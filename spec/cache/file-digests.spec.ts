/**
 * The per-file digest memo: a file is read again whenever its stamp changed, and also when its
 * stamp is too close to the moment it was hashed to prove anything ("racily clean", as git says).
 */
import { createHash } from 'node:crypto';
import { fileContent } from '../../lib/content';
import { FileDigestMemo, attachStamp, lstatPrecise, stampFromStats } from '../../lib/cache';
import type { FileSystem } from '../../lib/fs';
import { memfs } from '../build/helpers';

const sha = (s: string) => 'sha256:' + createHash('sha256').update(s).digest('hex');

/** A context file's content with the stamp the context reader would give it. */
async function stamped(fs: FileSystem, path: string) {
  const st = (await lstatPrecise(fs, path))!;
  const content = fileContent(fs, path, Number(st.size));
  const stamp = stampFromStats('/ctx', path.slice('/ctx/'.length), st);
  attachStamp(content, fs, path, stamp);
  return { content, stamp };
}

describe('FileDigestMemo', () => {
  test('an entry is used only for the same stamp, and only once the file is older than the margin', async () => {
    const fs = memfs();
    await fs.promises.mkdir('/ctx', { recursive: true });
    await fs.promises.writeFile('/ctx/a', 'hello');
    const later = Date.now() + 60_000;

    // Hashed "a minute later": the entry is trusted by the next memo.
    const first = new FileDigestMemo({ fs, dir: '/memo', now: () => later });
    const a1 = await stamped(fs, '/ctx/a');
    expect(await first.digestOf(a1.content)).toBe(sha('hello'));
    expect(first.stats).toMatchObject({ hashed: 1, memoHits: 0 });
    await first.flush();

    const second = new FileDigestMemo({ fs, dir: '/memo', now: () => later });
    expect(await second.digestOf((await stamped(fs, '/ctx/a')).content)).toBe(sha('hello'));
    expect(second.stats).toMatchObject({ hashed: 0, memoHits: 1 });

    // New bytes, same size: the stamp (ctime at least) moved, so the file is read again.
    await fs.promises.writeFile('/ctx/a', 'HELLO');
    const third = new FileDigestMemo({ fs, dir: '/memo', now: () => later });
    expect(await third.digestOf((await stamped(fs, '/ctx/a')).content)).toBe(sha('HELLO'));
    expect(third.stats.hashed).toBe(1);
  });

  test('a racily clean file (changed within the margin of its hash) is always read again', async () => {
    const fs = memfs();
    await fs.promises.mkdir('/ctx', { recursive: true });
    await fs.promises.writeFile('/ctx/a', 'one');
    const { stamp } = await stamped(fs, '/ctx/a');
    const memo = new FileDigestMemo({ fs, dir: '/memo' }); // real clock: the file is brand new
    const c1 = fileContent(fs, '/ctx/a', 3);
    attachStamp(c1, fs, '/ctx/a', stamp);
    expect(await memo.digestOf(c1)).toBe(sha('one'));
    await memo.flush();

    // The file changes but (as within one tick of a coarse clock) shows the very same stamp.
    await fs.promises.writeFile('/ctx/a', 'two');
    const c2 = fileContent(fs, '/ctx/a', 3);
    attachStamp(c2, fs, '/ctx/a', stamp);
    const again = new FileDigestMemo({ fs, dir: '/memo' });
    expect(await again.digestOf(c2)).toBe(sha('two'));
    expect(again.stats.hashed).toBe(1);

    // Without the margin the same stamp would have been believed: that is what the margin is for.
    const careless = new FileDigestMemo({ fs, dir: '/memo', racyMarginMs: -10_000 });
    const c3 = fileContent(fs, '/ctx/a', 3);
    attachStamp(c3, fs, '/ctx/a', stamp);
    expect(await careless.digestOf(c3)).toBe(sha('one'));
  });

  test('a file that changed size since it was stamped is an error, not a wrong digest', async () => {
    const fs = memfs();
    await fs.promises.mkdir('/ctx', { recursive: true });
    await fs.promises.writeFile('/ctx/a', 'short');
    const { content } = await stamped(fs, '/ctx/a');
    await fs.promises.writeFile('/ctx/a', 'much longer now');
    const memo = new FileDigestMemo({ fs, dir: '/memo' });
    await expect(memo.digestOf(content)).rejects.toMatchObject({ code: 'SIZE_MISMATCH' });
  });

  test('contents that are not context files are hashed once per process', async () => {
    const fs = memfs();
    const memo = new FileDigestMemo({ fs, dir: '/memo' });
    await fs.promises.writeFile('/x', 'abc');
    const content = fileContent(fs, '/x', 3);
    const digests = await memo.digests([content, content]);
    expect(digests.get(content)).toBe(sha('abc'));
    expect(memo.stats.hashed).toBe(0); // not a stamped context file: not memoized on disk
  });
});
