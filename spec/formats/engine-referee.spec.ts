/**
 * Docker and containerd as referees for the archives we write, each run as a private daemon
 * (its own data directory and socket under a temporary directory, no network setup):
 * - `docker load` takes our docker-archive (the Docker 25 hybrid) under its name, with our config
 *   digest as the image ID, and a container created from it holds exactly our flattened tree;
 * - a classic `docker save` archive loads into our store and flattens to the same tree;
 * - `ctr images import` (containerd, what Kubernetes nodes run) takes both our docker-archive and
 *   our oci-archive, keeps our manifest digest, and unpacks the layers.
 * Debian's docker.io is Docker 20.10, which predates OCI-archive loading, so docker is given the
 * docker-archive only. The daemons need root; without root the suite skips (and fails in CI).
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readDockerArchiveImage, writeDockerArchive } from '../../lib/formats/docker-archive';
import { writeOciArchive } from '../../lib/formats/oci-archive';
import { diskFs } from '../../lib/fs';
import { Image } from '../../lib/image/image';
import { Layer } from '../../lib/layer/layer';
import { Rootfs } from '../../lib/rootfs/rootfs';
import { ImageStore } from '../../lib/store';
import { loadArchiveIntoStore } from '../../lib/store/load';
import { describeWithTools, toolsRequired } from '../support/tools';
import { cloudImage } from './archive-support';

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
if (!isRoot && toolsRequired()) throw new Error('the docker/containerd referees need root (CLOUDROOTFS_REQUIRE_TOOLS=1)');
// Reason for the skip: dockerd and containerd only run as root; CI runs as root and requires them.
const describeAsRoot = isRoot ? describeWithTools : (names: string[], title: string, fn: () => void) => describe.skip(`${title} (needs root)`, fn);

/** What a tree holds, comparable across tools: path → type, mode bits and content or target. */
type TreeSummary = Map<string, string>;

async function summarizeRootfs(rootfs: Rootfs): Promise<TreeSummary> {
  const out: TreeSummary = new Map();
  for (const { path, entry } of rootfs.walk()) {
    if (path === '') continue;
    const mode = (entry.mode & 0o7777).toString(8);
    if (entry.type === 'file') out.set(path, `file ${mode} ${createHash('sha256').update(await rootfs.readFile(path)).digest('hex')}`);
    else if (entry.type === 'hardlink') out.set(path, `file ${mode} ${createHash('sha256').update(await rootfs.readFile(path)).digest('hex')}`);
    else if (entry.type === 'symlink') out.set(path, `symlink ${entry.target}`);
    else if (entry.type === 'directory') out.set(path, `dir ${mode}`);
  }
  return out;
}

function summarizeDirectory(root: string): TreeSummary {
  const out: TreeSummary = new Map();
  const walk = (dir: string, rel: string) => {
    for (const name of fs.readdirSync(dir).sort()) {
      const abs = join(dir, name);
      const path = rel ? `${rel}/${name}` : name;
      const st = fs.lstatSync(abs);
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isSymbolicLink()) out.set(path, `symlink ${fs.readlinkSync(abs)}`);
      else if (st.isDirectory()) {
        out.set(path, `dir ${mode}`);
        walk(abs, path);
      } else if (st.isFile()) out.set(path, `file ${mode} ${createHash('sha256').update(fs.readFileSync(abs)).digest('hex')}`);
      else out.set(path, 'other');
    }
  };
  walk(root, '');
  return out;
}

/** Start a daemon and wait until `ready()` answers; its output goes to `log`. */
async function startDaemon(argv: string[], log: string, ready: () => boolean): Promise<ChildProcess> {
  const out = fs.openSync(log, 'a');
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', out, out] });
  fs.closeSync(out);
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    if (ready()) return child;
    await new Promise((r) => setTimeout(r, 250));
  }
  child.kill('SIGKILL');
  throw new Error(`${argv[0]} did not start:\n${fs.readFileSync(log, 'utf8').slice(-4000)}`);
}

async function stopDaemon(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  await exited;
  clearTimeout(timer);
}

/** The config digest (= Docker's image ID) of the image in a docker-archive, as we read it back. */
async function configDigestOf(file: string): Promise<string> {
  return (await readDockerArchiveImage(file, { fs: diskFs })).stored!.configDescriptor.digest;
}

function succeeds(fn: () => unknown): boolean {
  try {
    fn();
    return true;
  } catch {
    return false;
  }
}

