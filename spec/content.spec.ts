/**
 * lib/content.ts: content is lazy (nothing is read until `open()`, and only as much as asked),
 * every `open()` is a fresh stream of exactly `size` bytes (a file that changed length fails
 * loudly), and the rules by which two contents are equal or a digest is known.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { Volume, createFsFromVolume } from 'memfs';
import {
  Content,
  bufferContent,
  checkedLength,
  contentDigest,
  contentEquals,
  fileContent,
  fileRangeContent,
  memoDigest,
  readContent,
  readContentHead,
  readContentText,
  verifiesItself,
} from '../lib/content';
import { FileSystem } from '../lib/fs';

const sha = (b: Buffer | string) => 'sha256:' + createHash('sha256').update(b).digest('hex');

function memfs(): FileSystem {
  return createFsFromVolume(new Volume()) as unknown as FileSystem;
}

/** A filesystem that counts the streams opened on it. */
function countingFs(): { fs: FileSystem; streams: () => number } {
  const inner = memfs();
  let streams = 0;
  const fs = new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === 'createReadStream') {
        return (...args: Parameters<FileSystem['createReadStream']>) => {
          streams++;
          return target.createReadStream(...args);
        };
      }
      return Reflect.get(target, prop, receiver);
    },
  });
  return { fs, streams: () => streams };
}

/** Content over `bytes` that counts its opens, with or without a stated digest. */
function counted(bytes: Buffer | string, digest?: string): { content: Content; opens: () => number } {
  const buf = Buffer.from(bytes);
  let opens = 0;
  const content: Content = {
    size: buf.length,
    ...(digest ? { digest } : {}),
    open: () => {
      opens++;
      return Readable.from([buf]);
    },
  };
  return { content, opens: () => opens };
}

/** Content whose every open fails: proves that a function did not read. */
const unreadable = (size: number, digest?: string): Content => ({
  size,
  ...(digest ? { digest } : {}),
  open: () => {
    throw new Error('must not be opened');
  },
});

