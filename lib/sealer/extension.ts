/**
 * The two manifest annotations sealer (v0.9+, "Era B") reads from a CloudImage
 * (docs/reference/sealer.md#image-extension-annotations-and-labels):
 *
 * - `sealer.image.extension`: JSON with the build client, schema version, image type,
 *   applications, launch spec, env and labels. sealer's `run` and `inspect` fail without it, so
 *   every image we build for sealer carries it; images without it still load and inspect here.
 * - `sealer.image.container.images`: JSON list of the container images the CloudImage embeds.
 *
 * Reading is as lenient as sealer's own reader: Go's `encoding/json` into sealer's structs
 * (go-json.ts), so an extension sealer's tests write by hand (`{"type":"app-installer",…}`, no
 * `schemaVersion`, no `buildClient`) reads, with Go's zero values for what it leaves out, and
 * only what sealer cannot read either (a number where a string goes…) is an error. Writing is
 * strict: the extension is validated against our JSON schema (`schemaVersion` `v1alpha1`, a known
 * `type`, app names that are directories) and stored as canonical JSON (sorted keys, no spaces):
 * equal extensions give equal manifests, hence equal digests.
 */
import { SchemaValidationError, type SchemaIssue } from '../errors';
import { Image } from '../image/image';
import { canonicalJson } from '../image/json';
import { parseJsonText } from '../image/schema';
import { decodeGo, goMap, goSlice, goString, goStruct, type GoValue } from './go-json';
import { validateSealerDocument } from './schema';

export const SEALER_EXTENSION_ANNOTATION = 'sealer.image.extension';
export const SEALER_CONTAINER_IMAGES_ANNOTATION = 'sealer.image.container.images';
export const SEALER_SCHEMA_VERSION = 'v1alpha1';

export const KUBE_INSTALLER = 'kube-installer';
export const APP_INSTALLER = 'app-installer';

/**
 * What `buildClient` says when the caller does not say otherwise: the sealer release whose image
 * format we produce, and no buildah (we do not use it). sealer reads neither value.
 */
export const DEFAULT_BUILD_CLIENT = Object.freeze({ sealerVersion: '0.11.0', buildahVersion: '' });

export interface SealerApplication {
  /** Directory name under `application/apps/`. */
  name: string;
  type: 'helm' | 'kube' | 'shell' | string;
  /** Files relative to the app directory. */
  files: string[];
  version: 'v1';
  env?: Record<string, string>;
  /** APPCMDS: replaces the launch command sealer derives from `type`. */
  cmds?: string[];
}

export interface ImageExtension {
  buildClient: { sealerVersion: string; buildahVersion: string };
  /** `v1alpha1` in what we write; read as found (`''` when absent: sealer does not check it). */
  schemaVersion: string;
  /**
   * `kube-installer` or `app-installer` in what we write; read as found (`''` when absent).
   * sealer's `run` treats anything but `app-installer` as a cluster image.
   */
  type: string;
  applications: SealerApplication[];
  launch: { cmds?: string[]; app_names?: string[] };
  env?: Record<string, string>;
  labels?: Record<string, string>;
}

export interface ContainerImageRef {
  image: string;
  appName?: string;
  platform?: { architecture: string; os: string; variant?: string };
}

/** A complete extension: sealer's defaults, then `partial` on top. */
export function defaultImageExtension(partial: Partial<ImageExtension> = {}): ImageExtension {
  return {
    buildClient: { ...DEFAULT_BUILD_CLIENT },
    schemaVersion: SEALER_SCHEMA_VERSION,
    type: KUBE_INSTALLER,
    applications: [],
    launch: {},
    env: {},
    ...partial,
  };
}

// --- reading: sealer's Go structs ---------------------------------------------------------------

/** sealer's Application (application.go#L26-L39). */
const GO_APPLICATION = goStruct({
  name: goString,
  type: goString,
  files: goSlice(goString),
  version: goString,
  env: goMap(goString),
  cmds: goSlice(goString),
});