describeAsRoot(['dockerd', 'docker', 'containerd', 'ctr'], 'docker and containerd load our archives', () => {
  jest.setTimeout(180_000);
  let dir: string;
  let image: Image;
  let dockerd: ChildProcess | undefined;
  let containerd: ChildProcess | undefined;
  let docker: (...args: string[]) => string;
  let ctr: (...args: string[]) => string;

  beforeAll(async () => {
    // Short paths: unix socket names are limited to 108 bytes.
    dir = fs.mkdtempSync(join(tmpdir(), 'crfs-eng-'));
    const dockerSock = join(dir, 'd.sock');
    const ctrSock = join(dir, 'c.sock');
    const env = { ...process.env, DOCKER_HOST: `unix://${dockerSock}` };
    docker = (...args) => execFileSync('docker', args, { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
    ctr = (...args) => execFileSync('ctr', ['--address', ctrSock, '--namespace', 'cloudrootfs-spec', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

    fs.writeFileSync(
      join(dir, 'containerd.toml'),
      `version = 2\nroot = "${join(dir, 'c-root')}"\nstate = "${join(dir, 'c-state')}"\n[grpc]\n  address = "${ctrSock}"\n`,
    );
    [dockerd, containerd] = await Promise.all([
      startDaemon(
        [
          'dockerd',
          '--iptables=false',
          '--ip6tables=false',
          '--bridge=none',
          '--storage-driver=vfs',
          `--data-root=${join(dir, 'd-root')}`,
          `--exec-root=${join(dir, 'd-exec')}`,
          `--pidfile=${join(dir, 'd.pid')}`,
          `--host=unix://${dockerSock}`,
        ],
        join(dir, 'dockerd.log'),
        () => succeeds(() => docker('version')),
      ),
      startDaemon(['containerd', '--config', join(dir, 'containerd.toml')], join(dir, 'containerd.log'), () => succeeds(() => ctr('version'))),
    ]);

    // A child layer that replaces a file and deletes one, so whiteouts are exercised.
    const parent = await cloudImage();
    const flat = await parent.flatten();
    const victim = [...flat.walk('etc')].find((e) => e.entry.type === 'file')!.path;
    image = parent.withLayer(Layer.empty().withDirectory('etc').withWhiteout(victim).withFile('etc/added.conf', 'added\n'), { created_by: 'child' });
  });

  afterAll(async () => {
    await Promise.all([stopDaemon(dockerd), stopDaemon(containerd)]);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('docker load: our docker-archive under its name, image ID = config digest, container rootfs = our flatten', async () => {
    const file = join(dir, 'ours-docker.tar');
    const name = 'engine-ref:docker';
    await writeDockerArchive(image, file, { fs: diskFs, names: [name] });
    expect(docker('load', '-i', file)).toContain(`Loaded image: ${name}`);
    const id = docker('image', 'inspect', name, '--format', '{{.Id}}').trim();
    expect(id).toBe(await configDigestOf(file));

    const container = docker('create', name, '/none').trim();
    const exported = join(dir, 'container.tar');
    docker('export', container, '-o', exported);
    docker('rm', container);
    const x = join(dir, 'container');
    fs.mkdirSync(x);
    execFileSync('tar', ['-xf', exported, '-C', x]);
    const theirs = summarizeDirectory(x);
    // Docker's own additions to every container's rootfs (its init layer).
    for (const k of [...theirs.keys()]) if (/^(\.dockerenv|dev|proc|sys|etc\/(hostname|hosts|mtab|resolv\.conf))(\/|$)/.test(k)) theirs.delete(k);
    const ours = await summarizeRootfs(await image.flatten());
    expect([...theirs.keys()].sort()).toEqual([...ours.keys()].sort());
    for (const [path, what] of ours) {
      // Directory modes are not compared: docker creates implied parents with its own modes.
      if (what.startsWith('dir ')) expect(theirs.get(path)).toMatch(/^dir /);
      else expect([path, theirs.get(path)]).toEqual([path, what]);
    }
  });

  test('docker save (classic archive) loads into our store and flattens to the same tree', async () => {
    const file = join(dir, 'ours-for-save.tar');
    await writeDockerArchive(image, file, { fs: diskFs, names: ['engine-ref:resave'] });
    docker('load', '-i', file);
    const saved = join(dir, 'docker-saved.tar');
    docker('save', 'engine-ref:resave', '-o', saved);
    // Docker 20.10 writes the classic layout: <id>/layer.tar folders and manifest.json.
    expect(execFileSync('tar', ['-tf', saved], { encoding: 'utf8' })).toMatch(/\/layer\.tar$/m);
    const store = await ImageStore.open({ root: join(dir, 'store') });
    const loaded = await loadArchiveIntoStore(store, saved, { fs: diskFs });
    expect(loaded.images.map((i) => i.names)).toEqual([['docker.io/library/engine-ref:resave']]);
    const back = await store.loadImage('engine-ref:resave');
    // Docker keeps the config bytes it was given: the image ID survives the round trip.
    expect(back.stored!.configDescriptor.digest).toBe(await configDigestOf(file));
    expect(await summarizeRootfs(await back.flatten())).toEqual(await summarizeRootfs(await image.flatten()));
  });

  test.each(['docker-archive', 'oci-archive'])('ctr images import: our %s, same manifest digest, unpacked', async (format) => {
    const file = join(dir, `ctr-${format}.tar`);
    const name = `docker.io/library/engine-ref:${format}`;
    const descriptor =
      format === 'docker-archive'
        ? await writeDockerArchive(image, file, { fs: diskFs, names: [name] })
        : await writeOciArchive(image, file, { fs: diskFs, name });
    // The name comes from the archive (manifest.json's RepoTags; the io.containerd.image.name annotation).
    const imported = ctr('images', 'import', file);
    expect(imported).toMatch(/unpacking .*done/);
    const listed = ctr('images', 'ls');
    const digests = listed.split('\n').filter((l) => l.includes('engine-ref')).map((l) => l.split(/\s+/)[2]);
    expect(digests).toContain(descriptor.digest);
    // Every blob the image needs is present in containerd's content store.
    const check = ctr('images', 'check');
    expect(check.split('\n').filter((l) => l.includes(`engine-ref:${format}`)).join('\n')).toMatch(/complete/);
  });
});
