/**
 * Terse layer notation for tests, as docs/reference/oci.md#test-vectors writes the vectors:
 *   'a/'        directory          'a/f'       file (content: its own path)
 *   'f=text'    file with content  'l -> t'    symlink       'h => t'   hardlink
 *   '.wh.x'     whiteout           'd/.wh..wh..opq' opaque marker
 */
import { directoryEntry, Entry, fileEntry, hardlinkEntry, symlinkEntry } from '../../lib/entry';
import { assembleLayer } from '../../lib/layer/assemble';
import { Layer } from '../../lib/layer/layer';
import { Rootfs } from '../../lib/rootfs/rootfs';
import { readContent } from '../../lib/content';

export function record(spec: string): [string, Entry] {
  let m: RegExpMatchArray | null;
  if ((m = spec.match(/^(.+?) -> (.+)$/))) return [m[1], symlinkEntry(m[2])];
  if ((m = spec.match(/^(.+?) => (.+)$/))) return [m[1], hardlinkEntry(m[2])];
  if (spec.endsWith('/')) return [spec, directoryEntry()];
  if ((m = spec.match(/^([^=]+)=(.*)$/s))) return [m[1], fileEntry(m[2])];
  return [spec, fileEntry(spec)];
}

export function L(...specs: string[]): Layer {
  return assembleLayer(specs.map(record));
}

/** A sorted listing: 'd/', 'f', 'l -> t'. */
export function listing(rootfs: Rootfs): string[] {
  const out: string[] = [];
  for (const { path, entry } of rootfs.walk()) {
    if (entry.type === 'directory') out.push(path + '/');
    else if (entry.type === 'symlink') out.push(`${path} -> ${entry.target}`);
    else out.push(path);
  }
  return out;
}

export async function fileText(rootfs: Rootfs, path: string): Promise<string> {
  const e = rootfs.get(path);
  if (!e || e.type !== 'file') throw new Error(`${path} is not a file`);
  return (await readContent(e.content)).toString();
}
