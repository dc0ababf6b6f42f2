/**
 * Building CloudImages: the fluent ImageBuilder, the Kubefile interpreter that drives it,
 * buildImage(), RUN executors, template rendering, Clusterfile validation and the rootfs lint.
 * See docs/building.md.
 */
export {
  ImageBuilder,
  resolveSourceDateEpoch,
  type BaseImageStore,
  type BaseSpec,
  type BuilderOptions,
  type ContextSpec,
  type CopyStepOptions,
  type EntryOptions,
  type ImageType,
  type ResolveBase,
  type RunStepOptions,
  type EnvStepOptions,
  type StepOrigin,
  type StepProgress,
} from './builder';
export { interpretKubefile, platformArgs, type BuildWarning, type Interpretation, type InterpretOptions } from './interpreter';
export {
  buildImage,
  type BuildImageOptions,
  type BuildImageResult,
  type BuildProgress,
  type BuildStore,
  type BuiltImage,
  type BuiltLayer,
} from './build-image';
export { readBuildContext, readIgnoreRules, contextFromRootfs, type BuildContext, type ReadContextOptions } from './context';
export { IgnoreRules, IGNORE_FILES } from './ignore';
export {
  copyFromContext,
  copyResolved,
  resolveSources,
  isGlob,
  parseChmod,
  parseChown,
  destinationIsDirectory,
  type CopyMode,
  type RootfsCopyOptions,
  type Owner,
  type ResolvedSource,
} from './copy';
export { sniffArchive, archiveTree, type ArchiveKind } from './add';
export { RemoteFetcher, remoteFileName, isHttpSource, REMOTE_FETCH_DEFAULTS, type RemoteFetchOptions, type FetchedFile } from './remote-fetch';
export { DownloadCache, type DownloadEntry } from './download-cache';
export { detectApp, appDirectory, walkOrderFiles, APP_ROOT, type DetectedApp } from './apps';
export {
  sandboxExecutor,
  hostShellExecutor,
  builtinRunExecutor,
  defaultRunExecutor,
  resolveRunExecutor,
  RunUnavailableError,
  type DiskRunOptions,
  type HostShellOptions,
  type SandboxOptions,
  type RunExecutor,
  type RunExecutorName,
  type RunNetwork,
  type RunRequest,
} from './run';
export {
  render,
  renderTemplate,
  checkTemplate,
  findTemplates,
  TEMPLATE_DIRS,
  TEMPLATE_SUFFIX,
  type RenderOptions,
  type RenderResult,
  type RenderedFile,
  type TemplateValues,
} from './render';
export { checkClusterfile, validateClusterfile, KUBEADM_KINDS, type ClusterfileDocument, type ClusterfileReport } from './clusterfile';
export { lintRootfs, lintImage, type LintIssue, type LintOptions, type LintReport, type LintSeverity } from './lint';
export { DigestOnlyTarget } from './digest-target';
