import { copyFromContext, destinationIsDirectory, isGlob, parseChmod, parseChown, resolveSources } from '../../lib/build/copy';
import { archiveTree, sniffArchive } from '../../lib/build/add';
import { bufferContent } from '../../lib/content';
import { Layer } from '../../lib/layer/layer';
import { layerTarStream } from '../../lib/tar/write';
import { Rootfs } from '../../lib/rootfs/rootfs';
import { listing, tree } from './helpers';

const ctx = tree({
  'Kubefile': 'FROM scratch',
  'daemon.json': '{}',
  'etc/kubelet.service': 'unit',
  'etc/sub/deep.conf': 'deep',
  'charts/apollo/Chart.yaml': 'c',
  'amd64/bin/kubectl': ['amd', 0o755],
  'arm64/bin/kubectl': ['arm', 0o755],
  'manifests/a.yaml': 'a',
  'manifests/b.yml': 'b',
  'manifests/c.txt': 'c',
  'link-to-etc -> etc': '',
  'abs-link -> /etc/kubelet.service': '',
  'escape -> ../../../outside': '',
});

function copy(rootfs: Rootfs, sources: string[], dest: string, mode: 'docker' | 'legacy' = 'docker') {
  return copyFromContext(rootfs, ctx, sources, dest, { mode });
}

