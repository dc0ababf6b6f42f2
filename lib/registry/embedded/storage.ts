/**
 * The storage layout of distribution's filesystem driver (`registry/storage/paths.go`), written
 * directly, so a `docker-registry` whose root directory is `<rootfs>/registry` serves the images:
 *
 *   docker/registry/v2/blobs/sha256/<first two hex>/<hex>/data        every blob, once
 *   docker/registry/v2/repositories/<repo>/_layers/sha256/<hex>/link  configs and layers
 *   …/<repo>/_manifests/revisions/sha256/<hex>/link                    manifests and indexes
 *   …/<repo>/_manifests/tags/<tag>/current/link                        the tag
 *   …/<repo>/_manifests/tags/<tag>/index/sha256/<hex>/link             the tag's history
 *
 * A link file holds `sha256:<hex>` and no newline. Blobs are streamed to a temporary name in
 * their directory and renamed once their digest and size are checked; a blob already present
 * (written for another image, or in the base image's `registry/`) is not fetched again.
 */
import { posix } from 'node:path';
import type { Readable } from 'node:stream';
import { verifiesItself, type Content } from '../../content';
import { digestOfBuffer } from '../../compress';
import { DigestMismatchError, InvalidReferenceError } from '../../errors';
import { lstatOrUndefined, type FileSystem } from '../../fs';
import { checkDigest } from '../../image/digest';
import type { Descriptor } from '../../image/types';
import type { BlobTarget } from '../../image/write';
import type { Layer } from '../../layer/layer';
import { isValidRepository, isValidTag } from '../../reference/docker';
import { encodeLayer, type EncodedLayer, type EncodeLayerOptions } from '../../tar/write';
import { ensureDir, writeFileAtomic, writeStreamAtomic } from '../../util/atomic';
import { isManifestLike } from '../target';
import { writeVerifiedFile } from '../../util/verified-write';

export const STORAGE_PREFIX = 'docker/registry/v2';

export interface StorageStats {
  /** Blobs written. */
  blobs: number;
  /** Bytes of blobs written. */
  bytes: number;
  /** Blobs another image (or the base) already provided. */
  reused: number;
}

export interface DistributionStorageOptions {
  /** Blobs that exist elsewhere (the base image's `registry/`): linked, never written. */
  preexisting?: (digest: string) => boolean;
}

/** The `blobs/…/data` path of a digest, relative to the storage root (`<rootfs>/registry`). */
export function blobDataPath(digest: string): string {
  const [algorithm, hex] = checkDigest(digest); // refuses anything but a plain digest: no path games
  return posix.join(STORAGE_PREFIX, 'blobs', algorithm, hex.slice(0, 2), hex, 'data');
}

export class DistributionStorage {
  readonly stats: StorageStats = { blobs: 0, bytes: 0, reused: 0 };
  private readonly writing = new Map<string, Promise<void>>();

  constructor(
    readonly fs: FileSystem,
    /** The directory a registry uses as `rootdirectory` (`<rootfs>/registry`). */
    readonly root: string,
    private readonly options: DistributionStorageOptions = {},
  ) {}

  private abs(relative: string): string {
    return posix.join(this.root, relative);
  }

  /** True when the blob is here (or provided by the base). */
  async hasBlob(digest: string, size?: number): Promise<boolean> {
    if (this.options.preexisting?.(digest)) return true;
    const st = await lstatOrUndefined(this.fs, this.abs(blobDataPath(digest)));
    return !!st && st.isFile() && (size === undefined || st.size === size);
  }

  /** Store small bytes (manifests, configs), checking their digest. */
  async putBlobBytes(bytes: Buffer, digest: string): Promise<void> {
    const actual = digestOfBuffer(bytes);
    if (actual !== digest) throw new DigestMismatchError(digest, actual, 'blob');
    await this.once(digest, bytes.length, async (path) => {
      await writeFileAtomic(this.fs, path, bytes, { durable: false });
    });
  }

  /** Stream a blob in, checking digest and size before it gets its name. */
  async putBlobStream(open: () => Readable, descriptor: Pick<Descriptor, 'digest' | 'size'>): Promise<void> {
    await this.once(descriptor.digest, descriptor.size, (path) => writeVerifiedFile(this.fs, path, open(), descriptor));
  }

  /**
   * Copy a blob from `content`, checked before it gets its name. A registry blob is checked by the
   * client as it streams (its stream fails before it ends), so its bytes are hashed once, not twice.
   */
  async putBlobContent(content: Content, descriptor: Pick<Descriptor, 'digest' | 'size'>): Promise<void> {
    await this.once(descriptor.digest, descriptor.size, (path) =>
      writeVerifiedFile(this.fs, path, content.open(), descriptor, { sourceVerifies: verifiesItself(content, descriptor) }),
    );
  }

