/**
 * The Go referee: spec/referees/gotar/main.go, a stdlib-only lister built with the `go` on PATH
 * (offline: GOCACHE and GOPATH in a temp directory, no proxy, no toolchain download) once per
 * version of its source, into the system temp directory. `goTarList` lists many archives with one
 * process.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findTool } from './tools';

const SOURCE = join(__dirname, '..', 'referees', 'gotar', 'main.go');

/** One entry as Go's Reader.Next returns it (strings hex-encoded, numbers decimal strings). */
export interface GoEntry {
  name: string;
  type: number;
  size: string;
  mode: string;
  uid: string;
  gid: string;
  mtime: [string, string] | null;
  atime: [string, string] | null;
  ctime: [string, string] | null;
  linkname: string;
  uname: string;
  gname: string;
  devmajor: string;
  devminor: string;
  pax: Record<string, string> | null;
  xattrs: Record<string, string> | null;
  sha256: string;
  readBytes: string;
}

/** What Go read of one archive: its entries, then the error that ended it (null at the end of the archive). */
export interface GoListing {
  entries: GoEntry[];
  error: string | null;
}

let built: string | undefined;

/** The lister's path, built on first use (go must be on PATH: see requireTool). */
export function goTarLister(): string {
  if (built) return built;
  const go = findTool('go');
  if (!go) throw new Error('go is not installed');
  const source = readFileSync(SOURCE);
  const version = execFileSync(go, ['version'], { encoding: 'utf8' }).trim();
  const key = createHash('sha256').update(source).update(version).digest('hex').slice(0, 16);
  const dir = join(tmpdir(), `cloudrootfs-gotar-${key}`);
  const binary = join(dir, 'gotar');
  if (!existsSync(binary)) {
    mkdirSync(dir, { recursive: true });
    const work = mkdtempSync(join(dir, 'build-'));
    try {
      const out = join(work, 'gotar');
      execFileSync(go, ['build', '-o', out, SOURCE], {
        cwd: join(__dirname, '..', 'referees', 'gotar'),
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          HOME: work,
          GOCACHE: join(work, 'cache'),
          GOPATH: join(work, 'gopath'),
          GOFLAGS: '',
          GOPROXY: 'off',
          GOTOOLCHAIN: 'local',
          CGO_ENABLED: '0',
        },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      renameSync(out, binary); // atomic: parallel test files may build at the same time
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }
  built = binary;
  return binary;
}

/** List every archive with Go's archive/tar, in one process. */
export async function goTarList(archives: readonly Buffer[]): Promise<GoListing[]> {
  const lister = goTarLister();
  const dir = mkdtempSync(join(tmpdir(), 'crfs-gotar-'));
  try {
    const paths = archives.map((bytes, i) => {
      const p = join(dir, `${i}.tar`);
      writeFileSync(p, bytes);
      return p;
    });
    const stdout = await new Promise<string>((resolve, reject) => {
      const child = spawn(lister, [], { stdio: ['pipe', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on('data', (c: Buffer) => out.push(c));
      child.stderr.on('data', (c: Buffer) => err.push(c));
      child.on('error', reject);
      child.on('close', (code) => {
        if (code === 0) resolve(Buffer.concat(out).toString('utf8'));
        else reject(new Error(`gotar exited with ${code}: ${Buffer.concat(err).toString('utf8')}`));
      });
      child.stdin.end(paths.join('\n') + '\n');
    });
    const lines = stdout.split('\n').filter((l) => l !== '');
    if (lines.length !== archives.length) throw new Error(`gotar listed ${lines.length} archives of ${archives.length}`);
    return lines.map((l) => JSON.parse(l) as GoListing);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
