/**
 * A validate suite any image can be run through (as go-containerregistry's `validate` package):
 * documents against the OCI schemas, every blob against its descriptor (digest and size), every
 * layer against its diff_id, history against layers, platforms against configs. It reports every
 * problem it finds rather than stopping at the first.
 */
import { CloudRootfsError, SchemaIssue, ValidationError } from '../errors';
import { readLayerBlob } from '../tar/read';
import { encodeLayer } from '../tar/write';
import { Image, ImageIndex } from './image';
import { normalizePlatform } from './platform';
import { checkOciDocument } from './schema';
import { serializeImage, WrittenLayer } from './serialize';

export interface ValidationReport {
  ok: boolean;
  issues: SchemaIssue[];
  /** Images checked (one per platform for an index). */
  images: number;
  layers: number;
}

export interface ValidateOptions {
  /** Read every layer blob whole (default true); false checks documents only. */
  layers?: boolean;
}

async function validateImage(image: Image, where: string, report: ValidationReport, options: ValidateOptions): Promise<void> {
  report.images++;
  const problem = (field: string, message: string) => report.issues.push({ file: where, field, message });
  const written: WrittenLayer[] = [];
  for (const [i, layer] of image.layers.entries()) {
    report.layers++;
    if (layer.kind === 'blob') {
      written.push({ descriptor: layer.descriptor, diffId: layer.diffId });
      if (options.layers === false) continue;
      try {
        await readLayerBlob(layer.blob, {
          expectedDigest: layer.descriptor.digest,
          expectedSize: layer.descriptor.size,
          expectedDiffId: layer.diffId,
          source: `${where} layer ${i}`,
        });
      } catch (err) {
        problem(`/layers/${i}`, err instanceof CloudRootfsError ? `${err.code}: ${err.message}` : String(err));
      }
    } else {
      // Not written yet: encoding it (to nowhere) proves it can be written and gives its digests.
      const encoded = await encodeLayer(layer.layer, () => undefined);
      written.push({ descriptor: { mediaType: encoded.mediaType, digest: encoded.digest, size: encoded.size }, diffId: encoded.diffId });
    }
  }
  const s = serializeImage(image, written);
  for (const issue of checkOciDocument('manifest', JSON.parse(s.manifest.toString('utf8')), { file: `${where} manifest` })) {
    report.issues.push(issue);
  }
  const config = JSON.parse(s.config.toString('utf8'));
  for (const issue of checkOciDocument('config', config, { file: `${where} config`, checkHistory: true })) report.issues.push(issue);
  const diffIds: string[] = config.rootfs?.diff_ids ?? [];
  written.forEach((w, i) => {
    if (diffIds[i] !== w.diffId) problem(`/rootfs/diff_ids/${i}`, `is ${diffIds[i]}, the layer's is ${w.diffId}`);
  });
  if (diffIds.length !== written.length) problem('/rootfs/diff_ids', `lists ${diffIds.length} layers, the manifest ${written.length}`);
}

async function validateTarget(target: Image | ImageIndex, where: string, report: ValidationReport, options: ValidateOptions): Promise<void> {
  if (target instanceof Image) return validateImage(target, where, report, options);
  for (const [i, m] of target.manifests.entries()) {
    const w = `${where} manifests[${i}]`;
    if (m.image instanceof Image && m.platform) {
      const a = normalizePlatform(m.platform);
      const b = m.image.platform;
      if (a.os !== b.os || a.architecture !== b.architecture || (a.variant ?? '') !== (b.variant ?? '')) {
        report.issues.push({ file: w, field: '/platform', message: `index says ${JSON.stringify(a)}, the config says ${JSON.stringify(b)}` });
      }
    }
    await validateTarget(m.image, w, report, options);
  }
}

/** Check an image or index thoroughly; never throws for a bad image (see `assertValid`). */
export async function validate(target: Image | ImageIndex, options: ValidateOptions = {}): Promise<ValidationReport> {
  const report: ValidationReport = { ok: true, issues: [], images: 0, layers: 0 };
  await validateTarget(target, 'image', report, options);
  report.ok = report.issues.length === 0;
  return report;
}

/** `validate`, throwing a ValidationError that lists every problem. */
export async function assertValid(target: Image | ImageIndex, options: ValidateOptions = {}): Promise<ValidationReport> {
  const report = await validate(target, options);
  if (!report.ok) {
    throw new ValidationError(
      `image is not valid: ${report.issues.map((i) => `${i.file ?? ''} ${i.field} ${i.message}`.trim()).join('; ')}`,
      report.issues,
    );
  }
  return report;
}
