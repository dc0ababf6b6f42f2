/**
 * How one registry is reached, decided once per client from the options, registries.conf and
 * certs.d: the scheme to start with, when to fall back to plain HTTP, whether certificates are
 * verified, the TLS material, the proxy and the timeouts (docs/registry.md#http-or-https).
 *
 * | setting (first that is set wins)                         | verify | scheme                         |
 * | ---                                                      | ---    | ---                            |
 * | `insecure: true`                                         | –      | http only                      |
 * | `tlsVerify` (per call), else `tls[registry].verify`: false | no   | https, then http on any failure |
 * | the same: true                                           | yes    | https only                     |
 * | `insecure: false`                                        | yes    | https only                     |
 * | registries.conf `insecure = true` for the registry       | no     | https, then http on any failure |
 * | a loopback host (`localhost`, 127.0.0.0/8, ::1)          | yes    | https, then http when the server answers in plain HTTP |
 * | anything else                                            | yes    | https only                     |
 */
import { RegistryBlockedError, UsageError } from '../errors';
import { certsForRegistry, type TlsMaterial } from './certs';
import { isLoopbackHost } from './http';
import {
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_STALL_MIN_BYTES,
  DEFAULT_STALL_TIMEOUT_MS,
  type RegistryOptions,
  type TlsSettings,
} from './options';
import { proxyResolver } from './proxy';
import { findRegistry, type LoadedRegistriesConf } from './registries-conf';
import { NodeTransport, fetchTransport, tlsConnectOptions, type Transport } from './transport';

/** When a client that started on https switches to plain http. */
export type HttpFallback = 'never' | 'plain-http' | 'any';

export interface EndpointPlan {
  scheme: 'https' | 'http';
  httpFallback: HttpFallback;
  verify: boolean;
  transport: Transport;
  /** registries.conf's `credential-helpers`, when it names any. */
  credentialHelpers?: string[];
}

/** What decides the plan besides the options. */
export interface EndpointContext {
  conf: LoadedRegistriesConf;
  /** registries.conf's `insecure` for this endpoint when the caller knows it (a mirror's own). */
  endpointInsecure?: boolean;
}

function asList(ca: TlsSettings['ca']): string[] {
  if (ca === undefined) return [];
  const list = Array.isArray(ca) ? ca : [ca];
  return list.map((c) => (typeof c === 'string' ? c : Buffer.from(c as Buffer).toString('utf8')));
}

/** The `tls` option's settings for `registry`, if it gives any. */
export async function tlsSettingsFor(registry: string, option: RegistryOptions['tls']): Promise<TlsSettings | undefined> {
  if (!option) return undefined;
  if (typeof option === 'function') return (await option(registry)) ?? undefined;
  return Object.prototype.hasOwnProperty.call(option, registry) ? option[registry] : undefined;
}

function materialOf(registry: string, settings: TlsSettings): TlsMaterial {
  const hasCert = settings.cert !== undefined;
  const hasKey = settings.key !== undefined;
  if (hasCert !== hasKey) {
    // The same rule as for certs.d: a client certificate needs its key, and the other way round.
    throw new UsageError(`the tls option for ${registry}: ${hasCert ? 'a client cert needs its key' : 'a key needs its client cert'}`);
  }
  return {
    ca: asList(settings.ca),
    certs: hasCert ? [String(settings.cert)] : [],
    keys: hasKey ? [String(settings.key)] : [],
    source: 'the tls option',
  };
}

/** Decides how `registry` is reached (throws RegistryBlockedError for a blocked registry). */
export async function planEndpoint(registry: string, options: RegistryOptions, context: EndpointContext): Promise<EndpointPlan> {
  const entry = findRegistry(context.conf, registry);
  if (entry?.blocked) throw new RegistryBlockedError(registry, context.conf.sources.join(', '));
  const settings = await tlsSettingsFor(registry, options.tls);
  const material = settings ? materialOf(registry, settings) : await certsForRegistry(registry, options);
  const confInsecure = context.endpointInsecure ?? entry?.insecure ?? false;
  const chosenVerify = options.tlsVerify ?? settings?.verify;
  let scheme: EndpointPlan['scheme'] = 'https';
  let httpFallback: HttpFallback = 'never';
  let verify = true;
  if (options.insecure === true) scheme = 'http';
  else if (chosenVerify === false) {
    verify = false;
    httpFallback = 'any';
  } else if (chosenVerify === true || options.insecure === false) {
    // verified https only
  } else if (confInsecure) {
    verify = false;
    httpFallback = 'any';
  } else if (isLoopbackHost(registry)) httpFallback = 'plain-http';

  const stall = {
    stallTimeoutMs: options.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS,
    stallMinBytes: options.stallMinBytes ?? DEFAULT_STALL_MIN_BYTES,
  };
  const transport = options.fetch
    ? fetchTransport(options.fetch, stall)
    : new NodeTransport({
        ...stall,
        tls: tlsConnectOptions(material, verify),
        proxy: proxyResolver(options.proxy, options.env ?? process.env),
        connectTimeoutMs: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      });
  return {
    scheme,
    httpFallback,
    verify,
    transport,
    ...(context.conf.credentialHelpers?.length ? { credentialHelpers: context.conf.credentialHelpers } : {}),
  };
}
