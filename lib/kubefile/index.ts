/**
 * The Kubefile parser: text → typed instructions with line numbers. A leaf module (it imports
 * only lib/errors.ts), so linters and editors can use it without the image machinery.
 */
export { parseKubefile } from './parser';
export { expandWord, splitWords } from './expand';
export type { ExpandOptions, VariableLookup } from './expand';
export { formatInstruction } from './format';
export { appNameProblem, sealerCmdText, sealerEnvPairs, sealerPairs, splitSealerWords, type SealerWord } from './sealer-words';
export { APP_SOURCE_SCHEME_MESSAGE } from './parser';
export { INSTRUCTION_KINDS } from './types';
export type {
  AddInstruction,
  AppCmdsInstruction,
  AppEnvInstruction,
  AppInstruction,
  AppSource,
  ArgDeclaration,
  ArgInstruction,
  ArgumentForm,
  CmdInstruction,
  CmdsInstruction,
  CniInstruction,
  CopyInstruction,
  CsiInstruction,
  EnvInstruction,
  EscapeChar,
  FromInstruction,
  Instruction,
  InstructionBase,
  InstructionKind,
  KeyValue,
  KeyValueForm,
  KubeVersionInstruction,
  Kubefile,
  LabelInstruction,
  LaunchInstruction,
  MaintainerInstruction,
  ParseOptions,
  ParseWarning,
  ParseWarningCode,
  RunInstruction,
  Word,
} from './types';
export { KubefileSyntaxError } from '../errors';
