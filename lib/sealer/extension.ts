/**
 * The two manifest annotations sealer (v0.9+, "Era B") reads from a CloudImage
 * (docs/reference/sealer.md#image-extension-annotations-and-labels):
 *
 * - `sealer.image.extension`: JSON with the build client, schema version, image type,
 *   applications, launch spec, env and labels. sealer's `run` and `inspect` fail without it, so
 *   every image we build for sealer carries it; images without it still load and inspect here.
 * - `sealer.image.container.images`: JSON list of the container images the CloudImage embeds.
 *
 * Reading validates against a JSON schema and fills sealer's implicit defaults, so callers see
 * one complete shape. Writing validates too and stores canonical JSON (sorted keys, no spaces):
 * equal extensions give equal manifests, hence equal digests.
 */
import { Image } from '../image/image';
import { canonicalJson } from '../image/json';
import { parseSealerDocument, validateSealerDocument } from './schema';

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
  schemaVersion: 'v1alpha1';
  type: 'kube-installer' | 'app-installer';
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

// --- normalisation: Go's omitempty/null forms → one shape ----------------------------------------

type Loose = Record<string, unknown>;

function stringMap(v: unknown): Record<string, string> | undefined {
  return v && typeof v === 'object' ? { ...(v as Record<string, string>) } : undefined;
}

function stringList(v: unknown): string[] | undefined {
  return Array.isArray(v) ? [...(v as string[])] : undefined;
}

function normalizeApplication(raw: Loose): SealerApplication {
  const app: SealerApplication = {
    name: raw.name as string,
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
    schemaVersion: SEALER_SCHEMA_VERSION,
    // sealer treats a missing type as a cluster image (only app-installer is special-cased).
    type: raw.type === APP_INSTALLER ? APP_INSTALLER : KUBE_INSTALLER,
    applications: ((raw.applications as Loose[] | null | undefined) ?? []).map(normalizeApplication),
    launch,
    env: stringMap(raw.env) ?? {},
  };
  const labels = stringMap(raw.labels);
  if (labels && Object.keys(labels).length > 0) ext.labels = labels;
  return ext;
}

// --- the extension annotation ---------------------------------------------------------------------

const EXTENSION_SOURCE = `manifest annotation ${SEALER_EXTENSION_ANNOTATION}`;
const IMAGES_SOURCE = `manifest annotation ${SEALER_CONTAINER_IMAGES_ANNOTATION}`;

/**
 * The image's sealer extension, or undefined when it has none. A present but invalid one is a
 * SchemaValidationError whose issues name the field (`/applications/0/name must be string`).
 */
export function getImageExtension(image: Image): ImageExtension | undefined {
  const text = image.annotations[SEALER_EXTENSION_ANNOTATION];
  if (text === undefined || text === '') return undefined;
  return normalizeExtension(parseSealerDocument<Loose>('image-extension', text, EXTENSION_SOURCE));
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

/** Read-modify-write of the extension (starting from the default when the image has none). */
export function updateImageExtension(image: Image, update: (ext: ImageExtension) => ImageExtension): Image {
  return withImageExtension(image, update(getImageExtension(image) ?? defaultImageExtension()));
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

/** The container images the CloudImage says it embeds ([] when it says nothing). */
export function getContainerImages(image: Image): ContainerImageRef[] {
  const text = image.annotations[SEALER_CONTAINER_IMAGES_ANNOTATION];
  if (text === undefined || text === '') return [];
  const list = parseSealerDocument<Loose[] | null>('container-images', text, IMAGES_SOURCE) ?? [];
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
