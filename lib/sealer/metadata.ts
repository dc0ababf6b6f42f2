/**
 * The `Metadata` JSON file at the top of a CloudRootfs (docs/reference/sealer.md#the-metadata-file): what sealer v0.5–v0.8
 * read for the Kubernetes version and platform. sealer v0.9+ reads image labels instead, but we
 * keep writing it for older consumers.
 */
import { Entry, fileEntry } from '../entry';
import { NotFoundError } from '../errors';
import { Rootfs, TOP_LEVEL_FILES } from '../rootfs/rootfs';
import { parseSealerDocument, validateSealerDocument } from './schema';

export const METADATA_FILE = TOP_LEVEL_FILES.metadata;

export interface CloudRootfsMetadata {
  /** Kubernetes version, e.g. `v1.19.8`. */
  version?: string;
  arch?: string;
  variant?: string;
  /** SemVer range from a chart's `Chart.yaml` (`kubeVersion`). */
  kubeVersion?: string;
  NydusFlag?: boolean;
  /** `k8s`, `k3s` or `k0s`. */
  ClusterRuntime?: string;
}

/** sealer's struct order, so the file reads the way sealer wrote it. */
const FIELD_ORDER = ['version', 'arch', 'variant', 'kubeVersion', 'NydusFlag', 'ClusterRuntime'] as const;

/** Parse and validate a Metadata file; errors name the file and the field. */
export function parseMetadata(json: string | Buffer, file: string = METADATA_FILE): CloudRootfsMetadata {
  return parseSealerDocument<CloudRootfsMetadata>('metadata', json, file);
}

/** The JSON we write: sealer's field order, absent fields left out, one trailing newline. */
export function formatMetadata(m: CloudRootfsMetadata): string {
  validateSealerDocument('metadata', m, METADATA_FILE);
  const out: Record<string, unknown> = {};
  for (const k of FIELD_ORDER) if (m[k] !== undefined) out[k] = m[k];
  // Keys we do not know are kept after ours (a newer writer's fields survive a rewrite).
  for (const k of Object.keys(m).sort()) if (!(k in out) && (m as Record<string, unknown>)[k] !== undefined) out[k] = (m as Record<string, unknown>)[k];
  return JSON.stringify(out) + '\n';
}

/** The rootfs's Metadata, or undefined when it has none (a symlink to a file is followed). */
export async function readMetadata(rootfs: Rootfs): Promise<CloudRootfsMetadata | undefined> {
  if (!rootfs.get(METADATA_FILE)) return undefined;
  let bytes: Buffer;
  try {
    bytes = await rootfs.readFile(METADATA_FILE);
  } catch (err) {
    // A dangling symlink named Metadata means "no metadata", as a missing file does.
    if (err instanceof NotFoundError) return undefined;
    throw err;
  }
  return parseMetadata(bytes, METADATA_FILE);
}

/** A rootfs whose Metadata says `m` (keeping the old file's mode, owner and mtime if there was one). */
export function withMetadata(rootfs: Rootfs, m: CloudRootfsMetadata): Rootfs {
  const text = formatMetadata(m);
  const old: Entry | undefined = rootfs.get(METADATA_FILE);
  const attrs = old && old.type === 'file' ? { mode: old.mode, uid: old.uid, gid: old.gid, mtime: old.mtime } : {};
  return rootfs.with(METADATA_FILE, fileEntry(text, attrs));
}
