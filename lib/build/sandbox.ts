/**
 * The RUN sandbox: bubblewrap (`bwrap`, the sandbox flatpak uses) around the host's tools, with
 * the rootfs being built as the only writable tree. docs/security.md ("RUN") describes the model;
 * this module turns it into a bwrap command line and reads bwrap's verdict.
 *
 * What the command sees:
 * - new mount, pid, ipc, uts, network (unless `network: 'host'`) and cgroup namespaces, and a
 *   user namespace (always when not root; as root when the kernel allows one);
 * - the host's `/usr` read-only, and `/bin`, `/sbin`, `/lib*` as the host has them: the same
 *   symlinks on a merged-/usr host, read-only binds of the real directories otherwise;
 * - a few files of `/etc` read-only (accounts, name resolution, CA certificates, the dynamic
 *   linker's cache, Debian's alternatives, the time zone), never the rest of it;
 * - a private `/tmp`, a minimal `/dev`, a fresh `/proc` mounted read-only (its sysctls are the
 *   host's: writable to a uid 0 that is the host's uid 0 otherwise);
 * - the rootfs, read-write, at its own absolute path, which is also the working directory.
 * Nothing else of the host exists there: no `/root`, `/home`, `/var`, `/run`, no sockets.
 * The command runs as uid 0 with only the file capabilities a build uses (chown, dac_override,
 * fowner, fsetid), no new privileges (setuid bits have no effect), and, with bwrap 0.8 or newer,
 * cannot create further user namespaces. Its environment is exactly what the caller gives.
 *
 * Options travel on fd 3 (`--args`), so environment values never appear in `ps`; bwrap reports on
 * fd 4 (`--json-status-fd`) whether the command ran and how it exited, which tells a sandbox that
 * could not be made from a command that failed.
 */
import { execFileSync } from 'node:child_process';
import * as nodeFs from 'node:fs';
import { delimiter, join, posix } from 'node:path';
import { SandboxUnavailableError } from '../errors';

/** Network of a RUN: none (a private loopback only, the default) or the host's (`--network host`). */
export type RunNetwork = 'none' | 'host';

/** What `buildImage` and the CLI tell users to do when no sandbox can be made. */
export const HOST_OPT_IN_HINT = "to run RUN directly on this host instead (no isolation), opt in with runExecutor: 'host' (CLI: --run-on-host)";

/** The directories of a host's system tools, besides `/usr` (links or real directories). */
const SYSTEM_DIRS = ['bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32'];

/**
 * The files of `/etc` a RUN gets (read-only, when the host has them): accounts (no shadow), name
 * resolution, CA certificates (never `/etc/ssl/private`), the dynamic linker's cache, Debian's
 * alternatives (`awk`, `nc`… are links through it), the time zone.
 */
const ETC_ENTRIES = [
  'passwd',
  'group',
  'hosts',
  'resolv.conf',
  'nsswitch.conf',
  'host.conf',
  'ssl/certs',
  'ssl/openssl.cnf',
  'pki/tls/certs',
  'pki/tls/openssl.cnf',
  'pki/ca-trust/extracted',
  'ca-certificates.conf',
  'ld.so.cache',
  'alternatives',
  'localtime',
];

/** Capabilities the command keeps (inside its user namespace): what file chores need, no more. */
const FILE_CAPABILITIES = ['CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FOWNER', 'CAP_FSETID'];

/** The hostname inside (a fixed name: the host's would leak into images and break reproducibility). */
const SANDBOX_HOSTNAME = 'cloudrootfs';

/** bwrap's `--json-status-fd` appeared in 0.5.0; `--disable-userns` in 0.8.0. */
const MIN_VERSION: Version = [0, 5, 0];
const DISABLE_USERNS_VERSION: Version = [0, 8, 0];

type Version = [number, number, number];

/** A bubblewrap binary and its version. */
export interface Bubblewrap {
  path: string;
  version: Version;
}

/** One mount of the host's system into the sandbox. */
export type SystemMount = { kind: 'ro-bind'; source: string; dest: string } | { kind: 'symlink'; target: string; dest: string };

