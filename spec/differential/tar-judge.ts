/**
 * Our reading of an archive next to Go's (spec/support/gotar.ts), at two levels:
 * - the decoder (lib/tar/reader.ts): every header field and the content it reads, in the form
 *   the Go lister prints, so that an accepted archive must list identically;
 * - the layer reader (lib/tar/read.ts): the Layer it builds, against the entries Go returned
 *   applied as containerd applies one layer's entries (the last entry of a path wins, a
 *   directory over a directory keeps what is below it).
 * Refusals are typed errors; a refusal of what Go accepts must be one of the refusals by design.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { bufferContent, readContent } from '../../lib/content';
import type { Entry } from '../../lib/entry';
import { CloudRootfsError } from '../../lib/errors';
import type { Layer } from '../../lib/layer/layer';
import { cleanPath, parseWhiteout } from '../../lib/path';
import { FileInput, StreamInput, type TarInput } from '../../lib/tar/input';
import { readLayerTar } from '../../lib/tar/read';
import { TarEntry, TarReader } from '../../lib/tar/reader';
import { sparseContent } from '../../lib/tar/sparse';
import type { GoEntry, GoListing } from '../support/gotar';
import type { Rng } from './tar-forms';

/**
 * Forms Go's reader accepts that ours refuses on purpose (docs/security.md): numbers past ±2^53,
 * sparse maps of more than 65,536 fragments, a PAX global header Go names at random.
 */
export const DECODER_REFUSALS_BY_DESIGN = new Set(['number-range', 'sparse-map-size', 'global-header']);

/**
 * What the layer reader refuses of archives Go reads (docs/security.md): the decoder's refusals,
 * and for layers also PAX global headers, text that is not UTF-8, empty xattr names, links and
 * devices declaring data, data after the end-of-archive marker, entry types containerd, Docker
 * and umoci refuse (devices, fifos, `S`, `7`…), paths that climb out of the root or are too long,
 * owners the entry model cannot hold.
 */
export const LAYER_REFUSAL_CODES = new Set([
  'AMBIGUOUS_ARCHIVE',
  'CORRUPT_ARCHIVE',
  'UNSUPPORTED_ENTRY',
  'LAYER_CONFLICT',
  'INVALID_PATH',
  'INVALID_WHITEOUT',
  'HARDLINK_TARGET',
  'LIMIT_EXCEEDED',
]);

const hex = (latin1: string) => Buffer.from(latin1, 'latin1').toString('hex');
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Go's zero time (year 1) prints as null. */
function goTime(t: { sec: number; nsec: number } | undefined): [string, string] | null {
  if (!t || (t.sec === -62135596800 && t.nsec === 0)) return null;
  return [String(t.sec), String(t.nsec)];
}

function hexRecords(records: ReadonlyMap<string, string> | undefined, filter?: (k: string, v: string) => string | undefined): Record<string, string> | null {
  if (!records) return null;
  const out: Record<string, string> = {};
  let any = false;
  for (const [k, v] of records) {
    const key = filter ? filter(k, v) : k;
    if (key === undefined) continue;
    out[hex(key)] = hex(v);
    any = true;
  }
  return filter && !any ? null : out;
}

/** What Go's Read gives for the entry: its stored bytes, a sparse file expanded. */
async function contentOf(e: TarEntry, archive: Buffer): Promise<Buffer> {
  const stored = archive.subarray(e.dataOffset, e.dataOffset + e.dataSize);
  if (!e.sparse) return stored;
  return readContent(sparseContent(bufferContent(stored), e.sparse, e.size), e.size + 1);
}

