/**
 * The Kubefile interpreter: instructions → ImageBuilder calls. It has no image logic of its own:
 * it expands words (ARG, `--build-arg`, ENV, and `${ARCH}` in sources) and calls the same
 * builder methods a program would, so a Kubefile and the equivalent fluent chain give the same
 * image, digest included.
 *
 * Variables follow buildkit: ARGs before the first FROM are global and usable in FROM; inside a
 * stage an ARG must be declared to be used (`--build-arg` overrides its default); ENV values are
 * variables for the instructions after them (all pairs of one ENV see the values from before
 * it); the platform ARGs (`TARGETPLATFORM`, `TARGETOS`, `TARGETARCH`, `TARGETVARIANT`,
 * `BUILDPLATFORM`, `BUILDOS`, `BUILDARCH`) are predefined in the global scope. As sealer does,
 * `$ARCH`/`${ARCH}` in COPY sources is the target architecture (and in APP sources, which sealer
 * does not expand at all); ADD goes to buildah untouched in sealer, so it gets no `$ARCH`. RUN's
 * shell form is not expanded here (the shell does it); declared ARGs are in its environment.
 *
 * sealer's own instructions mean what sealer's parser makes of them: APPENV values and the
 * extension's ENV are recorded as written (sealer neither unquotes nor expands them), CMD and
 * KUBEVERSION keep sealer's text. Where a line uses what sealer drops (several COPY sources,
 * COPY flags, variables other than `$ARCH` in COPY sources), it is built as written and a
 * `SEALER_DIFFERENCE` warning says what sealer would do (docs/kubefile.md).
 */
import { KubefileSyntaxError, UnsupportedError, UsageError } from '../errors';
import { formatPlatform, hostPlatform, parsePlatform } from '../image/platform';
import type { Platform } from '../image/types';
import { expandWord, parseKubefile } from '../kubefile';
import type { Instruction, Kubefile, KeyValue, ParseWarning } from '../kubefile';
import { BuilderOptions, ImageBuilder, RunStepOptions, StepOrigin } from './builder';

export interface BuildWarning {
  code: string;
  message: string;
  file?: string;
  line?: number;
  column?: number;
}

export interface InterpretOptions extends BuilderOptions {
  /** `--build-arg` values. */
  buildArgs?: Readonly<Record<string, string>>;
  /** The Kubefile's name, for messages (default `Kubefile`). */
  file?: string;
}

export interface Interpretation {
  /** The builder of the last stage: the image the Kubefile describes. */
  builder: ImageBuilder;
  /** Parser warnings and the interpreter's own (unused build args, ignored flags…). */
  warnings: BuildWarning[];
  /** Named stages (`FROM … AS name`), lower-cased. */
  stages: ReadonlyMap<string, ImageBuilder>;
  platform: Platform;
}

/** Build arguments buildkit defines for every build (available to FROM, or to a stage once declared). */
export function platformArgs(target: Platform, build: Platform = hostPlatform()): Record<string, string> {
  return {
    TARGETPLATFORM: formatPlatform(target),
    TARGETOS: target.os,
    TARGETARCH: target.architecture,
    TARGETVARIANT: target.variant ?? '',
    BUILDPLATFORM: formatPlatform(build),
    BUILDOS: build.os,
    BUILDARCH: build.architecture,
    BUILDVARIANT: build.variant ?? '',
  };
}

type Lookup = (name: string) => string | undefined;

class Interpreter {
  private readonly warnings: BuildWarning[] = [];
  private readonly globals = new Map<string, string | undefined>();
  private readonly usedBuildArgs = new Set<string>();
  private readonly stages = new Map<string, ImageBuilder>();
  private readonly stageList: ImageBuilder[] = [];
  private builder?: ImageBuilder;
  private warnedHostRun = false;
  private vars = new Map<string, string | undefined>();
  private stagePlatform: Platform;
  private readonly predefined: Record<string, string>;

  constructor(
    private readonly kf: Kubefile,
    private readonly options: InterpretOptions,
    private readonly platform: Platform,
  ) {
    this.stagePlatform = platform;
    this.predefined = platformArgs(platform);
    for (const w of kf.warnings) this.warnings.push({ ...w, file: w.file ?? options.file });
  }

