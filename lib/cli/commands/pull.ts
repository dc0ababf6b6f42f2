/** `cloudrootfs pull docker://HOST/REPO[:TAG] [-t NAME:TAG]`: an image from a registry into the store. */
import { UsageError } from '../../errors';
import { pullToStore } from '../../registry/pull';
import { parseRemoteReference } from '../../registry/remote';
import type { Command } from '../command';
import { print } from '../command';
import { limitsOf } from '../limits';
import { PLATFORM_OPTION, QUIET_OPTION, STORE_OPTION, openStore, platformOption, LIMIT_OPTION } from '../common';
import { progressFor } from '../progress';
import { REGISTRY_OPTIONS, registryAccess } from '../registry-options';
import { progressEvents } from './push';

export const pullCommand: Command = {
  name: 'pull',
  usage: 'pull docker://HOST/REPO[:TAG|@DIGEST] [-t NAME[:TAG]] [--platform OS/ARCH | --all-platforms] [--creds USER:PASS] [--authfile FILE] [--tls-verify=false] [--cert-dir DIR] [--registries-conf FILE] [-q] [--store DIR]',
  options: [
    { name: 'tag', alias: 't', type: 'string', placeholder: 'NAME[:TAG]', description: 'name in the store (default: HOST/REPO:TAG as pulled)' },
    PLATFORM_OPTION,
    { name: 'all-platforms', type: 'boolean', description: 'keep the whole index, every platform (its digest unchanged)' },
    ...REGISTRY_OPTIONS,
    QUIET_OPTION,
    LIMIT_OPTION,
    STORE_OPTION,
  ],
  positionals: [1, 1],
  async run(ctx) {
    const [reference] = ctx.args.positionals;
    if (!reference.startsWith('docker://')) throw new UsageError(`pull takes a docker://HOST/REPO[:TAG] reference, got ${reference}`);
    const platform = platformOption(ctx);
    const all = !!ctx.args.options['all-platforms'];
    if (platform && all) throw new UsageError('--platform and --all-platforms exclude each other');
    const ref = parseRemoteReference(reference);
    const tag = ctx.args.options.tag;
    if (typeof tag !== 'string' && ref.tag === undefined) {
      throw new UsageError(`${reference} names a digest only: give the store name with -t NAME:TAG`);
    }
    const name = typeof tag === 'string' ? tag : ref.name;
    const store = await openStore(ctx);
    const progress = progressFor(ctx, `pulling ${reference}`);
    try {
      const result = await pullToStore(reference, store, {
        ...registryAccess(ctx),
        ...(all ? { platforms: 'all' as const } : platform ? { platform } : {}),
        name,
        limits: limitsOf(ctx),
        onProgress: progressEvents(progress),
      });
      progress.done();
      const top = await store.resolve(result.name);
      print(ctx, `pulled ${result.reference} as ${name} ${top.digest}`);
    } finally {
      progress.done();
    }
  },
};