export async function goForm(e: TarEntry, archive: Buffer): Promise<GoEntry> {
  const data = await contentOf(e, archive);
  return {
    name: hex(e.name),
    type: e.typeflag.charCodeAt(0),
    size: String(e.size),
    mode: String(e.mode),
    uid: e.uidText ?? String(e.uid),
    gid: e.gidText ?? String(e.gid),
    mtime: goTime(e.mtime),
    atime: goTime(e.atime),
    ctime: goTime(e.ctime),
    linkname: hex(e.linkname),
    uname: hex(e.uname),
    gname: hex(e.gname),
    devmajor: String(e.devmajor),
    devminor: String(e.devminor),
    pax: hexRecords(e.pax),
    // Go's Xattrs: the SCHILY.xattr. records with a value.
    xattrs: hexRecords(e.pax, (k, v) => (k.startsWith('SCHILY.xattr.') && v !== '' ? k.slice(13) : undefined)),
    sha256: sha256(data),
    readBytes: String(data.length),
  };
}

/** The archive as a stream in random chunks (so headers straddle chunk edges), or as a file. */
export function inputOf(archive: Buffer, rng: Rng): TarInput {
  if (rng.chance(0.3)) {
    const handle = {
      read: async (buf: Uint8Array, offset: number, length: number, position: number | null) => {
        const from = position ?? 0;
        const n = Math.max(0, Math.min(length, archive.length - from));
        archive.copy(buf, offset, from, from + n);
        return { bytesRead: n };
      },
    };
    return new FileInput(handle, archive.length);
  }
  const chunks: Buffer[] = [];
  for (let at = 0; at < archive.length; ) {
    const n = 1 + rng.int(rng.chance(0.5) ? 700 : 5000);
    chunks.push(archive.subarray(at, at + n));
    at += n;
  }
  return new StreamInput(Readable.from(chunks)[Symbol.asyncIterator]() as AsyncIterator<Buffer>);
}

export type Outcome<T> = { ok: T } | { refused: CloudRootfsError };

function refusal(err: unknown): { refused: CloudRootfsError } {
  if (err instanceof CloudRootfsError) return { refused: err };
  throw new Error(`untyped error: ${err instanceof Error ? err.stack : String(err)}`);
}

export async function decoderListing(archive: Buffer, rng: Rng): Promise<Outcome<GoEntry[]>> {
  const reader = new TarReader(inputOf(archive, rng), { source: 'case' });
  const out: GoEntry[] = [];
  try {
    for (let e = await reader.next(); e; e = await reader.next()) out.push(await goForm(e, archive));
  } catch (err) {
    return refusal(err);
  }
  return { ok: out };
}

export interface Verdict {
  agree: boolean;
  /** accepted-both, refused-both, refused-by-design:<reason>. */
  kind: string;
  detail?: string;
}

export function judgeDecoder(ours: Outcome<GoEntry[]>, go: GoListing): Verdict {
  if ('ok' in ours) {
    if (go.error !== null) return { agree: false, kind: 'we-accept-go-refuses', detail: `Go: ${go.error}; we listed ${JSON.stringify(ours.ok)}` };
    const a = JSON.stringify(ours.ok.map(sorted));
    const b = JSON.stringify(go.entries.map(sorted));
    return a === b ? { agree: true, kind: 'accepted-both' } : { agree: false, kind: 'different-entries', detail: `ours ${a}\ngo   ${b}` };
  }
  if (go.error !== null) return { agree: true, kind: 'refused-both' };
  const reason = String(ours.refused.details.reason ?? '');
  if (ours.refused.code === 'AMBIGUOUS_ARCHIVE' && DECODER_REFUSALS_BY_DESIGN.has(reason)) return { agree: true, kind: `refused-by-design:${reason}` };
  return { agree: false, kind: 'we-refuse-go-accepts', detail: `${ours.refused.code} ${reason}: ${ours.refused.message}` };
}

/** Keys in a fixed order (maps from Go come sorted, ours in insertion order). */
function sorted(e: GoEntry): unknown {
  const sortMap = (m: Record<string, string> | null) => (m ? Object.fromEntries(Object.entries(m).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0))) : m);
  return { ...e, pax: sortMap(e.pax), xattrs: sortMap(e.xattrs) };
}

// --- the layer level ------------------------------------------------------------------------------