describe('COPY, Docker semantics (the default)', () => {
  test('COPY . . copies the context contents into the root', () => {
    const out = copy(Rootfs.empty(), ['.'], '.');
    expect(listing(out)).toEqual(listing(ctx));
  });

  test('a directory source copies its contents, not itself', () => {
    expect(listing(copy(Rootfs.empty(), ['etc'], 'config'))).toEqual(['config/', 'config/kubelet.service', 'config/sub/', 'config/sub/deep.conf']);
    expect(listing(copy(Rootfs.empty(), ['etc/'], 'config/'))).toEqual(['config/', 'config/kubelet.service', 'config/sub/', 'config/sub/deep.conf']);
  });

  test('a file goes into dest/ or an existing directory, else becomes dest (sealer#1961)', () => {
    expect(listing(copy(Rootfs.empty(), ['daemon.json'], 'etc/'))).toEqual(['etc/', 'etc/daemon.json']);
    const withEtc = Rootfs.empty().withDirectory('etc');
    expect(listing(copy(withEtc, ['daemon.json'], 'etc'))).toEqual(['etc/', 'etc/daemon.json']);
    expect(listing(copy(Rootfs.empty(), ['daemon.json'], 'etc/docker.json'))).toEqual(['etc/', 'etc/docker.json']);
    expect(listing(copy(Rootfs.empty(), ['daemon.json'], 'etc'))).toEqual(['etc']);
  });

  test('several sources need a destination ending in /', () => {
    expect(() => copy(Rootfs.empty(), ['daemon.json', 'Kubefile'], 'etc')).toThrow(expect.objectContaining({ code: 'USAGE' }));
    expect(listing(copy(Rootfs.empty(), ['daemon.json', 'Kubefile'], 'etc/'))).toEqual(['etc/', 'etc/Kubefile', 'etc/daemon.json']);
    // A glob matching several files counts as several sources.
    expect(() => copy(Rootfs.empty(), ['manifests/*.y*ml'], 'm')).toThrow(expect.objectContaining({ code: 'USAGE' }));
  });

  test('globs match context paths (sorted); a matched directory copies its contents', () => {
    expect(listing(copy(Rootfs.empty(), ['manifests/*.y*ml'], 'm/'))).toEqual(['m/', 'm/a.yaml', 'm/b.yml']);
    expect(listing(copy(Rootfs.empty(), ['manifests/[ab].*'], 'm/'))).toEqual(['m/', 'm/a.yaml', 'm/b.yml']);
    expect(listing(copy(Rootfs.empty(), ['**/kubectl'], 'bin/'))).toEqual(['bin/', 'bin/kubectl']);
    expect(() => copy(Rootfs.empty(), ['nothing/*'], 'x/')).toThrow(expect.objectContaining({ code: 'NOT_FOUND' }));
    expect(isGlob('a/*.yaml')).toBe(true);
    expect(isGlob('a/\\*.yaml')).toBe(false);
  });

  test('a copy merges over existing directories and replaces files', () => {
    const base = Rootfs.empty().withFile('etc/keep', 'k').withFile('etc/kubelet.service', 'old');
    const out = copy(base, ['etc'], 'etc');
    expect(listing(out, 'etc')).toEqual(['etc/keep', 'etc/kubelet.service', 'etc/sub/', 'etc/sub/deep.conf']);
    expect(out.get('etc/kubelet.service')).not.toBe(base.get('etc/kubelet.service'));
  });

  test('sources never leave the context: .. and symlinks resolve inside it', () => {
    expect(() => copy(Rootfs.empty(), ['../etc/passwd'], 'x')).toThrow(expect.objectContaining({ code: 'INVALID_PATH' }));
    // A symlink source is followed inside the context (absolute targets restart at its root).
    expect(listing(copy(Rootfs.empty(), ['link-to-etc'], 'e/'))).toEqual(['e/', 'e/kubelet.service', 'e/sub/', 'e/sub/deep.conf']);
    expect(listing(copy(Rootfs.empty(), ['abs-link'], 'k'))).toEqual(['k']);
    // A link pointing above the context resolves to a context path that does not exist.
    expect(() => copy(Rootfs.empty(), ['escape'], 'x')).toThrow(expect.objectContaining({ code: 'NOT_FOUND' }));
    // Symlinks below a copied directory stay links.
    expect(copy(Rootfs.empty(), ['.'], '.').get('link-to-etc')).toMatchObject({ type: 'symlink', target: 'etc' });
  });

  test('the destination is rootfs-relative and cannot climb above the root', () => {
    expect(listing(copy(Rootfs.empty(), ['daemon.json'], '/etc/'))).toEqual(['etc/', 'etc/daemon.json']);
    expect(() => copy(Rootfs.empty(), ['daemon.json'], '../x')).toThrow(expect.objectContaining({ code: 'INVALID_PATH' }));
    expect(() => copy(Rootfs.empty(), ['daemon.json'], 'etc/.wh.x')).toThrow(expect.objectContaining({ code: 'INVALID_PATH' }));
  });

  test('a destination through a symlinked directory lands in its target', () => {
    const base = Rootfs.empty().withDirectory('usr/etc').withSymlink('etc', 'usr/etc');
    const out = copy(base, ['daemon.json'], 'etc/');
    expect(out.get('usr/etc/daemon.json')?.type).toBe('file');
    expect(out.get('etc')?.type).toBe('symlink');
  });

  test('copies are new inodes owned by 0:0, modes kept, mtimes clamped; --chown/--chmod apply', () => {
    const src = Rootfs.empty().withFile('f', 'x', { mode: 0o751, uid: 5, gid: 6, mtime: 5000 }).withDirectory('d', { mode: 0o700 }).withFile('d/g', 'y');
    const out = copyFromContext(Rootfs.empty(), src, ['.'], '.', { sourceDateEpoch: 100 });
    expect(out.get('f')).toMatchObject({ mode: 0o751, uid: 0, gid: 0, mtime: 100 });
    expect(out.get('f')).not.toBe(src.get('f'));
    const owned = copyFromContext(Rootfs.empty(), src, ['.'], 'opt/', { owner: { uid: 1000, gid: 1001 }, chmod: 0o640 });
    expect(owned.get('opt')).toMatchObject({ uid: 1000, gid: 1001, mode: 0o755 }); // created parent
    expect(owned.get('opt/f')).toMatchObject({ uid: 1000, gid: 1001, mode: 0o640 });
    expect(owned.get('opt/d')).toMatchObject({ mode: 0o640 });
  });

  test('copying the same file twice makes two inodes; hardlinks inside one copy stay linked', () => {
    const once = copy(Rootfs.empty(), ['daemon.json'], 'a');
    const twice = copy(once, ['daemon.json'], 'b');
    expect(twice.get('a')).not.toBe(twice.get('b'));
    const linked = Rootfs.empty().withFile('x', 'data').withHardlink('y', 'x');
    const out = copyFromContext(Rootfs.empty(), linked, ['.'], 'dir/');
    expect(out.get('dir/x')).toBe(out.get('dir/y'));
  });

  test('missing sources are NOT_FOUND naming the path', () => {
    expect(() => copy(Rootfs.empty(), ['nope.json'], 'etc/')).toThrow(/nope\.json/);
    expect(() => copy(Rootfs.empty(), [''], 'etc/')).toThrow(expect.objectContaining({ code: 'USAGE' }));
  });

  test('destinationIsDirectory', () => {
    expect(['', '.', 'etc/', 'etc/.'].map(destinationIsDirectory)).toEqual([true, true, true, true]);
    expect(destinationIsDirectory('etc')).toBe(false);
  });
});

