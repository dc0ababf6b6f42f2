/**
 * `imageListWithAuth.yaml` (`sealer build --image-list-with-auth FILE`): container images behind
 * credentials, for the `registry/` a build embeds. A YAML list of sections, each a registry, a
 * user name, a password and the images to fetch with them
 * (https://github.com/sealerio/sealer/blob/v0.11.0/build/buildimage/middleware.go#L26-L31):
 *
 *   - registry: registry.example.com:5000
 *     username: ci
 *     password: secret
 *     images:
 *       - app/web:1.2          # → registry.example.com:5000/app/web:1.2
 *       - quay.io/coreos/etcd:v3.5.0
 *
 * Read as sealer reads it: YAML decoded into its struct (Go's json rules: field names matched
 * case-insensitively, unknown fields ignored); a section with images needs both a user name and a
 * password (sealer's message: "must set username and password at imageListWithAuth.yaml",
 * middleware.go#L51-L53); an image without a registry part gets the section's `registry`, or
 * `docker.io` (with `library/` for one-word names) when the section names none
 * (`ParseNormalizedNamed`, https://github.com/sealerio/sealer/blob/v0.11.0/pkg/image/save/utils.go#L72-L113).
 */
import * as yaml from 'js-yaml';
import { SchemaValidationError, ValidationError, type SchemaIssue } from '../errors';
import { decodeGo, goSlice, goString, goStruct } from './go-json';

export interface ImageListWithAuthSection {
  /** The registry of images named without one (may be empty: then docker.io). */
  registry: string;
  username: string;
  password: string;
  /** The images as written. */
  images: string[];
}

/** One image to fetch with credentials: its full name (registry included) and the section's login. */
export interface AuthenticatedImage {
  /** `registry/repository:tag` as sealer normalizes it with the section's registry. */
  image: string;
  /** As written in the file. */
  written: string;
  credentials: { username: string; password: string };
}

const GO_SECTIONS = goSlice(goStruct({ registry: goString, username: goString, password: goString, images: goSlice(goString) }));

const SOURCE = 'imageListWithAuth.yaml';

/** Parse the file's text; what sealer cannot read is a SchemaValidationError naming the field. */
export function parseImageListWithAuth(text: string, file = SOURCE): ImageListWithAuthSection[] {
  let raw: unknown;
  try {
    raw = yaml.load(text, { schema: yaml.JSON_SCHEMA });
  } catch (err) {
    throw new SchemaValidationError('image list with auth', [{ field: '', message: `is not valid YAML (${(err as Error).message})`, file }], file);
  }
  const issues: SchemaIssue[] = [];
  const sections = (decodeGo(raw, GO_SECTIONS, issues) ?? []) as unknown as Array<Omit<ImageListWithAuthSection, 'images'> & { images: string[] | null }>;
  if (issues.length > 0) throw new SchemaValidationError('image list with auth', issues.map((i) => ({ ...i, file })), file);
  return sections.map((s) => ({ registry: s.registry, username: s.username, password: s.password, images: s.images ?? [] }));
}

/**
 * sealer's `ParseNormalizedNamed(image, registry)`: the first path component is a registry when it
 * holds `.` or `:`, is `localhost`, or has upper case; otherwise `registry` (or `docker.io`) is
 * put in front, and `docker.io` images of one component get `library/`. No tag means `latest`.
 */
export function normalizeWithRegistry(image: string, registry: string): string {
  const i = image.indexOf('/');
  let domain: string;
  let remainder: string;
  const first = i < 0 ? '' : image.slice(0, i);
  if (i < 0 || (!/[.:]/.test(first) && first !== 'localhost' && first.toLowerCase() === first)) {
    domain = registry !== '' ? registry : 'docker.io';
    remainder = image;
  } else {
    domain = first;
    remainder = image.slice(i + 1);
  }
  if (domain === 'index.docker.io') domain = 'docker.io';
  if (domain === 'docker.io' && !remainder.includes('/')) remainder = `library/${remainder}`;
  const tagAt = remainder.indexOf(':');
  const repo = tagAt < 0 ? remainder : remainder.slice(0, tagAt);
  const tag = tagAt < 0 ? 'latest' : remainder.slice(tagAt + 1);
  if (repo.toLowerCase() !== repo) {
    throw new ValidationError(`invalid reference format: repository name (${repo}) must be lowercase`, [{ field: '', message: `repository name ${repo} must be lowercase` }]);
  }
  return `${domain}/${repo}:${tag}`;
}

/** Every image of the sections with the credentials to fetch it (sections without images are skipped, as in sealer). */
export function authenticatedImages(sections: readonly ImageListWithAuthSection[], file = SOURCE): AuthenticatedImage[] {
  const out: AuthenticatedImage[] = [];
  sections.forEach((section, n) => {
    if (section.images.length === 0) return;
    if (section.username === '' || section.password === '') {
      throw new ValidationError('must set username and password at imageListWithAuth.yaml', [
        { field: `/${n}/${section.username === '' ? 'username' : 'password'}`, message: 'is required for a section with images', file },
      ]);
    }
    for (const written of section.images) {
      out.push({ image: normalizeWithRegistry(written, section.registry), written, credentials: { username: section.username, password: section.password } });
    }
  });
  return out;
}
