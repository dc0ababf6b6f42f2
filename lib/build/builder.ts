/**
 * ImageBuilder: the fluent way to make a CloudImage, and the one engine behind Kubefiles too
 * (the interpreter calls these same methods).
 *
 * A builder is an immutable list of steps: every method returns a new builder, so a builder can
 * be branched, and nothing runs until `build()` (or `rootfs()`). Each builder remembers the state
 * its steps lead to, so branches share the work of their common prefix.
 *
 * Layers are explicit and predictable:
 * - one layer per `copy`, `add`, `app`/`cni`/`csi` and `run` step (even when it changes nothing);
 * - `file`, `directory`, `symlink`, `remove`, `metadata` and `edit` are batched into one layer,
 *   made when the next layer step starts or at `build()`;
 * - `label`, `env`, `maintainer`, `kubeVersion`, `launch`, `cmds`, `appCmds`, `appEnv`… change
 *   only the config or the sealer extension and add an `empty_layer` history entry.
 * Every layer is `diff(before, after)`, so it holds only what changed and deletions are whiteouts.
 * History `created` and the config's `created` are the source date epoch (default 0, or
 * `SOURCE_DATE_EPOCH`), mtimes are clamped to it, and copied files are owned by 0:0.
 */
import type { BuildCache } from '../cache';
import { posix } from 'node:path';
import { Content, fileContent } from '../content';
import { AttributeOptions, checkAttributes, directoryEntry, fileEntry, symlinkEntry } from '../entry';
import { BuildError, CloudRootfsError, ImageNotFoundError, KubefileSyntaxError, NotFoundError, UsageError } from '../errors';
import { FileSystem, diskFs } from '../fs';
import { Image, ImageIndex, selectImage, timestamp } from '../image/image';
import { formatPlatform, hostPlatform, normalizePlatform, parsePlatform } from '../image/platform';
import type { HistoryEntry, Platform } from '../image/types';
import { diff } from '../layer/diff';
import { cleanPath } from '../path';
import { Rootfs } from '../rootfs/rootfs';
import {
  APP_INSTALLER,
  DEFAULT_BUILD_CLIENT,
  KUBE_INSTALLER,
  SEALER_CONTAINER_IMAGES_ANNOTATION,
  getImageExtension,
  withImageExtension,
  withKubeCni,
  withKubeCsi,
  withMetadata,
  withSealerVersion,
  withSupportedKubeVersion,
  type CloudRootfsMetadata,
  type ImageExtension,
  type SealerApplication,
} from '../sealer';
import { loadTarget, parseImageRef } from '../transports';
import { isRemoteSource, unpackArchives } from './add';
import { CACHE_DIR } from '../cache/build-cache';
import { RemoteFetcher, isHttpSource, type FetchedFile } from './remote-fetch';
import { appDirectory, detectApp } from './apps';
import { CacheLink, CopyKeyInput, RunKeyInput, baseLink, linkLayer, scratchLink, selectBuildCache } from './cache-link';
import { BuildContext, readBuildContext } from './context';
import { CopyMode, Owner, checkChown, copyResolved, parseChmod, parseChown, resolveSources, type ResolvedSource } from './copy';
import { ExtensionState, checkAppName, finalExtension, findApp, initialExtensionState, updateApp, withApp } from './extension-state';
import {
  appCmdsHistory,
  appEnvHistory,
  appHistory,
  cmdHistory,
  copyHistory,
  keyValueHistory,
  listHistory,
  runHistory,
  simpleHistory,
} from './history';
import { RunExecutor, RunExecutorName, RunNetwork, RunUnavailableError, resolveRunExecutor } from './run';

/** Where `FROM name:tag` looks first: the local store (lib/store's ImageStore fits). */
export interface BaseImageStore {
  loadTarget(name: string): Promise<Image | ImageIndex>;
}

/**
 * The hook for bases the store does not hold (a registry client, once configured):
 * given the reference and the platform being built, return the image or index.
 */
export type ResolveBase = (ref: string, platform: Platform) => Promise<Image | ImageIndex>;

export type ImageType = typeof KUBE_INSTALLER | typeof APP_INSTALLER;

/** A step's progress, for `onProgress`. */
export interface StepProgress {
  phase: 'step';
  /** 1-based index of the step in its builder chain. */
  index: number;
  /** The step as a Kubefile line (`COPY . .`). */
  instruction: string;
  platform: string;
}

export interface BuilderOptions {
  /** Filesystem for contexts given as directory paths (default node:fs). */
  fs?: FileSystem;
  /** Platform of the image (default: the base image's, else this machine's). */
  platform?: Platform | string;
  /** Seconds: config/history `created`, upper bound for mtimes (default `SOURCE_DATE_EPOCH` or 0). */
  sourceDateEpoch?: number;
  /** Environment consulted for `SOURCE_DATE_EPOCH` (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** COPY semantics (default `docker`; `legacy` = sealer v0.7–v0.8 nesting). */
  copyMode?: CopyMode;
  /** The build context used by `copy`/`add`/`app` steps that name none: a directory or a read context. */
  context?: string | BuildContext;
  /** Where `from('name:tag')` looks first. */
  store?: BaseImageStore;
  /** Where it looks next (e.g. a registry). */
  resolveBase?: ResolveBase;
  /**
   * Runs RUN steps: an executor, or `sandbox` (the default on node:fs: bubblewrap, the rootfs the
   * only writable tree), `host` (on this host, without isolation: an explicit opt-in) or `builtin`
   * (no shell; any filesystem). Other filesystems than node:fs have no default.
   */
  runExecutor?: RunExecutor | RunExecutorName;
  /** The network RUN steps may use: `none` (default) or `host` (buildah's and docker build's `--network host`). */
  network?: RunNetwork;
  /** sealer image type (default `kube-installer`). */
  imageType?: ImageType;
  /** `buildClient` of the sealer extension (default: {@link DEFAULT_BUILD_CLIENT}). */
  buildClient?: ImageExtension['buildClient'];
  /** Value of the `io.sealer.version` label (default: the build client's sealer version; false: no label). */
  sealerVersionLabel?: string | false;
  onProgress?: (event: StepProgress) => void;
  /**
   * The build cache (docs/performance.md): COPY/ADD/APP steps whose sources are unchanged reuse
   * their layer's blob, and any layer whose diff_id is known reuses its blob. Default: on when
   * `store` is an ImageStore (its `cache/`); `false` turns it off; a BuildCache chooses one.
   */
  cache?: boolean | BuildCache;
  /** Where the FROM of these steps sits in a Kubefile (for error messages). */
  fromOrigin?: StepOrigin;
  /**
   * Downloads `http(s)://` sources of ADD and APP/CNI/CSI (docs/building.md, "Remote sources").
   * Default: one per builder family, caching under the store's `cache/downloads` when the build
   * cache is on, else in a temporary directory removed at process exit.
   */
  fetcher?: RemoteFetcher;
}

