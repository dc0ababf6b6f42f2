/**
 * Random layer stacks for the differential tests: a stack is data (layers of operations over a
 * small universe of names, so paths collide often), printable in the terse notation of
 * spec/support/layers.ts, and turned into Layers and Images deterministically.
 */
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import * as tarStream from 'tar-stream';
import { bufferContent } from '../../lib/content';
import { AttributeOptions } from '../../lib/entry';
import { Image } from '../../lib/image/image';
import { blobLayer } from '../../lib/image/layer';
import { Layer } from '../../lib/layer/layer';
import { MEDIA_TYPES } from '../../lib/media-types';
import { OPAQUE_WHITEOUT, WHITEOUT_PREFIX, baseName, joinPath, parentPath } from '../../lib/path';
import { Rootfs } from '../../lib/rootfs/rootfs';

export const NAMES = ['a', 'b', 'c', 'a-b'] as const;

/** Every path of depth 1..3 over NAMES. */
export const PATHS: readonly string[] = (() => {
  const out: string[] = [];
  const rec = (prefix: string, depth: number) => {
    for (const n of NAMES) {
      const p = prefix ? `${prefix}/${n}` : n;
      out.push(p);
      if (depth < 3) rec(p, depth + 1);
    }
  };
  rec('', 1);
  return out;
})();

/** Relative, absolute, climbing, self, dangling and looping symlink targets. */
export const SYMLINK_TARGETS = [
  'a',
  'b',
  'c',
  'a/b',
  'b/c',
  '../a',
  '../../b',
  '../../../..',
  '/a',
  '/b/c',
  '/',
  '.',
  '..',
  'zz',
  'zz/yy',
  '/zz/yy',
  'a/../b',
  './c/',
  '/../../a',
] as const;

const GZIP_LOOKALIKE = Buffer.concat([Buffer.from([0x1f, 0x8b, 0x08, 0x00]), Buffer.alloc(70_000, 7)]);
const BIG = Buffer.from(Array.from({ length: 150_000 }, (_, i) => (i * 7919) & 0xff));
export const CONTENTS: readonly Buffer[] = [
  Buffer.alloc(0),
  Buffer.from('x'),
  Buffer.from('hello\n'),
  Buffer.from('other content'),
  GZIP_LOOKALIKE,
  BIG,
];

export interface Attrs {
  m: number;
  u: number;
  g: number;
  t: number;
}

export type Op =
  | ({ k: 'file'; p: string; c: number } & Attrs)
  | ({ k: 'dir'; p: string } & Attrs)
  | ({ k: 'sym'; p: string; to: string } & Omit<Attrs, 'm'>)
  | { k: 'link'; p: string; to: number }
  | { k: 'wh'; p: string }
  | { k: 'opq'; p: string };

export interface StackSpec {
  layers: Op[][];
  /** Per layer: written by our writer (parents listed) or raw (exactly the steps, no parents). */
  raw: boolean[];
  compression: 'gzip' | 'none';
}

export interface StackOptions {
  /** Modes and owners that need root to unpack and read back (mode 000, dirs without w). */
  privileged: boolean;
  /** Allow raw layers. */
  raw?: boolean;
}

export const EPOCH = 2_000_000_000;
/** The latest mtime a generated entry states (umoci's own "now" stamps come later). */
export const MAX_STATED_MTIME = 1_700_000_000;

function attrsArb(modes: number[], privileged: boolean) {
  const ids = privileged ? [0, 1, 1000, 65534, 3_000_000] : [0];
  return fc.record({
    m: fc.constantFrom(...modes),
    u: fc.constantFrom(...ids),
    g: fc.constantFrom(...ids),
    t: fc.constantFrom(0, 1, 1_000_000_000, MAX_STATED_MTIME),
  });
}

export function opArbitrary(options: StackOptions): fc.Arbitrary<Op> {
  const fileModes = options.privileged ? [0o644, 0o755, 0o600, 0o4755, 0o2711, 0o1644, 0o000] : [0o644, 0o755, 0o600, 0o4755, 0o1644];
  const dirModes = options.privileged ? [0o755, 0o700, 0o1777, 0o2755, 0o555, 0o000] : [0o755, 0o700, 0o1777, 0o2755];
  const path = fc.constantFrom(...PATHS);
  // Small contents mostly; the two large ones (stored gzip look-alike, multi-block) now and then.
  const content = fc.oneof({ weight: 12, arbitrary: fc.nat(3) }, { weight: 1, arbitrary: fc.constantFrom(4, 5) });
  return fc.oneof(
    { weight: 6, arbitrary: fc.record({ k: fc.constant('file' as const), p: path, c: content }).chain((o) => attrsArb(fileModes, options.privileged).map((a) => ({ ...o, ...a }))) },
    { weight: 4, arbitrary: fc.record({ k: fc.constant('dir' as const), p: fc.oneof({ weight: 12, arbitrary: path }, { weight: 1, arbitrary: fc.constant('') }) }).chain((o) => attrsArb(dirModes, options.privileged).map((a) => ({ ...o, ...a }))) },
    {
      weight: 3,
      arbitrary: fc
        .record({ k: fc.constant('sym' as const), p: path, to: fc.constantFrom(...SYMLINK_TARGETS) })
        .chain((o) => attrsArb([0o777], options.privileged).map(({ u, g, t }) => ({ ...o, u, g, t }))),
    },
    { weight: 1, arbitrary: fc.record({ k: fc.constant('link' as const), p: path, to: fc.nat(1000) }) },
    { weight: 3, arbitrary: fc.record({ k: fc.constant('wh' as const), p: path }) },
    { weight: 2, arbitrary: fc.record({ k: fc.constant('opq' as const), p: fc.oneof({ weight: 8, arbitrary: path }, { weight: 1, arbitrary: fc.constant('') }) }) },
  );
}