  run(): Interpretation {
    for (const i of this.kf.instructions) this.dispatch(i);
    if (!this.builder) throw this.error(this.kf.instructions[0], 'a Kubefile needs a FROM', 'FROM');
    for (const name of Object.keys(this.options.buildArgs ?? {})) {
      if (!this.usedBuildArgs.has(name) && !(name in this.predefined)) {
        this.warnings.push({ code: 'UNUSED_BUILD_ARG', message: `build argument ${name} was not consumed (no ARG ${name} in the Kubefile)`, file: this.options.file });
      }
    }
    return { builder: this.builder, warnings: this.warnings, stages: this.stages, platform: this.platform };
  }

  private origin(i: Instruction): StepOrigin {
    return { file: this.options.file, line: i.line, column: i.column };
  }

  private error(i: Instruction | undefined, reason: string, expected: string): KubefileSyntaxError {
    return new KubefileSyntaxError({ file: this.options.file, line: i?.line ?? 1, column: i?.column ?? 1, reason, expected });
  }

  private lookup(extra: Record<string, string> = {}): Lookup {
    return (name) => (name in extra ? extra[name] : this.vars.get(name));
  }

  private expand(i: Instruction, word: string, lookup: Lookup = this.lookup(), json = false): string {
    return expandWord(word, lookup, { escape: this.kf.escape, at: { file: this.options.file, line: i.line, column: i.column }, quotes: !json });
  }

  private buildArg(name: string): string | undefined {
    const args = this.options.buildArgs ?? {};
    if (Object.prototype.hasOwnProperty.call(args, name)) {
      this.usedBuildArgs.add(name);
      return args[name];
    }
    return undefined;
  }

  private need(i: Instruction): ImageBuilder {
    if (!this.builder) throw this.error(i, `${i.kind} before FROM`, 'FROM');
    return this.builder;
  }

  private set(b: ImageBuilder, i: Instruction): void {
    this.builder = b.at(this.origin(i));
    this.stageList[this.stageList.length - 1] = this.builder;
    const name = this.currentStageName;
    if (name !== undefined) this.stages.set(name, this.builder);
  }

  private currentStageName?: string;

