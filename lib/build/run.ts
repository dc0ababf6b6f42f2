/**
 * RUN with a pluggable executor. An executor takes the rootfs a command sees and returns the
 * rootfs after it; the builder then diffs the two, so files the command deleted become whiteouts.
 *
 * - `sandboxExecutor()` (the default on node:fs): writes the rootfs into a temporary directory on
 *   the real disk, runs the command (`sh -c`, or the JSON form's argv) there inside a bubblewrap
 *   sandbox (lib/build/sandbox.ts): the host's tools read-only, the rootfs the only writable tree
 *   and the working directory, its `bin/` first on PATH, no network unless asked, an environment
 *   of ENV and build arguments only. Then it reads the directory back.
 * - `hostShellExecutor()` (`runExecutor: 'host'`, only when asked for): the same, without the
 *   sandbox: the command runs on the host as the builder (sealer v0.7–v0.8's RUN).
 * - `builtinRunExecutor()`: no shell at all: understands `rm`, `mkdir`, `ln -s`, `chmod`, `mv`,
 *   `cp`, `touch` joined by `&&`, evaluated on the in-memory tree. Deterministic, works on memfs,
 *   and the documented way to delete a base image's file from a Kubefile anywhere.
 * A CloudRootfs has no `/bin/sh` of its own, so the disk executors run the host's tools over the
 * image's files. On an injected filesystem other than node:fs there is no default: RUN without an
 * executor is a `RunUnavailableError` (code UNSUPPORTED), never a silent write to the real disk.
 */
import * as nodeFs from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { fileContent } from '../content';
import { DirectoryEntry, Entry, directoryEntry, fileEntry, markLinked, symlinkEntry, withAttributes } from '../entry';
import { BuildError, NotFoundError, SandboxUnavailableError, UnsupportedEntryError, UnsupportedError, UsageError } from '../errors';
import { FileSystem, FsStats, diskFs, isDiskFs } from '../fs';
import type { Platform } from '../image/types';
import { compareBytes, cleanPath, joinPath, parentPath, baseName } from '../path';
import { FsNode, getNode } from '../rootfs/node';
import { PMap } from '../rootfs/pmap';
import { Rootfs } from '../rootfs/rootfs';
import { materialize } from '../rootfs/io';
import { splitWords, expandWord } from '../kubefile';
import { removeTree } from '../util/atomic';
import { mapLimited } from '../util/concurrency';
import { ProcessOutcome, outputTail, runProcess } from './run-process';
import {
  HOST_OPT_IN_HINT,
  RunNetwork,
  SandboxIdentity,
  SystemMount,
  bubblewrapOptions,
  commandExitCode,
  encodeArgs,
  findBubblewrap,
  forgoRootUserNamespaces,
  isExecFailure,
  sandboxIdentity,
  systemMounts,
} from './sandbox';

export type { RunNetwork } from './sandbox';

export interface RunRequest {
  /** The tree the command sees (pending edits included). */
  rootfs: Rootfs;
  /** Shell form: the command text for `sh -c`. */
  command?: string;
  /** JSON (exec) form: argv. Exactly one of `command` and `argv` is set. */
  argv?: string[];
  /** ENV and build arguments in effect. */
  env: Readonly<Record<string, string>>;
  /** mtimes of what the command writes are clamped to this. */
  sourceDateEpoch: number;
  platform: Platform;
  /**
   * The network the command may use (default `none`). The sandbox enforces it; the host shell
   * always has the host's network; the builtin executor has none to give.
   */
  network?: RunNetwork;
  signal?: AbortSignal;
}

export interface RunExecutor {
  /** Shown in messages and part of the build cache's key (`sandbox`, `host-shell`, `builtin`…). */
  readonly name: string;
  run(request: RunRequest): Promise<Rootfs>;
  /**
   * Release what the results still need (the disk executors' temporary trees back the lazy
   * contents of the files a command wrote): call once the built image's layers are written.
   */
  dispose?(): Promise<void>;
}

/**
 * The executors a build can name instead of passing one: `sandbox` (the default on node:fs),
 * `host` (the host shell, no isolation: an explicit opt-in), `builtin` (no shell, any filesystem).
 */
export type RunExecutorName = 'sandbox' | 'host' | 'builtin';

