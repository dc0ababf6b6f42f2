/** `cloudrootfs build`: a thin shell over buildImage(). */
import { resolve } from 'node:path';
import { buildImage, type BuildImageResult, type BuiltLayer } from '../../build/build-image';
import type { CopyMode } from '../../build/copy';
import type { ImageType } from '../../build/builder';
import { UsageError } from '../../errors';
import { readDocumentFile } from '../../fs';
import { formatPlatform, parsePlatform } from '../../image/platform';
import { checkEncoding } from '../../compress';
import { storeName } from '../../store/names';
import type { Command, CommandContext } from '../command';
import { print, printJson } from '../command';
import { JSON_OPTION, STORE_OPTION, openStore, LIMIT_OPTION } from '../common';
import { limitsOf } from '../limits';
import { parseImageList } from '../../registry/embedded';
import { REGISTRY_OPTIONS, registryAccess } from '../registry-options';
import { parseImageListWithAuth } from '../../sealer';

function keyValues(list: unknown, what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of (list as string[] | undefined) ?? []) {
    const i = item.indexOf('=');
    if (i <= 0) throw new UsageError(`${what} ${JSON.stringify(item)}: expected KEY=VALUE`);
    out[item.slice(0, i)] = item.slice(i + 1);
  }
  return out;
}

export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let u = -1;
  do {
    v /= 1024;
    u++;
  } while (v >= 1024 && u < units.length - 1);
  return `${v.toFixed(1)} ${units[u]}`;
}

function layerLine(l: BuiltLayer, i: number, cache?: 'hit' | 'miss' | null): string {
  // `hit `: a new layer whose blob came from the build cache (nothing was compressed).
  const origin = l.fromBase ? 'base' : cache === 'hit' ? 'hit ' : 'new ';
  return `  ${String(i + 1).padStart(2)}. ${origin} ${l.digest}  ${formatSize(l.size).padStart(10)}  ${l.createdBy ?? ''}`;
}

/** The human summary of a build (also used by scripts/example.js through the API). */
export function describeBuild(result: BuildImageResult): string[] {
  const lines = [`${result.stored ? `built ${result.tag}` : 'built (not stored: no tag)'} ${result.digest}`];
  for (const image of result.images) {
    lines.push(`${formatPlatform(image.platform)}: manifest ${image.digest}, config ${image.configDigest}`);
    image.layers.forEach((l, i) => lines.push(layerLine(l, i, image.cache?.[i])));
  }
  return lines;
}

