/**
 * The download cache of remote build sources (APP/CNI/CSI `http(s)://`, `ADD <url>`), so a
 * rebuild does not download again what has not changed:
 *
 *   <dir>/entries/<sha256 of the URL>.json   what the URL gave last time: digests, size, the
 *                                            validators (ETag, Last-Modified), the stored file's stamp
 *   <dir>/blobs/<sha256 hex>                 the bytes, named by their digest
 *
 * Both are written atomically (temp file, then rename), so concurrent builds at worst download
 * twice. Nothing is trusted blindly: an entry is used only if its blob is there with the recorded
 * size and either the same stamp as when it was written or, failing that, the recorded digest
 * when hashed again; anything else is a miss. Deleting the directory costs downloads, never
 * correctness.
 */
import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import { hashFile } from '../cache/file-digests';
import { FileSystem, errnoCode, lstatOrUndefined } from '../fs';
import { ensureDir, writeFileAtomic } from '../util/atomic';

const ENTRY_VERSION = 1;

/** What a URL gave when it was last downloaded. */
export interface DownloadEntry {
  version: number;
  url: string;
  /** `sha256:<hex>` of the bytes, and any other digest a checksum pin asked for (`sha512:…`). */
  digests: Record<string, string>;
  size: number;
  etag?: string;
  /** The `Last-Modified` header as sent (for `If-Modified-Since`). */
  lastModified?: string;
  fetchedAt: string;
  /** size, mtimeMs and inode of the blob file when it was written. */
  stamp: [number, number, number];
}

function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export class DownloadCache {
  constructor(
    readonly fs: FileSystem,
    readonly dir: string,
  ) {}

  private entryPath(url: string): string {
    return posix.join(this.dir, 'entries', `${sha256Hex(url)}.json`);
  }

  /** Where the blob of digest `sha256:<hex>` lives. */
  blobPath(digest: string): string {
    return posix.join(this.dir, 'blobs', digest.replace(/^sha256:/, ''));
  }

  /** Where new blobs are streamed (a temp file next to it is renamed over this). */
  async blobDir(): Promise<string> {
    const dir = posix.join(this.dir, 'blobs');
    await ensureDir(this.fs, dir);
    return dir;
  }

  /** The entry for `url` whose blob is still what it recorded, or undefined. */
  async lookup(url: string): Promise<DownloadEntry | undefined> {
    let entry: DownloadEntry;
    try {
      entry = JSON.parse(await this.fs.promises.readFile(this.entryPath(url), 'utf8')) as DownloadEntry;
    } catch (err) {
      if (errnoCode(err) === 'ENOENT' || err instanceof SyntaxError) return undefined;
      throw err;
    }
    if (entry.version !== ENTRY_VERSION || entry.url !== url || typeof entry.digests?.sha256 !== 'string') return undefined;
    const path = this.blobPath(entry.digests.sha256);
    const st = await lstatOrUndefined(this.fs, path);
    if (!st?.isFile() || Number(st.size) !== entry.size) return undefined;
    const [size, mtimeMs, ino] = entry.stamp;
    if (size === Number(st.size) && mtimeMs === Number(st.mtimeMs) && ino === Number(st.ino)) return entry;
    // The file was touched since: trust it only if its bytes are still the recorded ones.
    const digest = await hashFile(this.fs, path, entry.size).catch(() => undefined);
    if (digest !== entry.digests.sha256) return undefined;
    const fresh = { ...entry, stamp: [Number(st.size), Number(st.mtimeMs), Number(st.ino)] as [number, number, number] };
    await this.writeEntry(fresh);
    return fresh;
  }

  /** Record what `url` gave (its blob already stored); the previous blob of the URL goes if it differs. */
  async record(entry: Omit<DownloadEntry, 'version' | 'stamp'>): Promise<DownloadEntry> {
    const st = await this.fs.promises.lstat(this.blobPath(entry.digests.sha256));
    const full: DownloadEntry = { version: ENTRY_VERSION, ...entry, stamp: [Number(st.size), Number(st.mtimeMs), Number(st.ino)] };
    const previous = await this.readEntryQuietly(entry.url);
    await this.writeEntry(full);
    const old = previous?.digests?.sha256;
    if (old && old !== entry.digests.sha256) await this.fs.promises.rm(this.blobPath(old), { force: true }).catch(() => undefined);
    return full;
  }

  /** The entry with a new fetch time (a 304 said it is still current). */
  async touch(entry: DownloadEntry): Promise<DownloadEntry> {
    const fresh = { ...entry, fetchedAt: new Date().toISOString() };
    await this.writeEntry(fresh);
    return fresh;
  }

  private async readEntryQuietly(url: string): Promise<DownloadEntry | undefined> {
    try {
      return JSON.parse(await this.fs.promises.readFile(this.entryPath(url), 'utf8')) as DownloadEntry;
    } catch {
      return undefined;
    }
  }

  private async writeEntry(entry: DownloadEntry): Promise<void> {
    const path = this.entryPath(entry.url);
    await ensureDir(this.fs, posix.dirname(path));
    await writeFileAtomic(this.fs, path, JSON.stringify(entry) + '\n', { durable: false });
  }
}
