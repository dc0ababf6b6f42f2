/**
 * Names in the store, normalized as docker and sealer do (`nginx` → `docker.io/library/nginx:latest`).
 *
 * index.json records each tag as one entry whose annotations hold the full normalized name twice:
 * `io.containerd.image.name` (what containerd, docker and podman read) and
 * `org.opencontainers.image.ref.name` (what skopeo and umoci match: `oci:STORE:docker.io/library/nginx:latest`).
 * A bare tag in `ref.name` would make `a:v1` and `b:v1` collide; a full name never does.
 */
import { InvalidReferenceError } from '../errors';
import { CONTAINERD_NAME, REF_NAME } from '../formats/layout';
import type { Descriptor } from '../image/types';
import { DockerReference, familiarName, formatReference, parseDockerReference, referenceName, withDefaultTag } from '../reference/docker';

export interface StoreName {
  /** `docker.io/library/nginx:1.25` */
  reference: string;
  /** `docker.io/library/nginx` */
  repository: string;
  tag: string;
  /** `nginx:1.25` */
  familiar: string;
}

/** Normalize a name to tag with (a digest is not a tag: `name@sha256:…` is refused). */
export function storeName(input: string): StoreName {
  const ref = withDefaultTag(parseDockerReference(input));
  if (ref.digest !== undefined) throw new InvalidReferenceError(input, 'a store name takes a tag, not a digest');
  return describe(ref);
}

function describe(ref: DockerReference): StoreName {
  return { reference: formatReference(ref), repository: referenceName(ref), tag: ref.tag!, familiar: familiarName(ref) };
}

/** The name an index.json entry carries, if any. */
export function entryName(d: Descriptor): StoreName | undefined {
  const raw = d.annotations?.[CONTAINERD_NAME] ?? d.annotations?.[REF_NAME];
  if (!raw) return undefined;
  try {
    const ref = withDefaultTag(parseDockerReference(raw));
    return ref.digest === undefined ? describe(ref) : undefined;
  } catch {
    return undefined;
  }
}

export function nameAnnotations(name: StoreName): Record<string, string> {
  return { [CONTAINERD_NAME]: name.reference, [REF_NAME]: name.reference };
}

/** How a user refers to stored images: by name, by digest, by name@digest, or by an ID prefix. */
export type StoreQuery =
  | { kind: 'name'; name: StoreName; text: string }
  | { kind: 'digest'; digest: string; repository?: string; text: string }
  | { kind: 'id'; prefix: string; text: string };

const ID_PREFIX = /^(?:sha256:)?([a-f0-9]{4,64})$/;

/** Every reading of `text`, most specific first (a short hex string may be a name or an ID). */
export function parseStoreQuery(text: string): StoreQuery[] {
  const out: StoreQuery[] = [];
  const full = /^sha256:[a-f0-9]{64}$/.exec(text);
  if (full) return [{ kind: 'digest', digest: text, text }];
  let nameError: unknown;
  try {
    const ref = withDefaultTag(parseDockerReference(text));
    if (ref.digest !== undefined) {
      out.push({ kind: 'digest', digest: ref.digest, repository: referenceName(ref), text });
    } else out.push({ kind: 'name', name: describe(ref), text });
  } catch (err) {
    nameError = err;
  }
  const id = ID_PREFIX.exec(text);
  if (id) out.push({ kind: 'id', prefix: id[1], text });
  if (out.length === 0) throw nameError;
  return out;
}
