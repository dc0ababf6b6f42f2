/**
 * Example: the two Kubefile workflows with buildImage().
 *
 *   1. examples/cloudrootfs/Kubefile  (FROM scratch + COPY . .)           → cloudrootfs-example:v1.19.9
 *   2. examples/child/Kubefile       (FROM that + COPY daemon.json etc/
 *                                      + RUN rm -f statics/audit-policy.yml) → cloudrootfs-example-child:v1.19.9
 *
 * Run it: `npm run build && node scripts/example.js` does the same from the compiled library;
 * `npx jest examples` runs this module on memfs (examples/example.test.ts).
 */
import { join } from 'node:path';
import { buildImage, type BuildImageResult, type RunExecutor } from '../lib/build';
import type { FileSystem } from '../lib/fs';
import type { ImageStore } from '../lib/store';

export const EXAMPLE_ROOT = __dirname;
export const BASE_TAG = 'cloudrootfs-example:v1.19.9';
export const CHILD_TAG = 'cloudrootfs-example-child:v1.19.9';
/** The example's Metadata says amd64; building for it explicitly gives the same digests on any machine. */
export const EXAMPLE_PLATFORM = 'linux/amd64';

export interface ExampleOptions {
  store: ImageStore;
  fs?: FileSystem;
  /** Directory holding `cloudrootfs/` and `child/` (default: this directory). */
  root?: string;
  /** RUN executor for the child (default: the sandbox on node:fs; pass builtinRunExecutor() on memfs). */
  runExecutor?: RunExecutor;
  onStep?: (line: string) => void;
}

export interface ExampleResult {
  base: BuildImageResult;
  child: BuildImageResult;
}

export async function buildExample(options: ExampleOptions): Promise<ExampleResult> {
  const root = options.root ?? EXAMPLE_ROOT;
  const common = {
    fs: options.fs,
    store: options.store,
    platforms: [EXAMPLE_PLATFORM],
    runExecutor: options.runExecutor,
    onProgress: options.onStep
      ? (e: { phase: string; instruction?: string }) => {
          if (e.phase === 'step') options.onStep!(e.instruction!);
        }
      : undefined,
  };
  const base = await buildImage({ ...common, context: join(root, 'cloudrootfs'), tag: BASE_TAG });
  const child = await buildImage({ ...common, context: join(root, 'child'), tag: CHILD_TAG });
  return { base, child };
}
