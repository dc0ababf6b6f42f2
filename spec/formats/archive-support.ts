/** Shared by the archive tests: a CloudImage worth archiving, and hand-made (bad) archives. */
import * as tarStream from 'tar-stream';
import { Volume, createFsFromVolume } from 'memfs';
import { createHash } from 'node:crypto';
import { FileSystem } from '../../lib/fs';
import { Image, ImageIndex } from '../../lib/image/image';
import { diff } from '../../lib/layer/diff';
import { Rootfs } from '../../lib/rootfs/rootfs';
import { defaultImageExtension, withContainerImages, withImageExtension, withKubeCni, withMetadata } from '../../lib/sealer';

export function memfs(): FileSystem {
  return createFsFromVolume(new Volume()) as unknown as FileSystem;
}

/** Three layers: a base rootfs, an update with a deletion (whiteout), an app; sealer metadata on top. */
export async function cloudImage(arch = 'amd64', marker = ''): Promise<Image> {
  const base = withMetadata(
    Rootfs.empty()
      .withFile('bin/kubeadm', Buffer.alloc(70000, 7), { mode: 0o755 })
      .withSymlink('bin/kubectl', 'kubeadm')
      .withFile('etc/daemon.json', '{"log-driver":"json-file"}\n')
      .withFile('statics/audit-policy.yml', 'apiVersion: audit.k8s.io/v1\n', { mode: 0o600, uid: 1000, gid: 1000, mtime: 1700000000 })
      .withFile('scripts/init.sh', '#!/bin/sh\necho init\n', { mode: 0o755 })
      .withHardlink('scripts/init-link.sh', 'scripts/init.sh'),
    { version: 'v1.19.9', arch },
  );
  const updated = base.withFile('etc/daemon.json', `{"registry-mirrors":[]}${marker}\n`).without('statics/audit-policy.yml');
  const app = updated.withFile('application/apps/nginx/nginx.yaml', 'kind: Deployment\n');
  let image = Image.empty({ os: 'linux', architecture: arch })
    .withLayer(await diff(Rootfs.empty(), base), { created_by: 'COPY . .' })
    .withLayer(await diff(base, updated), { created_by: 'COPY daemon.json etc/' })
    .withLayer(await diff(updated, app), { created_by: 'APP nginx local://nginx.yaml' })
    .withLabel('io.sealer.version', 'v0.11.0');
  image = withKubeCni(image, 'calico');
  image = withImageExtension(
    image,
    defaultImageExtension({ applications: [{ name: 'nginx', type: 'kube', files: ['nginx.yaml'], version: 'v1' }], launch: { app_names: ['nginx'] } }),
  );
  return withContainerImages(image, [{ image: 'docker.io/library/nginx:1.25', appName: 'nginx' }]);
}

export async function multiArch(): Promise<ImageIndex> {
  return ImageIndex.of([await cloudImage('amd64'), await cloudImage('arm64')]);
}

export interface TarMember {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link';
  data?: Buffer | string;
  linkname?: string;
}

/** A tar built member by member (any names, any order: for hostile and classic archives). */
export async function makeTar(members: TarMember[]): Promise<Buffer> {
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    pack.on('data', (c: unknown) => void chunks.push(c as Buffer));
    pack.on('end', () => resolve());
    pack.on('error', reject);
  });
  for (const m of members) {
    const data = m.data === undefined ? undefined : Buffer.isBuffer(m.data) ? m.data : Buffer.from(m.data);
    const header = { name: m.name, type: m.type ?? 'file', linkname: m.linkname, mode: m.type === 'directory' ? 0o755 : 0o644, mtime: new Date(0) } as const;
    if (data) pack.entry(header, data);
    else pack.entry(header).end(undefined);
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * A classic `docker save` archive of one single-layer image, laid out as containers/image writes
 * it: `<digest>.tar` layers, `<digest>.json` config, legacy `<id>/layer.tar` symlinks.
 */
export async function classicDockerArchive(options: { layerTar: Buffer; diffId?: string; repoTags?: string[]; layerPath?: string; extraMembers?: TarMember[] } ): Promise<Buffer> {
  const diffId = options.diffId ?? `sha256:${sha256(options.layerTar)}`;
  const config = JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    config: { Labels: { a: 'b' } },
    rootfs: { type: 'layers', diff_ids: [diffId] },
    history: [{ created_by: 'test' }],
  });
  const configName = `${sha256(config)}.json`;
  const layerName = `${sha256(options.layerTar)}.tar`;
  const legacyId = sha256('legacy');
  const manifest = JSON.stringify([{ Config: configName, RepoTags: options.repoTags ?? ['classic:v1'], Layers: [options.layerPath ?? `${legacyId}/layer.tar`] }]);
  return makeTar([
    { name: layerName, data: options.layerTar },
    { name: `${legacyId}/`, type: 'directory' },
    { name: `${legacyId}/layer.tar`, type: 'symlink', linkname: `../${layerName}` },
    { name: `${legacyId}/VERSION`, data: '1.0' },
    { name: configName, data: config },
    { name: 'manifest.json', data: manifest },
    { name: 'repositories', data: '{}' },
    ...(options.extraMembers ?? []),
  ]);
}