export function stackArbitrary(options: StackOptions): fc.Arbitrary<StackSpec> {
  const op = opArbitrary(options);
  return fc
    .tuple(
      fc.array(op, { minLength: 2, maxLength: 10 }),
      fc.array(fc.array(op, { minLength: 1, maxLength: 7 }), { minLength: 0, maxLength: 3 }),
      fc.constantFrom('gzip' as const, 'none' as const),
    )
    .chain(([first, rest, compression]) => {
      const layers = [first, ...rest];
      return fc
        .array(options.raw ? fc.boolean() : fc.constant(false), { minLength: layers.length, maxLength: layers.length })
        .map((raw) => ({ layers, raw, compression }));
    });
}

function attributes(o: Partial<Attrs>): AttributeOptions {
  return { mode: o.m, uid: o.u, gid: o.g, mtime: o.t };
}

/**
 * The layers of a stack. A hardlink's target is picked among the files of earlier layers (4 in 5,
 * when there are any) or among all paths (often missing: an error both sides must agree on).
 */
export function buildLayers(spec: StackSpec): Layer[] {
  const files: string[] = [];
  return spec.layers.map((ops) => {
    const earlier = [...files];
    let layer = Layer.empty();
    for (const op of ops) {
      switch (op.k) {
        case 'file':
          layer = layer.withFile(op.p, CONTENTS[op.c], attributes(op));
          files.push(op.p);
          break;
        case 'dir':
          layer = layer.withDirectory(op.p, attributes(op));
          break;
        case 'sym':
          layer = layer.withSymlink(op.p, op.to, { uid: op.u, gid: op.g, mtime: op.t });
          break;
        case 'link': {
          const target = earlier.length > 0 && op.to % 5 !== 0 ? earlier[op.to % earlier.length] : PATHS[op.to % PATHS.length];
          layer = layer.withHardlink(op.p, target);
          break;
        }
        case 'wh':
          layer = layer.withWhiteout(op.p);
          break;
        case 'opq':
          layer = layer.withOpaque(op.p);
          break;
      }
    }
    return layer;
  });
}

/** A layer in the notation of spec/support/layers.ts, with attributes: `a/ 0755 0:0 @1`. */
export function layerNotation(layer: Layer): string[] {
  const out: string[] = [];
  for (const s of layer.steps()) {
    if (s.kind === 'whiteout') out.push(joinPath(parentPath(s.path), WHITEOUT_PREFIX + baseName(s.path)));
    else if (s.kind === 'opaque') out.push(joinPath(s.path, OPAQUE_WHITEOUT));
    else {
      const e = s.node.entry!;
      const a = `${e.mode.toString(8).padStart(4, '0')} ${e.uid}:${e.gid} @${e.mtime}`;
      if (e.type === 'directory') out.push(`${s.path}/ ${a}`);
      else if (e.type === 'symlink') out.push(`${s.path} -> ${e.target} ${e.uid}:${e.gid} @${e.mtime}`);
      else if (e.type === 'hardlink') out.push(`${s.path} => ${e.target}`);
      else out.push(`${s.path}=<${e.content.size} bytes> ${a}`);
    }
  }
  return out;
}

export function describeStack(spec: StackSpec): string {
  return buildLayers(spec)
    .map((l, i) => `  layer ${i}${spec.raw[i] ? ' (raw)' : ''}: ${JSON.stringify(layerNotation(l))}`)
    .join('\n');
}

// --- raw layers -------------------------------------------------------------------------------------

/**
 * The layer's steps as a tar, in canonical order, with nothing added: no implied parents. This is
 * what other producers (umoci insert, hand-made tars) write, and it lets entries and whiteouts go
 * through symlinks of lower layers, which our writer never does (it lists every parent).
 */
