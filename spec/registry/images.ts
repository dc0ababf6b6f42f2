/** Images, tools and checks shared by the push/pull and embedded-registry specs. */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { readContent } from '../../lib/content';
import { Image, ImageIndex } from '../../lib/image/image';
import type { Platform } from '../../lib/image/types';
import { Layer } from '../../lib/layer/layer';

const execFileAsync = promisify(execFile);

export function sha256(data: Uint8Array | string): string {
  return 'sha256:' + createHash('sha256').update(data).digest('hex');
}

/**
 * A small CloudRootfs-like image made in memory: a base layer shared by every image made with the
 * same `seed`, and a layer of its own holding `marker`.
 */
export function sampleImage(platform: Platform, marker: string, options: { seed?: string; bigFile?: number; base?: Layer } = {}): Image {
  const base = options.base ?? sampleBase(options.seed ?? 'base', options.bigFile);
  const own = Layer.empty().withFile(`etc/${marker}.conf`, `${marker}\n`).withDirectory('manifests');
  return new Image({ platform, config: { config: { Env: ['PATH=/bin'], Labels: { marker } } } })
    .withLayer(base, { created_by: 'COPY base' })
    .withLayer(own, { created_by: `COPY ${marker}` });
}

/** The base layer of `sampleImage`: equal bytes for equal seeds. */
export function sampleBase(seed: string, bigFile?: number): Layer {
  let base = Layer.empty()
    .withFile('Kubefile', `FROM scratch\n# ${seed}\n`)
    .withFile('etc/os-release', `NAME=${seed}\n`)
    .withFile('bin/tool', pseudoRandom(seed, 64 * 1024))
    .withSymlink('bin/tool-link', 'tool');
  if (bigFile) base = base.withFile('bin/big', pseudoRandom(`${seed}-big`, bigFile));
  return base;
}

/** Two platforms sharing one base layer (the same Layer object, so it is encoded once). */
export function sampleIndex(marker: string, seed = marker): ImageIndex {
  const base = sampleBase(seed);
  return ImageIndex.of([
    sampleImage({ os: 'linux', architecture: 'amd64' }, `${marker}-amd64`, { base }),
    sampleImage({ os: 'linux', architecture: 'arm64' }, `${marker}-arm64`, { base }),
  ]);
}

/** Deterministic incompressible-ish bytes (sha256 chain), so images built twice are equal. */
export function pseudoRandom(seed: string, size: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  let block = createHash('sha256').update(seed).digest();
  for (let off = 0; off < size; off += 32) {
    block.copy(out, off, 0, Math.min(32, size - off));
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

export function randomTag(): string {
  return 't' + randomBytes(4).toString('hex');
}

/** The merged rootfs of an image as `path → text` for files (symlinks as `-> target`). */
export async function contentsOf(image: Image): Promise<Record<string, string>> {
  const rootfs = await image.flatten();
  const out: Record<string, string> = {};
  for (const { path: p, entry } of rootfs.walk()) {
    if (entry.type === 'file') out[p] = sha256(await readContent(entry.content));
    else if (entry.type === 'symlink') out[p] = `-> ${entry.target}`;
    else if (entry.type === 'directory') out[p] = 'dir';
  }
  return out;
}

export async function skopeo(...args: string[]): Promise<string> {
  try {
    const { stdout } = await execFileAsync('skopeo', args, { maxBuffer: 64 << 20 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`skopeo ${args.join(' ')} failed: ${e.stderr ?? e.message}`);
  }
}

/** `skopeo inspect --raw`: the exact manifest bytes the registry serves, and their digest. */
export async function skopeoRawDigest(ref: string, ...extra: string[]): Promise<string> {
  const { stdout } = await execFileAsync('skopeo', ['inspect', '--raw', '--tls-verify=false', ...extra, ref], {
    encoding: 'buffer',
    maxBuffer: 64 << 20,
  });
  return sha256(stdout as unknown as Buffer);
}

export async function tempDir(prefix: string): Promise<string> {
  return fsp.mkdtemp(path.join(os.tmpdir(), `cloudrootfs-${prefix}-`));
}
