/** Platforms as `os/arch[/variant]`, the host's platform, and matching (docs/reference/oci.md#manifest-config-and-index). */
import { UsageError } from '../errors';
import type { Platform } from './types';

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

/** Parse `linux/arm64`, `linux/arm/v7`, `arm64` (os defaults to linux). */
export function parsePlatform(text: string): Platform {
  const parts = text.trim().split('/');
  if (parts.some((p) => p === '' || !/^[a-z0-9._-]+$/.test(p)) || parts.length > 3) {
    throw new UsageError(`invalid platform ${JSON.stringify(text)}: expected os/arch[/variant], e.g. linux/amd64`);
  }
  if (parts.length === 1) return normalizePlatform({ os: 'linux', architecture: parts[0] });
  const [os, architecture, variant] = parts;
  return normalizePlatform({ os, architecture, ...(variant ? { variant } : {}) });
}

export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}

/** containerd's normalization: aliases, and arm64's default variant v8 dropped. */
export function normalizePlatform(p: Platform): Platform {
  let architecture = p.architecture.toLowerCase();
  let variant = p.variant?.toLowerCase();
  if (architecture === 'x86_64' || architecture === 'x86-64') architecture = 'amd64';
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
