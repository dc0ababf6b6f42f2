/**
 * A BlobTarget that stores nothing: it encodes each new layer once (tar → gzip → sha256, the
 * same pass a real write does, so the digests are the ones any later write will produce) and
 * keeps only the small documents (configs, manifests, indexes) so the caller can read back what
 * the image consists of. `buildImage` uses it when there is no store to write to: no temporary
 * layout on disk or in memory, and no layer bytes held anywhere.
 */
import { Content } from '../content';
import { Layer } from '../layer/layer';
import { EncodeLayerOptions, encodeLayer } from '../tar/write';
import type { BlobTarget } from '../image/write';
import type { Descriptor } from '../image/types';

export class DigestOnlyTarget implements BlobTarget {
  private readonly known = new Set<string>();
  /** Configs, manifests and indexes by digest. */
  readonly documents = new Map<string, Buffer>();

  async has(descriptor: Descriptor): Promise<boolean> {
    return this.known.has(descriptor.digest);
  }

  async putBytes(bytes: Buffer, descriptor: Descriptor): Promise<void> {
    this.known.add(descriptor.digest);
    this.documents.set(descriptor.digest, bytes);
  }

  async putContent(_content: Content, descriptor: Descriptor): Promise<void> {
    // A base layer: its digest is already known and verified when it is read; nothing to store.
    this.known.add(descriptor.digest);
  }

  async putLayer(layer: Layer, options: EncodeLayerOptions) {
    const encoded = await encodeLayer(layer, () => undefined, options);
    this.known.add(encoded.digest);
    return { encoded };
  }

  /** A stored document, parsed. */
  json<T>(digest: string): T {
    const bytes = this.documents.get(digest);
    if (!bytes) throw new Error(`internal: document ${digest} was not written`);
    return JSON.parse(bytes.toString('utf8')) as T;
  }
}