/** RUN was asked for where no executor can run it (memfs without `runExecutor`). */
export class RunUnavailableError extends UnsupportedError {
  constructor(message: string) {
    super(message, 'run');
  }
}

/** The text a RUN shows in messages. */
export function describeRun(request: Pick<RunRequest, 'command' | 'argv'>): string {
  return request.command ?? JSON.stringify(request.argv ?? []);
}

// --- the disk executors -----------------------------------------------------------------------

/** What the sandbox and the host shell have in common. */
export interface DiskRunOptions {
  /** Parent of the temporary trees (default: the OS temp dir). */
  tmpDir?: string;
  /** Shell for the shell form (default `/bin/sh`: the host's). */
  shell?: string;
  /** Kill the command after this many milliseconds (default: no limit). */
  timeoutMs?: number;
  /** Where the command's output goes (default: collected; the tail is shown if it fails). */
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
}

export interface HostShellOptions extends DiskRunOptions {
  /** Keep the host's environment (default true: PATH, HOME… as sealer's RUN had them). */
  inheritEnv?: boolean;
}

export interface SandboxOptions extends DiskRunOptions {
  /** The bubblewrap binary (default `bwrap` on PATH). */
  bwrap?: string;
  /**
   * Where the system directories the command sees (`usr`, `bin`, `lib*`, the files of `etc`)
   * are taken from (default `/`: the host's own tools).
   */
  systemRoot?: string;
}

/** PATH after the image's `bin/` when ENV sets none. */
const MINIMAL_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

interface Fingerprint {
  ino: number;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  mode: number;
}

function fingerprint(st: FsStats): Fingerprint {
  const ctimeMs = (st as unknown as { ctimeMs?: number }).ctimeMs ?? 0;
  return { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, ctimeMs, mode: st.mode };
}

function sameFingerprint(a: Fingerprint | undefined, b: Fingerprint): boolean {
  return !!a && a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs && a.mode === b.mode;
}

/** lstat calls in flight at once while taking a snapshot (round trips dominate big trees). */
const SNAPSHOT_CONCURRENCY = 32;

/** Stat every path of a freshly written tree: what "untouched" will mean after the command. */
async function snapshot(fs: FileSystem, root: string, rootfs: Rootfs): Promise<Map<string, Fingerprint>> {
  const paths: string[] = [];
  for (const { path, entry } of rootfs.walk()) if (entry.type !== 'directory') paths.push(path);
  const stats = await mapLimited(paths, SNAPSHOT_CONCURRENCY, (path) => fs.promises.lstat(posix.join(root, path)));
  return new Map(paths.map((path, i) => [path, fingerprint(stats[i])]));
}

/**
 * Read the tree back. A file or link whose inode, size, times and mode did not change is the
 * entry it was (same object: no bytes compared later). Anything new or changed is read from the
 * directory, keeps the old entry's owner (a non-root build cannot chown) or gets 0:0, and has its
 * mtime clamped to the epoch.
 */
