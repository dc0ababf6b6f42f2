/**
 * What the hardening suites share: a sandbox with canaries, a snapshot of a directory tree (to
 * prove nothing changed), the open-descriptor count (to prove nothing leaked), the CLI run in
 * process, and a store checked for leftovers.
 */
import { createHash } from 'node:crypto';
import * as nodeFs from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { runCli } from '../../lib/cli/main';
import { CloudRootfsError } from '../../lib/errors';
import type { FileSystem } from '../../lib/fs';
import { scratchDir } from '../support/umoci';

export class Collect extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.text += chunk.toString();
    cb();
  }
}

export async function cli(argv: string[], fs: FileSystem): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new Collect();
  const stderr = new Collect();
  const code = await runCli(argv, { fs, stdout, stderr });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

/** A fresh sandbox with canary files outside any target. */
export function sandbox(prefix: string): string {
  const dir = scratchDir(prefix);
  nodeFs.mkdirSync(join(dir, 'canary', 'dir'), { recursive: true });
  nodeFs.writeFileSync(join(dir, 'canary', 'secret'), 'secret');
  nodeFs.writeFileSync(join(dir, 'canary', 'dir', 'file'), 'file');
  return dir;
}

/**
 * Everything under `root` (except the paths in `skip`): type, mode, owner, size, bytes, link text,
 * and the mtime of files (a directory's mtime changes when a temporary file comes and goes, which
 * is no change of what it holds).
 */
export function snapshot(root: string, skip: string[] = []): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (abs: string) => {
    const st = nodeFs.lstatSync(abs);
    let extra = '';
    if (st.isSymbolicLink()) extra = nodeFs.readlinkSync(abs);
    else if (st.isFile()) extra = `${st.mtimeMs} ${createHash('sha256').update(nodeFs.readFileSync(abs)).digest('hex')}`;
    out.set(abs, `${st.mode.toString(8)} ${st.uid}:${st.gid} ${st.isDirectory() ? '' : st.size} ${extra}`);
    if (st.isDirectory()) for (const name of nodeFs.readdirSync(abs)) if (!skip.includes(join(abs, name))) walk(join(abs, name));
  };
  walk(root);
  return out;
}

export function openFds(): number {
  try {
    return nodeFs.readdirSync('/proc/self/fd').length;
  } catch {
    return -1;
  }
}

/**
 * Closing is asynchronous, and idle decompression cursors close after 3 s: wait for the count to
 * come back to `before` (or give up after 5 s and let the caller's expectation fail).
 */
export async function expectNoFdLeak(before: number): Promise<void> {
  if (before < 0) return;
  for (let i = 0; i < 100 && openFds() > before; i++) await new Promise((r) => setTimeout(r, 50));
  expect(openFds()).toBeLessThanOrEqual(before);
}

/** Paths under `root` whose names say a writer left them (`.tmp-*`, the lock and its stale copies). */
export function leftovers(root: string): string[] {
  const out: string[] = [];
  const walk = (abs: string) => {
    for (const name of nodeFs.readdirSync(abs)) {
      const p = join(abs, name);
      if (name.startsWith('.tmp-') || name === 'index.lock' || name.startsWith('index.lock.stale-')) out.push(p);
      else if (nodeFs.lstatSync(p).isDirectory()) walk(p);
    }
  };
  if (nodeFs.existsSync(root)) walk(root);
  return out;
}

/** The outcome of `fn`: its value or the error it threw. */
export async function outcome<T>(fn: () => Promise<T>): Promise<T | Error> {
  try {
    return await fn();
  } catch (err) {
    return err as Error;
  }
}

/** Assert a typed error with `code` (and say what came instead). */
export function expectCode(result: unknown, code: string, why: string): void {
  if (!(result instanceof CloudRootfsError)) {
    throw new Error(`expected ${code} (${why}), got ${result instanceof Error ? `untyped ${result.stack}` : 'success'}`);
  }
  if (result.code !== code) throw new Error(`expected ${code} (${why}), got ${result.code}: ${result.message}`);
}
