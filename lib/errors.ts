/**
 * Every error cloudrootfs throws on purpose is a CloudRootfsError with a stable `code`.
 * Callers branch on `code` (or `instanceof` a subclass), never on message text, which may change.
 */

export type ErrorCode =
  | 'INVALID_PATH'
  | 'INVALID_WHITEOUT'
  | 'LAYER_CONFLICT'
  | 'HARDLINK_TARGET'
  | 'UNSUPPORTED_ENTRY'
  | 'CORRUPT_ARCHIVE'
  | 'AMBIGUOUS_ARCHIVE'
  | 'DIGEST_MISMATCH'
  | 'SIZE_MISMATCH'
  | 'BLOB_NOT_FOUND'
  | 'INVALID_IMAGE'
  | 'SCHEMA_VALIDATION'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'IMAGE_NOT_FOUND'
  | 'AMBIGUOUS_IMAGE'
  | 'PLATFORM_NOT_FOUND'
  | 'INVALID_REFERENCE'
  | 'NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'DESTINATION_EXISTS'
  | 'LIMIT_EXCEEDED'
  | 'KUBEFILE_SYNTAX'
  | 'BUILD_FAILED'
  | 'FETCH_FAILED'
  | 'FETCH_TIMEOUT'
  | 'VALIDATION_FAILED'
  | 'TEMPLATE_ERROR'
  | 'REGISTRY_ERROR'
  | 'AUTH_FAILED'
  | 'NETWORK_ERROR'
  | 'TIMEOUT'
  | 'TLS_ERROR'
  | 'CREDENTIAL_HELPER'
  | 'REGISTRY_CONFIG'
  | 'REGISTRY_BLOCKED'
  | 'LOCK_TIMEOUT'
  | 'SANDBOX_UNAVAILABLE'
  | 'UNSUPPORTED'
  | 'USAGE'
  // An entry attribute no filesystem can hold; writes the filesystem refused (FileSystemError).
  | 'INVALID_ATTRIBUTE'
  | 'NO_SPACE'
  | 'PERMISSION_DENIED'
  | 'READ_ONLY_FILESYSTEM'
  | 'NOT_A_DIRECTORY'
  | 'NOT_A_FILE'
  | 'FILESYSTEM_ERROR';

export interface ErrorDetails {
  [key: string]: unknown;
}

export class CloudRootfsError extends Error {
  readonly code: ErrorCode;
  readonly details: ErrorDetails;

  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.details = details;
  }
}

/** A rootfs path from outside (archive entry, COPY argument, API call) failed validation. */
export class InvalidPathError extends CloudRootfsError {
  constructor(message: string, readonly path: string) {
    super('INVALID_PATH', message, { path });
  }
}

/** A whiteout entry that no OCI reader may accept (bare `.wh.`, `.wh..`, escaping the root…). */
export class InvalidWhiteoutError extends CloudRootfsError {
  constructor(message: string, readonly path: string) {
    super('INVALID_WHITEOUT', message, { path });
  }
}

/** An entry cannot be placed: its parent is not a directory, or it would change the root's type. */
export class LayerConflictError extends CloudRootfsError {
  constructor(message: string, readonly path: string) {
    super('LAYER_CONFLICT', message, { path });
  }
}

/** A hardlink whose target is missing, a directory, or outside the root. */
export class HardlinkTargetError extends CloudRootfsError {
  constructor(message: string, readonly path: string, readonly target: string) {
    super('HARDLINK_TARGET', message, { path, target });
  }
}

/** Device nodes, fifos and other entry types a CloudRootfs has no use for. */
export class UnsupportedEntryError extends CloudRootfsError {
  constructor(message: string, readonly path: string, readonly entryType: string) {
    super('UNSUPPORTED_ENTRY', message, { path, entryType });
  }
}

/** A tar, gzip or archive that cannot be read: truncated, corrupt, or lying about sizes. */
export class CorruptArchiveError extends CloudRootfsError {
  constructor(message: string, details: ErrorDetails = {}, options?: { cause?: unknown }) {
    super('CORRUPT_ARCHIVE', message, details, options);
  }
}

/**
 * An archive Go's archive/tar reads, refused by design: the programs that unpack images
 * (containerd, Docker, umoci, skopeo) disagree on what it means, or the library cannot represent
 * exactly what Go reads. `details.reason` says which form (docs/security.md lists them).
 */
export class AmbiguousArchiveError extends CloudRootfsError {
  constructor(message: string, details: ErrorDetails & { reason: string }) {
    super('AMBIGUOUS_ARCHIVE', message, details);
  }
}

export class DigestMismatchError extends CloudRootfsError {
  constructor(readonly expected: string, readonly actual: string, what = 'content') {
    super('DIGEST_MISMATCH', `${what} digest mismatch: expected ${expected}, got ${actual}`, { expected, actual, what });
  }
}

