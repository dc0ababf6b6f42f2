/** `docker://` through the transports dispatcher and the CLI, against a real registry. */
import { Writable } from 'node:stream';
import { Volume, createFsFromVolume } from 'memfs';
import type { FileSystem } from '../../lib/fs';
import { Image } from '../../lib/image/image';
import { Layer } from '../../lib/layer/layer';
import { loadTarget, saveTarget } from '../../lib/transports';
import { writeOciLayout } from '../../lib/formats/layout';
import { runCli } from '../../lib/cli/main';
import { describeWithRegistry, startTestRegistry, uniqueRepo, type TestRegistry } from '../support/registry';

function sink(): { stream: Writable; text: () => string } {
  let out = '';
  return {
    stream: new Writable({ write(c, _e, cb) { out += String(c); cb(); } }),
    text: () => out,
  };
}

describeWithRegistry('none', 'docker:// transport', () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startTestRegistry();
  });
  afterAll(async () => reg?.stop());

  const image = () =>
    Image.empty({ os: 'linux', architecture: 'amd64' })
      .withLayer(Layer.empty().withDirectory('etc').withFile('etc/daemon.json', '{"debug":true}\n'), { created_by: 'COPY daemon.json etc/' })
      .withLabel('io.sealer.version', 'v0.11.0');

  test('saveTarget pushes, loadTarget pulls back the same digest', async () => {
    const ref = `docker://${reg.host}/${uniqueRepo('transport')}:v1`;
    const pushed = await saveTarget(image(), ref);
    const pulled = await loadTarget(ref);
    expect(pulled instanceof Image && pulled.stored?.manifestDescriptor.digest).toBe(pushed.digest);
    const rootfs = await (pulled as Image).flatten();
    expect(await rootfs.readText('etc/daemon.json')).toBe('{"debug":true}\n');
  });

  test('the CLI lists and inspects a registry image', async () => {
    const fs = createFsFromVolume(new Volume()) as unknown as FileSystem;
    await writeOciLayout(image(), '/img', { fs, tag: 't' });
    const ref = `docker://${reg.host}/${uniqueRepo('cli')}:v2`;
    const push = sink();
    expect(await runCli(['push', 'oci:/img:t', ref, '-q'], { fs, stdout: push.stream, stderr: push.stream })).toBe(0);
    const ls = sink();
    expect(await runCli(['ls', ref], { fs, stdout: ls.stream, stderr: ls.stream })).toBe(0);
    expect(ls.text()).toMatch(/-rw-r--r-- 0:0\s+15 etc\/daemon.json/);
    const inspect = sink();
    expect(await runCli(['inspect', ref], { fs, stdout: inspect.stream, stderr: inspect.stream })).toBe(0);
    expect(JSON.parse(inspect.text()).ociv1.config.Labels['io.sealer.version']).toBe('v0.11.0');
  });
});