async function readBack(fs: FileSystem, root: string, before: Rootfs, prints: Map<string, Fingerprint>, epoch: number): Promise<Rootfs> {
  const inodes = new Map<string, Entry>();
  const clamp = (ms: number) => Math.max(0, Math.min(Math.floor(ms / 1000), epoch));
  const owner = (path: string, type: Entry['type']) => {
    const old = before.get(path);
    return old && old.type === type ? { uid: old.uid, gid: old.gid } : { uid: 0, gid: 0 };
  };

  const readDir = async (abs: string, rel: string, st: FsStats): Promise<FsNode> => {
    const names = (await fs.promises.readdir(abs)).sort(compareBytes);
    const children: [string, FsNode][] = [];
    for (const name of names) {
      const childRel = rel === '' ? name : `${rel}/${name}`;
      const childAbs = posix.join(abs, name);
      const cst = await fs.promises.lstat(childAbs);
      if (cst.isDirectory()) {
        children.push([name, await readDir(childAbs, childRel, cst)]);
        continue;
      }
      const old = getNode(before.root, childRel)?.entry;
      if (old && sameFingerprint(prints.get(childRel), fingerprint(cst))) {
        children.push([name, { entry: old }]);
        continue;
      }
      const attrs = { mode: cst.mode & 0o7777, ...owner(childRel, cst.isSymbolicLink() ? 'symlink' : 'file'), mtime: clamp(cst.mtimeMs) };
      if (cst.isSymbolicLink()) {
        children.push([name, { entry: symlinkEntry(await fs.promises.readlink(childAbs), attrs) }]);
      } else if (cst.isFile()) {
        let entry: Entry;
        const key = `${cst.dev}:${cst.ino}`;
        const seen = cst.nlink > 1 ? inodes.get(key) : undefined;
        if (seen) entry = markLinked(seen);
        else {
          entry = fileEntry(fileContent(fs, childAbs, cst.size), attrs);
          if (cst.nlink > 1) inodes.set(key, markLinked(entry));
        }
        children.push([name, { entry }]);
      } else {
        throw new UnsupportedEntryError(`RUN created ${childRel}, a fifo, socket or device; a rootfs holds only files, directories and links`, childRel, 'special');
      }
    }
    const old = rel === '' ? before.rootEntry : before.get(rel);
    const mode = st.mode & 0o7777;
    const mtime = clamp(st.mtimeMs);
    let entry: DirectoryEntry;
    if (old?.type === 'directory') {
      // A directory whose listing changed has a new mtime on disk, clamped like any new time.
      entry = old.mode === mode && old.mtime === mtime ? old : withAttributes(old, { mode, mtime });
    } else {
      entry = directoryEntry({ mode, uid: 0, gid: 0, mtime });
    }
    return { entry, children: PMap.fromSorted(children) };
  };

  const rootStats = await fs.promises.lstat(root);
  return Rootfs.fromNode(await readDir(root, '', rootStats));
}

/**
 * What a disk executor does around its command: write the tree into a temporary directory,
 * launch, read the tree back. `launch` runs argv with `root` as the working directory and
 * resolves once the command succeeded (it throws otherwise).
 */
function diskExecutor(
  name: string,
  options: DiskRunOptions,
  launch: (argv: string[], root: string, request: RunRequest) => Promise<void>,
): RunExecutor {
  const mine = new Set<string>();
  return {
    name,
    async dispose() {
      const dirs = [...mine];
      mine.clear();
      await Promise.all(dirs.map((d) => removeRunTree(d)));
    },
    async run(request) {
      const fs = diskFs;
      const parent = options.tmpDir ?? tmpdir();
      const dir = await nodeFs.promises.mkdtemp(join(parent, 'cloudrootfs-run-'));
      const root = join(dir, 'rootfs');
      // The tree is read lazily: contents are read when the layer is written, so the temporary
      // directory must outlive this call: `dispose()` (or, failing that, process exit) removes it.
      mine.add(dir);
      scheduleCleanup(dir);
      try {
        await fs.promises.mkdir(root, { mode: 0o755 });
        await materialize(request.rootfs, root, fs, false);
        // The root's own mode may forbid us to write; the command needs to.
        await fs.promises.chmod(root, request.rootfs.rootEntry.mode | 0o700);
        const prints = await snapshot(fs, root, request.rootfs);
        const argv = request.command !== undefined ? [options.shell ?? '/bin/sh', '-c', request.command] : request.argv!;
        if (argv.length === 0) throw new UsageError('RUN needs a command');
        await launch(argv, root, request);
        await fs.promises.chmod(root, 0o755);
        const after = await readBack(fs, root, request.rootfs, prints, request.sourceDateEpoch);
        // The root keeps its attributes unless the command changed its mode.
        return after.with('', request.rootfs.rootEntry);
      } catch (err) {
        // Nothing reads a failed command's tree: remove it now.
        mine.delete(dir);
        await removeRunTree(dir);
        throw err;
      }
    },
  };
}

/**
 * RUN directly on this host, as the builder's user, with the builder's environment and network
 * (sealer v0.7–v0.8's RUN). Only by explicit choice (`runExecutor: 'host'`, `--run-on-host`): the
 * image's `bin/` comes first on PATH and absolute symlinks in the rootfs lead into the host.
 */