  private dispatch(i: Instruction): void {
    switch (i.kind) {
      case 'FROM':
        return this.from(i);
      case 'ARG':
        for (const a of i.args) {
          const fromBuild = this.buildArg(a.name);
          const scope = this.builder ? this.vars : this.globals;
          const lookup: Lookup = this.builder ? this.lookup() : (n) => this.globals.get(n) ?? this.predefined[n];
          let value = fromBuild;
          if (value === undefined && a.default !== undefined) value = this.expand(i, a.default, lookup);
          if (value === undefined && this.builder) value = this.globals.get(a.name) ?? this.predefined[a.name];
          scope.set(a.name, value);
        }
        return;
      case 'COPY':
      case 'ADD': {
        const b = this.need(i);
        const withArch = i.kind === 'COPY' ? this.lookup({ ARCH: this.stagePlatform.architecture }) : this.lookup();
        if (i.kind === 'COPY') this.noteSealerCopy(i);
        const sources = i.sources.map((s) => this.expand(i, s, withArch, i.form === 'json'));
        const dest = this.expand(i, i.dest, this.lookup(), i.form === 'json');
        const chown = i.chown !== undefined ? this.expand(i, i.chown) : undefined;
        const chmod = i.chmod !== undefined ? this.expand(i, i.chmod) : undefined;
        let from: ImageBuilder | undefined;
        let fromName: string | undefined;
        if (i.from !== undefined) {
          fromName = this.expand(i, i.from);
          from = this.stages.get(fromName.toLowerCase()) ?? (/^\d+$/.test(fromName) ? this.stageList[Number(fromName)] : undefined);
          if (from === b) throw this.error(i, `${i.kind} --from=${fromName} names the stage being built`, 'an earlier stage or an image');
          from ??= ImageBuilder.fromSibling(b, fromName, { platform: this.stagePlatform });
        }
        const checksum = i.kind === 'ADD' && i.checksum !== undefined ? this.expand(i, i.checksum) : undefined;
        const opts = { chown, chmod, ...(from ? { from, fromName } : {}), ...(checksum !== undefined ? { checksum } : {}) };
        return this.set(i.kind === 'COPY' ? b.copy(sources, dest, opts) : b.add(sources, dest, opts), i);
      }
      case 'ENV': {
        const b = this.need(i);
        const env = this.pairs(i, i.pairs);
        for (const [k, v] of Object.entries(env)) this.vars.set(k, v);
        // The config gets buildkit's values; the extension what sealer records (as written).
        return this.set(b.env(env, { extension: asRecord(i.sealerPairs) }), i);
      }
      case 'LABEL':
        return this.set(this.need(i).label(this.pairs(i, i.pairs)), i);
      case 'MAINTAINER':
        return this.set(this.need(i).maintainer(i.text), i);
      case 'RUN': {
        const b = this.need(i);
        if (i.mounts.length > 0) throw new UnsupportedError(`${this.where(i)}RUN --mount is not supported`, 'run-mount', { file: this.options.file, line: i.line });
        if (i.security !== undefined) this.warn(i, 'IGNORED_FLAG', `RUN --security=${i.security} is ignored (the executor decides)`);
        const network = this.runNetwork(i);
        this.warnHostRun(i);
        const env: Record<string, string> = {};
        for (const [k, v] of this.vars) if (v !== undefined) env[k] = v;
        const options = { env, ...(network ? { network } : {}) };
        return this.set(i.form === 'shell' ? b.run(i.command, options) : b.run(i.args, options), i);
      }
      case 'CMD':
        return this.set(this.need(i).cmd(i.text), i);
      case 'CMDS':
        return this.set(this.need(i).cmds(i.commands), i);
      case 'LAUNCH':
        return this.set(this.need(i).launch(i.apps), i);
      case 'APP':
      case 'CNI':
      case 'CSI': {
        const b = this.need(i);
        const withArch = this.lookup({ ARCH: this.stagePlatform.architecture });
        // Local paths and URLs alike: local ones keep no scheme, so the builder tells them apart.
        const sources = i.sources.map((s) => this.expand(i, s.location, withArch, i.form === 'json'));
        const method = i.kind === 'APP' ? 'app' : i.kind === 'CNI' ? 'cni' : 'csi';
        return this.set(b[method](i.name, sources), i);
      }
      case 'APPCMDS':
        return this.set(this.need(i).appCmds(i.name, i.commands), i);
      case 'APPENV':
        // As written: sealer neither unquotes nor expands APPENV values.
        return this.set(this.need(i).appEnv(i.name, asRecord(i.pairs)), i);
      case 'KUBEVERSION':
        // sealer writes the text as written into the label (quotes included).
        if (i.text !== i.range) this.warn(i, 'SEALER_DIFFERENCE', `KUBEVERSION ${i.text}: sealer keeps the quotes in the label ${JSON.stringify(i.text)}`);
        return this.set(this.need(i).kubeVersion(i.text), i);
    }
  }

  /** `RUN --network=`: default, none, or host (only where the build allows the host network). */
  private runNetwork(i: Extract<Instruction, { kind: 'RUN' }>): RunStepOptions['network'] {
    if (i.network === undefined) return undefined;
    const value = i.network;
    if (value !== 'default' && value !== 'none' && value !== 'host') throw this.error(i, `RUN --network=${value}`, 'default, none or host');
    if (value === 'host' && (this.options.network ?? 'none') !== 'host') {
      throw new UsageError(`${this.where(i)}RUN --network=host needs the build to allow the host network (network: 'host', CLI --network host)`);
    }
    return value;
  }

  /** Running on the host is a choice the build's output says out loud, once. */
  private warnHostRun(i: Instruction): void {
    if (this.warnedHostRun) return;
    const executor = this.options.runExecutor;
    if (executor !== 'host' && !(typeof executor === 'object' && executor.name === 'host-shell')) return;
    this.warnedHostRun = true;
    this.warn(i, 'RUN_ON_HOST', 'RUN executes on this host without a sandbox (runExecutor: host): the commands, and any program the base image puts in bin/, run as the builder with its files, environment and network');
  }

