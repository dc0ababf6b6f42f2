/**
 * The Kubefile syntax tree. It describes text, not images: the build interpreter, linters and
 * editors each give it their own meaning.
 *
 * A `Word` is an argument exactly as written in the Kubefile: quotes and escape characters are
 * still in it and `$VAR` is not expanded (buildkit's parser works the same way and leaves
 * expansion to the dispatcher). Pass a Word through `expandWord` to get its value. Strings that
 * came out of a JSON array are already JSON-decoded.
 */

export type EscapeChar = '\\' | '`';

/** Argument text as written: quotes and escapes kept, variables not expanded. */
export type Word = string;

/** `shell`: whitespace-separated words; `json`: a JSON array of strings (buildkit's exec form). */
export type ArgumentForm = 'shell' | 'json';

export const INSTRUCTION_KINDS = [
  'FROM',
  'COPY',
  'ADD',
  'ARG',
  'ENV',
  'LABEL',
  'MAINTAINER',
  'RUN',
  'CMD',
  'CMDS',
  'LAUNCH',
  'APP',
  'APPCMDS',
  'APPENV',
  'CNI',
  'CSI',
  'KUBEVERSION',
] as const;

export type InstructionKind = (typeof INSTRUCTION_KINDS)[number];

export interface InstructionBase<K extends InstructionKind> {
  kind: K;
  /** The keyword as written (`copy`, `Copy`…); `kind` is its canonical spelling. */
  keyword: string;
  /** 1-based line where the instruction starts. */
  line: number;
  /** 1-based line where it ends (after line continuations). */
  endLine: number;
  /** 1-based column of the keyword on `line`. */
  column: number;
  /** The source lines `line..endLine` verbatim, joined with `\n` (comment lines inside included). */
  raw: string;
  /** buildkit's `Original`: the logical line with continuations joined and comment lines dropped. */
  original: string;
}

export interface FromInstruction extends InstructionBase<'FROM'> {
  image: Word;
  /** `FROM image AS name`, lower-cased like buildkit does. */
  stage?: string;
  /** `--platform=` */
  platform?: Word;
}

interface CopyLike<K extends 'COPY' | 'ADD'> extends InstructionBase<K> {
  form: ArgumentForm;
  sources: Word[];
  dest: Word;
  /** `--from=` (a stage name or image). */
  from?: Word;
  /** `--chown=` */
  chown?: Word;
  /** `--chmod=` */
  chmod?: Word;
}

export type CopyInstruction = CopyLike<'COPY'>;
export type AddInstruction = CopyLike<'ADD'>;

export interface ArgDeclaration {
  name: string;
  /** Absent for `ARG NAME` (no default); `''` for `ARG NAME=`. */
  default?: Word;
}

export interface ArgInstruction extends InstructionBase<'ARG'> {
  args: ArgDeclaration[];
}

export interface KeyValue {
  key: Word;
  value: Word;
}

/**
 * `pairs`: `ENV k=v k2=v2`. `legacy`: `ENV k the rest of the line` (one pair; the value is the
 * rest of the line as written). sealer v0.10+ records only the `pairs` form in the image's env.
 */
export type KeyValueForm = 'pairs' | 'legacy';

export interface EnvInstruction extends InstructionBase<'ENV'> {
  form: KeyValueForm;
  pairs: KeyValue[];
}

export interface LabelInstruction extends InstructionBase<'LABEL'> {
  form: KeyValueForm;
  pairs: KeyValue[];
}

export interface MaintainerInstruction extends InstructionBase<'MAINTAINER'> {
  text: string;
}

interface RunFlags {
  /** `--mount=` (repeatable) */
  mounts: Word[];
  /** `--network=` */
  network?: Word;
  /** `--security=` */
  security?: Word;
}