async function drain(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('bufferContent', () => {
  test('size and digest are known without reading; every open is a fresh stream', async () => {
    const c = bufferContent('héllo\n');
    expect(c.size).toBe(Buffer.byteLength('héllo\n')); // UTF-8 bytes, not characters
    expect(c.digest).toBe(sha('héllo\n'));
    expect(c.source).toBe('memory');
    expect((await drain(c.open())).toString()).toBe('héllo\n');
    expect((await drain(c.open())).toString()).toBe('héllo\n');
    expect(bufferContent(Buffer.alloc(0))).toMatchObject({ size: 0, digest: sha('') });
  });
});

describe('fileContent: lazy, and loud when the file changed', () => {
  test('nothing is opened until open(), a missing file fails only then', async () => {
    const { fs, streams } = countingFs();
    const c = fileContent(fs, '/nope', 3);
    expect(streams()).toBe(0);
    expect(c).toMatchObject({ size: 3, source: '/nope', file: { path: '/nope', offset: 0 } });
    expect(c.digest).toBeUndefined();
    await expect(drain(c.open())).rejects.toMatchObject({ code: 'ENOENT' });
    expect(streams()).toBe(1);
  });

  test('reads the file each time it is opened', async () => {
    const { fs, streams } = countingFs();
    await fs.promises.writeFile('/f', 'abc');
    const c = fileContent(fs, '/f', 3, sha('abc'));
    expect(c.digest).toBe(sha('abc'));
    expect((await drain(c.open())).toString()).toBe('abc');
    expect((await drain(c.open())).toString()).toBe('abc');
    expect(streams()).toBe(2);
  });

  test.each([
    ['grew', 'abcd', 4],
    ['shrank', 'ab', 2],
    ['emptied', '', 0],
  ])('a file that %s since it was seen fails with SIZE_MISMATCH', async (_, now, actual) => {
    const fs = memfs();
    await fs.promises.writeFile('/f', 'abc');
    const c = fileContent(fs, '/f', 3);
    await fs.promises.writeFile('/f', now);
    await expect(drain(c.open())).rejects.toMatchObject({ code: 'SIZE_MISMATCH', details: { expected: 3, actual, what: '/f' } });
  });
});

describe('fileRangeContent', () => {
  test('a window of a file, read only on open', async () => {
    const { fs, streams } = countingFs();
    await fs.promises.writeFile('/t', '0123456789');
    const c = fileRangeContent(fs, '/t', 3, 4);
    expect(streams()).toBe(0);
    expect(c).toMatchObject({ size: 4, source: '/t@3', file: { path: '/t', offset: 3 } });
    expect((await drain(c.open())).toString()).toBe('3456');
    expect(fileRangeContent(fs, '/t', 0, 1, 'layer x: a').source).toBe('layer x: a');
  });

  test('an empty window never touches the file (which may not exist)', async () => {
    const { fs, streams } = countingFs();
    const c = fileRangeContent(fs, '/missing', 100, 0);
    expect(await drain(c.open())).toEqual(Buffer.alloc(0));
    expect(streams()).toBe(0);
  });

  test('a window past the end of a file that shrank fails with SIZE_MISMATCH', async () => {
    const fs = memfs();
    await fs.promises.writeFile('/t', '0123456789');
    const c = fileRangeContent(fs, '/t', 8, 2);
    await fs.promises.writeFile('/t', '012345678');
    await expect(drain(c.open())).rejects.toMatchObject({ code: 'SIZE_MISMATCH', details: { expected: 2, actual: 1 } });
  });
});

describe('checkedLength', () => {
  test('passes exactly `size` bytes through, in order', async () => {
    const out = await drain(checkedLength(Readable.from([Buffer.from('ab'), Buffer.from('cd')]), 4, 'x'));
    expect(out.toString()).toBe('abcd');
  });

  test('fails on more bytes (as soon as they pass `size`) and on fewer (at the end)', async () => {
    await expect(drain(checkedLength(Readable.from([Buffer.from('abc'), Buffer.from('de')]), 4, 'x'))).rejects.toMatchObject({
      code: 'SIZE_MISMATCH',
      details: { expected: 4, actual: 5, what: 'x' },
    });
    await expect(drain(checkedLength(Readable.from([Buffer.from('abc')]), 4, 'x'))).rejects.toMatchObject({
      code: 'SIZE_MISMATCH',
      details: { expected: 4, actual: 3 },
    });
  });

  test('an error of the source passes through; destroying the output destroys the source', async () => {
    const failing = new Readable({
      read() {
        this.destroy(new Error('disk on fire'));
      },
    });
    await expect(drain(checkedLength(failing, 4, 'x'))).rejects.toThrow('disk on fire');
    const source = new Readable({
      read() {
        this.push(Buffer.alloc(16));
      },
    });
    const out = checkedLength(source, 1 << 30, 'x');
    out.destroy();
    await new Promise((r) => setImmediate(r));
    expect(source.destroyed).toBe(true);
  });
});

describe('reading', () => {
  test('readContent refuses content over its limit before opening it', async () => {
    await expect(readContent(unreadable(11), 10)).rejects.toMatchObject({ code: 'LIMIT_EXCEEDED', details: { size: 11, limit: 10 } });
    expect((await readContent(bufferContent('0123456789'), 10)).toString()).toBe('0123456789');
    expect(await readContentText(bufferContent('ü'))).toBe('ü');
  });

  test('readContentHead reads no further than it needs and closes the stream', async () => {
    let pushed = 0;
    const endless = new Readable({
      read() {
        pushed++;
        this.push(Buffer.alloc(1024, pushed));
      },
    });
    const c: Content = { size: Number.MAX_SAFE_INTEGER, open: () => endless };
    const head = await readContentHead(c, 1500);
    expect(head.length).toBe(1500);
    expect(head[0]).toBe(1);
    expect(head[1499]).toBe(2);
    expect(endless.destroyed).toBe(true);
    expect(pushed).toBeLessThan(64); // a few read-aheads, never the endless rest
    // Shorter content gives what there is.
    expect((await readContentHead(bufferContent('ab'), 10)).toString()).toBe('ab');
  });
});

describe('digests', () => {
  test('contentDigest uses a stated digest without reading, else hashes the bytes', async () => {
    expect(await contentDigest(unreadable(3, 'sha256:stated'))).toBe('sha256:stated');
    expect(await contentDigest(counted('abc').content)).toBe(sha('abc'));
  });

  test('memoDigest hashes a content object once, and forgets a failure', async () => {
    const { content, opens } = counted('abc');
    expect(await memoDigest(content)).toBe(sha('abc'));
    expect(await memoDigest(content)).toBe(sha('abc'));
    expect(opens()).toBe(1);
    // The memo is by object: an equal content is hashed on its own.
    const other = counted('abc');
    expect(await memoDigest(other.content)).toBe(sha('abc'));
    expect(other.opens()).toBe(1);
    // A failed hash is not remembered: the next call tries again.
    let attempts = 0;
    const flaky: Content = {
      size: 1,
      open: () => {
        attempts++;
        if (attempts === 1) {
          return new Readable({
            read() {
              this.destroy(new Error('transient'));
            },
          });
        }
        return Readable.from([Buffer.from('x')]);
      },
    };
    await expect(memoDigest(flaky)).rejects.toThrow('transient');
    await new Promise((r) => setImmediate(r));
    expect(await memoDigest(flaky)).toBe(sha('x'));
    expect(attempts).toBe(2);
  });

  test('verifiesItself only for self-verifying content whose digest and size are the ones expected', () => {
    const d = { digest: sha('abc'), size: 3 };
    const selfVerifying = { ...unreadable(3, d.digest), selfVerifying: true };
    expect(verifiesItself(selfVerifying, d)).toBe(true);
    expect(verifiesItself({ ...selfVerifying, selfVerifying: false }, d)).toBe(false);
    expect(verifiesItself(unreadable(3, d.digest), d)).toBe(false);
    expect(verifiesItself(selfVerifying, { ...d, size: 4 })).toBe(false);
    expect(verifiesItself(selfVerifying, { ...d, digest: sha('abd') })).toBe(false);
  });
});

describe('contentEquals: the cheapest sufficient rule first', () => {
  test('the same object is equal without reading', async () => {
    const c = unreadable(5);
    expect(await contentEquals(c, c)).toBe(true);
  });

  test('different sizes are unequal without reading', async () => {
    expect(await contentEquals(unreadable(5), unreadable(6))).toBe(false);
  });

  test('two stated digests decide without reading', async () => {
    expect(await contentEquals(unreadable(3, sha('abc')), unreadable(3, sha('abc')))).toBe(true);
    expect(await contentEquals(unreadable(3, sha('abc')), unreadable(3, sha('abd')))).toBe(false);
  });

  test('otherwise the bytes are hashed (once per object), whatever their source', async () => {
    const fs = memfs();
    await fs.promises.writeFile('/f', 'abc');
    const a = counted('abc');
    expect(await contentEquals(a.content, fileContent(fs, '/f', 3))).toBe(true);
    expect(await contentEquals(a.content, bufferContent('abc'))).toBe(true); // one side stated, one hashed
    expect(await contentEquals(a.content, counted('abd').content)).toBe(false);
    expect(a.opens()).toBe(1);
    // Equal sizes, one stated digest: only the other side is read.
    expect(await contentEquals(unreadable(3, sha('abc')), counted('abc').content)).toBe(true);
  });
});
