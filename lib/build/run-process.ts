/**
 * The process of a RUN: spawned with its output collected (the tail is shown when it fails) or
 * streamed, a timeout, an abort signal, and two optional extra descriptors: fd 3 carries input
 * the process reads to its end (bubblewrap's `--args 3`: options that must not appear in `ps`),
 * fd 4 is read to its end (bubblewrap's `--json-status-fd 4`). Exit codes are not judged here:
 * the executor knows what they mean.
 */
import { spawn } from 'node:child_process';

export interface ProcessSpec {
  file: string;
  args: readonly string[];
  cwd?: string;
  env: Readonly<Record<string, string>>;
  /** Written to the process's fd 3, which is then closed. */
  fd3Input?: Buffer;
  /** Read the process's fd 4 to its end (into `ProcessOutcome.fd4`). */
  readFd4?: boolean;
  /** Kill the process (SIGKILL) after this many milliseconds. */
  timeoutMs?: number;
  /** Where output also goes (default: only collected). */
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
  signal?: AbortSignal;
}

export interface ProcessOutcome {
  /** The exit code; null when a signal ended the process or it never started. */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The last 16 KiB of stdout and stderr, interleaved as they came. */
  output: string;
  /** What the process wrote to fd 4. */
  fd4: string;
  /** Why the process could not be started or was aborted (spawn's error). */
  error?: NodeJS.ErrnoException;
  timedOut: boolean;
}

/** Bytes of output kept for messages. */
const OUTPUT_TAIL = 16384;

/** Run a process to its end; never rejects (failures are in the outcome). */
export function runProcess(spec: ProcessSpec): Promise<ProcessOutcome> {
  return new Promise((resolve) => {
    const extra = spec.fd3Input || spec.readFd4 ? (['pipe', 'pipe'] as const) : [];
    const child = spawn(spec.file, [...spec.args], {
      cwd: spec.cwd,
      env: spec.env,
      stdio: ['ignore', 'pipe', 'pipe', ...extra],
      signal: spec.signal,
    });
    let output = '';
    let fd4 = '';
    let timedOut = false;
    let error: NodeJS.ErrnoException | undefined;
    const collect = (chunk: Buffer) => {
      output = (output + chunk.toString('utf8')).slice(-OUTPUT_TAIL);
    };
    child.stdout!.on('data', (c: Buffer) => {
      spec.stdout?.write(c);
      collect(c);
    });
    child.stderr!.on('data', (c: Buffer) => {
      spec.stderr?.write(c);
      collect(c);
    });
    const stdio = child.stdio as unknown as (NodeJS.ReadWriteStream | null)[];
    if (extra.length > 0) {
      const input = stdio[3]!;
      // The process may exit without reading (a failed start): that is not our error.
      input.on('error', () => undefined);
      input.end(spec.fd3Input ?? Buffer.alloc(0));
      const status = stdio[4]!;
      status.on('data', (c: Buffer) => (fd4 += c.toString('utf8')));
      status.on('error', () => undefined);
    }
    const timer = spec.timeoutMs
      ? setTimeout(() => {
          timedOut = true;
          child.kill('SIGKILL');
        }, spec.timeoutMs)
      : undefined;
    child.on('error', (err) => {
      error ??= err;
      // A process that never started emits no 'close' on some Node versions.
      if (child.pid === undefined) finish(null, null);
    });
    let done = false;
    const finish = (code: number | null, signal: NodeJS.Signals | null) => {
      if (done) return;
      done = true;
      if (timer) clearTimeout(timer);
      resolve({ code, signal, output, fd4, error, timedOut });
    };
    child.on('close', (code, signal) => finish(code, signal));
  });
}

/** The last lines of a process's output, for messages. */
export function outputTail(text: string, lines = 20): string {
  const all = text.trimEnd().split('\n');
  return all.slice(-lines).join('\n');
}
