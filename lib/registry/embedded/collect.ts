/**
 * Which container images a CloudRootfs needs, found the way sealer finds them at build time
 * (docs/reference/sealer.md#container-images-and-the-registry-layout), without running helm:
 *
 * - `manifests/imageList`: one image per line; blank lines and `#` comments skipped, quotes trimmed.
 * - `manifests/**.{yaml,yml,tmpl}`: sealer's line scan. A line counts when its key (the text
 *   before the first `:`, with quotes, commas and spaces removed) ends with `image` and holds no
 *   `#`; the value is the rest of the line, without spaces, quotes or a trailing comma.
 * - `charts/**`: every unpacked chart (a directory with `Chart.yaml`, `values.yaml` and
 *   `templates/`), its subcharts under `charts/` included. helm is not run. Instead `values.yaml`
 *   is read as data: a key ending in `image` (any case) whose value is a string, or a map with
 *   `repository` (plus optional `registry`, `tag`, `digest`; no tag means the chart's
 *   `appVersion`, as most charts default it). Templates are line-scanned for literal images.
 * - `application/apps/<app>/`: a chart as above, or else the line scan over its YAML files; the
 *   images carry the app's name.
 * - `images` (the API, a Kubefile build option, `--image-list`) are added and `ignored`
 *   (`--ignored-image-list`) removed, compared after normalization.
 *
 * Names that do not parse as references (template placeholders, `{{ .Values.x }}`) are skipped,
 * as sealer skips them, and reported through `onSkipped`.
 */
import * as yaml from 'js-yaml';
import { readContentText } from '../../content';
import type { Entry } from '../../entry';
import { InvalidReferenceError } from '../../errors';
import { normalizeReference } from '../../reference/docker';
import type { Rootfs } from '../../rootfs/rootfs';

export interface CollectedImage {
  /** The normalized reference: `docker.io/library/nginx:latest`. */
  image: string;
  /** The application (`application/apps/<app>/`) that needs it. */
  appName?: string;
  /** Where it was named: `manifests/imageList:3`, `charts/app/values.yaml`, `--image-list`… */
  sources: string[];
}

export interface CollectOptions {
  /** Images to add (API, Kubefile option, `--image-list` contents). */
  images?: readonly string[];
  /** Images never to collect (`--ignored-image-list`), matched after normalization. */
  ignored?: readonly string[];
  /** Where to look (default: everywhere). */
  scan?: { imageList?: boolean; manifests?: boolean; charts?: boolean; applications?: boolean };
  /** Called for names that are not valid references; they are skipped. */
  onSkipped?: (text: string, source: string, reason: string) => void;
}

const YAML_EXTENSIONS = ['.yaml', '.yml', '.tmpl'];
/** Files read whole to be scanned; anything bigger is not a manifest anyone wrote by hand. */
const MAX_SCANNED_FILE = 32 << 20;