describe('COPY, legacy semantics (sealer v0.7-v0.8)', () => {
  test('sources land inside dest under their own name', () => {
    expect(listing(copy(Rootfs.empty(), ['charts/apollo'], 'charts', 'legacy'))).toEqual(['charts/', 'charts/apollo/', 'charts/apollo/Chart.yaml']);
    expect(listing(copy(Rootfs.empty(), ['daemon.json'], 'etc', 'legacy'))).toEqual(['etc/', 'etc/daemon.json']);
    // No renaming: the destination is a directory.
    expect(listing(copy(Rootfs.empty(), ['daemon.json'], 'etc/b.json', 'legacy'))).toEqual(['etc/', 'etc/b.json/', 'etc/b.json/daemon.json']);
  });

  test('COPY . . copies contents; COPY dir . nests the dir; globs nest each match', () => {
    expect(listing(copy(Rootfs.empty(), ['.'], '.', 'legacy'))).toEqual(listing(ctx));
    expect(listing(copy(Rootfs.empty(), ['etc'], '.', 'legacy'))).toEqual(['etc/', 'etc/kubelet.service', 'etc/sub/', 'etc/sub/deep.conf']);
    expect(listing(copy(Rootfs.empty(), ['etc/*'], '/', 'legacy'))).toEqual(['kubelet.service', 'sub/', 'sub/deep.conf']);
    expect(listing(copy(Rootfs.empty(), ['manifests/*.yaml', 'daemon.json'], 'x', 'legacy'))).toEqual(['x/', 'x/a.yaml', 'x/daemon.json']);
  });
});

describe('--chown and --chmod', () => {
  test('numeric ids, root, and names from the image\'s passwd/group', async () => {
    expect(await parseChown('1000')).toEqual({ uid: 1000, gid: 1000 });
    expect(await parseChown('1000:50')).toEqual({ uid: 1000, gid: 50 });
    expect(await parseChown('root')).toEqual({ uid: 0, gid: 0 });
    const image = Rootfs.empty().withFile('etc/passwd', 'kube:x:1001:1002::/home/kube:/bin/sh\n').withFile('etc/group', 'ops:x:2000:\n');
    expect(await parseChown('kube', image)).toEqual({ uid: 1001, gid: 1002 });
    expect(await parseChown('kube:ops', image)).toEqual({ uid: 1001, gid: 2000 });
    await expect(parseChown('nobody')).rejects.toMatchObject({ code: 'USAGE' });
    await expect(parseChown('a:b:c')).rejects.toMatchObject({ code: 'USAGE' });
    await expect(parseChown('1:')).rejects.toMatchObject({ code: 'USAGE' });
  });

  test('octal modes only', () => {
    expect(parseChmod('755')).toBe(0o755);
    expect(parseChmod('0644')).toBe(0o644);
    expect(() => parseChmod('u+x')).toThrow(expect.objectContaining({ code: 'USAGE' }));
    expect(() => parseChmod('999')).toThrow(expect.objectContaining({ code: 'USAGE' }));
  });
});

describe('ADD archives', () => {
  async function tarOf(rootfs: Rootfs): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const c of layerTarStream(Layer.fromRootfs(rootfs))) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  test('a local tar (plain or gzip) is recognised by its bytes and unpacked', async () => {
    const tar = await tarOf(Rootfs.empty().withFile('bin/helm', 'helm', { mode: 0o755 }));
    expect(sniffArchive(tar)).toBe('tar');
    const node = await archiveTree(bufferContent(tar), 'helm.tar');
    expect(node?.children?.has('bin')).toBe(true);
    const gz = require('node:zlib').gzipSync(tar) as Buffer;
    expect(sniffArchive(gz)).toBe('gzip');
    expect((await archiveTree(bufferContent(gz), 'helm.tgz'))?.children?.has('bin')).toBe(true);
    // Not an archive: copied as a file.
    expect(await archiveTree(bufferContent('plain text'), 'notes.txt')).toBeUndefined();
    expect(sniffArchive(Buffer.from('BZh91AY'))).toBe('bzip2');
    await expect(archiveTree(bufferContent(Buffer.from('BZh91AY&SY')), 'x.tbz')).rejects.toMatchObject({ code: 'UNSUPPORTED' });
  });

  test('a `git archive` tar (it starts with a PAX global header) unpacks, the header skipped as docker build skips it', async () => {
    const { execFileSync } = await import('node:child_process');
    const { mkdtempSync, rmSync, writeFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const dir = mkdtempSync(join(require('node:os').tmpdir(), 'crfs-git-'));
    try {
      const git = (...args: string[]) => execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', ...args], { cwd: dir });
      git('init', '-q');
      writeFileSync(join(dir, 'README'), 'hello\n');
      git('add', 'README');
      git('commit', '-qm', 'one');
      const tar = git('archive', '--format=tar', 'HEAD');
      expect(tar[156]).toBe(0x67); // 'g': the commit id in a pax_global_header
      const node = await archiveTree(bufferContent(tar), 'src.tar');
      expect([...(node?.children?.keys() ?? [])]).toEqual(['README']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('resolveSources reports each match with its context path', () => {
    const r = resolveSources(ctx, ['manifests/*.y*ml', 'daemon.json']);
    expect(r.map((s) => s.path)).toEqual(['manifests/a.yaml', 'manifests/b.yml', 'daemon.json']);
  });
});