/** Where a step came from in a Kubefile (for error messages). */
export interface StepOrigin {
  file?: string;
  line: number;
  column?: number;
}

export type ContextSpec = string | BuildContext | Rootfs | ImageBuilder;

/** What a build starts from: `scratch`, a reference, an image or index, or another builder (a stage). */
export type BaseSpec = 'scratch' | string | Image | ImageIndex | ImageBuilder;

export interface CopyStepOptions {
  /** The context to copy from (default: the builder's). A directory, a read context, a Rootfs, or another builder's result (`COPY --from`). */
  from?: ContextSpec;
  /** Shown as `--from=` in the history (the interpreter passes the stage name). */
  fromName?: string;
  /** `USER[:GROUP]` or ids. */
  chown?: string | Owner;
  /** Octal text (`755`) or a number. */
  chmod?: string | number;
  /** Override the builder's copy mode for this step. */
  mode?: CopyMode;
  /** ADD of one URL: the digest the download must have (`sha256:<hex>`, as BuildKit's `--checksum`). */
  checksum?: string;
}

export interface EntryOptions {
  mode?: number;
  uid?: number;
  gid?: number;
  /** Seconds (default: the source date epoch). */
  mtime?: number;
}

export interface EnvStepOptions {
  /** The extension's `env`: the same pairs (default), none (`false`), or these pairs instead. */
  extension?: boolean | Readonly<Record<string, string>>;
}

export interface RunStepOptions {
  /** Extra environment (build arguments); ENV values are always set. */
  env?: Readonly<Record<string, string>>;
  /**
   * This step's network (`RUN --network=`): `default` (the build's), `none`, or `host`, which the
   * build must allow (`network: 'host'`), as BuildKit's `network.host` entitlement.
   */
  network?: RunNetwork | 'default';
}

// --- internal state ---------------------------------------------------------------------------

interface Session {
  readonly fs: FileSystem;
  readonly contexts: Map<string, Promise<BuildContext>>;
  executor?: RunExecutor;
  cache?: BuildCache | null;
  fetcher?: RemoteFetcher;
}

interface State {
  platform: Platform;
  epoch: number;
  image: Image;
  committed: Rootfs;
  current: Rootfs;
  /** Notes of the batched edits since the last layer, newest first (a list: appending is O(1)). */
  pending: PendingEdit | undefined;
  ext: ExtensionState;
  /** With a cache: the build cache and the chain key of `committed` (see cache-link.ts). */
  cache?: CacheLink;
}

interface PendingEdit {
  readonly note: string;
  readonly before: PendingEdit | undefined;
}

function pendingNotes(pending: PendingEdit | undefined): string[] {
  const notes: string[] = [];
  for (let p = pending; p; p = p.before) notes.push(p.note);
  return notes.reverse();
}

type StepFn = (state: State) => Promise<State>;

/**
 * What a LABEL or ENV step changes, as data: a run of such steps is applied in one pass (each
 * still gets its own history entry), so thousands of them cost what one does plus their size.
 */
interface ConfigPatch {
  labels?: Readonly<Record<string, string>>;
  env?: Readonly<Record<string, string>>;
  /** What ENV records in the sealer extension's env (the Kubefile `ENV k=v` form, as written). */
  extensionEnv?: Readonly<Record<string, string>>;
  createdBy: string;
}

/** Apply patches in order, as the steps one by one would (labels merged once, one history entry each). */
function applyPatches(state: State, patches: readonly ConfigPatch[]): State {
  let image = state.image;
  const labels: Record<string, string> = {};
  let extEnv: Record<string, string> | undefined;
  for (const p of patches) {
    if (p.labels) Object.assign(labels, p.labels);
    if (p.env) {
      for (const [k, v] of Object.entries(p.env)) image = image.withEnv(k, v);
      if (p.extensionEnv) Object.assign((extEnv ??= {}), p.extensionEnv);
    }
  }
  if (Object.keys(labels).length > 0) image = image.withLabels(labels);
  image = image.withHistoryEntries(patches.map((p) => history(state, p.createdBy)), true);
  const ext = extEnv ? { ...state.ext, env: { ...state.ext.env, ...extEnv } } : state.ext;
  return { ...state, image, ext };
}

