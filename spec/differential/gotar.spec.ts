/**
 * Our tar reader against Go's archive/tar (the reader containerd, Docker, podman and umoci unpack
 * layers with), archive by archive: the hostile corpus, the hostile image archives, real archives
 * GNU tar writes (sparse files in every format), and a seeded generator of header combinations
 * (tar-forms.ts). Every case goes to both readers; Go's side is spec/referees/gotar, built here.
 *
 * - The decoder (lib/tar/reader.ts) must list an archive Go accepts exactly as Go does: every
 *   header field and the content it reads. What Go refuses, it refuses. The only Go-accepted
 *   archives it refuses are the refusals by design (DECODER_REFUSALS_BY_DESIGN): numbers past
 *   ±2^53, sparse maps of more than 65,536 fragments, a PAX global header with a bad record (Go
 *   names it at random).
 * - The layer reader (lib/tar/read.ts) must build, from an archive it accepts, the layer Go's
 *   entries make; what it refuses it refuses with a typed error. Go-accepted forms it refuses by
 *   design: the above, PAX global headers, names/links/xattrs that are not UTF-8, empty xattr
 *   names, links declaring data, data after the end-of-archive marker, and what containerd,
 *   Docker and umoci refuse to unpack (devices, fifos, old GNU sparse `S`, contiguous `7`,
 *   unknown types) or what leaves the root.
 *
 * `FUZZ_RUNS=N` sets the number of generated archives (default 2,000); `FUZZ_SEED` the first seed.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, linkSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, symlinkSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { readLayerTar } from '../../lib/tar/read';
import { ARCHIVE_CASES } from '../hardening/archives';
import { LAYER_CASES } from '../hardening/corpus';
import { goTarList } from '../support/gotar';
import { describeWithTools } from '../support/tools';
import { Rng, generateArchive } from './tar-forms';
import { Verdict, decoderListing, judgeDecoder, judgeLayer, layerOutcome } from './tar-judge';

const RUNS = Number(process.env.FUZZ_RUNS ?? 2000);
const FIRST_SEED = Number(process.env.FUZZ_SEED ?? 1);
const BATCH = 500;

interface Tally {
  counts: Map<string, number>;
  failures: string[];
}

function tally(): Tally {
  return { counts: new Map(), failures: [] };
}

function note(t: Tally, level: string, what: string, v: Verdict): void {
  const key = `${level} ${v.kind}`;
  t.counts.set(key, (t.counts.get(key) ?? 0) + 1);
  if (!v.agree && t.failures.length < 10) t.failures.push(`${what} [${level}] ${v.kind}: ${v.detail ?? ''}`.slice(0, 4000));
}

/** Feed every archive to both readers (Go once per batch); returns the tally. */
async function differential(cases: { what: string; archive: Buffer }[], seed: number): Promise<Tally> {
  const t = tally();
  const rng = new Rng(seed);
  for (let i = 0; i < cases.length; i += BATCH) {
    const batch = cases.slice(i, i + BATCH);
    const go = await goTarList(batch.map((c) => c.archive));
    for (const [j, c] of batch.entries()) {
      note(t, 'decoder', c.what, judgeDecoder(await decoderListing(c.archive, rng), go[j]));
      note(t, 'layer', c.what, await judgeLayer(await layerOutcome(c.archive), go[j]));
    }
  }
  return t;
}

function report(t: Tally): string {
  return [...t.counts.entries()]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, n]) => `${String(n).padStart(6)}  ${k}`)
    .join('\n');
}

