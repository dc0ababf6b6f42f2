/**
 * A layer encoded straight into its upload holds a bounded amount of memory, however big: the
 * encoder waits for the HTTP request to take each chunk. A slow fake registry samples our live
 * memory while it reads.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import type { Content } from '../../lib/content';
import { Layer } from '../../lib/layer/layer';
import { RegistryClient } from '../../lib/registry/client';
import { RegistryTarget } from '../../lib/registry/target';

const MiB = 1024 * 1024;
const FILE = 160 * MiB;

// Reason for the flag: live memory can only be measured after a full collection.
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
const liveBuffers = (): number => {
  gc();
  return process.memoryUsage().arrayBuffers;
};

/** A file whose bytes start with gzip's magic (so the encoder stores it), made of fresh 1 MiB buffers. */
function bigContent(): Content {
  return {
    size: FILE,
    source: 'generated',
    open() {
      let produced = 0;
      return new Readable({
        read() {
          if (produced >= FILE) return void this.push(null);
          const chunk = Buffer.alloc(MiB, (produced / MiB) & 0xff);
          if (produced === 0) chunk.set([0x1f, 0x8b, 0x08]);
          produced += MiB;
          this.push(chunk);
        },
      });
    },
  };
}

it('putLayer streams a 160 MiB layer with flat memory', async () => {
  const samples: number[] = [];
  let received = 0;
  const server = http.createServer((req, res) => {
    let since = 0;
    req.on('data', (chunk: Buffer) => {
      received += chunk.length;
      since += chunk.length;
      if (since >= 8 * MiB) {
        since = 0;
        samples.push(liveBuffers());
        req.pause();
        setTimeout(() => req.resume(), 5);
      }
    });
    req.on('end', () => {
      const status = req.method === 'PUT' ? 201 : 202;
      res.writeHead(status, { location: '/v2/slow/blobs/uploads/1', 'content-length': '0' });
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    const target = new RegistryTarget(new RegistryClient({ registry: host, authFile: false, retries: 0 }), 'slow');
    const baseline = liveBuffers();
    const { encoded } = await target.putLayer(Layer.empty().withFile('registry/big', bigContent()), {});
    expect(encoded.size).toBeGreaterThan(FILE);
    expect(received).toBe(encoded.size);
    expect(samples.length).toBeGreaterThan(10);
    const peak = Math.max(...samples) - baseline;
    // A handful of 1 MiB chunks in flight (tar, gzip blocks, socket), never the layer.
    expect(peak).toBeLessThan(48 * MiB);
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});