export class SizeMismatchError extends CloudRootfsError {
  constructor(readonly expected: number, readonly actual: number, what = 'content') {
    super('SIZE_MISMATCH', `${what} size mismatch: expected ${expected} bytes, got ${actual}`, { expected, actual, what });
  }
}

export class BlobNotFoundError extends CloudRootfsError {
  constructor(readonly digest: string, where = '') {
    super('BLOB_NOT_FOUND', `blob ${digest} not found${where ? ` in ${where}` : ''}`, { digest, where });
  }
}

/** An image (manifest, config, index or layout) that is structurally wrong. */
export class InvalidImageError extends CloudRootfsError {
  constructor(message: string, details: ErrorDetails = {}) {
    super('INVALID_IMAGE', message, details);
  }
}

export interface SchemaIssue {
  /** JSON pointer of the bad field, `''` for the document itself. */
  field: string;
  message: string;
  /** The file the document came from, when known. */
  file?: string;
}

/** JSON that does not match its schema; `issues` name each bad field. */
export class SchemaValidationError extends CloudRootfsError {
  constructor(readonly schema: string, readonly issues: SchemaIssue[], file?: string) {
    super(
      'SCHEMA_VALIDATION',
      `${file ? `${file}: ` : ''}invalid ${schema}: ${issues.map((i) => `${i.field || '(root)'} ${i.message}`).join('; ')}`,
      { schema, issues, file },
    );
  }
}

export class UnsupportedMediaTypeError extends CloudRootfsError {
  constructor(readonly mediaType: string, where = '') {
    super('UNSUPPORTED_MEDIA_TYPE', `unsupported media type ${JSON.stringify(mediaType)}${where ? ` in ${where}` : ''}`, {
      mediaType,
      where,
    });
  }
}

export class ImageNotFoundError extends CloudRootfsError {
  constructor(readonly reference: string, where = '') {
    super('IMAGE_NOT_FOUND', `image ${reference} not found${where ? ` in ${where}` : ''}`, { reference, where });
  }
}

export class InvalidReferenceError extends CloudRootfsError {
  constructor(readonly reference: string, reason: string) {
    super('INVALID_REFERENCE', `invalid reference ${JSON.stringify(reference)}: ${reason}`, { reference, reason });
  }
}

/** A path asked for in a Rootfs (or on a filesystem) does not exist. */
export class NotFoundError extends CloudRootfsError {
  constructor(readonly path: string, what = 'path') {
    super('NOT_FOUND', `${what} ${JSON.stringify(path)} not found`, { path, what });
  }
}

/** Refusing to overwrite an existing output. */
export class DestinationExistsError extends CloudRootfsError {
  constructor(readonly path: string) {
    super('DESTINATION_EXISTS', `destination ${path} already exists and is not empty`, { path });
  }
}

/** A configured bound (entries, path length, manifest size, nesting) was exceeded by untrusted input. */
export class LimitExceededError extends CloudRootfsError {
  constructor(readonly limit: string, readonly max: number, what: string) {
    super('LIMIT_EXCEEDED', `${what} exceeds the limit ${limit}=${max}`, { limit, max, what });
  }
}

/**
 * A Kubefile that cannot be parsed (or a `${…}` that cannot be expanded). The message reads
 * `Kubefile:7:5: COPY needs at least a source and a destination (got 1 argument)`; `line` and
 * `column` are 1-based and `expected` says what would have been valid there.
 */
export class KubefileSyntaxError extends CloudRootfsError {
  readonly file?: string;
  readonly line: number;
  readonly column: number;
  readonly expected: string;
  /** The message without the `file:line:column: ` prefix. */
  readonly reason: string;

  constructor(at: { file?: string; line: number; column: number; expected: string; reason: string }) {
    super('KUBEFILE_SYNTAX', `${at.file ?? 'Kubefile'}:${at.line}:${at.column}: ${at.reason}`, { ...at });
    this.file = at.file;
    this.line = at.line;
    this.column = at.column;
    this.expected = at.expected;
    this.reason = at.reason;
  }
}

export class ValidationError extends CloudRootfsError {
  constructor(message: string, readonly issues: SchemaIssue[]) {
    super('VALIDATION_FAILED', message, { issues });
  }
}

/**
 * A build step failed (a RUN that exited non-zero, a COPY whose source is missing…). `details`
 * name the step (`instruction`, and `file`/`line` for a Kubefile); `cause` is the underlying
 * error and `details.causeCode` its code when it was a CloudRootfsError.
 */
export class BuildError extends CloudRootfsError {
  constructor(message: string, details: ErrorDetails = {}, options?: { cause?: unknown }) {
    super('BUILD_FAILED', message, details, options);
  }
}

