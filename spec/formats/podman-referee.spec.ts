/**
 * podman (containers/image + containers/storage, what `podman load` and cri-o use) as a referee
 * for the archives we write: it loads both formats under the right name and ID, and the rootfs of a
 * container created from the image equals our own export, whiteouts applied.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { diskFs } from '../../lib/fs';
import { Image } from '../../lib/image/image';
import { Layer } from '../../lib/layer/layer';
import { writeOciArchive } from '../../lib/formats/oci-archive';
import { writeDockerArchive } from '../../lib/formats/docker-archive';
import { describeWithTools } from '../support/tools';
import { cloudImage } from './archive-support';

describeWithTools(['podman'], 'podman loads our archives', () => {
  let dir: string;
  let image: Image;
  let podman: (...args: string[]) => string;

  beforeAll(async () => {
    dir = fs.mkdtempSync(join(tmpdir(), 'crfs-podman-'));
    // A private storage: vfs needs no kernel overlay support and no daemon.
    const base = ['--root', join(dir, 'root'), '--runroot', join(dir, 'run'), '--storage-driver', 'vfs', '--cgroup-manager', 'cgroupfs', '--events-backend', 'file'];
    podman = (...args: string[]) => execFileSync('podman', [...base, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    // A child layer that replaces a file and deletes one, so whiteouts are exercised.
    const parent = await cloudImage();
    const flat = await parent.flatten();
    const victim = [...flat.walk('etc')].find((e) => e.entry.type === 'file')!.path;
    image = parent.withLayer(Layer.empty().withDirectory('etc').withWhiteout(victim).withFile('etc/added.conf', 'added\n'), { created_by: 'child' });
  });
  afterAll(() => {
    try {
      podman('system', 'reset', '--force');
    } catch {
      /* best effort: the directory is removed below anyway */
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function exportedFiles(): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (const { path, entry } of (await image.flatten()).walk()) {
      if (entry.type === 'file') out.set(path, (await (await image.flatten()).readFile(path)).toString('base64'));
    }
    return out;
  }

  function containerFiles(name: string): Map<string, string> {
    const tar = join(dir, `${name}.tar`);
    podman('create', '--name', name, 'docker.io/library/podman-ref:' + name, '/none');
    podman('export', name, '-o', tar);
    const x = join(dir, `x-${name}`);
    fs.mkdirSync(x);
    execFileSync('tar', ['-xf', tar, '-C', x]);
    const out = new Map<string, string>();
    const walk = (d: string, rel: string) => {
      for (const n of fs.readdirSync(d)) {
        const p = join(d, n);
        const r = rel ? `${rel}/${n}` : n;
        const st = fs.lstatSync(p);
        if (st.isDirectory()) walk(p, r);
        else if (st.isFile()) out.set(r, fs.readFileSync(p).toString('base64'));
      }
    };
    walk(x, '');
    // podman adds mount points and runtime files of its own to a container's rootfs.
    for (const k of [...out.keys()]) if (/^(etc\/(hosts|hostname|resolv\.conf)|run\/|dev\/|proc\/|sys\/)/.test(k) && !k.startsWith('etc/added')) out.delete(k);
    return out;
  }

  test.each(['docker-archive', 'oci-archive'])('%s: loaded under its name and image ID; container rootfs equals our flatten', async (format) => {
    const tag = format.replace('-archive', '');
    const file = join(dir, `${tag}.tar`);
    const name = `podman-ref:${tag}`;
    if (format === 'docker-archive') await writeDockerArchive(image, file, { fs: diskFs, names: [name] });
    else await writeOciArchive(image, file, { fs: diskFs, name });
    const loaded = podman('load', '-i', file);
    expect(loaded).toContain(`docker.io/library/${name}`);
    const id = podman('images', '--format', '{{.Id}}', `docker.io/library/${name}`).trim().split('\n')[0];
    const configDigest = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', `${format}:${file}`], { encoding: 'utf8' })).config.digest;
    expect(`sha256:${id}`).toBe(configDigest);
    const theirs = containerFiles(tag);
    const ours = await exportedFiles();
    expect([...theirs.keys()].sort()).toEqual([...ours.keys()].sort());
    for (const [k, v] of ours) expect(theirs.get(k)).toBe(v);
  });
});
