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
  /** `--checksum=` (ADD of a URL only, as in BuildKit): the digest the download must have. */
  checksum?: Word;
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
  /**
   * What sealer v0.10+ records in the image extension's `env` for this line: the original text
   * after `ENV ` split on single spaces, each word holding an `=` a pair, quotes and `$` kept as
   * written (sealer does not expand them). Can differ from `pairs` (`ENV A="x y"` gives `A` = `"x`).
   */
  sealerPairs: KeyValue[];
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
  /**
   * What sealer v0.9+ records as the launch command: the original line between its first `CMD `
   * and the next one (sealer splits on `CMD `), without surrounding blanks; the whole argument
   * text when the line holds no upper-case `CMD `.
   */
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
  /** `local://…` (in the build context) or `http://…`/`https://…` (downloaded), as sealer spells them. */
  type: 'local' | 'remote';
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
  form: ArgumentForm;
  name: string;
  /**
   * The words after the name that hold an `=`, split at the first one, exactly as written: sealer
   * neither unquotes nor expands them, and it skips words without `=` (listed in `skipped`).
   */
  pairs: KeyValue[];
  skipped: string[];
}

export interface KubeVersionInstruction extends InstructionBase<'KUBEVERSION'> {
  /** A semver range such as `>=1.20.0` or `1.19.x || 1.20.x` (surrounding quotes removed). */
  range: string;
  /** The argument as written: what sealer puts in the label, quotes included. */
  text: string;
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
  | 'DUPLICATE_LAUNCH_APP'
  /** A word of APPENV without `=`: sealer skips it. */
  | 'APPENV_WORD_SKIPPED'
  /** sealer v0.11 reads this line differently (or refuses it); the message says how. */
  | 'SEALER_DIFFERENCE';

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
