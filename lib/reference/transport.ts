/**
 * Image references as people type them, skopeo-style: a transport prefix, or a name in the local
 * store. `oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]`, `docker-archive:FILE[:NAME:TAG]`,
 * `docker://HOST/REPO:TAG`, and otherwise `NAME[:TAG]` in the store.
 */
import { InvalidReferenceError } from '../errors';

export type ImageRef =
  | { transport: 'oci'; path: string; tag?: string }
  | { transport: 'oci-archive'; path: string; tag?: string }
  | { transport: 'docker-archive'; path: string; name?: string }
  | { transport: 'docker'; reference: string }
  | { transport: 'store'; name: string };

/** Split `PATH[:TAG]`: the part after the last `:` is a tag only if it looks like one (no `/`). */
function splitPathTag(rest: string): { path: string; tag?: string } {
  const i = rest.lastIndexOf(':');
  if (i > 0) {
    const tag = rest.slice(i + 1);
    if (tag !== '' && !tag.includes('/') && /^[A-Za-z0-9_][A-Za-z0-9._:@+-]*$/.test(tag)) return { path: rest.slice(0, i), tag };
  }
  return { path: rest };
}

export function parseImageRef(text: string): ImageRef {
  if (typeof text !== 'string' || text.trim() === '') throw new InvalidReferenceError(String(text), 'empty reference');
  if (text.includes('\0')) throw new InvalidReferenceError(text, 'contains a NUL byte');
  if (text.startsWith('oci:')) {
    const { path, tag } = splitPathTag(text.slice(4));
    if (!path) throw new InvalidReferenceError(text, 'oci: needs a directory');
    return { transport: 'oci', path, ...(tag ? { tag } : {}) };
  }
  if (text.startsWith('oci-archive:')) {
    const { path, tag } = splitPathTag(text.slice(12));
    if (!path) throw new InvalidReferenceError(text, 'oci-archive: needs a file');
    return { transport: 'oci-archive', path, ...(tag ? { tag } : {}) };
  }
  if (text.startsWith('docker-archive:')) {
    const rest = text.slice(15);
    // FILE[:NAME:TAG] — split at the first ':': FILE is what precedes it (so it holds no ':'), and
    // the rest is the image name, which may hold more (a registry port, the tag).
    const m = rest.match(/^([^:]+)(?::(.+))?$/);
    if (!m || !m[1]) throw new InvalidReferenceError(text, 'docker-archive: needs a file');
    return { transport: 'docker-archive', path: m[1], ...(m[2] ? { name: m[2] } : {}) };
  }
  if (text.startsWith('docker://')) {
    const reference = text.slice(9);
    if (!reference) throw new InvalidReferenceError(text, 'docker:// needs HOST/REPO[:TAG]');
    return { transport: 'docker', reference };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//.test(text)) throw new InvalidReferenceError(text, 'unknown transport');
  return { transport: 'store', name: text };
}

export function formatImageRef(ref: ImageRef): string {
  switch (ref.transport) {
    case 'oci':
    case 'oci-archive':
      return `${ref.transport}:${ref.path}${ref.tag ? `:${ref.tag}` : ''}`;
    case 'docker-archive':
      return `docker-archive:${ref.path}${ref.name ? `:${ref.name}` : ''}`;
    case 'docker':
      return `docker://${ref.reference}`;
    case 'store':
      return ref.name;
  }
}
