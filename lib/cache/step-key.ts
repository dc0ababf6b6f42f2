/**
 * The key of a COPY/ADD/APP step: the chain below it, what the instruction resolved to, and every
 * entry it copies, with file contents named by their sha256 (from the file digest memo, so
 * unchanged files are not read). Two builds get the same key exactly when the step must produce
 * the same layer.
 */
import { createHash } from 'node:crypto';
import type { Content } from '../content';
import type { Entry } from '../entry';
import { FsNode, canonicalWalk } from '../rootfs/node';
import { FileDigestMemo } from './file-digests';
import { STEP_KEY_VERSION, entryRecord } from './keys';

/** A resolved source (lib/build's ResolvedSource has this shape). */
export interface KeyedSource {
  /** The context path as named (its base name is what lands in the destination). */
  path: string;
  node: FsNode;
  isRoot: boolean;
}

export interface CopyStepDescription {
  /** Chain key of the rootfs the step applies to (may still be being computed). */
  chain: string | Promise<string>;
  /** The instruction as a Kubefile line (`COPY --chmod=755 bin bin`). */
  instruction: string;
  /** Everything else the step resolved to (copy mode, owner, chmod, epoch, destination, …). */
  settings: Readonly<Record<string, unknown>>;
  sources: readonly KeyedSource[];
}

export interface StepKey {
  key: string;
  /** The context files the key depends on, to re-check before the result is recorded. */
  contents: Content[];
}

function* sourceEntries(sources: readonly KeyedSource[]): Generator<{ source: number; path: string; entry: Entry }> {
  for (let i = 0; i < sources.length; i++) {
    for (const step of canonicalWalk(sources[i].node)) {
      if (step.kind === 'entry') yield { source: i, path: step.path, entry: step.node.entry! };
    }
  }
}

export async function copyStepKey(step: CopyStepDescription, memo: FileDigestMemo): Promise<StepKey> {
  const files: Content[] = [];
  for (const { entry } of sourceEntries(step.sources)) if (entry.type === 'file') files.push(entry.content);
  // The files are hashed first (in the memo's queue, in step order); the chain only then.
  const digests = await memo.digests(files);
  const chain = await step.chain;

  const hash = createHash('sha256');
  hash.update(JSON.stringify([STEP_KEY_VERSION, 'step', chain, step.instruction, step.settings]));
  // Entry objects met twice in one step become hardlinks: name each by its first position.
  const firstSeen = new Map<Entry, number>();
  let index = 0;
  let current = -1;
  for (const { source, path, entry } of sourceEntries(step.sources)) {
    if (source !== current) {
      current = source;
      const s = step.sources[source];
      hash.update('\n' + JSON.stringify(['source', s.path, s.isRoot]));
    }
    let link: number | undefined;
    if (entry.type === 'file') {
      link = firstSeen.get(entry);
      if (link === undefined) firstSeen.set(entry, index);
    }
    hash.update('\n' + JSON.stringify(entryRecord(path, entry, entry.type === 'file' ? digests.get(entry.content) : undefined, link)));
    index++;
  }
  return { key: hash.digest('hex'), contents: [...new Set(files)] };
}
