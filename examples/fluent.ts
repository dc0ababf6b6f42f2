/**
 * Example: the same two images through the fluent ImageBuilder, without a Kubefile. Each call is
 * one step; `copy` and `run` make one layer each; `build()` gives an Image you can store or write
 * anywhere. Built this way, the images have the very digests the Kubefiles give.
 */
import { join } from 'node:path';
import { ImageBuilder, type RunExecutor } from '../lib/build';
import type { FileSystem } from '../lib/fs';
import type { Image } from '../lib/image/image';
import type { ImageStore } from '../lib/store';
import { BASE_TAG, EXAMPLE_PLATFORM, EXAMPLE_ROOT } from './build-image';

export interface FluentOptions {
  store: ImageStore;
  fs?: FileSystem;
  root?: string;
  runExecutor?: RunExecutor;
}

/** `FROM scratch` + `COPY . .` */
export function baseBuilder(options: FluentOptions): ImageBuilder {
  const root = options.root ?? EXAMPLE_ROOT;
  return ImageBuilder.from('scratch', { fs: options.fs, platform: EXAMPLE_PLATFORM, context: join(root, 'cloudrootfs') }).copy('.', '.');
}

/** `FROM cloudrootfs-example:v1.19.9` + `COPY daemon.json etc/` + `RUN rm -f statics/audit-policy.yml` */
export function childBuilder(options: FluentOptions): ImageBuilder {
  const root = options.root ?? EXAMPLE_ROOT;
  return ImageBuilder.from(BASE_TAG, {
    fs: options.fs,
    store: options.store,
    platform: EXAMPLE_PLATFORM,
    context: join(root, 'child'),
    runExecutor: options.runExecutor,
  })
    .copy('daemon.json', 'etc/')
    .run('rm -f statics/audit-policy.yml');
}

/**
 * The same deletion without RUN: `remove()` puts a whiteout in a batched-edit layer. No shell or
 * executor needed; the history says `cloudrootfs: remove statics/audit-policy.yml`.
 */
export function childBuilderWithRemove(options: FluentOptions): ImageBuilder {
  return ImageBuilder.from(BASE_TAG, { fs: options.fs, store: options.store, platform: EXAMPLE_PLATFORM, context: join(options.root ?? EXAMPLE_ROOT, 'child') })
    .copy('daemon.json', 'etc/')
    .remove('statics/audit-policy.yml');
}

export async function buildFluent(options: FluentOptions): Promise<{ base: Image; child: Image }> {
  return { base: await baseBuilder(options).build(), child: await childBuilder(options).build() };
}
