/**
 * Credential helpers: the `docker-credential-NAME` programs that keep registry secrets in a
 * keychain, a password manager or a cloud's token service, in docker-credential-helpers'
 * protocol (the one docker, skopeo and podman speak):
 *
 *   docker-credential-NAME get    stdin: the server (`host[:port]`)   stdout: {"ServerURL","Username","Secret"}
 *   docker-credential-NAME store  stdin: {"ServerURL","Username","Secret"}
 *   docker-credential-NAME erase  stdin: the server
 *
 * A helper reports failure by exiting non-zero with its message on stdout; the message
 * `credentials not found in native keychain` means "none stored", which is not an error. A
 * `Username` of `<token>` means the secret is an identity (OAuth2 refresh) token.
 *
 * Every failure is a CredentialHelperError whose text never holds a secret: what the helper
 * printed is included only after removing the secret we sent (and its base64), and only when it
 * exited with an error (a successful answer we cannot read may itself be the secret).
 */
import { spawn } from 'node:child_process';
import { CredentialHelperError } from '../errors';

/** What helpers print when they hold nothing for the server (docker-credential-helpers). */
export const HELPER_NOT_FOUND = 'credentials not found in native keychain';

/** The `Username` that marks an identity token. */
export const IDENTITY_TOKEN_USERNAME = '<token>';

/** A helper's answer to `get`. */
export interface HelperCredentials {
  username: string;
  secret: string;
}

/** Longest a helper may take (a keychain may be waiting for an unlock prompt). */
const HELPER_TIMEOUT_MS = 60_000;
/** Most output read from a helper. */
const MAX_HELPER_OUTPUT = 1 << 20;

interface HelperRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The program a helper name stands for (names are plain words: no paths, no options). */
export function helperProgram(name: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._+-]*$/.test(name)) {
    throw new CredentialHelperError(`invalid credential helper name ${JSON.stringify(name)}`, { helper: name });
  }
  return `docker-credential-${name}`;
}

function runHelper(name: string, action: 'get' | 'store' | 'erase', input: string, env: NodeJS.ProcessEnv): Promise<HelperRun> {
  const program = helperProgram(name);
  return new Promise((resolve, reject) => {
    let child: ReturnType<typeof spawn>;
    try {
      // An environment given without PATH (a test's, an SDK caller's) still finds helpers on ours.
      child = spawn(program, [action], { env: env.PATH === undefined ? { ...env, PATH: process.env.PATH } : env, stdio: ['pipe', 'pipe', 'pipe'] });
    } catch (err) {
      reject(notRunnable(name, action, err));
      return;
    }
    let stdout = '';
    let stderr = '';
    let settled = false;
    const settle = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fn();
    };
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      settle(() => reject(new CredentialHelperError(`${program} ${action} did not finish within ${HELPER_TIMEOUT_MS / 1000} s`, { helper: name, action })));
    }, HELPER_TIMEOUT_MS);
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      if (stdout.length < MAX_HELPER_OUTPUT) stdout += d;
    });
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      if (stderr.length < MAX_HELPER_OUTPUT) stderr += d;
    });
    child.once('error', (err) => settle(() => reject(notRunnable(name, action, err))));
    child.once('close', (code) => settle(() => resolve({ code, stdout, stderr })));
    // A helper that exits without reading stdin makes the write fail: its exit status says more.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(input);
  });
}

function notRunnable(name: string, action: string, err: unknown): CredentialHelperError {
  const code = (err as { code?: unknown })?.code;
  const program = `docker-credential-${name}`;
  return new CredentialHelperError(
    code === 'ENOENT' ? `the credential helper ${program} is not installed (not found on PATH)` : `the credential helper ${program} could not be run: ${String((err as Error)?.message ?? err)}`,
    { helper: name, action, errno: typeof code === 'string' ? code : undefined },
  );
}

/** Text a helper printed, safe to show: secrets removed, whitespace collapsed, bounded. */
function shown(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) {
    if (!s) continue;
    for (const form of [s, Buffer.from(s).toString('base64')]) out = out.split(form).join('<redacted>');
  }
  out = out.replace(/\s+/g, ' ').trim();
  return out.length > 300 ? `${out.slice(0, 300)}…` : out;
}

function failure(name: string, action: string, server: string, run: HelperRun, secrets: readonly string[] = []): CredentialHelperError {
  const said = shown(run.stdout, secrets) || shown(run.stderr, secrets);
  return new CredentialHelperError(
    `docker-credential-${name} ${action} for ${server} failed (exit ${run.code ?? 'signal'})${said ? `: ${said}` : ''}`,
    { helper: name, action, server, exitCode: run.code },
  );
}

/** The credentials a helper holds for `server`, or undefined when it holds none. */
export async function helperGet(name: string, server: string, env: NodeJS.ProcessEnv): Promise<HelperCredentials | undefined> {
  const run = await runHelper(name, 'get', server, env);
  if (run.code !== 0) {
    if (run.stdout.trim() === HELPER_NOT_FOUND) return undefined;
    throw failure(name, 'get', server, run);
  }
  let json: unknown;
  try {
    json = JSON.parse(run.stdout);
  } catch {
    // Not shown: whatever it printed may be the secret itself.
    throw new CredentialHelperError(`docker-credential-${name} get for ${server} printed something that is not the expected JSON`, {
      helper: name,
      action: 'get',
      server,
    });
  }
  const { Username, Secret } = (json ?? {}) as { Username?: unknown; Secret?: unknown };
  if (typeof Username !== 'string' || typeof Secret !== 'string') {
    throw new CredentialHelperError(`docker-credential-${name} get for ${server} answered without a Username and Secret`, {
      helper: name,
      action: 'get',
      server,
    });
  }
  if (Username === '' && Secret === '') return undefined;
  return { username: Username, secret: Secret };
}

/** Stores credentials for `server` in the helper. */
export async function helperStore(name: string, server: string, username: string, secret: string, env: NodeJS.ProcessEnv): Promise<void> {
  const run = await runHelper(name, 'store', JSON.stringify({ ServerURL: server, Username: username, Secret: secret }), env);
  if (run.code !== 0) throw failure(name, 'store', server, run, [secret]);
}

/** Removes the helper's credentials for `server`; false when it held none. */
export async function helperErase(name: string, server: string, env: NodeJS.ProcessEnv): Promise<boolean> {
  const run = await runHelper(name, 'erase', server, env);
  if (run.code === 0) return true;
  if (run.stdout.trim() === HELPER_NOT_FOUND) return false;
  throw failure(name, 'erase', server, run);
}
