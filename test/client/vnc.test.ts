import assert from 'node:assert/strict';
import net from 'node:net';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startXvnc, type VncServer } from '../browser/xvnc.js';
import { ProxyPool } from '../helpers/proxy.js';
import { assertTools, skipWithout } from '../helpers/tools.js';

const CLIENT = fileURLToPath(new URL('../../src/cli/client.js', import.meta.url));
const XVNC = '/usr/bin/Xvnc';
const pool = new ProxyPool();

/** Reads a socket message by message: each call takes exactly `length` bytes, keeping the rest for the next. */
function reader(socket: net.Socket): (length: number) => Promise<Buffer> {
  let buffered = Buffer.alloc(0);
  let wake: (() => void) | undefined;
  socket.on('data', (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    wake?.();
  });
  return async (length) => {
    while (buffered.length < length) await new Promise<void>((resolve) => (wake = resolve));
    const taken = buffered.subarray(0, length);
    buffered = buffered.subarray(length);
    return taken;
  };
}
after(() => pool.stopAll());

describe('a VNC viewer path: websockify-client -> websockify-ts -> TigerVNC Xvnc', { skip: skipWithout(XVNC), timeout: 90_000 }, () => {
  test('the RFB version greeting, the security handshake (None) and ServerInit come through', async () => {
    assertTools(XVNC);
    let vnc: VncServer | undefined;
    try {
      vnc = await startXvnc({ width: 640, height: 480, desktop: 'through-client' });
      const proxy = await pool.start(['127.0.0.1:0', `127.0.0.1:${vnc.rfbPort}`]);
      const client = await pool.start(['127.0.0.1:0', `${proxy.url}/`], { script: CLIENT });
      const viewer = net.connect(client.port!, '127.0.0.1');
      const read = reader(viewer);
      // RFB 3.8 (RFC 6143): version line, security types, result, ClientInit, ServerInit.
      const version = (await read(12)).toString('latin1');
      assert.match(version, /^RFB 003\.00[38]\n$/);
      viewer.write('RFB 003.008\n');
      const count = (await read(1))[0]!;
      assert.ok(count > 0, 'the server offers security types');
      const types = [...(await read(count))];
      assert.ok(types.includes(1), `security type None offered (got ${types.join(', ')})`);
      viewer.write(Buffer.from([1]));
      assert.equal((await read(4)).readUInt32BE(0), 0, 'SecurityResult OK');
      viewer.write(Buffer.from([1])); // ClientInit: shared
      const init = await read(24);
      assert.equal(init.readUInt16BE(0), 640);
      assert.equal(init.readUInt16BE(2), 480);
      const nameLength = init.readUInt32BE(20);
      assert.equal((await read(nameLength)).toString('utf8'), 'through-client');
      viewer.destroy();
    } finally {
      await pool.stopAll();
      await vnc?.stop();
    }
  });
});
