/** Platforms as `os/arch[/variant]`, the host's platform, and matching (docs/reference/oci.md#manifest-config-and-index). */
import { PlatformNotFoundError, UsageError } from '../errors';
import type { Platform } from './types';

/**
 * The operating systems and architectures Go knows (`go/build/syslist.go`: knownOS, knownArch),
 * which is what images name (`GOOS`/`GOARCH`) and what containerd's platform parser accepts.
 */
const KNOWN_OS = new Set([
  'aix', 'android', 'darwin', 'dragonfly', 'freebsd', 'hurd', 'illumos', 'ios', 'js', 'linux', 'nacl', 'netbsd', 'openbsd',
  'plan9', 'solaris', 'wasip1', 'windows', 'zos',
]);
const KNOWN_ARCH = new Set([
  '386', 'amd64', 'amd64p32', 'arm', 'armbe', 'arm64', 'arm64be', 'loong64', 'mips', 'mipsle', 'mips64', 'mips64le',
  'mips64p32', 'mips64p32le', 'ppc', 'ppc64', 'ppc64le', 'riscv', 'riscv64', 's390', 's390x', 'sparc', 'sparc64', 'wasm',
]);

const NODE_TO_GO_ARCH: Record<string, string> = {
  x64: 'amd64',
  arm64: 'arm64',
  arm: 'arm',
  ia32: '386',
  ppc64: 'ppc64le',
  s390x: 's390x',
  riscv64: 'riscv64',
  loong64: 'loong64',
  mips: 'mips',
  mipsel: 'mipsle',
};

/** The platform this process runs on, as GOOS/GOARCH (what sealer and docker pick by default). */
export function hostPlatform(): Platform {
  const architecture = NODE_TO_GO_ARCH[process.arch] ?? process.arch;
  const os = process.platform === 'win32' ? 'windows' : process.platform;
  if (architecture === 'arm') return { os, architecture, variant: 'v7' };
  return { os, architecture };
}

/**
 * Parse `linux/arm64`, `linux/arm/v7`, `arm64` (os defaults to linux) or `linux` (the host's
 * architecture), as containerd's `platforms.Parse` does; aliases (`x86_64`, `aarch64`…) are
 * normalized. An operating system or architecture Go does not know is a usage error.
 */
export function parsePlatform(text: string): Platform {
  const parts = text.trim().split('/');
  const usage = (why: string) => new UsageError(`invalid platform ${JSON.stringify(text)}: ${why}; expected os/arch[/variant], e.g. linux/amd64`);
  if (parts.some((p) => p === '' || !/^[a-z0-9._-]+$/i.test(p)) || parts.length > 3) throw usage('bad syntax');
  let platform: Platform;
  if (parts.length === 1) {
    const arch = normalizePlatform({ os: 'linux', architecture: parts[0] });
    if (KNOWN_ARCH.has(arch.architecture)) platform = arch;
    else if (KNOWN_OS.has(parts[0].toLowerCase())) platform = normalizePlatform({ ...hostPlatform(), os: parts[0] });
    else throw usage(`unknown operating system or architecture ${JSON.stringify(parts[0])}`);
  } else {
    const [os, architecture, variant] = parts;
    platform = normalizePlatform({ os, architecture, ...(variant ? { variant } : {}) });
  }
  if (!KNOWN_OS.has(platform.os)) throw usage(`unknown operating system ${JSON.stringify(platform.os)}`);
  if (!KNOWN_ARCH.has(platform.architecture)) throw usage(`unknown architecture ${JSON.stringify(platform.architecture)}`);
  return platform;
}

export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}

/** containerd's normalization: aliases, and arm64's default variant v8 dropped. */
export function normalizePlatform(p: Platform): Platform {
  let architecture = p.architecture.toLowerCase();
  let variant = p.variant?.toLowerCase();
  if (architecture === 'x86_64' || architecture === 'x86-64') architecture = 'amd64';
  if (architecture === 'i386') architecture = '386';
  if (architecture === 'aarch64') architecture = 'arm64';
  if (architecture === 'armhf') [architecture, variant] = ['arm', 'v7'];
  if (architecture === 'armel') [architecture, variant] = ['arm', 'v6'];
  if (architecture === 'arm64' && (variant === 'v8' || variant === '8')) variant = undefined;
  if (architecture === 'amd64' && variant === 'v1') variant = undefined;
  const out: Platform = { ...p, os: p.os.toLowerCase(), architecture };
  if (variant) out.variant = variant;
  else delete out.variant;
  return out;
}

/** True when an image for `have` runs on `want` (variant must match when `want` names one). */
export function platformMatches(want: Platform, have: Platform | undefined): boolean {
  if (!have) return false;
  const w = normalizePlatform(want);
  const h = normalizePlatform(have);
  if (w.os !== h.os || w.architecture !== h.architecture) return false;
  if (w.variant && h.variant && w.variant !== h.variant) return false;
  if (w.variant && !h.variant) return w.architecture === 'arm64';
  return true;
}

/**
 * The one error for "no image for this platform", wherever an image is chosen (an index, a
 * single-platform image, a registry, a FROM base): `no image for platform linux/arm64 in WHERE
 * (have: linux/amd64)`.
 */
export function platformNotFound(wanted: Platform | readonly Platform[], available: readonly (Platform | undefined)[], where = ''): PlatformNotFoundError {
  const list = (Array.isArray(wanted) ? wanted : [wanted]) as Platform[];
  const have = available.filter((p): p is Platform => p !== undefined);
  return new PlatformNotFoundError(list.map(formatPlatform), have.map(formatPlatform), where, {
    platform: list.length === 1 ? list[0] : list,
    available: have,
  });
}