export async function layerOutcome(archive: Buffer): Promise<Outcome<Layer>> {
  try {
    const digest = 'sha256:' + sha256(archive);
    // As layers are read: with the diff_id that vouches for the bytes (Go's end-of-archive rules).
    const read = await readLayerTar(() => Readable.from([archive]), { expectedDiffId: digest, source: 'case' });
    return { ok: read.layer };
  } catch (err) {
    return refusal(err);
  }
}

interface ModelEntry {
  type: Entry['type'];
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  xattrs: Record<string, string>;
  size?: number;
  sha256?: string;
  target?: string;
  /** A hardlink: the model entry at its target when it was applied (the inode it joins). */
  inode?: ModelEntry;
}

const text = (hexBytes: string) => Buffer.from(hexBytes, 'hex').toString('utf8');

/**
 * Go's entries applied as one layer: each cleaned path ends with its last entry; a directory over
 * a directory (or over a parent no entry listed) keeps what is below it, anything else replaces
 * the subtree.
 */
export interface LayerModel {
  entries: Map<string, ModelEntry>;
  whiteouts: Set<string>;
  opaques: Set<string>;
}

export function layerModel(entries: readonly GoEntry[]): LayerModel {
  const model = new Map<string, ModelEntry>();
  const whiteouts = new Set<string>();
  const opaques = new Set<string>();
  for (const g of entries) {
    const path = cleanPath(text(g.name));
    // `.wh.` names are markers, whatever their type (containerd's rule).
    const wh = parseWhiteout(path);
    if (wh) {
      if (wh.kind === 'whiteout') whiteouts.add(wh.path);
      if (wh.kind === 'opaque') opaques.add(wh.dir);
      continue;
    }
    const type = g.type === 0x30 ? 'file' : g.type === 0x35 ? 'directory' : g.type === 0x32 ? 'symlink' : 'hardlink';
    const xattrs: Record<string, string> = {};
    for (const [k, v] of Object.entries(g.pax ?? {})) {
      const key = Buffer.from(k, 'hex').toString('latin1');
      if (key.startsWith('SCHILY.xattr.')) xattrs[Buffer.from(key.slice(13), 'latin1').toString('utf8')] = text(v);
    }
    const entry: ModelEntry = {
      type,
      mode: Number(BigInt(g.mode) & 0o7777n),
      uid: Number(g.uid),
      gid: Number(g.gid),
      mtime: g.mtime ? Number(g.mtime[0]) : 0,
      xattrs,
      ...(type === 'file' ? { size: Number(g.size), sha256: g.sha256 } : {}),
      ...(type === 'symlink' ? { target: text(g.linkname) } : {}),
      ...(type === 'hardlink' ? { target: cleanPath(text(g.linkname)) } : {}),
    };
    if (type === 'hardlink') {
      const inode = model.get(entry.target!);
      if (inode && inode.type !== 'directory' && !(path === entry.target || path === '' || entry.target!.startsWith(path + '/'))) entry.inode = inode.inode ?? inode;
    }
    const existing = model.get(path);
    const keepBelow = type === 'directory' && (existing === undefined || existing.type === 'directory');
    if (!keepBelow) for (const p of [...model.keys()]) if (path === '' ? p !== '' : p.startsWith(path + '/')) model.delete(p);
    model.set(path, entry);
  }
  return { entries: model, whiteouts, opaques };
}

async function sha256Of(entry: Entry): Promise<string> {
  if (entry.type !== 'file') return '';
  const h = createHash('sha256');
  for await (const chunk of entry.content.open()) h.update(chunk as Buffer);
  return h.digest('hex');
}

function sameAttrs(e: Entry, m: ModelEntry): string | undefined {
  const sortedXattrs = (x: Readonly<Record<string, string>>) => Object.entries(x).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const got = JSON.stringify({ mode: e.mode, uid: e.uid, gid: e.gid, mtime: e.mtime, xattrs: sortedXattrs(e.xattrs ?? {}) });
  const want = JSON.stringify({ mode: m.mode, uid: m.uid, gid: m.gid, mtime: m.mtime, xattrs: sortedXattrs(m.xattrs) });
  return got === want ? undefined : `attributes ${got} != ${want}`;
}

