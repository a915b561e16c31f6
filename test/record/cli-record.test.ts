import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import vm from 'node:vm';
import { readRecording } from '../../src/record/reader.js';
import { cliFixture } from '../helpers/cli-fixture.js';
import { type RunningProxy, startProxy } from '../helpers/proxy.js';
import { unusedPort } from '../helpers/targets.js';
import { collect, openClient } from '../helpers/ws-client.js';

const cli = cliFixture('cli-record');

test('--record writes FILE.<n> per session, complete (the player loads it) when the proxy exits after --run-once', async () => {
  const base = join(cli.scratch, 'rec');
  let proxy: RunningProxy | undefined;
  try {
    proxy = await startProxy(['--run-once', '--record', base, '127.0.0.1:0', `127.0.0.1:${cli.echoTarget.port}`]);
    const ws = await openClient(proxy.url, ['binary']);
    const received = collect(ws);
    const message = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const echoed = once(ws, 'message');
    ws.send(message);
    await echoed;
    ws.close(1000);
    await received;
    const status = await proxy.exited;
    assert.equal(status.code, 0);
    const recorded = await readRecording(`${base}.1`);
    assert.ok(Buffer.concat(recorded.filter((m) => m.direction === 'fromClient').map((m) => m.data)).equals(message));
    assert.ok(Buffer.concat(recorded.filter((m) => m.direction === 'toClient').map((m) => m.data)).equals(message));
    const context = vm.createContext({});
    vm.runInContext(await readFile(`${base}.1`, 'utf8'), context);
    assert.equal((context.VNC_frame_data as string[]).at(-1), 'EOF');
    assert.ok(proxy.events().some((e) => e.event === 'record-open' && e.file === `${base}.1`));
  } finally {
    if (proxy && proxy.proc.exitCode === null) await proxy.stop();
  }
});

test('--record: a session whose target is down still leaves a complete, empty recording', async () => {
  const base = join(cli.scratch, 'down');
  const proxy = await startProxy(['--run-once', '--record', base, '127.0.0.1:0', `127.0.0.1:${await unusedPort()}`]);
  try {
    const ws = await openClient(proxy.url, ['binary']);
    await collect(ws);
    await proxy.exited;
    assert.deepEqual(await readRecording(`${base}.1`), []);
  } finally {
    if (proxy.proc.exitCode === null) await proxy.stop();
  }
});