/**
 * A remote build source (`APP … https://…`, `ADD <url>`) could not be downloaded: the server
 * answered an error status (`status`, e.g. 404, or a 5xx after every retry), a redirect led
 * nowhere or too far, or the URL names no file. `details.url` is the URL as written.
 */
export class FetchError extends CloudRootfsError {
  constructor(message: string, details: ErrorDetails & { url: string; status?: number } = { url: '' }, options?: { cause?: unknown }) {
    super('FETCH_FAILED', message, details, options);
  }
}

/**
 * A download made no progress for too long, after every retry: no connection within the connect
 * timeout, or no bytes (headers or body) within the stall timeout. `details.phase` says which.
 */
export class FetchTimeoutError extends CloudRootfsError {
  constructor(message: string, details: ErrorDetails & { url: string; phase: 'connect' | 'headers' | 'body'; timeoutMs: number }) {
    super('FETCH_TIMEOUT', message, details);
  }
}

/** A `.tmpl` file that cannot be parsed or rendered; `file`, `line` and `column` say where. */
export class TemplateError extends CloudRootfsError {
  constructor(message: string, details: ErrorDetails = {}) {
    super('TEMPLATE_ERROR', message, details);
  }
}

export class UsageError extends CloudRootfsError {
  constructor(message: string) {
    super('USAGE', message);
  }
}

/** A feature this runtime cannot provide (e.g. zstd on a Node without `zlib.createZstdCompress`). */
export class UnsupportedError extends CloudRootfsError {
  constructor(message: string, readonly feature: string, details: ErrorDetails = {}) {
    super('UNSUPPORTED', message, { feature, ...details });
  }
}

/**
 * RUN could not make its sandbox (bubblewrap missing or too old, user namespaces disabled, a
 * mount refused…): the command did not run. `details.reason` says why, `details.output` holds
 * bubblewrap's own message. Running on the host instead is an explicit choice (docs/security.md).
 */
export class SandboxUnavailableError extends CloudRootfsError {
  constructor(message: string, details: ErrorDetails = {}, options?: { cause?: unknown }) {
    super('SANDBOX_UNAVAILABLE', message, details, options);
  }
}

/** A lock (the image store's index lock) could not be taken in time: another process holds it. */
export class LockTimeoutError extends CloudRootfsError {
  constructor(readonly lockPath: string, readonly waitedMs: number, holder?: unknown) {
    super('LOCK_TIMEOUT', `timed out after ${waitedMs} ms waiting for the lock ${lockPath}`, { lockPath, waitedMs, holder });
  }
}

/** One entry of a registry's `{"errors":[…]}` body (distribution-spec error codes). */
export interface RegistryErrorEntry {
  code: string;
  message?: string;
  detail?: unknown;
}

/** A registry answered with an unexpected status; `errors` holds what it said, `status` the HTTP status. */
export class RegistryError extends CloudRootfsError {
  constructor(
    message: string,
    readonly status: number | undefined,
    readonly errors: RegistryErrorEntry[] = [],
    details: ErrorDetails = {},
  ) {
    super('REGISTRY_ERROR', message, { status, errors, ...details });
  }
}

/** Credentials were missing, rejected, or not enough for the operation (401/403, token server refusal). */
export class AuthError extends CloudRootfsError {
  constructor(
    message: string,
    readonly status: number | undefined,
    readonly errors: RegistryErrorEntry[] = [],
    details: ErrorDetails = {},
  ) {
    super('AUTH_FAILED', message, { status, errors, ...details });
  }
}

/** The registry could not be reached, or the connection kept failing after every retry. */
export class NetworkError extends CloudRootfsError {
  constructor(message: string, details: ErrorDetails = {}, options?: { cause?: unknown }) {
    super('NETWORK_ERROR', message, details, options);
  }
}

// --- registry reach: timeouts, TLS, credential helpers, configuration ----------------------------

/**
 * A registry request made no progress for too long: no connection within the connect timeout,
 * or nothing (or too little) sent or received within the stall timeout. `details.phase` says
 * where: `connect`, `response` (waiting for the answer), `body` (reading it) or `upload`.
 */
export class TimeoutError extends CloudRootfsError {
  constructor(message: string, details: ErrorDetails = {}, options?: { cause?: unknown }) {
    super('TIMEOUT', message, details, options);
  }
}

/** The TLS handshake with a registry failed: an untrusted or mismatched certificate, a refused client certificate. */
export class TlsError extends CloudRootfsError {
  constructor(message: string, details: ErrorDetails = {}, options?: { cause?: unknown }) {
    super('TLS_ERROR', message, details, options);
  }
}

/**
 * A `docker-credential-*` helper failed, is missing, or answered something unreadable. The
 * message never holds a secret: only the helper's own error text, with any secret removed.
 */
export class CredentialHelperError extends CloudRootfsError {
  constructor(message: string, details: ErrorDetails = {}) {
    super('CREDENTIAL_HELPER', message, details);
  }
}