export const buildCommand: Command = {
  name: 'build',
  usage: 'build [-f KUBEFILE] [-t NAME:TAG] [--build-arg K=V]… [--platform OS/ARCH[,…]] [--copy-mode docker|legacy] [--network none|host] [--run-on-host] [--tls-verify=false] [--cert-dir DIR] [--registries-conf FILE] [--no-cache] [--cache-from REF]… [--cache-to REF] [--level N] [CONTEXT]',
  options: [
    { name: 'file', alias: 'f', type: 'string', placeholder: 'KUBEFILE', description: 'the Kubefile (default CONTEXT/Kubefile)' },
    { name: 'tag', alias: 't', type: 'string', placeholder: 'NAME:TAG', description: 'store the image under this name (without it, only digests are computed)' },
    { name: 'build-arg', type: 'list', placeholder: 'K=V', description: 'set a build argument (repeatable)' },
    { name: 'platform', type: 'list', placeholder: 'OS/ARCH[,…]', description: 'target platform(s); several make an index (default: this machine\'s)' },
    { name: 'copy-mode', type: 'string', placeholder: 'docker|legacy', description: 'COPY semantics: docker (sealer v0.9+, default) or legacy (v0.8 nesting)' },
    { name: 'label', type: 'list', placeholder: 'K=V', description: 'add an image label (repeatable)' },
    { name: 'annotation', type: 'list', placeholder: 'K=V', description: 'add a manifest annotation (repeatable)' },
    { name: 'type', type: 'string', placeholder: 'kube-installer|app-installer', description: 'sealer image type (default kube-installer)' },
    { name: 'source-date-epoch', type: 'string', placeholder: 'SECONDS', description: 'timestamps and mtime clamp (default $SOURCE_DATE_EPOCH or 0)' },
    { name: 'image-list', type: 'string', placeholder: 'FILE', description: 'container images to embed in registry/, one per line' },
    { name: 'ignored-image-list', type: 'string', placeholder: 'FILE', description: 'container images never to embed, one per line' },
    { name: 'image-list-with-auth', type: 'string', placeholder: 'FILE', description: 'sealer\'s imageListWithAuth.yaml: images to embed with per-registry credentials' },
    { name: 'build-mode', type: 'string', placeholder: 'all|lite', description: 'all: collect and embed container images (default); lite: embed none' },
    { name: 'pull', type: 'string', placeholder: 'missing|always|never', description: 'pull FROM bases missing from the store (default missing)' },
    ...REGISTRY_OPTIONS,
    { name: 'offline', type: 'boolean', description: 'never contact a registry for container images' },
    { name: 'network', type: 'string', placeholder: 'none|host', description: 'network for RUN: none (default: a private loopback only) or host' },
    { name: 'run-on-host', type: 'boolean', description: 'run RUN directly on this host, without the sandbox (the base image\'s bin/ runs as you)' },
    { name: 'no-cache', type: 'boolean', description: 'do not use the build cache (every layer is made and compressed again)' },
    { name: 'cache-from', type: 'list', placeholder: 'docker://HOST/REPO:TAG', description: 'import a build cache exported to a registry (repeatable)' },
    { name: 'cache-to', type: 'string', placeholder: 'docker://HOST/REPO:TAG', description: 'export the build cache to a registry after the build' },
    { name: 'compression', type: 'string', placeholder: 'gzip|zstd|none', description: 'layer compression (default gzip)' },
    { name: 'level', type: 'string', placeholder: 'N', description: 'compression level (gzip 0-9, default 4; 1 is the fastest; 0 stores)' },
    LIMIT_OPTION,
    STORE_OPTION,
    { name: 'quiet', alias: 'q', type: 'boolean', description: 'print only the digest' },
    JSON_OPTION,
  ],
  positionals: [0, 1],
  async run(ctx: CommandContext) {
    const o = ctx.args.options;
    const context = resolve(ctx.args.positionals[0] ?? '.');
    const copyMode = o['copy-mode'] as string | undefined;
    if (copyMode !== undefined && copyMode !== 'docker' && copyMode !== 'legacy') throw new UsageError(`--copy-mode must be docker or legacy (got ${JSON.stringify(copyMode)})`);
    const type = o.type as string | undefined;
    if (type !== undefined && type !== 'kube-installer' && type !== 'app-installer') throw new UsageError(`--type must be kube-installer or app-installer (got ${JSON.stringify(type)})`);
    const epochText = o['source-date-epoch'] as string | undefined;
    if (epochText !== undefined && !/^\d+$/.test(epochText)) throw new UsageError(`--source-date-epoch must be a number of seconds (got ${JSON.stringify(epochText)})`);
    const platforms = ((o.platform as string[] | undefined) ?? []).flatMap((p) => p.split(',')).map((p) => p.trim());
    const quiet = !!o.quiet || !!o.json;
    const buildMode = o['build-mode'] as string | undefined;
    if (buildMode !== undefined && buildMode !== 'all' && buildMode !== 'lite') throw new UsageError(`--build-mode must be all or lite (got ${JSON.stringify(buildMode)})`);
    const pull = o.pull as string | undefined;
    if (pull !== undefined && pull !== 'missing' && pull !== 'always' && pull !== 'never') throw new UsageError(`--pull must be missing, always or never (got ${JSON.stringify(pull)})`);
    const compression = o.compression as string | undefined;
    if (compression !== undefined && compression !== 'gzip' && compression !== 'zstd' && compression !== 'none') {
      throw new UsageError(`--compression must be gzip, zstd or none (got ${JSON.stringify(compression)})`);
    }
    const network = o.network as string | undefined;
    if (network !== undefined && network !== 'none' && network !== 'host') throw new UsageError(`--network must be none or host (got ${JSON.stringify(network)})`);
    const levelText = o.level as string | undefined;
    if (levelText !== undefined && !/^\d+$/.test(levelText)) throw new UsageError(`--level must be a number (got ${JSON.stringify(levelText)})`);
    // Everything the build will need is checked before it starts (and before the store opens).
    checkEncoding({ compression, ...(levelText !== undefined ? { level: Number(levelText) } : {}) });
    if (typeof o.tag === 'string') storeName(o.tag);
    for (const p of platforms) parsePlatform(p);
    limitsOf(ctx);
    const listFile = async (name: string) => {
      const file = o[name];
      return typeof file === 'string' ? parseImageList(await readDocumentFile(ctx.fs, resolve(file), `--${name} file`)) : undefined;
    };
    const result = await buildImage({
      store: await openStore(ctx),
      imageList: await listFile('image-list'),
      ignoredImageList: await listFile('ignored-image-list'),
      imageListWithAuth: typeof o['image-list-with-auth'] === 'string'
        ? parseImageListWithAuth(await ctx.fs.promises.readFile(resolve(o['image-list-with-auth']), 'utf8'), o['image-list-with-auth'])
        : undefined,
      buildMode: buildMode as 'all' | 'lite' | undefined,
      pull: pull as 'missing' | 'always' | 'never' | undefined,
      offline: !!o.offline,
      limits: limitsOf(ctx),
      registry: registryAccess(ctx),
      ...(o['no-cache'] ? { cache: false } : {}),
      ...(o['run-on-host'] ? { runExecutor: 'host' as const } : {}),
      ...(network ? { network: network as 'none' | 'host' } : {}),
      cacheFrom: (o['cache-from'] as string[] | undefined) ?? [],
      cacheTo: o['cache-to'] as string | undefined,
      encoding: {
        ...(compression ? { compression: compression as 'gzip' | 'zstd' | 'none' } : {}),
        ...(levelText !== undefined ? { level: Number(levelText) } : {}),
      },
      context,
      kubefile: typeof o.file === 'string' ? resolve(o.file) : undefined,
      tag: o.tag as string | undefined,
      buildArgs: keyValues(o['build-arg'], '--build-arg'),
      platforms,
      fs: ctx.fs,
      env: ctx.env,
      copyMode: copyMode as CopyMode | undefined,
      imageType: type as ImageType | undefined,
      labels: keyValues(o.label, '--label'),
      annotations: keyValues(o.annotation, '--annotation'),
      sourceDateEpoch: epochText !== undefined ? Number(epochText) : undefined,
      onProgress: quiet
        ? undefined
        : (e) => {
            if (e.phase === 'step') ctx.stderr.write(`[${e.platform}] STEP ${e.index}: ${e.instruction}\n`);
          },
    });
    try {
      for (const w of result.warnings) ctx.stderr.write(`warning: ${w.file ? `${w.file}${w.line ? `:${w.line}` : ''}: ` : ''}${w.message}\n`);
      if (o.json) {
        printJson(ctx, {
          digest: result.digest,
          tag: result.tag,
          stored: result.stored,
          images: result.images,
          warnings: result.warnings,
          ...(result.cacheStats ? { cache: result.cacheStats } : {}),
          ...(result.cacheExport ? { cacheExport: result.cacheExport } : {}),
        });
      } else if (o.quiet) print(ctx, result.digest);
      else for (const line of describeBuild(result)) print(ctx, line);
    } finally {
      await result.dispose();
    }
  },
};
