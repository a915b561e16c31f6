// Log forging: strings a client chooses (a URL-decoded token, a close reason, a header) must not start a
// line of their own in the text log, nor come back raw in an HTTP answer. Control characters are escaped.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { handshakeRequest } from '../../bench/wire.js';
import { CLI } from '../helpers/proxy.js';
import { RawConnection } from '../helpers/raw-connection.js';
import { startEchoServer, type TestServer } from '../helpers/targets.js';
import { waitUntil } from '../helpers/wait.js';
import { openClient } from '../helpers/ws-client.js';

const FORGED = '[2000-01-01T00:00:00.000Z] INFO: forged';
let dir: string;
let echo: TestServer;
let proc: ChildProcess;
let stderr = '';
let port: number;

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forging-'));
  echo = await startEchoServer();
  fs.writeFileSync(path.join(dir, 'tokens'), `good: 127.0.0.1:${echo.port}\n`);
  proc = spawn(
    process.execPath,
    [
      CLI,
      '--log-format',
      'text',
      '--refusal-log-interval',
      '0',
      '--token-plugin',
      'TokenFile',
      '--token-source',
      path.join(dir, 'tokens'),
      '127.0.0.1:0',
    ],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  proc.stderr!.setEncoding('utf8');
  proc.stderr!.on('data', (text: string) => (stderr += text));
  port = await waitUntil('the listening line', () => {
    const match = /listening on 127\.0\.0\.1:(\d+)/.exec(stderr);
    return match ? Number(match[1]) : undefined;
  });
});

after(async () => {
  if (proc && proc.exitCode === null) {
    proc.kill('SIGTERM');
    await once(proc, 'exit');
  }
  await echo?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Lines of the text log that a client started (with the forged time stamp). */
function forgedLines(): string[] {
  return stderr.split(/[\n\r\u2028\u2029\u0085]/).filter((line) => line.startsWith('[2000-'));
}

test('a token with %0a: the 404 body and the refusal line carry it escaped, on one line', async () => {
  const conn = await RawConnection.open(port);
  try {
    conn.write(handshakeRequest({ protocol: 'binary', path: `/?token=x%0a${encodeURIComponent(FORGED)}%0d%1b[31m` }));
    const head = await conn.head();
    assert.equal(head?.status, 404);
    assert.ok(await conn.waitClosed());
    const body = conn.received.subarray(conn.received.indexOf('\r\n\r\n') + 4).toString();
    assert.match(body, /unknown token 'x\\n\[2000/);
    assert.equal(body.split('\n').length, 2, `the body is one line: ${JSON.stringify(body)}`);
    assert.ok(!body.includes('\x1b'), 'no raw escape character in the body');
    await waitUntil('the refusal line', () => stderr.includes('404'));
    assert.deepEqual(forgedLines(), []);
    assert.match(stderr, /unknown token 'x\\n\[2000-01-01T00:00:00\.000Z\] INFO: forged\\r\\x1b\[31m'/);
  } finally {
    conn.destroy();
  }
});

test("a client's close reason with a newline: the close line carries it escaped", async () => {
  const ws = await openClient(`ws://127.0.0.1:${port}/?token=good`, ['binary']);
  const closed = once(ws, 'close');
  ws.close(1000, `bye\n${FORGED}`);
  await closed;
  await waitUntil('the close line', () => stderr.includes('closed by client'));
  assert.deepEqual(forgedLines(), []);
  assert.ok(stderr.includes(`(bye\\n${FORGED})`), stderr);
});

test('a token with a Unicode line separator and a C1 next-line: escaped in the log', async () => {
  const conn = await RawConnection.open(port);
  try {
    conn.write(handshakeRequest({ protocol: 'binary', path: '/?token=%E2%80%A8forged%C2%85' }));
    assert.equal((await conn.head())?.status, 404);
    await waitUntil('the refusal line', () => stderr.includes('\\u2028forged'));
    assert.ok(!stderr.includes('\u2028'), 'a raw line separator in the log');
    assert.ok(!stderr.includes('\u0085'), 'a raw next-line character in the log');
  } finally {
    conn.destroy();
  }
});

test('a header with raw C1 control bytes (an Upgrade of 0x9b, the 8-bit CSI): escaped in the 400 body and the log', async () => {
  const conn = await RawConnection.open(port);
  try {
    conn.write(Buffer.from(handshakeRequest({ protocol: 'binary', upgrade: 'web\x9b31m\x85forged' }), 'latin1'));
    const head = await conn.head();
    assert.equal(head?.status, 400);
    assert.ok(await conn.waitClosed());
    const body = conn.received.subarray(conn.received.indexOf('\r\n\r\n') + 4).toString();
    assert.match(body, /'web\\x9b31m\\x85forged'/);
    await waitUntil('the refusal line', () => stderr.includes("'web\\x9b31m\\x85forged'"));
    assert.ok(!stderr.includes('\x9b'), 'a raw CSI in the log');
  } finally {
    conn.destroy();
  }
});