interface Step {
  /** The step as a Kubefile line, for progress and errors. */
  describe: string;
  run: StepFn;
  origin?: StepOrigin;
  /**
   * A cheap, repeatable function of the state before it (a label, an env, a batched file edit).
   * Its state is not kept unless asked for: a chain of thousands of such steps then holds one
   * state at a time, not one per step. Other steps (layers, RUN, user edits) keep theirs.
   */
  pure?: boolean;
  /**
   * How a pure step may be applied together with its neighbours (see state()): `patch` (LABEL,
   * ENV: the change as data, touching only the image config and the extension) or `edit` (a
   * batched file edit: touching only the tree and the pending notes, reading nothing else).
   */
  patch?: ConfigPatch;
  edit?: boolean;
}

/** The source date epoch in seconds: the option, else `SOURCE_DATE_EPOCH`, else 0. */
export function resolveSourceDateEpoch(sourceDateEpoch?: number, env: NodeJS.ProcessEnv = process.env): number {
  if (sourceDateEpoch !== undefined) {
    if (!Number.isInteger(sourceDateEpoch) || sourceDateEpoch < 0) {
      throw new UsageError(`sourceDateEpoch must be a non-negative integer (got ${sourceDateEpoch})`);
    }
    return sourceDateEpoch;
  }
  const text = env.SOURCE_DATE_EPOCH;
  if (text === undefined || text === '') return 0;
  if (!/^\d+$/.test(text)) throw new UsageError(`SOURCE_DATE_EPOCH must be a number of seconds (got ${JSON.stringify(text)})`);
  return Number(text);
}

function epochFrom(options: BuilderOptions): number {
  return resolveSourceDateEpoch(options.sourceDateEpoch, options.env);
}

function toPlatform(p: Platform | string | undefined): Platform | undefined {
  if (p === undefined) return undefined;
  return typeof p === 'string' ? parsePlatform(p) : normalizePlatform(p);
}

function history(state: State, createdBy: string): HistoryEntry {
  return { created: timestamp(state.epoch), created_by: createdBy };
}

function metadataStep(state: State, createdBy: string, image: Image, ext: ExtensionState = state.ext): State {
  return { ...state, image: image.withHistory(history(state, createdBy)), ext };
}

/** Make the batched edits one layer (no-op when there are none). */
async function commitPending(state: State): Promise<State> {
  if (!state.pending) return state;
  const layer = await diff(state.committed, state.current);
  const createdBy = `cloudrootfs: ${pendingNotes(state.pending).join('; ')}`;
  const cache = linkLayer(state.cache, layer, state.epoch, createdBy);
  return { ...state, image: state.image.withLayer(layer, history(state, createdBy)), committed: state.current, pending: undefined, cache };
}

/** A layer step: batched edits first, then `change`, as its own layer (keyed for the cache by `copy`). */
async function layerStep(
  state: State,
  createdBy: string,
  change: (rootfs: Rootfs) => Promise<Rootfs>,
  copy?: CopyKeyInput,
  run?: RunKeyInput,
): Promise<State> {
  const s = await commitPending(state);
  const next = await change(s.current);
  const layer = await diff(s.committed, next);
  const cache = linkLayer(s.cache, layer, s.epoch, createdBy, copy, run);
  return { ...s, image: s.image.withLayer(layer, history(s, createdBy)), committed: next, current: next, cache };
}

function editStep(state: State, note: string, rootfs: Rootfs): State {
  return { ...state, current: rootfs, pending: { note, before: state.pending } };
}

function stringRecord(key: string | Readonly<Record<string, string>>, value: string | undefined, what: string): Record<string, string> {
  if (typeof key === 'string') {
    if (value === undefined) throw new UsageError(`${what}(${JSON.stringify(key)}) needs a value`);
    return { [key]: value };
  }
  return { ...key };
}

// --- the builder ------------------------------------------------------------------------------

export class ImageBuilder {
  private statePromise?: Promise<State>;

  private constructor(
    private readonly options: BuilderOptions,
    private readonly session: Session,
    private readonly base: BaseSpec,
    private readonly parent: ImageBuilder | undefined,
    private readonly step: Step | undefined,
    private readonly depth: number,
  ) {}

  /**
   * Start from `scratch` (an empty rootfs), a store name (`kubernetes:v1.19.9`), a transport
   * reference (`oci:dir:tag`, `oci-archive:file`…), or an Image/ImageIndex you already have.
   */
  static from(base: BaseSpec, options: BuilderOptions = {}): ImageBuilder {
    if (typeof base === 'string' && base.trim() === '') throw new UsageError('from() needs an image reference or "scratch"');
    epochFrom(options); // fail early on a bad epoch
    const session: Session = { fs: options.fs ?? diskFs, contexts: new Map() };
    return new ImageBuilder(options, session, base, undefined, undefined, 0);
  }

  /** @internal A builder sharing this one's options and context cache (interpreter stages). */
  static fromSibling(sibling: ImageBuilder, base: BaseSpec, options: Partial<BuilderOptions> = {}): ImageBuilder {
    return new ImageBuilder({ ...sibling.options, ...options }, sibling.session, base, undefined, undefined, 0);
  }

  private then(describe: string, run: StepFn, origin?: StepOrigin): ImageBuilder {
    return new ImageBuilder(this.options, this.session, this.base, this, { describe, run, origin }, this.depth + 1);
  }

  /** A step that is a cheap, repeatable function of the state before it (see Step.pure). */
  private thenPure(describe: string, run: StepFn): ImageBuilder {
    return new ImageBuilder(this.options, this.session, this.base, this, { describe, run, pure: true }, this.depth + 1);
  }

  /** A batched edit of the tree (see Step.edit). */
  private thenEdit(describe: string, run: StepFn): ImageBuilder {
    return new ImageBuilder(this.options, this.session, this.base, this, { describe, run, pure: true, edit: true }, this.depth + 1);
  }

