/**
 * sealer v0.9+ applications (`APP`, `CNI`, `CSI`): the files go to `application/apps/<name>/`
 * (Docker COPY semantics), and the sealer extension records the app's type and launch files,
 * decided from the sources exactly as sealer's `getApplicationType`/`getApplicationFiles` do:
 * - `helm`: a source directory holding `Chart.yaml`, `values.yaml` and `templates` at its top, or
 *   those three among the sources' top-level names; its files are `[<name>]`;
 * - `shell`: every file is `*.sh`; its files are the first source's (sealer runs only those);
 * - `kube`: every file is `*.yaml`/`*.yml`; its files are all of them;
 * - anything else: no type (`''`), and the app needs `APPCMDS` or the build fails.
 * File paths are relative to the app directory, listed source by source, and a directory's files
 * in `filepath.Walk` order (names sorted in each directory, a subdirectory walked where its name
 * sorts): the order sealer gives `kubectl apply`
 * (https://github.com/sealerio/sealer/blob/v0.11.0/build/kubefile/parser/utils.go#L213-L265).
 */
import { baseName, joinPath } from '../path';
import { FsNode } from '../rootfs/node';
import type { ResolvedSource } from './copy';

export const APP_ROOT = 'application/apps';

export interface DetectedApp {
  type: '' | 'helm' | 'kube' | 'shell';
  files: string[];
}

function isDir(node: FsNode): boolean {
  return node.entry?.type === 'directory';
}

/**
 * Everything but directories below a directory node (files, and symlinks, which Walk does not
 * follow), paths relative to it, in Go's `filepath.Walk` order: each directory's names sorted
 * byte-wise, a subdirectory's files listed where its name sorts (`crds/01-crd.yaml` before
 * `crds-extra.yaml`), unlike tar order, which sorts `crds/` after `crds-extra.yaml`.
 */
export function walkOrderFiles(node: FsNode): string[] {
  const out: string[] = [];
  // An explicit stack (deep trees must not exhaust the call stack), children pushed in reverse.
  const stack: Array<{ node: FsNode; path: string }> = [{ node, path: '' }];
  while (stack.length > 0) {
    const { node: n, path } = stack.pop()!;
    if (path !== '' && !isDir(n)) {
      out.push(path);
      continue;
    }
    const children = [...(n.children?.entries() ?? [])];
    for (let i = children.length - 1; i >= 0; i--) stack.push({ node: children[i][1], path: path === '' ? children[i][0] : `${path}/${children[i][0]}` });
  }
  return out;
}

function isHelm(sources: readonly ResolvedSource[]): boolean {
  let bits = 0;
  const note = (name: string) => {
    if (name.endsWith('Chart.yaml')) bits |= 1;
    else if (name.endsWith('values.yaml')) bits |= 2;
    else if (name.endsWith('templates')) bits |= 4;
  };
  for (const s of sources) {
    if (isDir(s.node)) {
      const c = s.node.children!;
      if (c.has('Chart.yaml') && c.has('values.yaml') && c.has('templates')) return true;
      for (const [name, child] of c.entries()) if (!isDir(child)) note(name);
    } else note(s.path);
  }
  return bits === 7;
}

function kindOf(name: string): 'shell' | 'kube' | 'unknown' {
  const lower = name.toLowerCase();
  if (lower.endsWith('.sh')) return 'shell';
  if (lower.endsWith('.yaml') || lower.endsWith('.yml')) return 'kube';
  return 'unknown';
}

/** sealer's application type and launch files for these sources. */
export function detectApp(name: string, sources: readonly ResolvedSource[]): DetectedApp {
  if (isHelm(sources)) return { type: 'helm', files: [name] };
  let shell = false;
  let kube = false;
  for (const s of sources) {
    const names = isDir(s.node) ? walkOrderFiles(s.node).map(baseName) : [s.path];
    for (const n of names) {
      const k = kindOf(n);
      if (k === 'unknown') return { type: '', files: [] };
      if (k === 'shell') shell = true;
      else kube = true;
    }
  }
  const type = shell && !kube ? 'shell' : kube && !shell ? 'kube' : '';
  if (type === '') return { type, files: [] };
  const files: string[] = [];
  for (const s of sources) {
    files.push(...(isDir(s.node) ? walkOrderFiles(s.node) : [baseName(s.path)]));
    if (type === 'shell') break; // sealer launches only the first source of a shell app
  }
  return { type, files };
}

/** `application/apps/<name>/` */
export function appDirectory(name: string): string {
  return joinPath(APP_ROOT, name) + '/';
}