  /**
   * sealer turns COPY into `COPY <first word, $ARCH expanded> <second word>` for buildah: flags,
   * further words, and any variable but `$ARCH` in the source are lost
   * (https://github.com/sealerio/sealer/blob/v0.11.0/build/kubefile/parser/kubefile.go#L273-L300).
   */
  private noteSealerCopy(i: Extract<Instruction, { kind: 'COPY' }>): void {
    const dropped: string[] = [];
    if (i.from !== undefined) dropped.push(`--from=${i.from} (sealer copies from the build context)`);
    if (i.chown !== undefined) dropped.push(`--chown=${i.chown} (sealer's files are root's)`);
    if (i.chmod !== undefined) dropped.push(`--chmod=${i.chmod}`);
    if (i.sources.length > 1) dropped.push(`every word after ${JSON.stringify(i.sources[0])} but the first (sealer copies ${i.sources[0]} to ${i.sources[1]})`);
    if (i.form === 'json' && [...i.sources, i.dest].some((w) => /\s/.test(w))) dropped.push('the JSON form (sealer joins its words with spaces, so a blank splits a path)');
    const others = new Set<string>();
    for (const s of i.sources) {
      try {
        expandWord(s, (name) => {
          if (name !== 'ARCH') others.add(name);
          return 'x';
        }, { escape: this.kf.escape, quotes: i.form !== 'json' });
      } catch {
        // The expansion that follows reports it, with its position.
      }
    }
    if (others.size > 0) dropped.push(`the value of ${[...others].map((n) => `$${n}`).join(', ')} in the source (sealer expands only $ARCH there; the rest become empty)`);
    if (dropped.length > 0) this.warn(i, 'SEALER_DIFFERENCE', `sealer v0.11 would build this COPY without ${dropped.join('; ')}`);
  }

  private where(i: Instruction): string {
    return `${this.options.file ?? 'Kubefile'}:${i.line}: `;
  }

  private warn(i: Instruction, code: string, message: string): void {
    this.warnings.push({ code, message, file: this.options.file, line: i.line, column: i.column });
  }

  private pairs(i: Instruction, list: readonly KeyValue[]): Record<string, string> {
    const out: Record<string, string> = {};
    const lookup = this.lookup();
    for (const p of list) out[this.expand(i, p.key, lookup)] = this.expand(i, p.value, lookup);
    return out;
  }

  private from(i: Extract<Instruction, { kind: 'FROM' }>): void {
    const globalLookup: Lookup = (n) => (this.globals.has(n) ? this.globals.get(n) : this.predefined[n]);
    const image = this.expand(i, i.image, globalLookup);
    if (image === '') throw this.error(i, `FROM ${i.image} expands to nothing`, 'an image reference or scratch');
    if (i.platform !== undefined) {
      const text = this.expand(i, i.platform, globalLookup);
      try {
        this.stagePlatform = parsePlatform(text);
      } catch (err) {
        throw this.error(i, `FROM --platform=${text}: ${(err as Error).message}`, 'os/arch[/variant]');
      }
    } else this.stagePlatform = this.platform;
    this.vars = new Map();
    const previous = this.stages.get(image.toLowerCase());
    const options: Partial<BuilderOptions> = { platform: this.stagePlatform, fromOrigin: this.origin(i) };
    const b = previous
      ? ImageBuilder.fromSibling(previous, previous, options)
      : this.builder
        ? ImageBuilder.fromSibling(this.builder, image, options)
        : ImageBuilder.from(image, { ...this.options, ...options });
    this.builder = b;
    this.currentStageName = i.stage;
    this.stageList.push(b);
    if (i.stage !== undefined) {
      if (this.stages.has(i.stage)) throw this.error(i, `duplicate stage name ${JSON.stringify(i.stage)}`, 'a new stage name');
      this.stages.set(i.stage, b);
    }
  }
}

function asRecord(pairs: readonly KeyValue[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of pairs) out[p.key] = p.value;
  return out;
}

/**
 * Turn a Kubefile (text or parsed) into the builder that makes its image for `platform`
 * (default: this machine's). Nothing runs until the builder's `build()`.
 */
export function interpretKubefile(kubefile: string | Kubefile, options: InterpretOptions = {}): Interpretation {
  const kf = typeof kubefile === 'string' ? parseKubefile(kubefile, { file: options.file }) : kubefile;
  const platform = options.platform === undefined ? hostPlatform() : typeof options.platform === 'string' ? parsePlatform(options.platform) : options.platform;
  if (kf.instructions.length === 0) throw new UsageError('the Kubefile has no instructions');
  return new Interpreter(kf, options, platform).run();
}

export type { ParseWarning };
