/** Copy a stream to a file atomically, checking its size and digest (sha256 or sha512) before the file gets its name. */
import type { Readable } from 'node:stream';
import { DigestCounter } from '../compress';
import { DigestMismatchError, SizeMismatchError } from '../errors';
import type { FileSystem } from '../fs';
import { pumpTo, writeStreamAtomic } from './atomic';

export async function writeVerifiedFile(
  fs: FileSystem,
  path: string,
  source: Readable,
  expected: { digest: string; size: number },
  options: { sourceVerifies?: boolean } = {},
): Promise<void> {
  if (options.sourceVerifies) {
    // The stream fails before its end unless its bytes are `expected`: a clean end is the check.
    await writeStreamAtomic(fs, path, (write) => pumpTo(source, write));
    return;
  }
  const counter = DigestCounter.like(expected.digest);
  await writeStreamAtomic(
    fs,
    path,
    async (write) => {
      for await (const chunk of source) {
        counter.update(chunk as Buffer);
        await write(chunk as Buffer);
      }
    },
    () => {
      if (counter.size !== expected.size) throw new SizeMismatchError(expected.size, counter.size, `blob ${expected.digest}`);
      if (counter.digest() !== expected.digest) throw new DigestMismatchError(expected.digest, counter.digest(), 'blob');
      return undefined;
    },
  );
}