export async function rawLayerTar(layer: Layer): Promise<Buffer> {
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => void chunks.push(c as Buffer));
  const done = new Promise<void>((resolve, reject) => {
    pack.on('end', () => resolve());
    pack.on('error', reject);
  });
  const firstPath = new Map<unknown, string>();
  const add = (header: Partial<tarStream.Header> & { name: string; pax?: Record<string, string> }, data?: Buffer) =>
    new Promise<void>((resolve, reject) => pack.entry(header, data ?? Buffer.alloc(0), (err) => (err ? reject(err) : resolve())));
  const base = (name: string) => ({ name, mtime: new Date(0), uid: 0, gid: 0, mode: 0o644, uname: '', gname: '' });
  for (const s of layer.steps()) {
    if (s.kind === 'whiteout') {
      await add({ ...base(joinPath(parentPath(s.path), WHITEOUT_PREFIX + baseName(s.path))), type: 'file' });
      continue;
    }
    if (s.kind === 'opaque') {
      await add({ ...base(joinPath(s.path, OPAQUE_WHITEOUT)), type: 'file' });
      continue;
    }
    const e = s.node.entry!;
    // Type bits keep tar-stream from taking mode 0 for "unset"; only 0o7777 is encoded.
    const typeBits = e.type === 'directory' ? 0o040000 : e.type === 'symlink' ? 0o120000 : 0o100000;
    const h = { name: s.path === '' ? './' : s.path, mode: e.mode | typeBits, uid: e.uid, gid: e.gid, mtime: new Date(e.mtime * 1000), uname: '', gname: '' };
    const pax = e.uid > 0o7777777 || e.gid > 0o7777777 ? { pax: { uid: String(e.uid), gid: String(e.gid) } } : {};
    switch (e.type) {
      case 'directory':
        await add({ ...h, ...pax, type: 'directory' });
        break;
      case 'symlink':
        await add({ ...h, ...pax, type: 'symlink', linkname: e.target });
        break;
      case 'hardlink':
        await add({ ...h, type: 'link', linkname: e.target });
        break;
      case 'file': {
        const first = firstPath.get(e);
        if (first !== undefined) await add({ ...h, type: 'link', linkname: first });
        else {
          firstPath.set(e, s.path);
          const chunks2: Buffer[] = [];
          for await (const c of e.content.open()) chunks2.push(c as Buffer);
          await add({ ...h, ...pax, type: 'file', size: e.content.size }, Buffer.concat(chunks2));
        }
        break;
      }
    }
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

const sha256 = (b: Buffer) => 'sha256:' + createHash('sha256').update(b).digest('hex');

/** The image of a stack: each layer through our writer, or as a raw tar blob. */
export async function stackImage(spec: StackSpec): Promise<Image> {
  let image = Image.empty({ os: 'linux', architecture: 'amd64' });
  const layers = buildLayers(spec);
  for (let i = 0; i < layers.length; i++) {
    if (!spec.raw[i]) {
      image = image.withLayer(layers[i]);
      continue;
    }
    const tar = await rawLayerTar(layers[i]);
    const blob = spec.compression === 'gzip' ? gzipSync(tar) : tar;
    const descriptor = {
      mediaType: spec.compression === 'gzip' ? MEDIA_TYPES.layerGzip : MEDIA_TYPES.layer,
      digest: sha256(blob),
      size: blob.length,
    };
    image = image.withLayer(blobLayer(descriptor, sha256(tar), bufferContent(blob)));
  }
  return image;
}

// --- random Rootfs pairs for diff/apply round trips ------------------------------------------------

export type RootfsOp = Op | { k: 'rm'; p: string };

export function rootfsOpArbitrary(): fc.Arbitrary<RootfsOp> {
  return fc.oneof(
    { weight: 8, arbitrary: opArbitrary({ privileged: true }).filter((o) => o.k !== 'wh' && o.k !== 'opq') },
    { weight: 2, arbitrary: fc.record({ k: fc.constant('rm' as const), p: fc.constantFrom(...PATHS) }) },
  );
}

/** Apply Rootfs operations; an operation the Rootfs refuses (parent is a file…) is skipped. */
export function applyRootfsOps(start: Rootfs, ops: readonly RootfsOp[]): Rootfs {
  let r = start;
  for (const op of ops) {
    try {
      switch (op.k) {
        case 'file':
          r = r.withFile(op.p, CONTENTS[op.c], attributes(op));
          break;
        case 'dir':
          r = r.withDirectory(op.p, attributes(op));
          break;
        case 'sym':
          r = r.withSymlink(op.p, op.to, { uid: op.u, gid: op.g, mtime: op.t });
          break;
        case 'link': {
          const files = [...r.walk()].filter((e) => e.entry.type === 'file').map((e) => e.path);
          if (files.length > 0) r = r.withHardlink(op.p, files[op.to % files.length]);
          break;
        }
        case 'rm':
          r = r.without(op.p);
          break;
      }
    } catch (err) {
      if (!(err as { code?: string }).code) throw err;
    }
  }
  return r;
}