export function hostShellExecutor(options: HostShellOptions = {}): RunExecutor {
  return diskExecutor('host-shell', options, async (argv, root, request) => {
    const env: Record<string, string> = {
      ...(options.inheritEnv === false ? {} : (process.env as Record<string, string>)),
      ...request.env,
    };
    env.PATH = `${join(root, 'bin')}:${env.PATH ?? MINIMAL_PATH}`;
    const outcome = await runProcess({ file: argv[0], args: argv.slice(1), cwd: root, env, ...processOptions(options, request) });
    if (outcome.error) throw startFailed(request, argv[0], outcome.error);
    if (outcome.code !== 0) throw commandFailed(request, outcome.code, outcome.signal, outcome.output);
  });
}

/**
 * The default executor on node:fs: each RUN in a bubblewrap sandbox over the host's tools, the
 * rootfs the only writable tree (lib/build/sandbox.ts, docs/security.md). Where no sandbox can be
 * made, RUN fails with a SandboxUnavailableError (code SANDBOX_UNAVAILABLE); it never falls back
 * to the host.
 */
export function sandboxExecutor(options: SandboxOptions = {}): RunExecutor {
  const systemRoot = options.systemRoot ?? '/';
  let system: SystemMount[] | undefined;
  return diskExecutor('sandbox', options, async (argv, root, request) => {
    const bwrap = findBubblewrap(options.bwrap);
    if (bwrap instanceof SandboxUnavailableError) throw bwrap;
    system ??= systemMounts(systemRoot);
    // The mount point inside is the same path as outside: resolve links in it first.
    const realRoot = await nodeFs.promises.realpath(root);
    const env: Record<string, string> = { ...request.env };
    env.PATH = `${posix.join(realRoot, 'bin')}:${request.env.PATH ?? MINIMAL_PATH}`;
    const command = { root: realRoot, argv, env, network: request.network ?? 'none' } as const;
    const launch = (identity: SandboxIdentity) =>
      runProcess({
        file: bwrap.path,
        args: ['--args', '3', '--json-status-fd', '4', '--', ...argv],
        // bwrap itself needs no environment; the command's is given with --clearenv/--setenv.
        env: {},
        fd3Input: encodeArgs(bubblewrapOptions(command, bwrap, identity, system!, systemRoot)),
        readFd4: true,
        ...processOptions(options, request),
      });
    const identity = sandboxIdentity();
    let outcome = await launch(identity);
    // As root a user namespace is defence in depth, not a need: where the kernel or a seccomp
    // policy refuses one, make the sandbox without it (and stop asking, once that worked).
    if (identity.root && identity.userNamespaces && setupFailed(outcome)) {
      const retried = await launch({ ...identity, userNamespaces: false });
      if (!setupFailed(retried)) {
        forgoRootUserNamespaces();
        outcome = retried;
      }
    }
    if (outcome.error?.code === 'ENOENT') {
      throw new SandboxUnavailableError(`cannot start bubblewrap (${bwrap.path}): ${outcome.error.message}; ${HOST_OPT_IN_HINT}`, { reason: 'bwrap-missing' }, { cause: outcome.error });
    }
    if (outcome.error) throw startFailed(request, argv[0], outcome.error);
    const exitCode = commandExitCode(outcome.fd4);
    if (exitCode === 0 && outcome.code === 0) return;
    if (exitCode !== undefined) throw commandFailed(request, exitCode, null, outcome.output);
    // No exit code: the command never ran. Killed (timeout), not found, or no sandbox.
    if (outcome.signal || outcome.timedOut) throw commandFailed(request, outcome.code, outcome.signal, outcome.output);
    if (isExecFailure(outcome.output)) throw cannotStart(request, argv[0], outputTail(outcome.output, 3));
    throw new SandboxUnavailableError(
      `RUN ${describeRun(request)}: cannot create the sandbox (bubblewrap exited with code ${outcome.code}${outcome.output ? `: ${outputTail(outcome.output, 5)}` : ''}); ` +
        `${identity.root ? 'new namespaces may be refused here (a container\'s seccomp profile)' : 'user namespaces may be disabled (sysctl user.max_user_namespaces, kernel.unprivileged_userns_clone, or an AppArmor policy)'}; ${HOST_OPT_IN_HINT}`,
      { reason: 'setup-failed', bwrap: bwrap.path, exitCode: outcome.code, output: outputTail(outcome.output) },
    );
  });
}