  /** Encode a changeset layer straight into the blob store; its name is known once it is written. */
  async putEncodedLayer(layer: Layer, options: EncodeLayerOptions): Promise<EncodedLayer> {
    const staging = this.abs(posix.join(STORAGE_PREFIX, 'blobs', 'sha256', 'layer'));
    await ensureDir(this.fs, posix.dirname(staging));
    let encoded!: EncodedLayer;
    await writeStreamAtomic(
      this.fs,
      staging,
      async (write) => {
        encoded = await encodeLayer(layer, write, options);
      },
      async () => {
        const final = this.abs(blobDataPath(encoded.digest));
        await ensureDir(this.fs, posix.dirname(final));
        return final;
      },
    );
    this.stats.blobs++;
    this.stats.bytes += encoded.size;
    return encoded;
  }

  /** Runs `write` for a blob that is not here yet; concurrent writers of one digest share it. */
  private async once(digest: string, size: number, write: (path: string) => Promise<void>): Promise<void> {
    const running = this.writing.get(digest);
    if (running) return running;
    const job = (async () => {
      if (await this.hasBlob(digest, size)) {
        this.stats.reused++;
        return;
      }
      const path = this.abs(blobDataPath(digest));
      await ensureDir(this.fs, posix.dirname(path));
      await write(path);
      this.stats.blobs++;
      this.stats.bytes += size;
    })();
    this.writing.set(digest, job);
    try {
      await job;
    } finally {
      this.writing.delete(digest);
    }
  }

  // ---------------------------------------------------------------- repository links

  private repoPath(repository: string, ...rest: string[]): string {
    if (!isValidRepository(repository)) throw new InvalidReferenceError(repository, 'not a valid repository path');
    return this.abs(posix.join(STORAGE_PREFIX, 'repositories', repository, ...rest));
  }

  private async writeLink(path: string, digest: string): Promise<void> {
    await ensureDir(this.fs, posix.dirname(path));
    await writeFileAtomic(this.fs, path, digest, { durable: false });
  }

  /** `_layers/…/link`: the repository may serve this blob (configs and layers). */
  async linkBlob(repository: string, digest: string): Promise<void> {
    const [algorithm, hex] = checkDigest(digest);
    await this.writeLink(this.repoPath(repository, '_layers', algorithm, hex, 'link'), digest);
  }

  /** `_manifests/revisions/…/link`: the repository holds this manifest or index. */
  async linkManifest(repository: string, digest: string): Promise<void> {
    const [algorithm, hex] = checkDigest(digest);
    await this.writeLink(this.repoPath(repository, '_manifests', 'revisions', algorithm, hex, 'link'), digest);
  }

  /** Point `tag` at a manifest the repository holds. */
  async tag(repository: string, tag: string, digest: string): Promise<void> {
    if (!isValidTag(tag)) throw new InvalidReferenceError(tag, 'not a valid tag');
    const [algorithm, hex] = checkDigest(digest);
    await this.writeLink(this.repoPath(repository, '_manifests', 'tags', tag, 'index', algorithm, hex, 'link'), digest);
    await this.writeLink(this.repoPath(repository, '_manifests', 'tags', tag, 'current', 'link'), digest);
  }

  /** A BlobTarget for one repository (for `writeTarget`): blobs stored once, links per repository. */
  repository(repository: string): BlobTarget {
    return new RepositoryWriter(this, repository);
  }
}

class RepositoryWriter implements BlobTarget {
  /** Digests linked into this repository during this write. */
  private readonly linked = new Set<string>();

  constructor(
    private readonly storage: DistributionStorage,
    private readonly repository: string,
  ) {}

  async has(descriptor: Descriptor): Promise<boolean> {
    // Only what this write linked counts: a blob stored for another repository still needs its link.
    return this.linked.has(descriptor.digest);
  }

  async putBytes(bytes: Buffer, descriptor: Descriptor): Promise<void> {
    await this.storage.putBlobBytes(bytes, descriptor.digest);
    await this.link(descriptor);
  }

  async putContent(content: Content, descriptor: Descriptor): Promise<void> {
    await this.storage.putBlobContent(content, descriptor);
    await this.link(descriptor);
  }

  async putLayer(layer: Layer, options: EncodeLayerOptions): Promise<{ encoded: EncodedLayer }> {
    const encoded = await this.storage.putEncodedLayer(layer, options);
    await this.link({ mediaType: encoded.mediaType, digest: encoded.digest, size: encoded.size });
    return { encoded };
  }

  private async link(descriptor: Descriptor): Promise<void> {
    if (isManifestLike(descriptor.mediaType)) await this.storage.linkManifest(this.repository, descriptor.digest);
    else await this.storage.linkBlob(this.repository, descriptor.digest);
    this.linked.add(descriptor.digest);
  }
}
