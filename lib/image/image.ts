/**
 * Image = layers + config + manifest annotations; ImageIndex = images per platform. Both are
 * immutable values: every `with…` returns a new one. An image read from somewhere keeps the exact
 * bytes of its manifest and config (`stored`) for as long as it is not changed, so copying it
 * anywhere keeps its digest.
 */
import { Layer } from '../layer/layer';
import { LayerStack } from '../layer/stack';
import { Rootfs } from '../rootfs/rootfs';
import { UsageError } from '../errors';
import { ImageLayer, toImageLayer } from './layer';
import { hostPlatform, normalizePlatform, platformMatches, platformNotFound } from './platform';
import type { ContainerConfig, Descriptor, HistoryEntry, ImageConfigDocument, Platform } from './types';
import { mapLimited } from '../util/concurrency';

/** Layers read at once by `changesets()`. */
const LAYER_READS = 2;

export interface StoredImage {
  manifest: Buffer;
  manifestDescriptor: Descriptor;
  config: Buffer;
  configDescriptor: Descriptor;
}

export interface ImageInit {
  layers?: readonly (Layer | ImageLayer)[];
  /** The config without `rootfs` (derived from the layers when written). */
  config?: Partial<Omit<ImageConfigDocument, 'rootfs'>>;
  annotations?: Record<string, string>;
  platform?: Platform;
}

/** RFC 3339 for a SOURCE_DATE_EPOCH-style second count. */
export function timestamp(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace(/\.000Z$/, 'Z');
}

export class Image {
  readonly layers: readonly ImageLayer[];
  /** The config document; `rootfs.diff_ids` lists what is known (blob layers) and is rebuilt on write. */
  readonly config: Readonly<Omit<ImageConfigDocument, 'rootfs'>>;
  readonly annotations: Readonly<Record<string, string>>;
  /** @internal exact bytes, present only while the image is unchanged since it was read. */
  readonly stored?: StoredImage;

  constructor(init: ImageInit = {}, stored?: StoredImage) {
    const cfg = init.config ?? {};
    const platform = normalizePlatform(
      init.platform ?? {
        os: cfg.os ?? 'linux',
        architecture: cfg.architecture ?? hostPlatform().architecture,
        ...(cfg.variant ? { variant: cfg.variant } : {}),
      },
    );
    const { rootfs: _ignored, ...rest } = cfg as Partial<ImageConfigDocument>;
    void _ignored;
    this.layers = Object.freeze((init.layers ?? []).map(toImageLayer));
    this.config = Object.freeze({
      ...rest,
      architecture: platform.architecture,
      os: platform.os,
      ...(platform.variant ? { variant: platform.variant } : { variant: undefined }),
    });
    this.annotations = Object.freeze({ ...(init.annotations ?? {}) });
    this.stored = stored;
  }

  static empty(platform?: Platform): Image {
    return new Image({ platform });
  }

  get platform(): Platform {
    return normalizePlatform({
      os: this.config.os,
      architecture: this.config.architecture,
      ...(this.config.variant ? { variant: this.config.variant } : {}),
    });
  }

  get labels(): Readonly<Record<string, string>> {
    return this.config.config?.Labels ?? {};
  }

  /** Environment as a map (the config stores `K=V` strings). */
  get env(): Readonly<Record<string, string>> {
    const out: Record<string, string> = {};
    for (const kv of this.config.config?.Env ?? []) {
      const i = kv.indexOf('=');
      if (i > 0) out[kv.slice(0, i)] = kv.slice(i + 1);
    }
    return out;
  }

  get history(): readonly HistoryEntry[] {
    return this.config.history ?? [];
  }

  private init(): ImageInit {
    return { layers: this.layers, config: this.config, annotations: this.annotations, platform: this.platform };
  }

  /** A copy with `changes` applied (drops the stored bytes: the image is no longer what was read). */
  with(changes: Partial<ImageInit>): Image {
    const base = this.init();
    return new Image({
      ...base,
      ...changes,
      config: { ...base.config, ...(changes.config ?? {}) },
      annotations: changes.annotations ?? base.annotations,
    });
  }

  withConfig(update: (config: Omit<ImageConfigDocument, 'rootfs'>) => Partial<Omit<ImageConfigDocument, 'rootfs'>>): Image {
    const current = JSON.parse(JSON.stringify(this.config)) as Omit<ImageConfigDocument, 'rootfs'>;
    return this.with({ config: { ...current, ...update(current) } });
  }

  /**
   * `update` gets a shallow copy of the container config and returns the new one, replacing (not
   * mutating) what it changes: no deep copy of the whole config per change, so a build of
   * thousands of LABEL/ENV steps stays linear in what each step changes.
   */
  private withContainerConfig(update: (c: ContainerConfig) => ContainerConfig): Image {
    return this.with({ config: { ...this.config, config: update({ ...(this.config.config ?? {}) }) } });
  }

  withLabel(key: string, value: string): Image {
    return this.withContainerConfig((c) => ({ ...c, Labels: { ...(c.Labels ?? {}), [key]: value } }));
  }

  withLabels(labels: Record<string, string>): Image {
    return this.withContainerConfig((c) => ({ ...c, Labels: { ...(c.Labels ?? {}), ...labels } }));
  }

  withoutLabel(key: string): Image {
    return this.withContainerConfig((c) => {
      const Labels = { ...(c.Labels ?? {}) };
      delete Labels[key];
      return { ...c, Labels };
    });
  }

