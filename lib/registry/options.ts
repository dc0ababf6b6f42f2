/**
 * How to reach registries: one set of options, declared here once, that the client, push, pull,
 * login, the embedded registry, the build cache and the CLI all take and pass through unchanged.
 * Every field is optional; the defaults are those of docker and the containers tools (skopeo,
 * podman), with the files they read (docs/registry.md lists each setting with its file, flag and
 * option).
 */
import type { FileSystem } from '../fs';
import type { RegistryCredentials } from './auth-file';
import type { RegistriesConfig } from './registries-conf';

/** TLS for one registry: what a certs.d directory holds, given directly. */
export interface TlsSettings {
  /** Extra CA certificates (PEM), trusted on top of the system's roots (certs.d `*.crt`). */
  ca?: string | Buffer | ReadonlyArray<string | Buffer>;
  /** Client certificate (PEM) for registries that ask for one (mTLS; certs.d `*.cert`). */
  cert?: string | Buffer;
  /** Its private key (PEM; certs.d `*.key`). */
  key?: string | Buffer;
  /**
   * false: do not verify the registry's certificate, and fall back to plain HTTP when HTTPS
   * fails (skopeo's `--tls-verify=false`, registries.conf `insecure = true`).
   */
  verify?: boolean;
}

/** TLS settings per registry (`host[:port]` as written in references), or a function choosing them. */
export type TlsOption =
  | Readonly<Record<string, TlsSettings>>
  | ((registry: string) => TlsSettings | undefined | Promise<TlsSettings | undefined>);

/** Proxies as the environment variables give them (`HTTP_PROXY`, `HTTPS_PROXY`, `NO_PROXY`). */
export interface ProxySettings {
  httpProxy?: string;
  httpsProxy?: string;
  noProxy?: string;
}

/**
 * Which proxy a request goes through:
 * - unset: `HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY` (or lower-case) from `env`, read as Go's
 *   `http.ProxyFromEnvironment` reads them (what skopeo, podman, docker and containerd use);
 * - `false`: never a proxy;
 * - a URL: that proxy for every request (as containers/image's `DockerProxyURL`);
 * - ProxySettings: the same rules as the environment, with these values;
 * - a function: the proxy URL for a request URL, or undefined to go direct.
 */
export type ProxyOption = false | string | ProxySettings | ((url: URL) => string | undefined);

/** Defaults of the timeouts (docs/registry.md#timeouts). */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
export const DEFAULT_STALL_TIMEOUT_MS = 15_000;
export const DEFAULT_STALL_MIN_BYTES = 1024;

/** How to reach registries. Every field is optional; the defaults are docker's and skopeo's. */
export interface RegistryOptions {
  /** Credentials for the registries this call names (else credential helpers and auth files). */
  credentials?: RegistryCredentials;
  /** Read credentials from this auth file only (and its credential helpers); `false` reads none. */
  authFile?: string | false;
  /**
   * true: plain http to every registry of the call; false: https only, even for loopback hosts;
   * unset: https, with a fall back to http for loopback hosts that do not speak TLS and for
   * registries that are `insecure` in registries.conf or whose TLS is not verified.
   */
  insecure?: boolean;
  /**
   * Verify registries' certificates (skopeo's `--tls-verify`). false: skip verification and fall
   * back to plain HTTP when HTTPS fails; true: verify, whatever registries.conf says.
   */
  tlsVerify?: boolean;
  /**
   * A directory of `*.crt`, `*.cert` and `*.key` files used for every registry of the call instead
   * of the per-registry certs.d directories (skopeo's `--cert-dir`).
   */
  certDir?: string;
  /**
   * The certs.d roots searched for a `HOST[:PORT]` directory, first existing one wins (default:
   * `$HOME/.config/containers/certs.d`, `/etc/containers/certs.d`, `/etc/docker/certs.d`).
   */
  certsDirs?: readonly string[];
  /** TLS per registry, given directly; replaces the certs.d directory of that registry. */
  tls?: TlsOption;
  /** Proxies (default: from the environment, as Go programs read it). */
  proxy?: ProxyOption;
  /**
   * registries.conf (v2) to read mirrors, `insecure` and `blocked` from: a file (skopeo's
   * `--registries-conf`), its content already parsed, or `false` for none. Default:
   * `$CONTAINERS_REGISTRIES_CONF`, else `$HOME/.config/containers/registries.conf` when it
   * exists, else `/etc/containers/registries.conf`, each with its `registries.conf.d` drop-ins.
   */
  registriesConf?: string | false | RegistriesConfig;
  /** Longest wait for a new connection: TCP, proxy tunnel and TLS handshake (default 10 s). */
  connectTimeoutMs?: number;
  /**
   * Longest time a request may make no progress (default 15 s): fewer than `stallMinBytes` sent
   * or received, or no answer yet. A stalled request fails with TimeoutError (`TIMEOUT`) and is
   * retried like a dropped connection.
   */
  stallTimeoutMs?: number;
  /** Bytes that count as progress within `stallTimeoutMs` (default 1024: a drip is a stall too). */
  stallMinBytes?: number;
  /** Extra attempts after the first for transient failures (default 4). */
  retries?: number;
  /** First backoff step in ms (default 250); doubles per attempt, with jitter. */
  retryBaseDelayMs?: number;
  /** Cap for one wait, backoff or `Retry-After`, in ms (default 30000). */
  maxRetryDelayMs?: number;
  userAgent?: string;
  /**
   * A fetch for every request (tests, instrumentation). It replaces the built-in HTTP client, so
   * `tls`, certs.d, `proxy` and `connectTimeoutMs` are then its business; the stall timeout
   * still applies.
   */
  fetch?: typeof fetch;
  /** Filesystem for the configuration files: auth files, certs.d, registries.conf (default: the disk). */
  authFs?: FileSystem;
  /** Environment for discovery (`HOME`, `REGISTRY_AUTH_FILE`, proxies, `PATH` of credential helpers…). */
  env?: NodeJS.ProcessEnv;
  homeDir?: string;
  /** Hash uploaded blobs here too, not only in the registry (see RegistryClient). */
  verifyUploads?: boolean;
}