describeWithTools(['go'], "tar reader against Go's archive/tar", () => {
  jest.setTimeout(600_000);

  test('the hostile layer corpus: every layer of every case', async () => {
    const sandbox = '/nonexistent-sandbox';
    const cases = LAYER_CASES.filter((c) => !c.stored).flatMap((c) => c.layers(sandbox).map((archive, i) => ({ what: `${c.name} #${i}`, archive })));
    const t = await differential(cases, 7);
    expect(t.failures).toEqual([]);
    expect(t.counts.get('decoder accepted-both') ?? 0).toBeGreaterThan(cases.length / 2);
  });

  test('the hostile image archives (the tar of each archive, as a reader of members sees it)', async () => {
    const cases = ARCHIVE_CASES.filter((c) => !c.fuzzOnly).map((c) => ({ what: c.name, archive: c.build('/nonexistent-sandbox') }));
    const t = tally();
    const go = await goTarList(cases.map((c) => c.archive));
    const rng = new Rng(11);
    for (const [i, c] of cases.entries()) note(t, 'decoder', c.what, judgeDecoder(await decoderListing(c.archive, rng), go[i]));
    expect(t.failures).toEqual([]);
  });

  test(`${RUNS} generated archives: 0 disagreements`, async () => {
    const generated = Array.from({ length: RUNS }, (_, i) => generateArchive(FIRST_SEED + i));
    const cases = generated.map((c) => ({ what: `seed ${c.seed}${c.wellFormed ? ' (well formed)' : ''}`, archive: c.archive }));
    const t = await differential(cases, FIRST_SEED);
    // eslint-disable-next-line no-console
    if (process.env.FUZZ_REPORT) console.log(report(t));
    expect(t.failures).toEqual([]);
    // The comparison has teeth only if both readers accept a good share of the cases, and the
    // generator reaches the refusals too.
    const accepted = (level: string) => t.counts.get(`${level} accepted-both`) ?? 0;
    expect(accepted('decoder')).toBeGreaterThan(RUNS * 0.4);
    expect(accepted('layer')).toBeGreaterThan(RUNS * 0.25);
    expect(t.counts.get('decoder refused-both') ?? 0).toBeGreaterThan(RUNS * 0.05);
  });
});

/** Archives GNU tar writes: every format, long names, and sparse files in every sparse format. */
describeWithTools(['go', 'tar'], 'archives GNU tar writes, read by both', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'crfs-gnutar-'));
    const src = join(dir, 'src');
    mkdirSync(join(src, 'd'.repeat(90), 'e'.repeat(90)), { recursive: true });
    writeFileSync(join(src, 'd'.repeat(90), 'e'.repeat(90), 'f'.repeat(90)), 'deep\n');
    writeFileSync(join(src, 'plain'), 'plain file\n');
    symlinkSync('t'.repeat(150), join(src, 'longlink'));
    linkSync(join(src, 'plain'), join(src, 'hard'));
    // A sparse file: data at 0, a 1 MiB hole, data, a hole to the end.
    const sparse = join(src, 'sparse');
    writeFileSync(sparse, 'head');
    const fd = openSync(sparse, 'r+');
    writeSync(fd, Buffer.from('middle'), 0, 6, 1 << 20);
    closeSync(fd);
    truncateSync(sparse, 3 << 20);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const variants: [string, string[]][] = [
    ['posix sparse 1.0', ['--format=posix', '--sparse', '--sparse-version=1.0']],
    ['posix sparse 0.1', ['--format=posix', '--sparse', '--sparse-version=0.1']],
    ['posix sparse 0.0', ['--format=posix', '--sparse', '--sparse-version=0.0']],
    ['posix sparse (default version)', ['--format=posix', '--sparse']],
    ['gnu sparse (old S headers)', ['--format=gnu', '--sparse']],
    ['oldgnu sparse', ['--format=oldgnu', '--sparse']],
    ['gnu long names', ['--format=gnu']],
    ['ustar', ['--format=ustar', '--exclude=./longlink', '--exclude=./d*']],
    ['v7', ['--format=v7', '--exclude=./longlink', '--exclude=./d*']],
    ['posix', ['--format=posix']],
  ];

  test.each(variants)('%s', async (_what, flags) => {
    const out = join(dir, `${_what.replace(/\W+/g, '-')}.tar`);
    execFileSync('tar', ['-cf', out, ...flags, '-C', join(dir, 'src'), '.']);
    const archive = readFileSync(out);
    const [go] = await goTarList([archive]);
    expect(go.error).toBeNull();
    const decoded = await decoderListing(archive, new Rng(3));
    expect(judgeDecoder(decoded, go)).toEqual({ agree: true, kind: 'accepted-both' });
    const layer = await judgeLayer(await layerOutcome(archive), go);
    if (_what.includes('gnu sparse')) {
      // Go expands an S header; containerd, Docker and umoci refuse its type.
      expect(layer.kind).toBe('layer-refused:UNSUPPORTED_ENTRY:UNSUPPORTED_ENTRY');
      return;
    }
    expect(layer).toEqual({ agree: true, kind: 'accepted-both' });
    if (flags.includes('--sparse')) {
      // The real name and size, holes as zeros: the bytes of the file on disk.
      const read = await readLayerTar(() => Readable.from([archive]), { requireEndMarker: false });
      const entry = read.layer.get('sparse');
      expect(entry?.type).toBe('file');
      if (entry?.type !== 'file') return;
      const chunks: Buffer[] = [];
      for await (const c of entry.content.open()) chunks.push(c as Buffer);
      expect(Buffer.concat(chunks).equals(readFileSync(join(dir, 'src', 'sparse')))).toBe(true);
    }
  });
});
