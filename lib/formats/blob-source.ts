/**
 * Loading an image from anything that serves blobs by digest: an archive read in place, or any
 * other container of a layout's `blobs/`. The same rules as the layout reader (`layout.ts`):
 * manifests and indexes are validated, unknown index entries and `unknown/unknown` attestations
 * are skipped, nesting is bounded, and exact bytes are kept so re-writing keeps the digests.
 */
import { Content, readContent } from '../content';
import { DigestCounter } from '../compress';
import { DigestMismatchError, LimitExceededError, SizeMismatchError, UnsupportedMediaTypeError } from '../errors';
import { Image, ImageIndex, IndexEntry } from '../image/image';
import { parseOciDocument } from '../image/schema';
import type { Descriptor, ImageConfigDocument, ImageIndexDocument, ImageManifest } from '../image/types';
import { isIndexMediaType, isManifestMediaType, MEDIA_TYPES } from '../media-types';
import { imageFromDocuments } from './layout';

export interface BlobSource {
  /** For error messages: the archive or directory. */
  readonly where: string;
  /** Lazy content of a blob (BlobNotFoundError when absent); verified by whoever reads it. */
  blob(descriptor: Pick<Descriptor, 'digest' | 'size'>): Content;
}

export interface BlobSourceLimits {
  maxDocumentBytes?: number;
  maxNesting?: number;
}

const DEFAULT_MAX_DOCUMENT = 4 << 20;
const DEFAULT_MAX_NESTING = 8;

/** A small blob read whole and checked against its descriptor. */
export async function readVerifiedBlob(source: BlobSource, d: Pick<Descriptor, 'digest' | 'size'>, max = DEFAULT_MAX_DOCUMENT): Promise<Buffer> {
  if (d.size > max) throw new LimitExceededError('maxDocumentBytes', max, `blob ${d.digest} (${d.size} bytes) in ${source.where}`);
  const bytes = await readContent(source.blob(d), max + 1);
  if (bytes.length !== d.size) throw new SizeMismatchError(d.size, bytes.length, `blob ${d.digest}`);
  const actual = new DigestCounter().update(bytes).digest();
  if (actual !== d.digest) throw new DigestMismatchError(d.digest, actual, `blob in ${source.where}`);
  return bytes;
}

function plain(d: Descriptor): Descriptor {
  const { platform: _p, annotations: _a, ...rest } = d;
  void _p;
  void _a;
  return rest;
}

/** Load what `descriptor` names from `source`: an Image for a manifest, an ImageIndex for an index. */
export async function loadFromBlobSource(source: BlobSource, descriptor: Descriptor, limits: BlobSourceLimits = {}, depth = 0): Promise<Image | ImageIndex> {
  const maxNesting = limits.maxNesting ?? DEFAULT_MAX_NESTING;
  const maxDoc = limits.maxDocumentBytes ?? DEFAULT_MAX_DOCUMENT;
  if (depth > maxNesting) throw new LimitExceededError('maxNesting', maxNesting, `index nesting at ${descriptor.digest}`);
  const where = `${source.where} ${descriptor.digest}`;
  if (isManifestMediaType(descriptor.mediaType)) {
    const manifestBytes = await readVerifiedBlob(source, descriptor, maxDoc);
    const kind = descriptor.mediaType === MEDIA_TYPES.dockerManifest ? 'docker-manifest' : 'manifest';
    const manifest = parseOciDocument<ImageManifest>(kind, manifestBytes, { file: `${where} (manifest)` });
    const configBytes = await readVerifiedBlob(source, manifest.config, maxDoc);
    const config = parseOciDocument<ImageConfigDocument>('config', configBytes, { file: `${where} (config)`, checkHistory: false });
    return imageFromDocuments(manifest, manifestBytes, descriptor, config, configBytes, (d) => source.blob(d), where);
  }
  if (isIndexMediaType(descriptor.mediaType)) {
    const bytes = await readVerifiedBlob(source, descriptor, maxDoc);
    const kind = descriptor.mediaType === MEDIA_TYPES.dockerManifestList ? 'docker-manifest-list' : 'index';
    const doc = parseOciDocument<ImageIndexDocument>(kind, bytes, { file: where });
    const entries: IndexEntry[] = [];
    let skipped = false;
    for (const m of doc.manifests) {
      if ((!isManifestMediaType(m.mediaType) && !isIndexMediaType(m.mediaType)) || m.platform?.os === 'unknown') {
        skipped = true;
        continue;
      }
      entries.push({ image: await loadFromBlobSource(source, m, limits, depth + 1), platform: m.platform, annotations: m.annotations });
    }
    return new ImageIndex(entries, doc.annotations ?? {}, skipped ? undefined : { index: bytes, descriptor: plain(descriptor) });
  }
  throw new UnsupportedMediaTypeError(descriptor.mediaType, where);
}