/** A registry configuration file (registries.conf, a certs.d directory, a proxy setting) is invalid. */
export class RegistryConfigError extends CloudRootfsError {
  constructor(message: string, details: ErrorDetails = {}) {
    super('REGISTRY_CONFIG', message, details);
  }
}

/** registries.conf blocks pulls from this registry (`blocked = true`). */
export class RegistryBlockedError extends CloudRootfsError {
  constructor(readonly registry: string, sources: string) {
    super('REGISTRY_BLOCKED', `registry ${registry} is blocked in ${sources}`, { registry, sources });
  }
}

// --- platforms, entry attributes, filesystem failures ---------------------------------------------

/**
 * An image (or index) has nothing for the platform asked for. One wording everywhere:
 * `no image for platform linux/arm64 in WHERE (have: linux/amd64)`.
 */
export class PlatformNotFoundError extends CloudRootfsError {
  /**
   * `wanted` and `have` are formatted platforms (`linux/arm64`); `details` carry them as objects.
   * Build it with `platformNotFound` (lib/image/platform.ts), which formats them.
   */
  constructor(wanted: readonly string[], have: readonly string[], where: string, details: ErrorDetails = {}) {
    super('PLATFORM_NOT_FOUND', `no image for platform ${wanted.join(', ')}${where ? ` in ${where}` : ''} (have: ${have.join(', ') || 'none'})`, {
      ...details,
      where,
    });
  }
}

/**
 * An entry attribute no Linux filesystem can hold: a mode outside 0..07777, an owner outside
 * 0..2^32-1 (uid_t), an mtime that is not a number. Readers of archives report it as
 * CORRUPT_ARCHIVE with this error as the cause.
 */
export class InvalidAttributeError extends CloudRootfsError {
  constructor(
    readonly attribute: string,
    readonly value: unknown,
    reason: string,
  ) {
    super('INVALID_ATTRIBUTE', `invalid ${attribute} ${String(value)}: ${reason}`, { attribute, value: String(value) });
  }
}

export type FileSystemErrorCode = 'NO_SPACE' | 'PERMISSION_DENIED' | 'READ_ONLY_FILESYSTEM' | 'NOT_A_DIRECTORY' | 'NOT_A_FILE' | 'FILESYSTEM_ERROR';

/**
 * A filesystem operation on a path the user named failed: the disk or quota is full, permission
 * is denied, the filesystem is read-only, a path is not the kind of file it must be. `path` is the
 * user's path (a destination, the store), never an internal temporary name; `errno` is the
 * system's code (`ENOSPC`…) when there is one.
 */
export class FileSystemError extends CloudRootfsError {
  constructor(
    code: FileSystemErrorCode,
    message: string,
    readonly path: string,
    readonly errno?: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, { path, ...(errno ? { errno } : {}) }, options);
  }
}

const ERRNO_CODES: Readonly<Record<string, [FileSystemErrorCode, string]>> = {
  ENOSPC: ['NO_SPACE', 'no space left on the device'],
  EDQUOT: ['NO_SPACE', 'the disk quota is exhausted'],
  EFBIG: ['NO_SPACE', 'the file is larger than the filesystem allows'],
  EACCES: ['PERMISSION_DENIED', 'permission denied'],
  EPERM: ['PERMISSION_DENIED', 'operation not permitted'],
  EROFS: ['READ_ONLY_FILESYSTEM', 'the filesystem is read-only'],
  ENOTDIR: ['NOT_A_DIRECTORY', 'a component of the path is not a directory'],
  EISDIR: ['NOT_A_FILE', 'it is a directory'],
};

/**
 * A system error (`err.code` = `ENOSPC`, `EACCES`…) from `action` on `path` (the user's path: a
 * destination, the store) as a FileSystemError whose message names that path and not the
 * temporary file the system call was made on. CloudRootfsErrors and errors without an errno
 * code are returned unchanged.
 */
export function fileSystemError(err: unknown, path: string, action: string): unknown {
  if (err instanceof CloudRootfsError) return err;
  const errno = typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
  if (!errno || !/^E[A-Z0-9]+$/.test(errno)) return err;
  // Unknown codes keep the system's words (`EIO: i/o error, write …` → `i/o error`).
  const said = err instanceof Error ? /^E[A-Z0-9]+: ([^,]+)/.exec(err.message)?.[1] : undefined;
  const [code, reason] = ERRNO_CODES[errno] ?? ['FILESYSTEM_ERROR', said ?? 'failed'];
  return new FileSystemError(code, `cannot ${action} ${path}: ${reason} (${errno})`, path, errno, { cause: err });
}

export function isCloudRootfsError(err: unknown): err is CloudRootfsError {
  return err instanceof CloudRootfsError;
}
