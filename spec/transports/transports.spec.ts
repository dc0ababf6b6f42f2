import { Image, ImageIndex } from '../../lib/image/image';
import { ImageStore } from '../../lib/store';
import { copyImage, formatImageRef, loadImage, loadTarget, parseImageRef, saveTarget } from '../../lib/transports';
import { TarArchive } from '../../lib/formats/archive-io';
import { cloudImage, memfs, multiArch } from '../formats/archive-support';

describe('references', () => {
  test.each([
    ['kubernetes:v1.19.9', { transport: 'store', name: 'kubernetes:v1.19.9' }],
    ['registry.example.com:5000/a/b:v1', { transport: 'store', name: 'registry.example.com:5000/a/b:v1' }],
    ['oci:/l:v1', { transport: 'oci', path: '/l', tag: 'v1' }],
    ['oci:/l', { transport: 'oci', path: '/l' }],
    ['oci-archive:k8s.tar:v1.19.9', { transport: 'oci-archive', path: 'k8s.tar', tag: 'v1.19.9' }],
    ['docker-archive:k8s.tar:kubernetes:v1', { transport: 'docker-archive', path: 'k8s.tar', name: 'kubernetes:v1' }],
    ['docker-archive:k8s.tar', { transport: 'docker-archive', path: 'k8s.tar' }],
    ['docker://quay.io/a/b:v1', { transport: 'docker', reference: 'quay.io/a/b:v1' }],
  ])('%s', (text, want) => {
    expect(parseImageRef(text)).toEqual(want);
    expect(formatImageRef(parseImageRef(text))).toBe(text);
  });

  test('bad references are typed errors', () => {
    for (const bad of ['', 'oci:', 'oci-archive:', 'ftp://x/y', 'a\0b']) {
      expect(() => parseImageRef(bad)).toThrow(expect.objectContaining({ code: 'INVALID_REFERENCE' }));
    }
  });
});

describe('loadTarget / saveTarget / copyImage', () => {
  test('store names go to the store given (instance or options), defaulting to the environment', async () => {
    const fs = memfs();
    const store = await ImageStore.open({ fs, root: '/s' });
    const image = await cloudImage();
    const d = await saveTarget(image, 'k8s:v1', { fs, store });
    expect(((await loadTarget('k8s:v1', { fs, store: { root: '/s' } })) as Image).stored?.manifestDescriptor.digest).toBe(d.digest);
    expect(((await loadTarget('docker.io/library/k8s:v1', { fs, store: { env: { CLOUDROOTFS_STORE: '/s' } } })) as Image).stored?.manifestDescriptor.digest).toBe(d.digest);
    await expect(loadTarget('k8s:v1', { fs, store: { root: '/empty' } })).rejects.toMatchObject({ code: 'IMAGE_NOT_FOUND' });
  });

  test('platform selection everywhere: loadImage picks, defaulting to the host', async () => {
    const fs = memfs();
    await saveTarget(await multiArch(), 'oci-archive:/m.tar', { fs, name: 'm:v1' });
    const arm = await loadImage('oci-archive:/m.tar', { fs, platform: { os: 'linux', architecture: 'arm64' } });
    expect(arm.platform.architecture).toBe('arm64');
    await expect(loadImage('oci-archive:/m.tar', { fs, platform: { os: 'linux', architecture: 'ppc64le' } })).rejects.toMatchObject({ code: 'PLATFORM_NOT_FOUND' });
    expect(await loadTarget('oci-archive:/m.tar', { fs })).toBeInstanceOf(ImageIndex);
  });

  test('copyImage records the source name in archives and verifies archive sources', async () => {
    const fs = memfs();
    const store = await ImageStore.open({ fs, root: '/s' });
    await store.put(await cloudImage(), 'kubernetes:v1');
    await copyImage('kubernetes:v1', 'oci-archive:/k.tar', { fs, store });
    const index = JSON.parse((await (await TarArchive.open('/k.tar', { fs })).read('index.json')).toString());
    expect(index.manifests[0].annotations['io.containerd.image.name']).toBe('docker.io/library/kubernetes:v1');
    const events: string[] = [];
    await copyImage('oci-archive:/k.tar', 'copy:v1', { fs, store, onProgress: (e) => events.push(e.phase) });
    expect(events.filter((p) => p === 'verify')).toHaveLength(3);
    expect(await store.has('copy:v1')).toBe(true);
    // No verification when copying between trusted places (unless asked).
    const quiet: string[] = [];
    await copyImage('copy:v1', 'oci:/layout:v1', { fs, store, onProgress: (e) => quiet.push(e.phase) });
    expect(quiet).not.toContain('verify');
  });
});
