/** `cloudrootfs push SOURCE docker://HOST/REPO[:TAG]`: an image from the store (or any reference) to a registry. */
import { UsageError } from '../../errors';
import type { OptionSpec } from '../args';
import { pushImage } from '../../registry/push';
import type { RegistryAccessOptions } from '../../registry/remote';
import type { RegistryProgress } from '../../registry/target';
import { loadTarget } from '../../transports';
import type { Command, CommandContext } from '../command';
import { print } from '../command';
import { PLATFORM_OPTION, QUIET_OPTION, STORE_OPTION, humanSize, loadOptions, platformOption, LIMIT_OPTION } from '../common';
import { progressFor, type ProgressLine } from '../progress';

/** The options every registry command takes (skopeo's names). */
export const REGISTRY_OPTIONS: OptionSpec[] = [
  { name: 'creds', type: 'string', placeholder: 'USER[:PASS]', description: 'credentials for the registry (else the auth file\'s)' },
  { name: 'authfile', type: 'string', placeholder: 'FILE', description: 'auth file to read credentials from (default: $REGISTRY_AUTH_FILE, containers auth.json, ~/.docker/config.json)' },
  { name: 'insecure', type: 'boolean', description: 'plain http (loopback registries use http anyway)' },
];

/** How the registry commands reach a registry, from their options. */
export function registryAccess(ctx: CommandContext): RegistryAccessOptions {
  const creds = ctx.args.options.creds;
  const authFile = ctx.args.options.authfile;
  const out: RegistryAccessOptions = { authFs: ctx.fs, env: ctx.env };
  if (typeof creds === 'string') {
    const colon = creds.indexOf(':');
    if (colon <= 0) throw new UsageError('--creds takes USER:PASSWORD');
    out.credentials = { username: creds.slice(0, colon), password: creds.slice(colon + 1) };
  }
  if (typeof authFile === 'string') out.authFile = authFile;
  if (ctx.args.options.insecure) out.insecure = true;
  return out;
}

/** Progress events for the terminal line (byte counts are not drawn). */
export function progressEvents(progress: ProgressLine): (event: RegistryProgress) => void {
  return (event) => {
    if (event.phase !== 'bytes') progress.onProgress(event);
  };
}

export const pushCommand: Command = {
  name: 'push',
  usage: 'push SOURCE docker://HOST/REPO[:TAG] [--platform OS/ARCH] [--creds USER:PASS] [--authfile FILE] [--insecure] [-q] [--store DIR]',
  options: [
    { ...PLATFORM_OPTION, description: 'push only this platform of an index (default: all of them)' },
    ...REGISTRY_OPTIONS,
    QUIET_OPTION,
    LIMIT_OPTION,
    STORE_OPTION,
  ],
  positionals: [2, 2],
  async run(ctx) {
    const [source, destination] = ctx.args.positionals;
    if (!destination.startsWith('docker://')) throw new UsageError(`push needs a docker://HOST/REPO[:TAG] destination, got ${destination}`);
    const access = registryAccess(ctx);
    const platform = platformOption(ctx);
    // A registry source is copied registry to registry (mounting blobs within one registry).
    const target = source.startsWith('docker://') ? source : await loadTarget(source, loadOptions(ctx));
    const progress = progressFor(ctx, `pushing ${destination}`);
    try {
      const result = await pushImage(target, destination, {
        ...access,
        ...(platform ? { platforms: [platform] } : {}),
        onProgress: progressEvents(progress),
      });
      progress.done();
      const s = result.stats;
      print(ctx, `pushed ${result.reference} ${result.digest}`);
      print(ctx, `  blobs: ${s.uploaded} uploaded (${humanSize(s.bytesUploaded)}), ${s.mounted} mounted, ${s.existing} already there`);
    } finally {
      progress.done();
    }
  },
};