/** bwrap ended without running the command (no exit code reported), and not because it was killed or the program is missing. */
function setupFailed(outcome: ProcessOutcome): boolean {
  return !outcome.error && !outcome.signal && !outcome.timedOut && commandExitCode(outcome.fd4) === undefined && !isExecFailure(outcome.output);
}

function processOptions(options: DiskRunOptions, request: RunRequest) {
  return { timeoutMs: options.timeoutMs, stdout: options.stdout, stderr: options.stderr, signal: request.signal };
}

/** The process could not be started, or the build's signal aborted it. */
function startFailed(request: RunRequest, program: string, error: NodeJS.ErrnoException): BuildError {
  if (error.name === 'AbortError') return new BuildError(`RUN ${describeRun(request)} was aborted`, { command: describeRun(request), aborted: true }, { cause: error });
  return cannotStart(request, program, error.message, error);
}

function cannotStart(request: RunRequest, program: string, why: string, cause?: unknown): BuildError {
  return new BuildError(`RUN ${describeRun(request)}: cannot start ${program}: ${why}`, { command: describeRun(request) }, { cause });
}

function commandFailed(request: RunRequest, code: number | null, signal: NodeJS.Signals | null, output: string): BuildError {
  const why = signal ? `was killed by ${signal}` : `exited with code ${code}`;
  return new BuildError(`RUN ${describeRun(request)} ${why}${output ? `:\n${outputTail(output)}` : ''}`, {
    command: describeRun(request),
    exitCode: code,
    signal,
    output: outputTail(output),
  });
}

const pendingCleanup = new Set<string>();
let cleanupHooked = false;

/** Remove RUN trees at exit (their files back lazy contents until the layers are written). */
function scheduleCleanup(dir: string): void {
  pendingCleanup.add(dir);
  if (cleanupHooked) return;
  cleanupHooked = true;
  process.once('exit', () => {
    for (const d of pendingCleanup) {
      try {
        nodeFs.rmSync(d, { recursive: true, force: true });
      } catch {
        // A non-root builder cannot empty a directory the command made read-only: open them up.
        try {
          makeWritableSync(d);
          nodeFs.rmSync(d, { recursive: true, force: true });
        } catch {
          // best effort at exit
        }
      }
    }
  });
}

function makeWritableSync(path: string): void {
  if (!nodeFs.lstatSync(path).isDirectory()) return;
  nodeFs.chmodSync(path, 0o700);
  for (const name of nodeFs.readdirSync(path)) makeWritableSync(join(path, name));
}

/** Remove a RUN tree (the command may have made parts of it read-only); best effort. */
async function removeRunTree(dir: string): Promise<void> {
  pendingCleanup.delete(dir);
  await removeTree(diskFs, dir).catch(() => undefined);
}

// --- the builtin executor -------------------------------------------------------------------

/**
 * A shell-less executor for file chores: `cmd && cmd …` where each cmd is one of
 * `rm [-f] [-r|-R] PATH…`, `mkdir [-p] DIR…`, `ln -s[f] TARGET LINK`, `chmod MODE PATH…`,
 * `mv SRC DST`, `cp [-r] SRC DST`, `touch PATH…`. Words follow shell quoting (`'…'`, `"…"`);
 * `$VAR` expands from ENV and build args. Paths are rootfs-relative and cannot leave the root.
 * Directories whose listing changes get the source date epoch as mtime, as a real build clamps
 * "now" to it. Anything else is a UsageError naming the command.
 */
export function builtinRunExecutor(): RunExecutor {
  return {
    name: 'builtin',
    async run(request) {
      if (request.argv) return runBuiltin(request.rootfs, request.argv, request);
      let rootfs = request.rootfs;
      for (const part of splitAnd(request.command ?? '')) {
        const vars = (name: string) => request.env[name];
        const words = splitWords(part).map((w) => expandWord(w, vars));
        rootfs = runBuiltin(rootfs, words, request);
      }
      return rootfs;
    },
  };
}

