/**
 * certs.d: per-registry CA and client certificates, as the containers tools (containers-certs.d(5))
 * and docker read them.
 *
 * Exactly one directory is used for a registry, never a merge:
 * 1. `certDir` (skopeo's `--cert-dir`): the files sit directly in it;
 * 2. else the first existing `ROOT/HOST[:PORT]` of the roots (default
 *    `$HOME/.config/containers/certs.d`, `/etc/containers/certs.d`, `/etc/docker/certs.d`), the
 *    directory named exactly as the reference writes the registry (`reg.example` is not
 *    `reg.example:443`); an unreadable one is skipped.
 *
 * In it, `*.crt` files are CAs added to the system's roots; each `NAME.cert` is a client
 * certificate whose key is `NAME.key`, and a half pair is an error (containers/image's
 * `tlsclientconfig.SetupCertificates`).
 */
import * as os from 'node:os';
import * as nodePath from 'node:path';
import { RegistryConfigError } from '../errors';
import { diskFs, errnoCode, type FileSystem } from '../fs';

/** What a certs.d directory (or the `tls` option) gives a connection. */
export interface TlsMaterial {
  /** Extra CAs (PEM), on top of the system's roots. */
  ca: string[];
  /** Client certificates (PEM) and their keys, pairwise. */
  certs: string[];
  keys: string[];
  /** Where it came from (for messages). */
  source?: string;
}

export const EMPTY_TLS_MATERIAL: TlsMaterial = Object.freeze({ ca: [], certs: [], keys: [] }) as TlsMaterial;

export interface CertsOptions {
  certDir?: string;
  certsDirs?: readonly string[];
  authFs?: FileSystem;
  env?: NodeJS.ProcessEnv;
  homeDir?: string;
}

/** The certs.d roots searched, in order (home first, as containers/image does). */
export function defaultCertsRoots(options: Pick<CertsOptions, 'env' | 'homeDir'> = {}): string[] {
  const home = options.homeDir ?? options.env?.HOME ?? os.homedir();
  return [nodePath.join(home, '.config', 'containers', 'certs.d'), '/etc/containers/certs.d', '/etc/docker/certs.d'];
}

/** The one directory whose files apply to `registry` (`host[:port]`), or undefined when there is none. */
export async function certDirFor(registry: string, options: CertsOptions = {}): Promise<string | undefined> {
  if (options.certDir) return options.certDir;
  const fs = options.authFs ?? diskFs;
  // Windows forbids ':' in names; docker strips it there. Here the name is the registry as written.
  for (const root of options.certsDirs ?? defaultCertsRoots(options)) {
    const dir = nodePath.join(root, registry);
    try {
      const st = await fs.promises.stat(dir);
      if (st.isDirectory()) return dir;
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EACCES' || code === 'EPERM') continue;
      throw err;
    }
  }
  return undefined;
}

/** The CAs and client pairs of one directory (missing or unreadable: none). */
export async function readCertDir(dir: string, fs: FileSystem = diskFs): Promise<TlsMaterial> {
  let names: string[];
  try {
    names = (await fs.promises.readdir(dir)).map(String).sort();
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EACCES' || code === 'EPERM') return { ...EMPTY_TLS_MATERIAL, source: dir };
    throw err;
  }
  const present = new Set(names);
  const out: TlsMaterial = { ca: [], certs: [], keys: [], source: dir };
  const read = async (name: string): Promise<string | undefined> => {
    try {
      return await fs.promises.readFile(nodePath.join(dir, name), 'utf8');
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return undefined; // a dangling link, or removed meanwhile
      throw err;
    }
  };
  for (const name of names) {
    if (name.endsWith('.crt')) {
      const pem = await read(name);
      if (pem !== undefined) out.ca.push(pem);
    }
    if (name.endsWith('.cert')) {
      const keyName = `${name.slice(0, -'.cert'.length)}.key`;
      if (!present.has(keyName)) {
        throw new RegistryConfigError(
          `missing key ${keyName} for client certificate ${name}. Note that CA certificates should use the extension .crt`,
          { dir, file: name },
        );
      }
      const cert = await read(name);
      const key = await read(keyName);
      if (cert !== undefined && key !== undefined) {
        out.certs.push(cert);
        out.keys.push(key);
      }
    }
    if (name.endsWith('.key')) {
      const certName = `${name.slice(0, -'.key'.length)}.cert`;
      if (!present.has(certName)) throw new RegistryConfigError(`missing client certificate ${certName} for key ${name}`, { dir, file: name });
    }
  }
  return out;
}

/** certs.d material for `registry` (nothing when no directory applies). */
export async function certsForRegistry(registry: string, options: CertsOptions = {}): Promise<TlsMaterial> {
  const dir = await certDirFor(registry, options);
  return dir ? readCertDir(dir, options.authFs ?? diskFs) : EMPTY_TLS_MATERIAL;
}
