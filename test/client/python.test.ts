import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PYTHON_WEBSOCKIFY, type Subject, startPython } from '../conformance/subjects.js';
import { captureLog } from '../helpers/log-capture.js';
import { startServer, type TestServer } from '../helpers/targets.js';
import { assertTools, skipWithout } from '../helpers/tools.js';
import { waitUntil } from '../helpers/wait.js';
import { connectLocal, exchangeBothWays, listenLocal, payload, readAll, writeAll } from './support.js';

const MiB = 1024 * 1024;
const skip = skipWithout(PYTHON_WEBSOCKIFY);

describe("through Debian's Python websockify as the server", { skip, timeout: 120_000 }, () => {
  let target: TestServer;
  let python: Subject;
  before(async () => {
    assertTools(PYTHON_WEBSOCKIFY);
    target = await startServer();
    python = await startPython(`127.0.0.1:${target.port}`);
  });
  after(async () => {
    await python?.stop();
    await target?.close();
  });

  test('16 MiB each way at once arrive byte-exact (binary subprotocol); the target ends, and the local side gets every byte, then FIN', async () => {
    const log = captureLog();
    const listener = await listenLocal(`ws://127.0.0.1:${python.port}/`, { logger: log.logger });
    try {
      const { app } = await exchangeBothWays(listener, target, 16 * MiB, 16 * MiB);
      assert.equal((await log.waitFor((e) => e.event === 'ws-open')).protocol, 'binary');
      app.end();
      await log.waitFor((e) => e.event === 'closed');
    } finally {
      listener.destroy();
    }
  });

  test("the local side's FIN becomes a close 1000, and the target gets its FIN", async () => {
    const listener = await listenLocal(`ws://127.0.0.1:${python.port}/`);
    try {
      const data = payload(5 * MiB + 1);
      const conn = target.nextConnection();
      const app = await connectLocal(listener);
      const appEnd = readAll(app);
      await writeAll(app, data);
      const targetSide = await conn;
      // Python websockify drops what it still holds for the target when the client's close frame comes
      // (websocketproxy.py: "TODO: What about blocking on client socket?"), so the FIN follows delivery here.
      const received = readAll(targetSide);
      await waitUntil('the target to have every byte', () => targetSide.bytesRead === data.length);
      app.end();
      assert.ok((await received).equals(data));
      await appEnd;
    } finally {
      listener.destroy();
    }
  });
});
