/** Running the CLI in-process with captured output (the CLI specs share it). */
import { Writable } from 'node:stream';
import { runCli } from '../../lib/cli/main';
import type { FileSystem } from '../../lib/fs';

/** A stream that keeps what is written to it; `isTTY` decides whether progress bars are drawn. */
export class Capture extends Writable {
  text = '';
  isTTY = false;
  override _write(chunk: Buffer, _enc: string, cb: () => void): void {
    this.text += chunk.toString();
    cb();
  }
}

/** `cloudrootfs ARGV` on `fs` with `env`: exit code, stdout and stderr. */
export async function runCaptured(
  fs: FileSystem,
  argv: string[],
  env: NodeJS.ProcessEnv,
  options: { tty?: boolean } = {},
): Promise<{ code: number; out: string; err: string }> {
  const stdout = new Capture();
  const stderr = new Capture();
  stderr.isTTY = !!options.tty;
  const code = await runCli(argv, { fs, stdout, stderr, env });
  return { code, out: stdout.text, err: stderr.text };
}