  withEnv(key: string, value: string): Image {
    if (!key || key.includes('=')) throw new UsageError(`invalid environment variable name ${JSON.stringify(key)}`);
    return this.withContainerConfig((c) => {
      const env = (c.Env ?? []).filter((kv) => !kv.startsWith(key + '='));
      return { ...c, Env: [...env, `${key}=${value}`] };
    });
  }

  withCmd(cmd: string[] | undefined): Image {
    return this.withContainerConfig((c) => ({ ...c, Cmd: cmd }));
  }

  withAnnotation(key: string, value: string): Image {
    return this.with({ annotations: { ...this.annotations, [key]: value } });
  }

  withoutAnnotation(key: string): Image {
    const annotations = { ...this.annotations };
    delete annotations[key];
    return this.with({ annotations });
  }

  withPlatform(platform: Platform): Image {
    const p = normalizePlatform(platform);
    return this.with({ platform: p, config: { ...this.config, architecture: p.architecture, os: p.os, variant: p.variant } });
  }

  /** Append a layer (and its history entry). */
  withLayer(layer: Layer | ImageLayer, history: HistoryEntry = {}): Image {
    return this.with({
      layers: [...this.layers, toImageLayer(layer)],
      config: { ...this.config, history: [...this.history, { ...history, empty_layer: undefined }] },
    });
  }

  /** Record a step that made no layer (LABEL, ENV…) in the history. */
  withHistory(entry: HistoryEntry): Image {
    return this.withHistoryEntries([entry], true);
  }

  /** Append history entries (`emptyLayer`: steps that made no layer) in one copy. */
  withHistoryEntries(entries: readonly HistoryEntry[], emptyLayer: boolean): Image {
    const added = entries.map((e) => ({ ...e, empty_layer: emptyLayer ? true : undefined }));
    return this.with({ config: { ...this.config, history: [...this.history, ...added] } });
  }

  /**
   * The layers' changesets, read (and verified) on first use: two at a time, which keeps both
   * cores busy while bounding the decompression buffers in flight (each read holds several MiB).
   */
  async changesets(): Promise<Layer[]> {
    return mapLimited(this.layers, LAYER_READS, (l) => l.changeset());
  }

  /** The merged root filesystem. */
  async flatten(): Promise<Rootfs> {
    return LayerStack.of(...(await this.changesets())).flatten();
  }
}

export interface IndexEntry {
  image: Image | ImageIndex;
  platform?: Platform;
  annotations?: Record<string, string>;
}

export interface StoredIndex {
  index: Buffer;
  descriptor: Descriptor;
}

/** A multi-platform image (an OCI image index). */
export class ImageIndex {
  readonly manifests: readonly IndexEntry[];
  readonly annotations: Readonly<Record<string, string>>;
  /** @internal */
  readonly stored?: StoredIndex;

  constructor(manifests: readonly IndexEntry[], annotations: Record<string, string> = {}, stored?: StoredIndex) {
    this.manifests = Object.freeze(
      manifests.map((m) => ({ ...m, platform: m.platform ?? (m.image instanceof Image ? m.image.platform : undefined) })),
    );
    this.annotations = Object.freeze({ ...annotations });
    this.stored = stored;
  }

  static of(images: Image[], annotations: Record<string, string> = {}): ImageIndex {
    return new ImageIndex(
      images.map((image) => ({ image, platform: image.platform })),
      annotations,
    );
  }

  /** Every image, nested indexes included, with its platform. */
  images(): { image: Image; platform?: Platform }[] {
    const out: { image: Image; platform?: Platform }[] = [];
    for (const m of this.manifests) {
      if (m.image instanceof ImageIndex) out.push(...m.image.images());
      else out.push({ image: m.image, platform: m.platform });
    }
    return out;
  }

  get platforms(): Platform[] {
    return this.images().flatMap((i) => (i.platform ? [i.platform] : []));
  }

  /** The first image for `platform` (default: the host's), as the index rules say; `where` names the index in errors. */
  select(platform: Platform = hostPlatform(), where = ''): Image {
    const found = this.images().find((i) => platformMatches(platform, i.platform));
    if (!found) throw platformNotFound(platform, this.platforms, where);
    return found.image;
  }

  withAnnotation(key: string, value: string): ImageIndex {
    return new ImageIndex(this.manifests, { ...this.annotations, [key]: value });
  }

  /** Replace (or add) the image for its platform. */
  withImage(image: Image): ImageIndex {
    const rest = this.manifests.filter((m) => !(m.image instanceof Image && m.platform && platformMatches(image.platform, m.platform) && platformMatches(m.platform, image.platform)));
    return new ImageIndex([...rest, { image, platform: image.platform }], this.annotations);
  }
}

/**
 * Pick one image from an Image or an ImageIndex: the image for `platform` (PLATFORM_NOT_FOUND when
 * there is none — a single-platform image for another platform included), or without a platform
 * the host's image of an index and a single-platform image whatever its platform. `where` names
 * the source in errors.
 */
export function selectImage(target: Image | ImageIndex, platform?: Platform, where = ''): Image {
  if (target instanceof ImageIndex) return target.select(platform, where);
  if (platform && !platformMatches(platform, target.platform)) throw platformNotFound(platform, [target.platform], where);
  return target;
}
