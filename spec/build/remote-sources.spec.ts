/**
 * Remote sources in Kubefiles, built against a loopback file server: APP/CNI/CSI `http(s)://`
 * (sealer downloads them into the context, names them after the URL and detects the app type
 * from that name) and `ADD <url>` (buildah downloads, does not unpack, mode 0600). Rebuilds do
 * not download again, a changed remote file rebuilds its layer, and layers are reproducible.
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildImage } from '../../lib/build/build-image';
import { CloudRootfsError } from '../../lib/errors';
import type { Image } from '../../lib/image/image';
import { getImageExtension } from '../../lib/sealer';
import { ImageStore } from '../../lib/store';
import { startFileServer, type FileServer } from '../support/file-server';

const SEALER = 'https://github.com/sealerio/sealer/blob/v0.11.0';
const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const DEPLOY = Buffer.from('apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n');
const INSTALL = Buffer.from('#!/bin/bash\nkubectl get nodes\n');
const MODIFIED = 1_700_000_000;

describe('remote sources in a Kubefile', () => {
  let server: FileServer;
  let work: string;
  let tgz: Buffer;

  beforeAll(async () => {
    work = await fsp.mkdtemp(path.join(os.tmpdir(), 'cloudrootfs-remote-'));
    // A real gzipped tar: ADD of a URL must keep it as it is (buildah does not unpack URLs).
    await fsp.mkdir(path.join(work, 'tarball'));
    await fsp.writeFile(path.join(work, 'tarball', 'helm'), 'binary');
    execFileSync('tar', ['-czf', path.join(work, 'helm.tgz'), '-C', path.join(work, 'tarball'), 'helm']);
    tgz = await fsp.readFile(path.join(work, 'helm.tgz'));
    server = await startFileServer({
      'manifests/web.yaml': { body: DEPLOY, lastModified: MODIFIED },
      'install.sh': INSTALL,
      'helm.tgz': { body: tgz, lastModified: MODIFIED },
    });
  });
  afterAll(async () => {
    await server?.stop();
    if (work) await fsp.rm(work, { recursive: true, force: true });
  });

  async function build(name: string, kubefile: string, files: Record<string, string> = {}, extra: Partial<Parameters<typeof buildImage>[0]> = {}) {
    const context = path.join(work, name);
    await fsp.mkdir(context, { recursive: true });
    await fsp.writeFile(path.join(context, 'Kubefile'), kubefile);
    for (const [f, text] of Object.entries(files)) {
      await fsp.mkdir(path.dirname(path.join(context, f)), { recursive: true });
      await fsp.writeFile(path.join(context, f), text);
    }
    const store = await ImageStore.open({ root: path.join(work, 'store') });
    return buildImage({ context, store, tag: `${name}:v1`, platforms: ['linux/amd64'], buildMode: 'lite', env: {}, ...extra });
  }

  test('APP with an https source: downloaded, named after the URL, typed from that name', async () => {
    const result = await build('app', `FROM scratch\nAPP web ${server.url}/files/manifests/web.yaml\nLAUNCH web\n`);
    const image = result.target as Image;
    // getFileFromURL names the file path.Base(url.Path) (${SEALER}/build/kubefile/parser/file_fetcher.go#L44-L48);
    // makeItAsApp judges the type from it (${SEALER}/build/kubefile/parser/app_handler.go#L94-L112).
    expect(getImageExtension(image)!.applications).toEqual([{ name: 'web', type: 'kube', files: ['web.yaml'], version: 'v1' }]);
    const rootfs = await image.flatten();
    const file = rootfs.get('application/apps/web/web.yaml');
    // os.Create in the context (0666 &^ umask 022); mtime clamped to the epoch like any context file.
    expect(file).toMatchObject({ type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0 });
    expect(await rootfs.readFile('application/apps/web/web.yaml')).toEqual(DEPLOY);
    expect(image.history.map((h) => h.created_by)).toContain(`APP web ${server.url}/files/manifests/web.yaml`);
  });

  test('APP mixing both: local files first, then downloads, as sealer copies them', async () => {
    // filesToCopy = localFiles + downloaded remote files: ${SEALER}/build/kubefile/parser/app_handler.go#L61-L84;
    // a shell app launches only its first source (${SEALER}/build/kubefile/parser/utils.go#L249-L260).
    const result = await build('mixed', `FROM scratch\nAPP setup ${server.url}/files/install.sh local://post.sh\n`, { 'post.sh': 'echo post\n' });
    const ext = getImageExtension(result.target as Image)!;
    expect(ext.applications).toEqual([{ name: 'setup', type: 'shell', files: ['post.sh'], version: 'v1' }]);
    const rootfs = await (result.target as Image).flatten();
    expect(rootfs.list('application/apps/setup')).toEqual(['install.sh', 'post.sh']);
  });

  test('ADD <url>: downloaded, not unpacked, mode 0600, mtime from Last-Modified clamped to the epoch', async () => {
    // getURL: mode 0600, ModTime from Last-Modified, a tar header for the file as is:
    // ${SEALER}/vendor/github.com/containers/buildah/add.go#L101-L155
    const result = await build('add', `FROM scratch\nADD ${server.url}/files/helm.tgz bin/\nADD ${server.url}/files/install.sh scripts/setup.sh\n`, {}, { sourceDateEpoch: 1_800_000_000 });
    const rootfs = await (result.target as Image).flatten();
    expect(rootfs.get('bin/helm.tgz')).toMatchObject({ type: 'file', mode: 0o600, mtime: MODIFIED });
    expect(await rootfs.readFile('bin/helm.tgz')).toEqual(tgz);
    expect(rootfs.get('bin/helm')).toBeUndefined();
    // A destination that does not exist and has no trailing / is the file's new name (renameTarget).
    expect(rootfs.get('scripts/setup.sh')).toMatchObject({ type: 'file', mode: 0o600, mtime: 0 });
  });

  test('a rebuild downloads nothing (304) and reuses the layer; a changed file rebuilds it', async () => {
    server.files.set('changing.yaml', { body: Buffer.from('kind: A\n') });
    const kubefile = `FROM scratch\nADD ${server.url}/files/changing.yaml etc/\n`;
    const first = await build('rebuild', kubefile);
    const second = await build('rebuild', kubefile);
    expect(second.digest).toBe(first.digest);
    expect(second.images[0].cache).toEqual(['hit']);
    expect(server.hits('/files/changing.yaml').map((h) => [h.status, h.bytes])).toEqual([
      [200, 8],
      [304, 0],
    ]);
    server.files.set('changing.yaml', { body: Buffer.from('kind: B\n') });
    const third = await build('rebuild', kubefile);
    expect(third.digest).not.toBe(first.digest);
    expect(third.images[0].cache).toEqual(['miss']);
    // Without the store's cache the same bytes give the same layer: reproducible.
    const fresh = await build('rebuild-nocache', kubefile, {}, { cache: false, store: await ImageStore.open({ root: path.join(work, 'store2') }) });
    expect(fresh.images[0].layers[0].digest).toBe(third.images[0].layers[0].digest);
  });

  test('ADD --checksum: the right digest builds, a wrong one fails with DIGEST_MISMATCH', async () => {
    const ok = await build('pinned', `FROM scratch\nADD --checksum=${sha256(tgz)} ${server.url}/files/helm.tgz bin/\n`);
    expect(ok.images[0].layers).toHaveLength(1);
    const err = await build('pinned-bad', `FROM scratch\nADD --checksum=sha256:${'0'.repeat(64)} ${server.url}/files/helm.tgz bin/\n`).catch((e) => e);
    expect(err).toBeInstanceOf(CloudRootfsError);
    expect(err).toMatchObject({ code: 'BUILD_FAILED', details: { causeCode: 'DIGEST_MISMATCH', line: 2 } });
  });

  test('faults reach the build as typed errors naming the line', async () => {
    const missing = await build('missing', `FROM scratch\nAPP web ${server.url}/missing/web.yaml\n`).catch((e) => e);
    expect(missing).toMatchObject({ code: 'BUILD_FAILED', details: { causeCode: 'FETCH_FAILED', line: 2 } });
    expect(missing.cause.details).toMatchObject({ status: 404 });
    const big = await build('big', `FROM scratch\nADD ${server.url}/big/5000 etc/\n`, {}, { remote: { maxBytes: 1000 } }).catch((e) => e);
    expect(big).toMatchObject({ details: { causeCode: 'LIMIT_EXCEEDED' } });
    const copy = await build('copy-url', `FROM scratch\nCOPY ${server.url}/files/install.sh etc/\n`).catch((e) => e);
    expect(copy.message).toMatch(/COPY cannot download .*; use ADD/);
  });
});