/** The images `rootfs` needs, in a stable order: imageList, manifests, charts, apps, then `images`. */
export async function collectImages(rootfs: Rootfs, options: CollectOptions = {}): Promise<CollectedImage[]> {
  const scan = { imageList: true, manifests: true, charts: true, applications: true, ...options.scan };
  const found: Array<{ text: string; source: string; appName?: string }> = [];
  const add = (texts: readonly string[], source: string, appName?: string) => {
    for (const text of texts) found.push({ text, source, ...(appName ? { appName } : {}) });
  };

  if (scan.imageList) {
    const text = await readIfFile(rootfs, 'manifests/imageList');
    if (text !== undefined) parseImageListLines(text).forEach(({ image, line }) => add([image], `manifests/imageList:${line}`));
  }
  if (scan.manifests) {
    for (const file of yamlFiles(rootfs, 'manifests')) {
      const text = await readIfFile(rootfs, file);
      if (text !== undefined) add(scanImageLines(text), file);
    }
  }
  if (scan.charts) {
    for (const chart of chartDirectories(rootfs, 'charts')) await collectChart(rootfs, chart, add);
  }
  if (scan.applications && rootfs.get('application/apps')?.type === 'directory') {
    for (const app of rootfs.list('application/apps')) {
      const dir = `application/apps/${app}`;
      if (rootfs.get(dir)?.type !== 'directory') continue;
      if (isChart(rootfs, dir)) {
        for (const chart of chartDirectories(rootfs, dir)) await collectChart(rootfs, chart, add, app);
      } else {
        for (const file of yamlFiles(rootfs, dir)) {
          const text = await readIfFile(rootfs, file);
          if (text !== undefined) add(scanImageLines(text), file, app);
        }
      }
    }
  }
  add(options.images ?? [], 'images');

  const ignored = new Set<string>();
  for (const text of options.ignored ?? []) {
    const n = normalizeOrUndefined(text);
    if (n) ignored.add(n);
    else options.onSkipped?.(text, 'ignored', 'not a valid image reference');
  }

  const out: CollectedImage[] = [];
  const byKey = new Map<string, CollectedImage>();
  for (const { text, source, appName } of found) {
    const image = normalizeOrUndefined(text);
    if (!image) {
      options.onSkipped?.(text, source, 'not a valid image reference');
      continue;
    }
    if (ignored.has(image)) continue;
    const key = `${image}\n${appName ?? ''}`;
    const seen = byKey.get(key);
    if (seen) {
      if (!seen.sources.includes(source)) seen.sources.push(source);
      continue;
    }
    const entry: CollectedImage = { image, ...(appName ? { appName } : {}), sources: [source] };
    byKey.set(key, entry);
    out.push(entry);
  }
  return out;
}

/** The images of an image-list file (`manifests/imageList`, `--image-list`): one per line. */
export function parseImageList(text: string): string[] {
  return parseImageListLines(text).map((l) => l.image);
}

function parseImageListLines(text: string): Array<{ image: string; line: number }> {
  const out: Array<{ image: string; line: number }> = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const image = trimQuotes(stripComment(raw).trim());
    if (image !== '' && !image.startsWith('#')) out.push({ image, line: i + 1 });
  });
  return out;
}

/** sealer's line scan (`decodeLine`): the values of `…image: value` lines. */
export function scanImageLines(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split(/\r?\n/)) {
    const value = scanImageLine(line);
    if (value !== undefined) out.push(value);
  }
  return out;
}