function splitAnd(command: string): string[] {
  const parts: string[] = [];
  let quote: string | undefined;
  let start = 0;
  for (let i = 0; i < command.length; i++) {
    const c = command[i];
    if (c === '\\' && quote !== "'") {
      i++;
      continue;
    }
    if (quote) {
      if (c === quote) quote = undefined;
      continue;
    }
    if (c === '"' || c === "'") quote = c;
    else if (c === '&' && command[i + 1] === '&') {
      parts.push(command.slice(start, i));
      start = i + 2;
      i++;
    } else if (c === ';' || c === '|' || c === '>' || c === '<' || c === '`' || (c === '$' && command[i + 1] === '(')) {
      throw new UsageError(`the builtin RUN executor understands only commands joined by "&&" (found ${JSON.stringify(c)}); use the host shell executor for ${JSON.stringify(command)}`);
    }
  }
  parts.push(command.slice(start));
  const trimmed = parts.map((p) => p.trim());
  if (trimmed.some((p) => p === '')) throw new UsageError(`RUN ${JSON.stringify(command)}: an empty command`);
  return trimmed;
}

function flagsAndArgs(words: string[], allowed: string): { flags: Set<string>; args: string[] } {
  const flags = new Set<string>();
  const args: string[] = [];
  let done = false;
  for (const w of words) {
    if (!done && w === '--') {
      done = true;
      continue;
    }
    if (!done && w.startsWith('-') && w.length > 1) {
      for (const f of w.slice(1)) {
        if (!allowed.includes(f)) throw new UsageError(`builtin RUN: unknown flag -${f} in ${JSON.stringify(words.join(' '))}`);
        flags.add(f);
      }
      continue;
    }
    args.push(w);
  }
  return { flags, args };
}

function rootPath(p: string, cmd: string): string {
  const cleaned = cleanPath(p, { what: `${cmd} path`, forbidWhiteoutNames: true });
  if (cleaned === '') throw new UsageError(`builtin RUN: ${cmd} cannot act on the root`);
  return cleaned;
}

/** Mark the parent of `path` as modified now (clamped to the epoch). */
function touchParent(rootfs: Rootfs, path: string, epoch: number): Rootfs {
  const parent = parentPath(path);
  const entry = parent === '' ? rootfs.rootEntry : rootfs.get(parent);
  if (!entry || entry.type !== 'directory' || entry.mtime === epoch) return rootfs;
  return rootfs.with(parent, withAttributes(entry, { mtime: epoch }));
}