/** Who the command is and what the kernel allows. */
export interface SandboxIdentity {
  /** The builder runs as root (uid 0 inside is then the host's uid 0, without most capabilities). */
  root: boolean;
  /** The kernel lets this process create a user namespace (for root: whether to ask for one). */
  userNamespaces: boolean;
}

/** What one sandboxed command needs. */
export interface SandboxCommand {
  /** Absolute, symlink-free path of the writable tree: mounted at the same path, the working directory. */
  root: string;
  /** The command (argv[0] is looked up in `env.PATH`). */
  argv: readonly string[];
  /** The complete environment of the command. */
  env: Readonly<Record<string, string>>;
  network: RunNetwork;
}

function compareVersions(a: Version, b: Version): number {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return 0;
}

function formatVersion(v: Version): string {
  return v.join('.');
}

const found = new Map<string, Bubblewrap | SandboxUnavailableError>();

/** The first executable `name` on `PATH` (a path with a slash is taken as is). */
function lookPath(name: string, path: string | undefined): string | undefined {
  if (name.includes('/')) return nodeFs.existsSync(name) ? name : undefined;
  for (const dir of (path ?? '/usr/local/bin:/usr/bin:/bin').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      nodeFs.accessSync(candidate, nodeFs.constants.X_OK);
      if (nodeFs.statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * Find bubblewrap (`bwrap` on PATH, or the given path) and its version, once per process. A
 * missing or too old one is a SandboxUnavailableError (returned, for the first RUN to throw).
 */
export function findBubblewrap(name = 'bwrap'): Bubblewrap | SandboxUnavailableError {
  const cached = found.get(name);
  if (cached) return cached;
  let result: Bubblewrap | SandboxUnavailableError;
  const path = lookPath(name, process.env.PATH);
  if (!path) {
    result = new SandboxUnavailableError(
      `RUN needs bubblewrap to sandbox its command, and ${name} was not found (install the bubblewrap package, e.g. apt-get install bubblewrap); ${HOST_OPT_IN_HINT}`,
      { reason: 'bwrap-missing', bwrap: name },
    );
  } else {
    let text = '';
    try {
      text = execFileSync(path, ['--version'], { encoding: 'utf8', env: {}, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch {
      text = '';
    }
    const m = /(\d+)\.(\d+)\.(\d+)/.exec(text);
    const version: Version | undefined = m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
    if (!version || compareVersions(version, MIN_VERSION) < 0) {
      result = new SandboxUnavailableError(
        `RUN needs bubblewrap ${formatVersion(MIN_VERSION)} or newer (${path} is ${version ? formatVersion(version) : 'of an unknown version'}); ${HOST_OPT_IN_HINT}`,
        { reason: 'bwrap-too-old', bwrap: path, version: version && formatVersion(version) },
      );
    } else result = { path, version };
  }
  found.set(name, result);
  return result;
}

/**
 * How this process may sandbox: as root, a user namespace is asked for only when the kernel has
 * them (`user.max_user_namespaces` > 0) and until one was refused; a non-root builder always needs
 * one (bwrap fails where it can't have it).
 */
export function sandboxIdentity(): SandboxIdentity {
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  if (userNamespaces === undefined) {
    let max = 0;
    try {
      max = Number(nodeFs.readFileSync('/proc/sys/user/max_user_namespaces', 'utf8').trim());
    } catch {
      // no such sysctl: a kernel without user namespaces
    }
    userNamespaces = max > 0;
  }
  return { root, userNamespaces };
}

/** Whether the kernel has user namespaces (read once per process). */
let userNamespaces: boolean | undefined;

/**
 * A root builder could not make a user namespace although the kernel has them (a seccomp policy,
 * a container runtime): stop asking for one in this process.
 */
export function forgoRootUserNamespaces(): void {
  userNamespaces = false;
}

/**
 * The host's system directories as mounts: `/usr` read-only, and each of `/bin`, `/sbin`,
 * `/lib*` as the same symlink when it is one (merged /usr), a read-only bind when it is a real
 * directory, nothing when absent. `systemRoot` is where they are read from (default `/`).
 */
export function systemMounts(systemRoot = '/'): SystemMount[] {
  const usr = posix.join(systemRoot, 'usr');
  if (!statOrUndefined(usr)?.isDirectory()) {
    throw new SandboxUnavailableError(`the RUN sandbox needs the host's /usr, and ${usr} is not a directory; ${HOST_OPT_IN_HINT}`, {
      reason: 'no-usr',
      systemRoot,
    });
  }
  const mounts: SystemMount[] = [{ kind: 'ro-bind', source: usr, dest: '/usr' }];
  for (const name of SYSTEM_DIRS) {
    const source = posix.join(systemRoot, name);
    const st = lstatOrUndefined(source);
    if (!st) continue;
    if (st.isSymbolicLink()) mounts.push({ kind: 'symlink', target: nodeFs.readlinkSync(source), dest: `/${name}` });
    else if (st.isDirectory()) mounts.push({ kind: 'ro-bind', source, dest: `/${name}` });
  }
  return mounts;
}

function lstatOrUndefined(path: string): nodeFs.Stats | undefined {
  try {
    return nodeFs.lstatSync(path);
  } catch {
    return undefined;
  }
}

function statOrUndefined(path: string): nodeFs.Stats | undefined {
  try {
    return nodeFs.statSync(path);
  } catch {
    return undefined;
  }
}

/**
 * The bwrap options for one command (they go on fd 3; the command follows `--` on the command
 * line). Order matters: bwrap applies mounts in order, so the rootfs comes last and may sit
 * anywhere, even under `/tmp` or `/dev`.
 */
export function bubblewrapOptions(
  command: SandboxCommand,
  bwrap: Bubblewrap,
  identity: SandboxIdentity,
  system: readonly SystemMount[],
  systemRoot = '/',
): string[] {
  const o: string[] = ['--unshare-all'];
  if (command.network === 'host') o.push('--share-net');
  const disableUserns = compareVersions(bwrap.version, DISABLE_USERNS_VERSION) >= 0 ? ['--disable-userns'] : [];
  if (!identity.root) o.push('--unshare-user', '--uid', '0', '--gid', '0', ...disableUserns);
  else if (identity.userNamespaces) o.push('--unshare-user', ...disableUserns);
  o.push('--cap-drop', 'ALL');
  for (const cap of FILE_CAPABILITIES) o.push('--cap-add', cap);
  o.push('--die-with-parent', '--new-session', '--hostname', SANDBOX_HOSTNAME);
  o.push('--clearenv');
  for (const [k, v] of Object.entries(command.env)) o.push('--setenv', k, v);
  for (const m of system) {
    if (m.kind === 'ro-bind') o.push('--ro-bind', m.source, m.dest);
    else o.push('--symlink', m.target, m.dest);
  }
  for (const name of ETC_ENTRIES) o.push('--ro-bind-try', posix.join(systemRoot, 'etc', name), `/etc/${name}`);
  o.push('--tmpfs', '/tmp', '--dev', '/dev', '--proc', '/proc', '--remount-ro', '/proc');
  o.push('--bind', command.root, command.root, '--chdir', command.root);
  return o;
}

/** NUL-separated, as `--args` reads them. */
export function encodeArgs(args: readonly string[]): Buffer {
  for (const a of args) {
    if (a.includes('\0')) throw new SandboxUnavailableError('a RUN environment value contains a NUL byte', { reason: 'nul-in-argument' });
  }
  return Buffer.from(args.map((a) => `${a}\0`).join(''), 'utf8');
}

/** What bwrap said on its status fd: the command's exit code, when it ran at all. */
export function commandExitCode(status: string): number | undefined {
  for (const line of status.split('\n')) {
    if (!line.trim()) continue;
    try {
      const doc = JSON.parse(line) as Record<string, unknown>;
      if (typeof doc['exit-code'] === 'number') return doc['exit-code'];
    } catch {
      // bwrap writes one JSON document a line; anything else is not ours to judge
    }
  }
  return undefined;
}

/** bwrap could not execute the command itself (a missing program): the command's failure, not the sandbox's. */
export function isExecFailure(output: string): boolean {
  return /^bwrap: execvp /m.test(output);
}