/**
 * The struct sealer decodes the annotation into, `v1ImageExtension`
 * (https://github.com/sealerio/sealer/blob/v0.11.0/pkg/define/image/v1/sealer_image.go#L124-L160).
 */
const GO_EXTENSION = goStruct({
  buildClient: goStruct({ sealerVersion: goString, buildahVersion: goString }),
  schemaVersion: goString,
  type: goString,
  labels: goMap(goString),
  applications: goSlice(GO_APPLICATION),
  launch: goStruct({ cmds: goSlice(goString), app_names: goSlice(goString) }),
  env: goMap(goString),
});

/** `[]*ContainerImage` (sealer_image.go#L62-L75, Platform in types/api/v1/image_types.go#L97-L103). */
const GO_CONTAINER_IMAGES = goSlice(
  goStruct({ image: goString, appName: goString, platform: goStruct({ architecture: goString, os: goString, variant: goString }) }),
);

type Loose = Record<string, unknown>;

function stringMap(v: unknown): Record<string, string> | undefined {
  return v && typeof v === 'object' ? { ...(v as Record<string, string>) } : undefined;
}

function stringList(v: unknown): string[] | undefined {
  return Array.isArray(v) ? [...(v as string[])] : undefined;
}

function normalizeApplication(raw: Loose): SealerApplication {
  const app: SealerApplication = {
    name: typeof raw.name === 'string' ? raw.name : '',
    type: typeof raw.type === 'string' ? raw.type : '',
    files: stringList(raw.files) ?? [],
    version: 'v1',
  };
  const env = stringMap(raw.env);
  if (env && Object.keys(env).length > 0) app.env = env;
  const cmds = stringList(raw.cmds);
  if (cmds && cmds.length > 0) app.cmds = cmds;
  return app;
}

/** One shape for both readers: lists and maps present, empty ones left out where Go omits them. */
function normalizeExtension(raw: Loose): ImageExtension {
  const bc = (raw.buildClient ?? {}) as Loose;
  const launchRaw = (raw.launch ?? {}) as Loose;
  const launch: ImageExtension['launch'] = {};
  const cmds = stringList(launchRaw.cmds);
  if (cmds && cmds.length > 0) launch.cmds = cmds;
  const appNames = stringList(launchRaw.app_names);
  if (appNames && appNames.length > 0) launch.app_names = appNames;
  const ext: ImageExtension = {
    buildClient: {
      sealerVersion: typeof bc.sealerVersion === 'string' ? bc.sealerVersion : '',
      buildahVersion: typeof bc.buildahVersion === 'string' ? bc.buildahVersion : '',
    },
    schemaVersion: typeof raw.schemaVersion === 'string' ? raw.schemaVersion : '',
    type: typeof raw.type === 'string' ? raw.type : '',
    applications: ((raw.applications as Loose[] | null | undefined) ?? []).map(normalizeApplication),
    launch,
    env: stringMap(raw.env) ?? {},
  };
  const labels = stringMap(raw.labels);
  if (labels && Object.keys(labels).length > 0) ext.labels = labels;
  return ext;
}

/** JSON text decoded as sealer decodes it into `type`; what sealer cannot read is a SchemaValidationError. */
function readAsSealer(text: string, type: typeof GO_EXTENSION, schema: string, source: string): GoValue {
  let raw: unknown;
  try {
    raw = parseJsonText(text);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new SchemaValidationError(schema, [{ field: '', message: `is not valid UTF-8 JSON (${reason})`, file: source }], source);
  }
  const issues: SchemaIssue[] = [];
  const value = decodeGo(raw, type, issues);
  if (issues.length > 0) throw new SchemaValidationError(schema, issues.map((i) => ({ ...i, file: source })), source);
  return value;
}

// --- the extension annotation ---------------------------------------------------------------------

