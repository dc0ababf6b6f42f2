/**
 * The local image store: an OCI image layout in a directory (default
 * `$CLOUDROOTFS_STORE`, else `$XDG_DATA_HOME/cloudrootfs/store`, else
 * `~/.local/share/cloudrootfs/store`). See docs/store.md.
 *
 * - Blobs are shared by every image and written content-addressed (temp file + rename), so two
 *   writers of the same blob cannot corrupt it and need no lock.
 * - Tags live in index.json, one entry per full normalized name (names.ts). Every change to
 *   index.json is a read-modify-write under the store lock (lock.ts), so concurrent taggers lose
 *   nothing; the file itself is replaced atomically, so readers need no lock.
 * - `put` writes blobs first, then — under the lock — checks they all still exist (a concurrent
 *   garbage collection may have swept them) before tagging; missing ones are written again. A
 *   put that fails removes the blobs it created that nothing references, so it leaves nothing.
 * - `remove` untags and collects blobs nothing references, under the same lock.
 * - `cache/` under the root is reserved for build-cache data and never touched here.
 */
import { homedir } from 'node:os';
import { posix, resolve as resolvePath } from 'node:path';
import { CloudRootfsError, ImageNotFoundError } from '../errors';
import { FileSystem, diskFs, lstatOrUndefined } from '../fs';
import { BlobWriteSession, OciLayout, onlyOne, type LayoutLimits } from '../formats/layout';
import { Image, ImageIndex, selectImage } from '../image/image';
import { canonicalJsonBytes } from '../image/json';
import type { Descriptor, ImageIndexDocument, Platform } from '../image/types';
import type { WriteImageOptions } from '../image/write';
import { MEDIA_TYPES, isManifestMediaType } from '../media-types';
import { ensureDir, writeFileAtomic } from '../util/atomic';
import { GcResult, collectGarbage } from './gc';
import { LockOptions, withLock } from './lock';
import { StoreName, StoreQuery, entryName, nameAnnotations, parseStoreQuery, storeName } from './names';

export interface StoreOptions {
  fs?: FileSystem;
  /** The store directory (default: defaultStoreRoot(env)). */
  root?: string;
  env?: NodeJS.ProcessEnv;
  lock?: LockOptions;
  /** Bounds for reading the store's documents and layers (defaults: see LayoutLimits). */
  limits?: LayoutLimits;
}

export interface StoreEntry {
  /** Full repository, `docker.io/library/nginx`; `<none>` for an untagged image. */
  name: string;
  tag: string;
  /** Full reference, `docker.io/library/nginx:1.25` (undefined when untagged). */
  reference?: string;
  /** What people type: `nginx:1.25`. */
  familiar?: string;
  /** Digest of the manifest or index the tag points at. */
  digest: string;
  /** Image ID: the config digest (an index's own digest for a multi-platform image). */
  id: string;
  mediaType: string;
  /** RFC 3339 creation time from the config (the newest platform's for an index). */
  created?: string;
  /** Bytes of every blob the image uses (manifests, configs, layers as stored). */
  size: number;
  platforms: Platform[];
  /**
   * Set when the image cannot be read (a blob missing or corrupt, a document invalid): listed
   * anyway, with what index.json says of it; `code` is the error's (`BLOB_NOT_FOUND`…).
   */
  broken?: { code: string; message: string };
}

export const STORE_ENV = 'CLOUDROOTFS_STORE';
const LOCK_FILE = 'index.lock';

/** Where the store lives when nothing says otherwise. */
export function defaultStoreRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env[STORE_ENV]) return env[STORE_ENV]!;
  if (env.XDG_DATA_HOME) return posix.join(env.XDG_DATA_HOME, 'cloudrootfs', 'store');
  return posix.join(env.HOME || homedir(), '.local', 'share', 'cloudrootfs', 'store');
}

function idOf(target: Image | ImageIndex, top: Descriptor): string {
  if (target instanceof Image && target.stored) return target.stored.configDescriptor.digest;
  return top.digest;
}

export class ImageStore {
  readonly layout: OciLayout;

  private constructor(
    readonly root: string,
    readonly fs: FileSystem,
    layout: OciLayout,
    private readonly lockOptions: LockOptions,
  ) {
    this.layout = layout;
  }