  /** A LABEL or ENV step (pure, and applied together with its neighbours: see state()). */
  private thenPatch(patch: ConfigPatch): ImageBuilder {
    const run: StepFn = async (state) => applyPatches(state, [patch]);
    return new ImageBuilder(this.options, this.session, this.base, this, { describe: patch.createdBy, run, pure: true, patch }, this.depth + 1);
  }

  /** @internal The same builder with a Kubefile position attached to its last step. */
  at(origin: StepOrigin): ImageBuilder {
    if (!this.step) return this;
    return new ImageBuilder(this.options, this.session, this.base, this.parent, { ...this.step, origin }, this.depth);
  }

  /** The steps of this builder, as Kubefile-like lines (for display and tests). */
  get steps(): string[] {
    const out: string[] = [];
    for (let b: ImageBuilder | undefined = this; b?.step; b = b.parent) out.unshift(b.step.describe);
    return out;
  }

  // --- files ----------------------------------------------------------------------------------

  /** COPY `sources` from the context to `dest` (one layer). */
  copy(sources: string | readonly string[], dest: string, options: CopyStepOptions = {}): ImageBuilder {
    return this.copyLike('COPY', sources, dest, options);
  }

  /** ADD: COPY that unpacks local tar archives (one layer). */
  add(sources: string | readonly string[], dest: string, options: CopyStepOptions = {}): ImageBuilder {
    return this.copyLike('ADD', sources, dest, options);
  }

  private copyLike(kind: 'COPY' | 'ADD', sources: string | readonly string[], dest: string, options: CopyStepOptions): ImageBuilder {
    const list = typeof sources === 'string' ? [sources] : [...sources];
    if (list.length === 0) throw new UsageError(`${kind.toLowerCase()}() needs at least one source`);
    const chown = options.chown === undefined ? undefined : typeof options.chown === 'string' ? options.chown : `${options.chown.uid}:${options.chown.gid}`;
    if (chown !== undefined) checkChown(chown);
    const chmodText = options.chmod === undefined ? undefined : typeof options.chmod === 'number' ? options.chmod.toString(8).padStart(3, '0') : options.chmod;
    const chmod = chmodText === undefined ? undefined : parseChmod(chmodText);
    if (options.checksum !== undefined && (kind !== 'ADD' || list.length !== 1 || !isHttpSource(list[0]))) {
      throw new UsageError(`${kind.toLowerCase()}(): a checksum needs ADD of a single http:// or https:// source`);
    }
    const createdBy = copyHistory(kind, { sources: list, dest, chown, chmod: chmodText, from: options.fromName, checksum: options.checksum });
    return this.then(createdBy, async (state) => {
      // buildah downloads http(s) sources of ADD (not COPY) and never unpacks them.
      const remote = list.find((s) => isRemoteSource(s) && !(kind === 'ADD' && isHttpSource(s)));
      if (remote) {
        throw new UsageError(
          kind === 'COPY' && isHttpSource(remote)
            ? `COPY cannot download ${remote}; use ADD`
            : `${remote}: only http:// and https:// sources are downloaded (git sources are not)`,
        );
      }
      const owner = chown === undefined ? undefined : await parseChown(chown, state.current);
      const local = list.filter((s) => !isHttpSource(s) || kind === 'COPY');
      const context = local.length > 0 || options.from !== undefined ? await this.resolveContext(options.from, kind) : undefined;
      // Sources in the order written: what the cache key sees (archives as files) and what is copied.
      const sources: ResolvedSource[] = [];
      const resolved: ResolvedSource[] = [];
      for (const source of list) {
        if (kind === 'ADD' && isHttpSource(source)) {
          const fetched = await this.remoteFetcher().fetch(source, { checksum: options.checksum });
          // buildah: mode 0600, the Last-Modified date (else the epoch); clamped like every mtime.
          const file = remoteSource(fetched, this.session.fs, 0o600, Math.min(fetched.lastModified ?? 0, state.epoch));
          sources.push(file);
          resolved.push(file);
        } else {
          const found = resolveSources(context!, [source], kind);
          sources.push(...found);
          resolved.push(...(kind === 'ADD' ? await unpackArchives(found) : found));
        }
      }
      const mode = options.mode ?? this.options.copyMode ?? 'docker';
      return layerStep(
        state,
        createdBy,
        async (rootfs) => copyResolved(rootfs, resolved, dest, { mode, owner, chmod, sourceDateEpoch: state.epoch, what: kind }),
        { sources, settings: { kind, mode, owner: owner ?? null, chmod: chmod ?? null, dest } },
      );
    });
  }

  /** Write a file (batched). */
  file(path: string, content: Content | Buffer | string, options: EntryOptions = {}): ImageBuilder {
    const p = cleanPath(path, { what: 'file path', forbidWhiteoutNames: true });
    checkAttributes(options);
    return this.thenEdit(`file ${p}`, async (state) => {
      const attrs: AttributeOptions = { mode: options.mode ?? 0o644, uid: options.uid ?? 0, gid: options.gid ?? 0, mtime: options.mtime ?? state.epoch };
      return editStep(state, `file ${p}`, state.current.with(p, fileEntry(content, attrs), { parents: parentAttrs(state) }));
    });
  }

  /** Create a directory (or change its attributes; its contents stay) (batched). */
  directory(path: string, options: EntryOptions = {}): ImageBuilder {
    const p = cleanPath(path, { what: 'directory path', forbidWhiteoutNames: true });
    checkAttributes(options);
    return this.thenEdit(`directory ${p}`, async (state) => {
      const attrs: AttributeOptions = { mode: options.mode ?? 0o755, uid: options.uid ?? 0, gid: options.gid ?? 0, mtime: options.mtime ?? state.epoch };
      return editStep(state, `directory ${p}`, state.current.with(p, directoryEntry(attrs), { parents: parentAttrs(state) }));
    });
  }

