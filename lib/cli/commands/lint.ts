/** `cloudrootfs lint`: check a CloudRootfs directory or an image for what sealer would trip over. */
import { resolve } from 'node:path';
import { lintImage, lintRootfs, type LintReport } from '../../build/lint';
import { InvalidReferenceError, NotFoundError } from '../../errors';
import { lstatOrUndefined } from '../../fs';
import { readRootfsFromDirectory } from '../../rootfs/io';
import { ImageStore } from '../../store';
import { loadImage, parseImageRef } from '../../transports';
import type { Command, CommandContext } from '../command';
import { print, printJson } from '../command';
import { JSON_OPTION, PLATFORM_OPTION, platformOption } from '../common';

function printReport(ctx: CommandContext, report: LintReport, what: string): void {
  for (const i of report.issues) {
    const where = [i.file, i.field].filter(Boolean).join(' ');
    print(ctx, `${i.severity.padEnd(7)} ${i.code.padEnd(22)} ${where ? `${where}: ` : ''}${i.message}`);
  }
  const version = report.kubernetesVersion ? ` (Kubernetes ${report.kubernetesVersion})` : '';
  print(ctx, `${what}: ${report.errors} error(s), ${report.warnings} warning(s)${version}`);
}

export const lintCommand: Command = {
  name: 'lint',
  usage: 'lint DIR|REF [--platform OS/ARCH] [--json]',
  options: [PLATFORM_OPTION, JSON_OPTION],
  positionals: [1, 1],
  async run(ctx) {
    const [target] = ctx.args.positionals;
    const st = await lstatOrUndefined(ctx.fs, resolve(target));
    // What is written as a path (`/x`, `./x`, `../x`, `.`) and is not there is a missing
    // directory, not an image reference.
    if (!st && /^(?:\/|\.{1,2}(?:\/|$))/.test(target)) throw new NotFoundError(target, 'directory');
    let report: LintReport;
    if (st?.isDirectory() && !(await lstatOrUndefined(ctx.fs, resolve(target, 'oci-layout')))) {
      const rootfs = await readRootfsFromDirectory(resolve(target), { fs: ctx.fs });
      report = await lintRootfs(rootfs, { platform: platformOption(ctx) });
    } else {
      const ref = st?.isDirectory() ? `oci:${target}` : target;
      const platform = platformOption(ctx);
      const image = await (async () => {
        const parsed = parseImageRef(ref);
        return parsed.transport === 'store'
          ? (await ImageStore.open({ fs: ctx.fs, env: ctx.env })).loadImage(ref, platform)
          : loadImage(parsed, { fs: ctx.fs, platform });
      })().catch((err) => {
        // Neither an existing directory nor a valid reference: say what is missing.
        if (!st && err instanceof InvalidReferenceError) throw new NotFoundError(target, 'directory or image');
        throw err;
      });
      report = await lintImage(image);
    }
    if (ctx.args.options.json) printJson(ctx, report);
    else printReport(ctx, report, target);
    return report.ok ? 0 : 1;
  },
};
