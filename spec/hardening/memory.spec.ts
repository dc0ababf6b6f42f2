/**
 * Memory of the real CLI (a child process; peak RSS from process.resourceUsage()) on images that
 * hold much metadata:
 *
 * - the metadata bomb — 16 layers of 8,000 files, each with a 61 KB xattr (~8 GB of xattrs in a
 *   ~37 MB archive) — is refused with LIMIT_EXCEEDED by `load`, `ls`, `export` and `diff`, each
 *   under 512 MiB, instead of dying of a V8 heap abort;
 * - an image at the default limits (DEFAULT_MAX_ENTRIES entries, DEFAULT_MAX_METADATA_BYTES of
 *   names and link targets held as two-byte JS strings, the costliest form) goes through `load`,
 *   `ls`, `export` and a `diff` against another such image, each under 512 MiB.
 *
 * The shapes are derived from the defaults, so changing a default re-checks the promise.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { DEFAULT_MAX_ENTRIES, DEFAULT_MAX_METADATA_BYTES, readLayerBlob } from '../../lib/tar/read';
import { compileCli } from './child';
import { RssRun, StackShape, runWithPeakRss, stackArchive } from './metadata';

const LIMIT_MIB = 512;
const FUZZ = process.env.FUZZ_RUNS !== undefined;

let work: string;
let cli: string;

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'crfs-memory-'));
  cli = compileCli(join(work, 'build'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

function expectWithin(run: RssRun, what: string): void {
  if (run.peakMiB === undefined) throw new Error(`${what}: the CLI died (${run.signal ?? run.code}) without reporting: ${run.stderr.slice(-2000)}`);
  expect({ what, peakMiB: Math.round(run.peakMiB), within: run.peakMiB <= LIMIT_MIB }).toEqual({ what, peakMiB: Math.round(run.peakMiB), within: true });
}

/** Run the commands two at a time (each process's peak is its own). */
async function runAll(list: [string, string[]][]): Promise<[string, RssRun][]> {
  const out: [string, RssRun][] = [];
  for (let i = 0; i < list.length; i += 2) {
    const pair = list.slice(i, i + 2);
    const runs = await Promise.all(pair.map(([, argv]) => runWithPeakRss(cli, argv)));
    pair.forEach(([what], j) => out.push([what, runs[j]]));
  }
  return out;
}

/** The four commands the promise covers (and their --json forms in fuzz runs). */
function commands(a: string, b: string, out: string, store: string): [string, string[]][] {
  return [
    ['load', ['load', '-q', '--store', store, a]],
    ['ls', ['ls', `oci-archive:${a}`]],
    ['export', ['export', `oci-archive:${a}`, out]],
    ['diff', ['diff', `oci-archive:${a}`, `oci-archive:${b}`]],
    ...(FUZZ
      ? ([
          ['ls --json', ['ls', '--json', `oci-archive:${a}`]],
          ['diff --json', ['diff', '--json', `oci-archive:${a}`, `oci-archive:${b}`]],
        ] as [string, string[]][])
      : []),
  ];
}

test('the metadata bomb (16 layers × 8,000 files × 61 KB xattrs) is refused under 512 MiB', async () => {
  const bomb: StackShape = { layers: 16, filesPerLayer: 8000, xattrBytes: 61 * 1024, compressHeaders: true };
  const a = stackArchive(bomb);
  const b = stackArchive({ layers: 1, filesPerLayer: 1, tag: 'small' }); // diff's other side
  expect(readFileSync(a).length).toBeLessThan(48 << 20);
  for (const [what, run] of await runAll(commands(a, b, join(work, 'bomb-out'), join(work, 'bomb-store')))) {
    expect({ what, code: run.code, stderr: run.stderr }).toEqual({ what, code: 1, stderr: expect.stringContaining('[LIMIT_EXCEEDED]') });
    expectWithin(run, what);
  }
}, 600_000);

/**
 * The costliest image the defaults allow: 4 layers of symlinks (implied directories counted)
 * whose targets fill the metadata budget, each target holding one char past U+00FF so that JS
 * keeps it at two bytes a char.
 */
function atTheLimits(tag: string): StackShape {
  const layers = 4;
  // Each layer implies `tag<i>/` and one directory per 1,024 files.
  let filesPerLayer = Math.floor(DEFAULT_MAX_ENTRIES / layers);
  while (filesPerLayer + 1 + Math.ceil(filesPerLayer / 1024) > DEFAULT_MAX_ENTRIES / layers) filesPerLayer--;
  const nameBytes = `${tag}0/d00/f${filesPerLayer}`.length;
  const linkTargetBytes = Math.floor(DEFAULT_MAX_METADATA_BYTES / (layers * filesPerLayer)) - nameBytes - 1;
  return { layers, filesPerLayer, linkTargetBytes, wide: true, tag };
}

test('an image at the default limits goes through load, ls, export and diff under 512 MiB', async () => {
  const a = stackArchive(atTheLimits('a'));
  const b = stackArchive(atTheLimits('b'));
  // It is at the limits (and within them): what the reader counts, layer by layer.
  const { openImageArchive } = await import('../../lib/formats/archive');
  const nodeFs = await import('node:fs');
  const archive = await openImageArchive(a, { fs: nodeFs });
  try {
    const image = await archive.find().load();
    let entries = 0;
    let bytes = 0;
    for (const layer of (image as import('../../lib/image/image').Image).layers) {
      if (layer.kind !== 'blob') continue;
      const read = await readLayerBlob({ size: layer.blob.size, open: () => Readable.from(layer.blob.open()) });
      entries += read.entries;
      bytes += read.metadataBytes;
    }
    expect(entries).toBe(DEFAULT_MAX_ENTRIES);
    expect(bytes).toBeLessThanOrEqual(DEFAULT_MAX_METADATA_BYTES);
    expect(bytes).toBeGreaterThan(DEFAULT_MAX_METADATA_BYTES * 0.97);
  } finally {
    archive.close();
  }
  for (const [what, run] of await runAll(commands(a, b, join(work, 'out'), join(work, 'store')))) {
    expect({ what, code: run.code, stderr: run.code ? run.stderr : '' }).toEqual({ what, code: 0, stderr: '' });
    expectWithin(run, what);
  }
}, 900_000);