  /** Create a symlink (batched). */
  symlink(path: string, target: string, options: EntryOptions = {}): ImageBuilder {
    const p = cleanPath(path, { what: 'symlink path', forbidWhiteoutNames: true });
    checkAttributes(options);
    return this.thenEdit(`symlink ${p} -> ${target}`, async (state) => {
      const attrs: AttributeOptions = { uid: options.uid ?? 0, gid: options.gid ?? 0, mtime: options.mtime ?? state.epoch };
      return editStep(state, `symlink ${p} -> ${target}`, state.current.with(p, symlinkEntry(target, attrs), { parents: parentAttrs(state) }));
    });
  }

  /**
   * Delete a path (batched): the layer holds a whiteout, so the file disappears from the merged
   * image even though the base's layers still carry it. A missing path is an error unless `force`.
   */
  remove(path: string, options: { force?: boolean } = {}): ImageBuilder {
    const p = cleanPath(path, { what: 'path to remove', forbidWhiteoutNames: true });
    if (p === '') throw new UsageError('remove() cannot remove the root');
    return this.thenEdit(`remove ${p}`, async (state) => {
      if (!state.current.get(p)) {
        if (options.force) return state;
        throw new NotFoundError(p, 'path to remove');
      }
      return editStep(state, `remove ${p}`, state.current.without(p));
    });
  }

  /** Any change to the tree, batched like `file`; `description` goes into the history. */
  edit(description: string, change: (rootfs: Rootfs) => Rootfs | Promise<Rootfs>): ImageBuilder {
    return this.then(description, async (state) => editStep(state, description, await change(state.current)));
  }

  /** Write the `Metadata` file (batched). */
  metadata(metadata: CloudRootfsMetadata): ImageBuilder {
    return this.thenEdit('metadata', async (state) => editStep(state, 'Metadata', withMetadata(state.current, metadata)));
  }

  // --- config ---------------------------------------------------------------------------------

  label(key: string, value: string): ImageBuilder;
  label(labels: Readonly<Record<string, string>>): ImageBuilder;
  label(key: string | Readonly<Record<string, string>>, value?: string): ImageBuilder {
    const labels = stringRecord(key, value, 'label');
    if (Object.keys(labels).length === 0) return this;
    return this.thenPatch({ labels, createdBy: keyValueHistory('LABEL', labels) });
  }

  /** Alias of `label` with a record. */
  labels(labels: Readonly<Record<string, string>>): ImageBuilder {
    return this.label(labels);
  }

  /**
   * ENV: the config's environment and (as sealer v0.10+ does for `ENV k=v`) the sealer
   * extension's `env`, which sealer uses as template defaults. `{ extension: false }` sets only
   * the config; `{ extension: {…} }` gives the extension other pairs than the config (what sealer
   * records for the line, which it reads as written: the interpreter passes them).
   */
  env(key: string, value: string, options?: EnvStepOptions): ImageBuilder;
  env(env: Readonly<Record<string, string>>, options?: EnvStepOptions): ImageBuilder;
  env(key: string | Readonly<Record<string, string>>, valueOrOptions?: string | EnvStepOptions, maybeOptions?: EnvStepOptions): ImageBuilder {
    const env = stringRecord(key, typeof valueOrOptions === 'string' ? valueOrOptions : undefined, 'env');
    const options = (typeof valueOrOptions === 'object' ? valueOrOptions : maybeOptions) ?? {};
    for (const k of Object.keys(env)) if (!k || k.includes('=')) throw new UsageError(`invalid environment variable name ${JSON.stringify(k)}`);
    if (Object.keys(env).length === 0) return this;
    const extra = options.extension === false ? undefined : typeof options.extension === 'object' ? options.extension : env;
    return this.thenPatch({ env, ...(extra ? { extensionEnv: extra } : {}), createdBy: keyValueHistory('ENV', env) });
  }

  /** A manifest annotation (no history: annotations are not in the config). */
  annotation(key: string, value: string): ImageBuilder {
    if (!key) throw new UsageError('annotation() needs a key');
    return this.thenPure(`annotation ${key}`, async (state) => ({ ...state, image: state.image.withAnnotation(key, value) }));
  }

  /** MAINTAINER: the config's `author`. */
  maintainer(text: string): ImageBuilder {
    const createdBy = simpleHistory('MAINTAINER', text);
    return this.thenPure(createdBy, async (state) => metadataStep(state, createdBy, state.image.withConfig(() => ({ author: text }))));
  }

  /** The image's platform (default: the base's, or this machine's). */
  platform(platform: Platform | string): ImageBuilder {
    const p = toPlatform(platform)!;
    return this.thenPure(`platform ${formatPlatform(p)}`, async (state) => ({ ...state, platform: p }));
  }

  /** sealer image type: `kube-installer` (installs a cluster) or `app-installer` (apps on a cluster). */
  type(type: ImageType): ImageBuilder {
    if (type !== KUBE_INSTALLER && type !== APP_INSTALLER) throw new UsageError(`invalid image type ${JSON.stringify(type)}: ${KUBE_INSTALLER} or ${APP_INSTALLER}`);
    return this.thenPure(`type ${type}`, async (state) => ({ ...state, ext: { ...state.ext, type } }));
  }

  // --- sealer applications --------------------------------------------------------------------

  /** APP: copy the sources to `application/apps/<name>/` (one layer) and record the app. */
  app(name: string, sources: string | readonly string[], options: { from?: ContextSpec } = {}): ImageBuilder {
    return this.appLike('APP', name, sources, options);
  }

  /** CNI: an app plus the label `cluster.alpha.sealer.io/kube-cni-<name>=true`. */
  cni(name: string, sources: string | readonly string[], options: { from?: ContextSpec } = {}): ImageBuilder {
    return this.appLike('CNI', name, sources, options);
  }