/** Shell form: `command` goes to `/bin/sh -c` unexpanded. JSON form: `args` is argv. */
export type RunInstruction = InstructionBase<'RUN'> &
  RunFlags &
  ({ form: 'shell'; command: string } | { form: 'json'; args: string[] });

export interface CmdInstruction extends InstructionBase<'CMD'> {
  form: ArgumentForm;
  /** Everything after the keyword, as written (what sealer v0.9+ keeps). */
  text: string;
  /** Shell form split on commas (sealer v0.7–v0.8), or the JSON array. */
  commands: string[];
}

export interface CmdsInstruction extends InstructionBase<'CMDS'> {
  commands: string[];
}

export interface LaunchInstruction extends InstructionBase<'LAUNCH'> {
  form: ArgumentForm;
  apps: string[];
}

export interface AppSource {
  /** The source as written. */
  text: Word;
  /** `local://…` (in the build context), `http(s)://…` (downloaded), or a bare context path. */
  type: 'local' | 'remote' | 'path';
  /** `text` without `local://`; the URL for remote sources. */
  location: string;
}

interface AppLike<K extends 'APP' | 'CNI' | 'CSI'> extends InstructionBase<K> {
  form: ArgumentForm;
  name: string;
  sources: AppSource[];
}

export type AppInstruction = AppLike<'APP'>;
export type CniInstruction = AppLike<'CNI'>;
export type CsiInstruction = AppLike<'CSI'>;

export interface AppCmdsInstruction extends InstructionBase<'APPCMDS'> {
  name: string;
  commands: string[];
}

export interface AppEnvInstruction extends InstructionBase<'APPENV'> {
  name: string;
  pairs: KeyValue[];
}

export interface KubeVersionInstruction extends InstructionBase<'KUBEVERSION'> {
  /** A semver range such as `>=1.20.0` or `1.19.x || 1.20.x` (surrounding quotes removed). */
  range: string;
}

export type Instruction =
  | FromInstruction
  | CopyInstruction
  | AddInstruction
  | ArgInstruction
  | EnvInstruction
  | LabelInstruction
  | MaintainerInstruction
  | RunInstruction
  | CmdInstruction
  | CmdsInstruction
  | LaunchInstruction
  | AppInstruction
  | AppCmdsInstruction
  | AppEnvInstruction
  | CniInstruction
  | CsiInstruction
  | KubeVersionInstruction;

export type ParseWarningCode =
  /** A blank line inside a line continuation (buildkit: "will become errors in a future release"). */
  | 'EMPTY_CONTINUATION_LINE'
  /** CMD is deprecated since sealer v0.9; CMDS or LAUNCH replace it. */
  | 'DEPRECATED_CMD'
  /** `ENV k v` / `LABEL k v` instead of `k=v`. */
  | 'LEGACY_KEY_VALUE'
  /** An argument that looks like a JSON array but is not one, so it was read as shell form. */
  | 'JSON_FALLBACK'
  /** A `# name=value` parser directive after the directive section: it is only a comment. */
  | 'MISPLACED_DIRECTIVE'
  /** `#` inside an instruction is an argument, not a comment. */
  | 'INLINE_COMMENT'
  /** `ARG a=1,b=2`: sealer v0.7–v0.8 split on commas; buildkit (and we) do not. */
  | 'ARG_COMMA_LIST'
  /** The same app named twice in LAUNCH. */
  | 'DUPLICATE_LAUNCH_APP';

export interface ParseWarning {
  code: ParseWarningCode;
  message: string;
  line: number;
  column: number;
  file?: string;
}

export interface Kubefile {
  instructions: Instruction[];
  /** The escape character in effect (`# escape=` directive, default `\`). */
  escape: EscapeChar;
  /** Parser directives from the top of the file, names lower-cased: `escape`, `syntax`, `check`. */
  directives: Record<string, string>;
  warnings: ParseWarning[];
}

export interface ParseOptions {
  /** The file name used in error messages and warnings (default `Kubefile`). */
  file?: string;
}
