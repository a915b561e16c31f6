import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';
import { startEchoServer, type TestServer } from '../helpers/targets.js';
import { collect, openClient } from '../helpers/ws-client.js';

let echo: TestServer;
let proxy: RunningProxy;
before(async () => {
  echo = await startEchoServer();
  proxy = await startProxy(['127.0.0.1:0', `127.0.0.1:${echo.port}`]);
});
after(async () => {
  await proxy.stop();
  await echo.close();
});

test('echoes bytes through the proxy', async () => {
  const ws = await openClient(proxy.url, ['binary']);
  const received = collect(ws);
  ws.send(Buffer.from('hello'));
  await new Promise((r) => setTimeout(r, 100));
  ws.close(1000);
  const result = await received;
  assert.equal(result.data.toString(), 'hello');
});