  /** CSI: an app plus the label `cluster.alpha.sealer.io/kube-csi-<name>=true`. */
  csi(name: string, sources: string | readonly string[], options: { from?: ContextSpec } = {}): ImageBuilder {
    return this.appLike('CSI', name, sources, options);
  }

  private appLike(kind: 'APP' | 'CNI' | 'CSI', name: string, sources: string | readonly string[], options: { from?: ContextSpec }): ImageBuilder {
    checkAppName(name, kind);
    const given = (typeof sources === 'string' ? [sources] : [...sources]).map((s) => s.replace(/^local:\/\//, ''));
    if (given.length === 0) throw new UsageError(`${kind} ${name} needs at least one source`);
    // sealer copies the local sources first, then the downloaded ones (app_handler.go#L61-L89).
    const list = [...given.filter((s) => !isHttpSource(s)), ...given.filter(isHttpSource)];
    const createdBy = appHistory(kind, name, list.map((s) => (isHttpSource(s) ? s : `local://${s}`)));
    return this.then(createdBy, async (state) => {
      const remote = list.find((s) => isRemoteSource(s) && !isHttpSource(s));
      if (remote) throw new UsageError(`${kind} ${name}: ${remote}: only local://, http:// and https:// sources are supported`);
      const local = list.filter((s) => !isHttpSource(s));
      const context = local.length > 0 ? await this.resolveContext(options.from, kind) : undefined;
      const resolved = context ? resolveSources(context, local, `${kind} ${name}`) : [];
      for (const url of list.filter(isHttpSource)) {
        // sealer writes the download into the build context (os.Create: 0644) and COPYs it; its
        // mtime, the time of the download, is clamped to the epoch like every context file's.
        resolved.push(remoteSource(await this.remoteFetcher().fetch(url), this.session.fs, 0o644, state.epoch));
      }
      const detected = detectApp(name, resolved);
      const dir = appDirectory(name);
      let s = await layerStep(
        state,
        createdBy,
        async (rootfs) => copyResolved(rootfs, resolved, dir, { mode: 'docker', sourceDateEpoch: state.epoch, what: `${kind} ${name}` }),
        { sources: resolved, settings: { kind, mode: 'docker', dest: dir } },
      );
      const app: SealerApplication = { name, type: detected.type, files: detected.files, version: 'v1' };
      s = { ...s, ext: withApp(s.ext, app) };
      if (kind === 'CNI') s = { ...s, image: withKubeCni(s.image, name) };
      if (kind === 'CSI') s = { ...s, image: withKubeCsi(s.image, name) };
      return s;
    });
  }

  /** APPCMDS: how the app launches (commands run in its directory), replacing sealer's default. */
  appCmds(name: string, commands: readonly string[]): ImageBuilder {
    const createdBy = appCmdsHistory(name, commands);
    return this.thenPure(createdBy, async (state) => {
      const ext = updateApp(state.ext, name, 'APPCMDS', (a) => ({ ...a, cmds: [...commands] }));
      return metadataStep(state, createdBy, state.image, ext);
    });
  }

  /** APPENV: environment for one app (merged over what it had). */
  appEnv(name: string, env: Readonly<Record<string, string>>): ImageBuilder {
    const createdBy = appEnvHistory(name, env);
    return this.thenPure(createdBy, async (state) => {
      const ext = updateApp(state.ext, name, 'APPENV', (a) => ({ ...a, env: { ...(a.env ?? {}), ...env } }));
      return metadataStep(state, createdBy, state.image, ext);
    });
  }

  /** KUBEVERSION: the label `app.alpha.sealer.io/supported-kube-version`. */
  kubeVersion(range: string): ImageBuilder {
    if (!range.trim()) throw new UsageError('kubeVersion() needs a version range');
    const createdBy = simpleHistory('KUBEVERSION', range);
    return this.thenPure(createdBy, async (state) => metadataStep(state, createdBy, withSupportedKubeVersion(state.image, range)));
  }

  /** LAUNCH: the apps sealer starts, in order (each must exist: defined here or in the base). */
  launch(apps: readonly string[]): ImageBuilder {
    const createdBy = listHistory('LAUNCH', apps);
    return this.thenPure(createdBy, async (state) => {
      if (state.ext.usedCmd) throw new UsageError('LAUNCH cannot be combined with CMD; move those commands into CMDS or APPCMDS');
      for (const a of apps) findApp(state.ext, a, 'LAUNCH');
      return metadataStep(state, createdBy, state.image, { ...state.ext, appNames: [...apps] });
    });
  }

  /** CMDS: commands sealer runs at launch. */
  cmds(commands: readonly string[]): ImageBuilder {
    const createdBy = listHistory('CMDS', commands);
    return this.thenPure(createdBy, async (state) =>
      metadataStep(state, createdBy, state.image, { ...state.ext, launchCmds: [...state.ext.launchCmds, ...commands] }),
    );
  }

  /** CMD (deprecated in sealer v0.9+): one more launch command; excludes LAUNCH. */
  cmd(text: string): ImageBuilder {
    const createdBy = cmdHistory(text);
    return this.thenPure(createdBy, async (state) => {
      if (state.ext.appNames !== undefined) throw new UsageError('CMD cannot be combined with LAUNCH; use CMDS');
      return metadataStep(state, createdBy, state.image, { ...state.ext, launchCmds: [...state.ext.launchCmds, text], usedCmd: true });
    });
  }

  // --- RUN ------------------------------------------------------------------------------------

  /** RUN a shell command (string) or an argv (array) over the rootfs (one layer). */
  run(command: string | readonly string[], options: RunStepOptions = {}): ImageBuilder {
    const request = typeof command === 'string' ? { command } : { argv: [...command] };
    if ((request.command ?? '').trim() === '' && (request.argv ?? []).length === 0) throw new UsageError('run() needs a command');
    const network = this.runNetwork(options.network);
    const createdBy = runHistory(request);
    return this.then(createdBy, async (state) => {
      const executor = this.runExecutor();
      if (!executor) {
        const named = typeof this.options.runExecutor === 'string' ? `runExecutor '${this.options.runExecutor}' needs node:fs` : 'no executor for this filesystem (RUN runs on node:fs by default)';
        throw new RunUnavailableError(`${named}; pass runExecutor (e.g. builtinRunExecutor() for rm/mkdir/ln) or use remove()`);
      }
      const change = async (rootfs: Rootfs) =>
        executor.run({
          rootfs,
          ...request,
          env: { ...state.image.env, ...(options.env ?? {}) },
          sourceDateEpoch: state.epoch,
          platform: state.platform,
          network,
        });
      return layerStep(state, createdBy, change, undefined, { executor: executor.name, network });
    });
  }

  /** A RUN step's network: the build's unless the step says otherwise; `host` only where the build allows it. */
  private runNetwork(step: RunStepOptions['network']): RunNetwork {
    const build = this.options.network ?? 'none';
    if (build !== 'none' && build !== 'host') throw new UsageError(`network must be none or host (got ${JSON.stringify(build)})`);
    if (step === undefined || step === 'default') return build;
    if (step === 'none') return 'none';
    if (step === 'host') {
      if (build !== 'host') throw new UsageError('RUN --network=host needs the build to allow the host network (network: \'host\', CLI --network host)');
      return 'host';
    }
    throw new UsageError(`RUN --network must be default, none or host (got ${JSON.stringify(step)})`);
  }

  /**
   * The fetcher of remote sources (created once per builder family): the one given, else one
   * caching under the store's `cache/downloads` when the build cache is on.
   */
  remoteFetcher(): RemoteFetcher {
    if (this.options.fetcher) return this.options.fetcher;
    if (!this.session.fetcher) {
      const cache = this.buildCache();
      this.session.fetcher = new RemoteFetcher({
        fs: cache ? cache.fs : this.session.fs,
        ...(cache ? { cacheDir: posix.join(cache.store.root, CACHE_DIR, 'downloads') } : {}),
        env: this.options.env,
      });
    }
    return this.session.fetcher;
  }

  /** The executor RUN steps use (created once per builder family). */
  runExecutor(): RunExecutor | undefined {
    const option = this.options.runExecutor;
    if (option !== undefined && typeof option !== 'string') return option;
    this.session.executor ??= resolveRunExecutor(option, this.session.fs);
    return this.session.executor;
  }

  // --- results --------------------------------------------------------------------------------

  /** The merged rootfs after every step (pending edits included). */
  async rootfs(): Promise<Rootfs> {
    return (await this.state()).current;
  }

  /** Run the steps and return the image (layers in memory until written). */
  async build(): Promise<Image> {
    const state = await commitPending(await this.state());
    const ext = finalExtension(state.ext, this.options.buildClient ?? DEFAULT_BUILD_CLIENT);
    let image = withImageExtension(state.image, ext).withPlatform(state.platform);
    const versionLabel = this.options.sealerVersionLabel ?? ext.buildClient.sealerVersion;
    if (versionLabel !== false && versionLabel !== '') image = withSealerVersion(image, versionLabel);
    return image.withConfig(() => ({ created: timestamp(state.epoch) }));
  }

  /** @internal */
  state(): Promise<State> {
    if (this.statePromise) return this.statePromise;
    // Each builder's state is its parent's plus one step. A chain may be tens of thousands of
    // steps long: it is walked with a loop (never a call per step, which would exhaust the
    // stack) up to the nearest builder whose state is known, then each step waits for the one
    // before it. Pure steps' states are not kept (see Step.pure), so memory holds one at a time.
    const chain: ImageBuilder[] = [];
    let known: ImageBuilder = this;
    while (!known.statePromise && known.parent && known.step) {
      chain.push(known);
      known = known.parent;
    }
    known.statePromise ??= known.initialState();
    let previous = known.statePromise;
    const fusable = (b: ImageBuilder) => !!b.step!.patch || !!b.step!.edit;
    for (let i = chain.length - 1; i >= 0; i--) {
      // A run of LABEL/ENV steps and file edits whose states nobody asked for is applied in one
      // pass: the edits in order, then every config change at once.
      let j = i;
      while (fusable(chain[i]) && j > 0 && fusable(chain[j - 1])) j--;
      const next = j < i ? chain[j].runFused(previous, chain.slice(j, i + 1).reverse()) : chain[i].runStep(previous);
      i = j;
      const b = chain[i];
      if (!b.step!.pure || i === 0) b.statePromise = next;
      previous = next;
    }
    return this.statePromise!;
  }

  /**
   * The steps of `run` (oldest first, patches and edits, ending with this builder) applied
   * together: the same state as one by one, as edits touch only the tree and patches only the
   * config, but the config is copied once for the run instead of once per step.
   */
  private async runFused(before: Promise<State>, run: readonly ImageBuilder[]): Promise<State> {
    let state = await before;
    const patches: ConfigPatch[] = [];
    for (const b of run) {
      const step = b.step!;
      this.options.onProgress?.({ phase: 'step', index: b.depth, instruction: step.describe, platform: formatPlatform(state.platform) });
      if (step.patch) {
        patches.push(step.patch);
        continue;
      }
      try {
        state = await step.run(state);
      } catch (err) {
        throw wrapStepError(err, step);
      }
    }
    return patches.length > 0 ? applyPatches(state, patches) : state;
  }

  private async runStep(before: Promise<State>): Promise<State> {
    const state = await before;
    const step = this.step!;
    this.options.onProgress?.({ phase: 'step', index: this.depth, instruction: step.describe, platform: formatPlatform(state.platform) });
    try {
      return await step.run(state);
    } catch (err) {
      throw wrapStepError(err, step);
    }
  }

  private async initialState(): Promise<State> {
    const epoch = epochFrom(this.options);
    const wanted = toPlatform(this.options.platform);
    const type = this.options.imageType ?? KUBE_INSTALLER;
    const cache = this.buildCache();
    if (this.base === 'scratch') {
      const platform = wanted ?? hostPlatform();
      const ext = initialExtensionState(type);
      return { platform, epoch, image: Image.empty(platform), committed: Rootfs.empty(), current: Rootfs.empty(), pending: undefined, ext, cache: cache && scratchLink(cache) };
    }
    let image: Image;
    let rootfs: Rootfs;
    try {
      image = await this.resolveBase(this.base, wanted);
      // Reading the base's layers is part of FROM: a base that resolves but cannot be read fails here.
      rootfs = await image.flatten();
    } catch (err) {
      const describe = `FROM ${typeof this.base === 'string' ? this.base : '(image)'}`;
      throw wrapStepError(err, { describe, run: async (s) => s, origin: this.options.fromOrigin });
    }
    // Inherited: layers, config (labels, env, history, author), the apps, the embedded image list.
    // Not inherited (sealer's rule): LAUNCH, CMDS, the extension env, other manifest annotations.
    const kept: Record<string, string> = {};
    const images = image.annotations[SEALER_CONTAINER_IMAGES_ANNOTATION];
    if (images !== undefined) kept[SEALER_CONTAINER_IMAGES_ANNOTATION] = images;
    const start = image.with({ annotations: kept });
    return {
      platform: image.platform,
      epoch,
      image: start,
      committed: rootfs,
      current: rootfs,
      pending: undefined,
      ext: initialExtensionState(type, getImageExtension(image)),
      cache: cache && baseLink(cache, image, epoch),
    };
  }

  /** The build cache of this builder family (resolved once): see BuilderOptions.cache. */
  private buildCache(): BuildCache | undefined {
    if (this.session.cache === undefined) this.session.cache = selectBuildCache(this.options.cache, this.options.store) ?? null;
    return this.session.cache ?? undefined;
  }

  private async resolveBase(base: Exclude<BaseSpec, 'scratch'>, wanted: Platform | undefined): Promise<Image> {
    if (base instanceof ImageBuilder) base = await base.build();
    const select = (target: Image | ImageIndex, what: string): Image => selectImage(target, wanted, what);
    if (typeof base !== 'string') return select(base, 'the base image');
    const ref = parseImageRef(base);
    const platform = wanted ?? hostPlatform();
    if (ref.transport !== 'store' && ref.transport !== 'docker') {
      return select(await loadTarget(ref, { fs: this.session.fs }), base);
    }
    if (ref.transport === 'store' && this.options.store) {
      try {
        return select(await this.options.store.loadTarget(base), base);
      } catch (err) {
        if (!(err instanceof CloudRootfsError && err.code === 'IMAGE_NOT_FOUND') || !this.options.resolveBase) throw err;
      }
    }
    if (this.options.resolveBase) {
      const name = ref.transport === 'docker' ? ref.reference : base;
      return select(await this.options.resolveBase(name, platform), base);
    }
    throw new ImageNotFoundError(base, this.options.store ? 'the local store (and no registry is configured)' : 'anywhere: no store and no registry were given');
  }

  /** The Rootfs a copy-like step reads from. */
  private async resolveContext(spec: ContextSpec | undefined, what: string): Promise<Rootfs> {
    const chosen = spec ?? this.options.context;
    if (chosen === undefined) throw new UsageError(`${what}: no build context (pass { context } to ImageBuilder.from or { from } to this step)`);
    if (chosen instanceof Rootfs) return chosen;
    if (chosen instanceof ImageBuilder) return chosen.rootfs();
    if (typeof chosen !== 'string') return chosen.rootfs;
    let p = this.session.contexts.get(chosen);
    if (!p) {
      p = readBuildContext(chosen, { fs: this.session.fs, sourceDateEpoch: epochFrom(this.options) });
      this.session.contexts.set(chosen, p);
      p.catch(() => this.session.contexts.delete(chosen));
    }
    return (await p).rootfs;
  }
}

/** A downloaded file as a copy source: named after its URL, its content the cached bytes (digest known). */
function remoteSource(fetched: FetchedFile, fs: FileSystem, mode: number, mtime: number): ResolvedSource {
  const content = fileContent(fs, fetched.path, fetched.size, fetched.digest);
  return { path: fetched.name, node: { entry: fileEntry(content, { mode, uid: 0, gid: 0, mtime }) }, isRoot: false };
}

function parentAttrs(state: State): AttributeOptions {
  return { mode: 0o755, uid: 0, gid: 0, mtime: state.epoch };
}

/** A step's failure as a BuildError naming the step (and its Kubefile line). */
function wrapStepError(err: unknown, step: Step): unknown {
  if (err instanceof KubefileSyntaxError) return err;
  if (err instanceof BuildError && err.details.instruction !== undefined) return err;
  const where = step.origin ? `${step.origin.file ?? 'Kubefile'}:${step.origin.line}: ` : '';
  const message = err instanceof Error ? err.message : String(err);
  const causeCode = err instanceof CloudRootfsError ? err.code : undefined;
  return new BuildError(
    `${where}${step.describe}: ${message}`,
    {
      instruction: step.describe,
      ...(step.origin ? { file: step.origin.file, line: step.origin.line } : {}),
      ...(causeCode ? { causeCode } : {}),
    },
    { cause: err },
  );
}