export function scanImageLine(line: string): string | undefined {
  const unquoted = line.replace(/"/g, '');
  const colon = unquoted.indexOf(':');
  if (colon < 0) return undefined;
  const key = unquoted.slice(0, colon);
  if (key.includes('#')) return undefined;
  if (!key.replace(/[',\s]/g, '').endsWith('image')) return undefined;
  const value = trimQuotes(stripComment(unquoted.slice(colon + 1)).replace(/\s/g, '').replace(/,$/, ''));
  return value === '' || value.startsWith('#') ? undefined : value;
}

/**
 * Images named in a chart's `values.yaml` (parsed as data, every scalar a string so `tag: 1.20`
 * stays `1.20`). `appVersion` fills in a missing tag.
 */
export function imagesFromValues(valuesYaml: string, appVersion?: string): string[] {
  let doc: unknown;
  try {
    doc = yaml.load(valuesYaml, { schema: yaml.FAILSAFE_SCHEMA, json: true });
  } catch {
    // Not YAML we can read: helm would refuse the chart too; the templates may still name images.
    return [];
  }
  const out: string[] = [];
  const visit = (value: unknown, key: string | undefined, depth: number): void => {
    if (depth > 64 || value === null || typeof value !== 'object') return;
    if (Array.isArray(value)) {
      for (const item of value) visit(item, key, depth + 1);
      return;
    }
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      if (k.toLowerCase().endsWith('image')) {
        if (typeof v === 'string') {
          const text = v.trim();
          if (text !== '' && !text.includes('{{')) out.push(text);
          continue;
        }
        const ref = imageFromMap(v, appVersion);
        if (ref) {
          out.push(ref);
          continue;
        }
      }
      visit(v, k, depth + 1);
    }
  };
  visit(doc, undefined, 0);
  return out;
}

function imageFromMap(value: unknown, appVersion: string | undefined): string | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const m = value as Record<string, unknown>;
  const str = (k: string): string => (typeof m[k] === 'string' ? (m[k] as string).trim() : '');
  const repository = str('repository');
  if (repository === '' || repository.includes('{{')) return undefined;
  const registry = str('registry');
  const tag = str('tag') || (appVersion ?? '').trim();
  const digest = str('digest');
  let ref = registry ? `${registry.replace(/\/+$/, '')}/${repository}` : repository;
  if (tag && !/:[^/]+$/.test(repository)) ref += `:${tag}`;
  if (digest) ref += `@${digest}`;
  return ref;
}

// ------------------------------------------------------------------ walking the rootfs

type Add = (texts: readonly string[], source: string, appName?: string) => void;

async function collectChart(rootfs: Rootfs, dir: string, add: Add, appName?: string): Promise<void> {
  const chartYaml = await readIfFile(rootfs, `${dir}/Chart.yaml`);
  const appVersion = chartYaml !== undefined ? chartAppVersion(chartYaml) : undefined;
  const values = await readIfFile(rootfs, `${dir}/values.yaml`);
  if (values !== undefined) add(imagesFromValues(values, appVersion), `${dir}/values.yaml`, appName);
  for (const file of yamlFiles(rootfs, `${dir}/templates`)) {
    const text = await readIfFile(rootfs, file);
    // Literal images only: a templated value fails to parse as a reference and is skipped later.
    if (text !== undefined) add(scanImageLines(text), file, appName);
  }
}

function chartAppVersion(chartYaml: string): string | undefined {
  try {
    const doc = yaml.load(chartYaml, { schema: yaml.FAILSAFE_SCHEMA, json: true }) as { appVersion?: unknown } | null;
    return typeof doc?.appVersion === 'string' ? doc.appVersion : undefined;
  } catch {
    return undefined;
  }
}

function isChart(rootfs: Rootfs, dir: string): boolean {
  return (
    isFileLike(rootfs.get(`${dir}/Chart.yaml`)) && isFileLike(rootfs.get(`${dir}/values.yaml`)) && rootfs.get(`${dir}/templates`)?.type === 'directory'
  );
}

/** Every chart directory at or below `root` (subcharts in `<chart>/charts/` too), in walk order. */
function chartDirectories(rootfs: Rootfs, root: string): string[] {
  if (rootfs.get(root)?.type !== 'directory') return [];
  const out: string[] = [];
  if (isChart(rootfs, root)) out.push(root);
  for (const { path, entry } of rootfs.walk(root)) {
    if (entry.type === 'directory' && isChart(rootfs, path)) out.push(path);
  }
  return out;
}

function yamlFiles(rootfs: Rootfs, root: string): string[] {
  if (rootfs.get(root)?.type !== 'directory') return [];
  const out: string[] = [];
  for (const { path, entry } of rootfs.walk(root)) {
    const lower = path.toLowerCase();
    if (isFileLike(entry) && YAML_EXTENSIONS.some((ext) => lower.endsWith(ext))) out.push(path);
  }
  return out;
}

function isFileLike(entry: Entry | undefined): boolean {
  return entry?.type === 'file' || entry?.type === 'symlink';
}

/** The text of a file (following symlinks inside the rootfs); undefined when it is not a readable file. */
async function readIfFile(rootfs: Rootfs, path: string): Promise<string | undefined> {
  let entry;
  try {
    entry = rootfs.resolveFile(path);
  } catch {
    return undefined;
  }
  if (entry.content.size > MAX_SCANNED_FILE) return undefined;
  return readContentText(entry.content);
}

function normalizeOrUndefined(text: string): string | undefined {
  try {
    return normalizeReference(text.trim());
  } catch (err) {
    if (err instanceof InvalidReferenceError) return undefined;
    throw err;
  }
}

/** Drops a YAML comment: `#` at the start or after whitespace. */
function stripComment(text: string): string {
  const m = /(^|\s)#/.exec(text);
  return m ? text.slice(0, m.index) : text;
}

function trimQuotes(s: string): string {
  if (s.length >= 2) {
    const c = s[s.length - 1];
    if (s[0] === c && (c === '"' || c === "'")) return s.slice(1, -1);
  }
  return s;
}