  /** Open the store, creating an empty one (under the lock) if there is none yet. */
  static async open(options: StoreOptions = {}): Promise<ImageStore> {
    const fs = options.fs ?? diskFs;
    const root = resolvePath(options.root ?? defaultStoreRoot(options.env ?? process.env));
    await ensureDir(fs, root);
    if (!(await lstatOrUndefined(fs, posix.join(root, 'oci-layout')))) {
      await withLock(
        fs,
        posix.join(root, LOCK_FILE),
        async () => {
          // Checked again under the lock: another process may have just created it.
          if (await lstatOrUndefined(fs, posix.join(root, 'oci-layout'))) return;
          await ensureDir(fs, posix.join(root, 'blobs', 'sha256'));
          if (!(await lstatOrUndefined(fs, posix.join(root, 'index.json')))) {
            await writeFileAtomic(fs, posix.join(root, 'index.json'), canonicalJsonBytes({ schemaVersion: 2, mediaType: MEDIA_TYPES.index, manifests: [] }));
          }
          await writeFileAtomic(fs, posix.join(root, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
        },
        options.lock,
      );
    }
    return new ImageStore(root, fs, await OciLayout.open(fs, root, options.limits), options.lock ?? {});
  }

  private locked<T>(fn: () => Promise<T>): Promise<T> {
    return withLock(this.fs, posix.join(this.root, LOCK_FILE), fn, this.lockOptions);
  }

  private async entries(): Promise<Descriptor[]> {
    return (await this.layout.readIndex()).manifests;
  }

  private async writeEntries(index: ImageIndexDocument, manifests: Descriptor[]): Promise<void> {
    await this.layout.writeIndex({ ...index, manifests });
  }

  // --- writing ----------------------------------------------------------------------------------

  /** Store `target` under `name` (normalized; tag `latest` by default); returns its descriptor. */
  async put(target: Image | ImageIndex, name: string, options: WriteImageOptions = {}): Promise<Descriptor> {
    return this.store(target, storeName(name), options);
  }

  /** Store `target` without a name (listed as `<none>` until tagged); returns its descriptor. */
  async putUntagged(target: Image | ImageIndex, options: WriteImageOptions = {}): Promise<Descriptor> {
    return this.store(target, undefined, options);
  }

  private async store(target: Image | ImageIndex, sn: StoreName | undefined, options: WriteImageOptions): Promise<Descriptor> {
    for (let attempt = 1; ; attempt++) {
      // A write that fails half-way takes back the blobs it created (under the lock, as gc).
      const session = new BlobWriteSession(this.layout);
      const top = await this.layout.writeBlobs(target, options, session, (fn) => this.locked(fn));
      const tagged = await this.locked(async () => {
        for (const d of session.needed.values()) if (!(await this.layout.has(d))) return false;
        const index = await this.layout.readIndex();
        const entry = this.entryFor(top, sn);
        const others = sn
          ? index.manifests.filter((m) => entryName(m)?.reference !== sn.reference)
          : index.manifests.filter((m) => !(m.digest === top.digest && !entryName(m)));
        await this.writeEntries(index, [...others, entry]);
        return true;
      });
      if (tagged) return top;
      // A concurrent garbage collection swept some of our blobs before we tagged: write again.
      if (attempt >= 3) {
        throw new CloudRootfsError('LOCK_TIMEOUT', `could not store ${sn?.reference ?? top.digest}: its blobs kept being collected`, { digest: top.digest });
      }
    }
  }

  private entryFor(d: Descriptor, name: StoreName | undefined): Descriptor {
    return {
      mediaType: d.mediaType,
      digest: d.digest,
      size: d.size,
      ...(d.platform && isManifestMediaType(d.mediaType) ? { platform: d.platform } : {}),
      ...(name ? { annotations: nameAnnotations(name) } : {}),
    };
  }

  /** Give the image `source` names another name too. */
  async tag(source: string, target: string): Promise<void> {
    const sn = storeName(target);
    await this.locked(async () => {
      const index = await this.layout.readIndex();
      const found = await this.match(index.manifests, source);
      const entry = this.entryFor(found, sn);
      await this.writeEntries(index, [...index.manifests.filter((m) => entryName(m)?.reference !== sn.reference), entry]);
    });
  }

  /**
   * Untag `name` — a name removes that tag; a digest or ID removes every tag of that image — and
   * collect the blobs nothing references any more.
   */
  async remove(name: string): Promise<{ removedBlobs: number; untagged: string[] }> {
    return this.locked(async () => {
      const index = await this.layout.readIndex();
      const first = parseStoreQuery(name)[0];
      let removed = first.kind === 'name' ? index.manifests.filter((m) => entryName(m)?.reference === first.name.reference) : [];
      if (removed.length === 0) {
        // A digest or an ID names the image itself: every tag of it goes.
        const found = await this.match(index.manifests, name);
        const repository = first.kind === 'digest' ? first.repository : undefined;
        removed = index.manifests.filter((m) => m.digest === found.digest && (!repository || entryName(m)?.repository === repository));
      }
      await this.writeEntries(
        index,
        index.manifests.filter((m) => !removed.includes(m)),
      );
      const gc = await collectGarbage(this.layout);
      return { removedBlobs: gc.removedBlobs, untagged: removed.map((m) => entryName(m)?.reference ?? m.digest) };
    });
  }

  /** Sweep unreferenced blobs and leftovers of crashed writers. */
  async gc(): Promise<GcResult> {
    return this.locked(() => collectGarbage(this.layout));
  }

  // --- reading ----------------------------------------------------------------------------------

  /** The index.json entry `query` names (name, digest, name@digest or image ID prefix). */
  async resolve(query: string): Promise<Descriptor> {
    return this.match(await this.entries(), query);
  }

  private async match(manifests: readonly Descriptor[], text: string): Promise<Descriptor> {
    const queries: StoreQuery[] = parseStoreQuery(text);
    for (const q of queries) {
      if (q.kind === 'name') {
        const hits = manifests.filter((m) => entryName(m)?.reference === q.name.reference);
        // A store another tool wrote may list a name twice: one image, or AMBIGUOUS_IMAGE.
        if (hits.length > 0) return onlyOne(hits, q.name.reference, `the store ${this.root}`);
      } else if (q.kind === 'digest') {
        const hits = manifests.filter((m) => (m.digest === q.digest || this.idCache.get(m.digest) === q.digest) && (!q.repository || entryName(m)?.repository === q.repository));
        if (hits.length > 0) return hits[0];
        const byId = await this.byIdPrefix(manifests, q.digest.replace(/^sha256:/, ''), q.repository);
        if (byId) return byId;
      } else {
        const hit = await this.byIdPrefix(manifests, q.prefix);
        if (hit) return hit;
      }
    }
    throw new ImageNotFoundError(text, `the store ${this.root}`);
  }

  private readonly idCache = new Map<string, string>();

  private async idOfEntry(d: Descriptor): Promise<string> {
    let id = this.idCache.get(d.digest);
    if (!id) {
      try {
        id = idOf(await this.layout.load(d), d);
      } catch {
        id = d.digest;
      }
      this.idCache.set(d.digest, id);
    }
    return id;
  }

  private async byIdPrefix(manifests: readonly Descriptor[], prefix: string, repository?: string): Promise<Descriptor | undefined> {
    const hits = new Map<string, Descriptor>();
    for (const m of manifests) {
      if (repository && entryName(m)?.repository !== repository) continue;
      const id = (await this.idOfEntry(m)).replace(/^sha256:/, '');
      const digest = m.digest.replace(/^sha256:/, '');
      if (id.startsWith(prefix) || digest.startsWith(prefix)) hits.set(m.digest, m);
    }
    if (hits.size > 1) {
      throw new CloudRootfsError('AMBIGUOUS_IMAGE', `${prefix} matches ${hits.size} images; give more of the ID`, { prefix, matches: [...hits.keys()] });
    }
    return hits.values().next().value;
  }

  async has(name: string): Promise<boolean> {
    try {
      await this.resolve(name);
      return true;
    } catch (err) {
      if (err instanceof ImageNotFoundError) return false;
      throw err;
    }
  }

  /** The image or index stored under `name` (ImageNotFoundError when absent). */
  async loadTarget(name: string): Promise<Image | ImageIndex> {
    return this.layout.load(await this.resolve(name));
  }

  /** One platform's image (default: the host's). */
  async loadImage(name: string, platform?: Platform): Promise<Image> {
    return selectImage(await this.loadTarget(name), platform, name);
  }

  /**
   * Every tag (and every untagged image), in index.json order. An image that cannot be read is
   * listed with `broken` set (from what index.json says of it): one bad image never hides the rest.
   */
  async list(): Promise<StoreEntry[]> {
    const out: StoreEntry[] = [];
    for (const d of await this.entries()) {
      const sn = entryName(d);
      let target: Image | ImageIndex;
      try {
        target = await this.layout.load(d);
      } catch (err) {
        if (!(err instanceof CloudRootfsError)) throw err;
        out.push({
          name: sn?.repository ?? '<none>',
          tag: sn?.tag ?? '<none>',
          ...(sn ? { reference: sn.reference, familiar: sn.familiar } : {}),
          digest: d.digest,
          id: d.digest,
          mediaType: d.mediaType,
          size: d.size,
          platforms: d.platform ? [d.platform] : [],
          broken: { code: err.code, message: err.message },
        });
        continue;
      }
      const images = target instanceof ImageIndex ? target.images() : [{ image: target, platform: target.platform }];
      const sizes = new Map<string, number>([[d.digest, d.size]]);
      let created: string | undefined;
      for (const { image } of images) {
        if (image.stored) {
          sizes.set(image.stored.manifestDescriptor.digest, image.stored.manifestDescriptor.size);
          sizes.set(image.stored.configDescriptor.digest, image.stored.configDescriptor.size);
        }
        for (const l of image.layers) if (l.kind === 'blob') sizes.set(l.descriptor.digest, l.descriptor.size);
        const c = image.config.created;
        if (c && (!created || c > created)) created = c;
      }
      const id = idOf(target, d);
      this.idCache.set(d.digest, id);
      out.push({
        name: sn?.repository ?? '<none>',
        tag: sn?.tag ?? '<none>',
        ...(sn ? { reference: sn.reference, familiar: sn.familiar } : {}),
        digest: d.digest,
        id,
        mediaType: d.mediaType,
        ...(created ? { created } : {}),
        size: [...sizes.values()].reduce((a, b) => a + b, 0),
        platforms: images.flatMap((i) => (i.platform ? [i.platform] : [])),
      });
    }
    return out;
  }
}
