/** `cloudrootfs push SOURCE docker://HOST/REPO[:TAG]`: an image from the store (or any reference) to a registry. */
import { UsageError } from '../../errors';
import { pushImage } from '../../registry/push';
import type { RegistryProgress } from '../../registry/target';
import { loadTarget } from '../../transports';
import type { Command, CommandContext } from '../command';
import { print } from '../command';
import { PLATFORM_OPTION, QUIET_OPTION, STORE_OPTION, humanSize, loadOptions, platformOption, LIMIT_OPTION } from '../common';
import { progressFor, type ProgressLine } from '../progress';
import { REGISTRY_OPTIONS, registryAccess } from '../registry-options';

/** Progress events for the terminal line (byte counts are not drawn). */
export function progressEvents(progress: ProgressLine): (event: RegistryProgress) => void {
  return (event) => {
    if (event.phase !== 'bytes') progress.onProgress(event);
  };
}

export const pushCommand: Command = {
  name: 'push',
  usage: 'push SOURCE docker://HOST/REPO[:TAG] [--platform OS/ARCH] [--creds USER:PASS] [--authfile FILE] [--tls-verify=false] [--cert-dir DIR] [-q] [--store DIR]',
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