function runBuiltin(rootfs: Rootfs, words: string[], request: RunRequest): Rootfs {
  const [cmd, ...rest] = words;
  const epoch = request.sourceDateEpoch;
  const dirAttrs = { mode: 0o755, mtime: epoch };
  let out = rootfs;
  switch (cmd) {
    case 'rm': {
      const { flags, args } = flagsAndArgs(rest, 'frR');
      if (args.length === 0 && !flags.has('f')) throw new UsageError('builtin RUN: rm needs a path');
      for (const a of args) {
        const p = rootPath(a, 'rm');
        const entry = out.get(p);
        if (!entry) {
          if (flags.has('f')) continue;
          throw new NotFoundError(p, 'rm: path');
        }
        if (entry.type === 'directory' && !flags.has('r') && !flags.has('R')) throw new UsageError(`builtin RUN: rm: ${p} is a directory (use -r)`);
        out = touchParent(out.without(p), p, epoch);
      }
      return out;
    }
    case 'mkdir': {
      const { flags, args } = flagsAndArgs(rest, 'p');
      for (const a of args) {
        const p = rootPath(a, 'mkdir');
        const existing = out.get(p);
        if (existing?.type === 'directory') {
          if (flags.has('p')) continue;
          throw new UsageError(`builtin RUN: mkdir: ${p} exists`);
        }
        if (!flags.has('p') && parentPath(p) !== '' && out.get(parentPath(p))?.type !== 'directory') {
          throw new NotFoundError(parentPath(p), 'mkdir: parent directory');
        }
        out = touchParent(out.with(p, directoryEntry(dirAttrs), { parents: dirAttrs }), p, epoch);
      }
      return out;
    }
    case 'ln': {
      const { flags, args } = flagsAndArgs(rest, 'sf');
      if (!flags.has('s') || args.length !== 2) throw new UsageError('builtin RUN: only `ln -s[f] TARGET LINK` is supported');
      const [target, link] = args;
      let p = rootPath(link, 'ln');
      if (out.get(p)?.type === 'directory') p = joinPath(p, baseName(target));
      if (out.get(p) && !flags.has('f')) throw new UsageError(`builtin RUN: ln: ${p} exists (use -f)`);
      return touchParent(out.with(p, symlinkEntry(target, { mtime: epoch }), { parents: dirAttrs }), p, epoch);
    }
    case 'chmod': {
      const { args } = flagsAndArgs(rest, '');
      const [modeText, ...paths] = args;
      if (!modeText || !/^[0-7]{3,4}$/.test(modeText) || paths.length === 0) throw new UsageError('builtin RUN: only `chmod OCTAL PATH…` is supported');
      for (const a of paths) {
        const p = rootPath(a, 'chmod');
        const entry = out.get(p);
        if (!entry) throw new NotFoundError(p, 'chmod: path');
        out = out.with(p, withAttributes(entry, { mode: parseInt(modeText, 8) }));
      }
      return out;
    }
    case 'mv':
    case 'cp': {
      const { flags, args } = flagsAndArgs(rest, cmd === 'cp' ? 'rRfpa' : 'f');
      if (args.length !== 2) throw new UsageError(`builtin RUN: only \`${cmd} SRC DST\` (one source) is supported`);
      const src = rootPath(args[0], cmd);
      let dst = rootPath(args[1], cmd);
      const entry = out.get(src);
      if (!entry) throw new NotFoundError(src, `${cmd}: source`);
      if (cmd === 'cp' && entry.type === 'directory' && !flags.has('r') && !flags.has('R') && !flags.has('a')) {
        throw new UsageError(`builtin RUN: cp: ${src} is a directory (use -r)`);
      }
      if (out.get(dst)?.type === 'directory') dst = joinPath(dst, baseName(src));
      if (dst === src || dst.startsWith(src + '/')) throw new UsageError(`builtin RUN: ${cmd}: cannot ${cmd} ${src} into itself`);
      out = touchParent(out.copy(src, dst, { parents: dirAttrs }), dst, epoch);
      if (cmd === 'mv') out = touchParent(out.without(src), src, epoch);
      return out;
    }
    case 'touch': {
      const { args } = flagsAndArgs(rest, 'c');
      for (const a of args) {
        const p = rootPath(a, 'touch');
        const entry = out.get(p);
        out = entry
          ? out.with(p, withAttributes(entry, { mtime: epoch }))
          : touchParent(out.with(p, fileEntry('', { mtime: epoch }), { parents: dirAttrs }), p, epoch);
      }
      return out;
    }
    case undefined:
      throw new UsageError('RUN needs a command');
    default:
      throw new UsageError(
        `the builtin RUN executor does not know ${JSON.stringify(cmd)} (it runs rm, mkdir, ln -s, chmod, mv, cp, touch); use the host shell executor on node:fs`,
      );
  }
}

/** True when `fs` is node:fs (lib/fs.ts `isDiskFs`, which compares the `promises` object). */
export const isNodeFs: (fs: FileSystem) => boolean = isDiskFs;

/** The executor a build uses by default: the sandbox on node:fs, none elsewhere (RUN then fails). */
export function defaultRunExecutor(fs: FileSystem): RunExecutor | undefined {
  return isDiskFs(fs) ? sandboxExecutor() : undefined;
}

/**
 * The executor for a build's `runExecutor` option: the given one, a named one, or the default
 * for `fs`. `sandbox` and `host` need node:fs (undefined elsewhere: RUN then fails).
 */
export function resolveRunExecutor(option: RunExecutor | RunExecutorName | undefined, fs: FileSystem): RunExecutor | undefined {
  if (option === undefined) return defaultRunExecutor(fs);
  if (typeof option !== 'string') return option;
  switch (option) {
    case 'sandbox':
      return isDiskFs(fs) ? sandboxExecutor() : undefined;
    case 'host':
      return isDiskFs(fs) ? hostShellExecutor() : undefined;
    case 'builtin':
      return builtinRunExecutor();
    default:
      throw new UsageError(`runExecutor must be an executor or one of sandbox, host, builtin (got ${JSON.stringify(option)})`);
  }
}