/** undefined when the layer is what the model says, else what differs. */
export async function compareLayer(layer: Layer, expected: LayerModel): Promise<string | undefined> {
  const sortedList = (xs: Iterable<string>) => JSON.stringify([...xs].sort());
  if (sortedList(layer.whiteouts()) !== sortedList(expected.whiteouts)) return `whiteouts ${sortedList(layer.whiteouts())}, Go: ${sortedList(expected.whiteouts)}`;
  if (sortedList(layer.opaques()) !== sortedList(expected.opaques)) return `opaque directories ${sortedList(layer.opaques())}, Go: ${sortedList(expected.opaques)}`;
  const model = expected.entries;
  const seen = new Set<string>();
  for (const { path, entry } of layer.entries()) {
    seen.add(path);
    const m = model.get(path);
    if (!m) return `${JSON.stringify(path)}: in our layer, not in Go's entries`;
    if (m.type === 'hardlink') {
      if (entry.type === 'hardlink') {
        // The link as written, or the earlier link it joins (a link to a link to a lower file).
        const as = entry.target === m.target ? m : m.inode?.type === 'hardlink' && entry.target === m.inode.target ? m.inode : undefined;
        if (!as) return `${path}: hardlink to ${entry.target}, Go: ${m.target}`;
        const diff = sameAttrs(entry, as);
        if (diff) return `${path}: ${diff}`;
        continue;
      }
      // A link to an entry this archive wrote earlier is that entry's inode.
      if (!m.inode) return `${path}: ${entry.type}, Go: a hardlink to ${m.target}, which this layer does not have`;
      const diff = await compareEntry(path, entry, m.inode);
      if (diff) return diff;
      continue;
    }
    const diff = await compareEntry(path, entry, m);
    if (diff) return diff;
  }
  for (const p of model.keys()) if (!seen.has(p)) return `${JSON.stringify(p)}: in Go's entries, not in our layer`;
  return undefined;
}

async function compareEntry(path: string, entry: Entry, m: ModelEntry): Promise<string | undefined> {
  if (entry.type !== m.type) return `${path}: ${entry.type}, Go: ${m.type}`;
  const diff = sameAttrs(entry, m);
  if (diff) return `${path}: ${diff}`;
  if (entry.type === 'symlink' && entry.target !== m.target) return `${path}: symlink to ${entry.target}, Go: ${m.target}`;
  if (entry.type === 'file') {
    if (entry.content.size !== m.size) return `${path}: ${entry.content.size} bytes, Go: ${m.size}`;
    const sum = await sha256Of(entry);
    if (sum !== m.sha256) return `${path}: content sha256 ${sum}, Go: ${m.sha256}`;
  }
  return undefined;
}

export async function judgeLayer(ours: Outcome<Layer>, go: GoListing): Promise<Verdict> {
  if ('refused' in ours) {
    if (!LAYER_REFUSAL_CODES.has(ours.refused.code)) return { agree: false, kind: 'unexpected-code', detail: `${ours.refused.code}: ${ours.refused.message}` };
    const reason = String(ours.refused.details.reason ?? ours.refused.code);
    return { agree: true, kind: go.error === null ? `layer-refused:${ours.refused.code}:${reason}` : 'refused-both' };
  }
  if (go.error !== null) return { agree: false, kind: 'layer-accepts-go-refuses', detail: `Go: ${go.error}` };
  let model: LayerModel;
  try {
    model = layerModel(go.entries);
  } catch (err) {
    return { agree: false, kind: 'layer-accepts-unmodelled', detail: String(err) };
  }
  const diff = await compareLayer(ours.ok, model);
  return diff ? { agree: false, kind: 'layer-differs', detail: diff } : { agree: true, kind: 'accepted-both' };
}