const EXTENSION_SOURCE = `manifest annotation ${SEALER_EXTENSION_ANNOTATION}`;
const IMAGES_SOURCE = `manifest annotation ${SEALER_CONTAINER_IMAGES_ANNOTATION}`;

/**
 * The image's sealer extension, read as sealer reads it, or undefined when it has none (sealer's
 * inspect fails then). What sealer cannot read is a SchemaValidationError whose issues name the
 * field (`/applications/0/name cannot be read as a Go string…`).
 */
export function getImageExtension(image: Image): ImageExtension | undefined {
  const text = image.annotations[SEALER_EXTENSION_ANNOTATION];
  if (text === undefined || text === '') return undefined;
  return normalizeExtension((readAsSealer(text, GO_EXTENSION, 'sealer image extension', EXTENSION_SOURCE) ?? {}) as Loose);
}

/** The extension as the annotation stores it (validated, canonical JSON). */
export function formatImageExtension(ext: ImageExtension): string {
  validateSealerDocument('image-extension', ext, 'image extension');
  return canonicalJson(normalizeExtension(ext as unknown as Loose));
}

/** A copy of `image` carrying `ext` (validated; written as canonical JSON). */
export function withImageExtension(image: Image, ext: ImageExtension): Image {
  return image.withAnnotation(SEALER_EXTENSION_ANNOTATION, formatImageExtension(ext));
}

/**
 * Read-modify-write of the extension (starting from the default when the image has none). What
 * sealer does not look at (`schemaVersion`, `buildClient`) is filled in when the image lacks it;
 * the rest must pass the strict check of what we write.
 */
export function updateImageExtension(image: Image, update: (ext: ImageExtension) => ImageExtension): Image {
  const current = getImageExtension(image);
  const base = current
    ? {
        ...current,
        schemaVersion: current.schemaVersion || SEALER_SCHEMA_VERSION,
        buildClient: current.buildClient.sealerVersion || current.buildClient.buildahVersion ? current.buildClient : { ...DEFAULT_BUILD_CLIENT },
      }
    : defaultImageExtension();
  return withImageExtension(image, update(base));
}

// --- the container image list ---------------------------------------------------------------------

function normalizeContainerImage(raw: Loose): ContainerImageRef {
  const out: ContainerImageRef = { image: raw.image as string };
  if (typeof raw.appName === 'string' && raw.appName !== '') out.appName = raw.appName;
  const p = raw.platform as Loose | null | undefined;
  if (p && (p.architecture || p.os)) {
    out.platform = {
      architecture: typeof p.architecture === 'string' ? p.architecture : '',
      os: typeof p.os === 'string' ? p.os : '',
      ...(typeof p.variant === 'string' && p.variant !== '' ? { variant: p.variant } : {}),
    };
  }
  return out;
}

/** The container images the CloudImage says it embeds ([] when it says nothing), read as sealer reads them. */
export function getContainerImages(image: Image): ContainerImageRef[] {
  const text = image.annotations[SEALER_CONTAINER_IMAGES_ANNOTATION];
  if (text === undefined || text === '') return [];
  const list = (readAsSealer(text, GO_CONTAINER_IMAGES, 'sealer container image list', IMAGES_SOURCE) ?? []) as Loose[];
  return list.map(normalizeContainerImage);
}

/** A copy of `image` listing `list` (an empty list removes the annotation, as sealer reads it). */
export function withContainerImages(image: Image, list: ContainerImageRef[]): Image {
  validateSealerDocument('container-images', list, 'container image list');
  if (list.length === 0) {
    return SEALER_CONTAINER_IMAGES_ANNOTATION in image.annotations ? image.withoutAnnotation(SEALER_CONTAINER_IMAGES_ANNOTATION) : image;
  }
  return image.withAnnotation(SEALER_CONTAINER_IMAGES_ANNOTATION, canonicalJson(list.map((i) => normalizeContainerImage(i as unknown as Loose))));
}
