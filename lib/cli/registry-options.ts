/**
 * The options every command that talks to registries takes (push, pull, login, build), with
 * skopeo's names where skopeo has them: `--creds`, `--authfile`, `--tls-verify`, `--cert-dir`,
 * `--registries-conf`, `--retry-times`. Proxies come from the environment (`HTTPS_PROXY`,
 * `HTTP_PROXY`, `NO_PROXY`), as for skopeo.
 */
import { UsageError } from '../errors';
import type { RegistryOptions } from '../registry/options';
import type { OptionSpec } from './args';
import type { CommandContext } from './command';

export const CREDS_OPTION: OptionSpec = { name: 'creds', type: 'string', placeholder: 'USER[:PASS]', description: 'credentials for the registry (else credential helpers and the auth file\'s)' };
export const AUTHFILE_OPTION: OptionSpec = {
  name: 'authfile',
  type: 'string',
  placeholder: 'FILE',
  description: 'auth file to read credentials (and credential helpers) from (default: $REGISTRY_AUTH_FILE, containers auth.json, ~/.docker/config.json)',
};
export const INSECURE_OPTION: OptionSpec = { name: 'insecure', type: 'boolean', description: 'plain http to every registry (loopback registries fall back to http by themselves)' };
export const TLS_VERIFY_OPTION: OptionSpec = {
  name: 'tls-verify',
  type: 'boolean',
  description: 'verify registry certificates (--tls-verify=false: skip the check and allow plain http, as skopeo)',
};
export const CERT_DIR_OPTION: OptionSpec = {
  name: 'cert-dir',
  type: 'string',
  placeholder: 'DIR',
  description: 'use *.crt (CAs), *.cert and *.key (client certificate) in DIR instead of the certs.d directories',
};
export const REGISTRIES_CONF_OPTION: OptionSpec = {
  name: 'registries-conf',
  type: 'string',
  placeholder: 'FILE',
  description: 'registries.conf with mirrors, insecure and blocked registries (default: $CONTAINERS_REGISTRIES_CONF, ~/.config/containers/registries.conf, /etc/containers/registries.conf)',
};
export const RETRY_TIMES_OPTION: OptionSpec = { name: 'retry-times', type: 'string', placeholder: 'N', description: 'retries of a failed request (default 4)' };
export const CONNECT_TIMEOUT_OPTION: OptionSpec = { name: 'connect-timeout', type: 'string', placeholder: 'SECONDS', description: 'longest wait for a new connection (default 10)' };
export const STALL_TIMEOUT_OPTION: OptionSpec = {
  name: 'stall-timeout',
  type: 'string',
  placeholder: 'SECONDS',
  description: 'a request that moves no data for this long fails and is retried (default 15)',
};

/** How to reach registries, for the commands that transfer images. */
export const REGISTRY_OPTIONS: OptionSpec[] = [
  CREDS_OPTION,
  AUTHFILE_OPTION,
  TLS_VERIFY_OPTION,
  CERT_DIR_OPTION,
  REGISTRIES_CONF_OPTION,
  INSECURE_OPTION,
  RETRY_TIMES_OPTION,
  CONNECT_TIMEOUT_OPTION,
  STALL_TIMEOUT_OPTION,
];

function seconds(ctx: CommandContext, name: string): number | undefined {
  const text = ctx.args.options[name];
  if (typeof text !== 'string') return undefined;
  if (!/^\d+(\.\d+)?$/.test(text)) throw new UsageError(`--${name} takes a number of seconds (got ${JSON.stringify(text)})`);
  return Math.round(Number(text) * 1000);
}

/** RegistryOptions from the registry options a command declares (undeclared ones are not read). */
export function registryAccess(ctx: CommandContext): RegistryOptions {
  const o = ctx.args.options;
  const out: RegistryOptions = { authFs: ctx.fs, env: ctx.env };
  if (typeof o.creds === 'string') {
    const colon = o.creds.indexOf(':');
    if (colon <= 0) throw new UsageError('--creds takes USER:PASSWORD');
    out.credentials = { username: o.creds.slice(0, colon), password: o.creds.slice(colon + 1) };
  }
  if (typeof o.authfile === 'string') out.authFile = o.authfile;
  if (o.insecure) out.insecure = true;
  if (typeof o['tls-verify'] === 'boolean') out.tlsVerify = o['tls-verify'];
  if (typeof o['cert-dir'] === 'string') out.certDir = o['cert-dir'];
  if (typeof o['registries-conf'] === 'string') out.registriesConf = o['registries-conf'];
  const retries = o['retry-times'];
  if (typeof retries === 'string') {
    if (!/^\d+$/.test(retries)) throw new UsageError(`--retry-times takes a number (got ${JSON.stringify(retries)})`);
    out.retries = Number(retries);
  }
  const connect = seconds(ctx, 'connect-timeout');
  if (connect !== undefined) out.connectTimeoutMs = connect;
  const stall = seconds(ctx, 'stall-timeout');
  if (stall !== undefined) out.stallTimeoutMs = stall;
  return out;
}
