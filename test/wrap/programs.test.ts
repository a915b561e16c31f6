// Real servers wrapped through the real CLI: `websockify PORT -- PROGRAM` moves the program's port to
// loopback and serves WebSockets on PORT in front of it.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import type { WebSocket } from 'ws';
import { type RunningProxy, startProxy } from '../helpers/proxy.js';
import { unusedPort } from '../helpers/targets.js';
import { assertTools, skipWithout } from '../helpers/tools.js';
import { openClient } from '../helpers/ws-client.js';
import { echoSession, eventsNamed, PYTHON, receive, waitForCount } from './support.js';

const SOCAT = '/usr/bin/socat';
const INETD = '/usr/sbin/inetutils-inetd';
const TELNETD = '/usr/sbin/telnetd';

describe('wrapped programs', () => {
  test('socat in respawn mode: three sessions in a row each echo their bytes', { skip: skipWithout(SOCAT) }, async () => {
    assertTools(SOCAT);
    const port = await unusedPort();
    // Without `fork`, socat serves one connection and exits: each session needs a respawn.
    const proxy = await startProxy([
      '--wrap-mode',
      'respawn',
      `127.0.0.1:${port}`,
      '--',
      'socat',
      `TCP-LISTEN:${port},reuseaddr`,
      'EXEC:cat',
    ]);
    try {
      assert.match(String(eventsNamed(proxy, 'listening')[0]?.msg), /the wrapped program 'socat /);
      for (let session = 1; session <= 3; session++) {
        const listening = await waitForCount(proxy, 'program-listening', session);
        assert.equal(listening.host, '127.0.0.1');
        const text = `session ${session}: ${'x'.repeat(1000 * session)}`;
        assert.equal(await echoSession(proxy.url, text), text);
      }
      assert.equal(eventsNamed(proxy, 'program-start').length, 3);
      const respawns = eventsNamed(proxy, 'program-respawn');
      assert.equal(respawns.length, 2);
      assert.deepEqual(
        respawns.map((event) => event.restart),
        [1, 2],
      );
    } finally {
      await proxy.stop();
    }
  });

  test('python3 -m http.server --bind :: : the IPv6 bind is moved to ::1, and a request through the WebSocket gets a 200', {
    skip: skipWithout(PYTHON),
  }, async () => {
    assertTools(PYTHON);
    const port = await unusedPort();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wrap-http-'));
    fs.writeFileSync(path.join(dir, 'hello.txt'), 'hello through the wrap\n');
    const proxy = await startProxy([
      `127.0.0.1:${port}`,
      '--',
      PYTHON,
      '-m',
      'http.server',
      '--bind',
      '::',
      '--directory',
      dir,
      String(port),
    ]);
    let ws: WebSocket | undefined;
    try {
      const listening = await waitForCount(proxy, 'program-listening', 1);
      assert.equal(listening.host, '::1');
      ws = await openClient(proxy.url, 'binary');
      const response = receive(ws, Number.MAX_SAFE_INTEGER);
      ws.send(Buffer.from('GET /hello.txt HTTP/1.0\r\nHost: localhost\r\n\r\n'));
      const text = (await response).toString();
      assert.match(text, /^HTTP\/1\.0 200 OK\r\n/);
      assert.match(text, /\r\n\r\nhello through the wrap\n$/);
      // The server's log line (its stderr) comes through the proxy's log, prefixed.
      const output = await proxy.waitForEvent((event) => event.event === 'program-output' && /GET \/hello\.txt/.test(String(event.line)));
      assert.match(String(output.msg), /^\[python3 \d+\] /);
    } finally {
      ws?.terminate();
      await proxy.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("the seed's telnet example: inetd running telnetd on the wrapped port, in respawn mode, reaches a shell", {
    skip: skipWithout(INETD, TELNETD),
  }, async () => {
    assertTools(INETD, TELNETD);
    const port = await unusedPort();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wrap-telnet-'));
    const conf = path.join(dir, 'inetd.conf');
    // telnetd -E /bin/sh: a shell instead of login, so that no password is needed.
    fs.writeFileSync(conf, `${port} stream tcp nowait ${os.userInfo().username} ${TELNETD} telnetd -E /bin/sh\n`);
    let proxy: RunningProxy | undefined;
    let ws: WebSocket | undefined;
    try {
      // -d keeps inetd in the foreground; its own pid file stays out of /run.
      proxy = await startProxy([
        '--wrap-mode',
        'respawn',
        `127.0.0.1:${port}`,
        '--',
        INETD,
        '-d',
        `--pidfile=${path.join(dir, 'inetd.pid')}`,
        conf,
      ]);
      await waitForCount(proxy, 'program-listening', 1);
      ws = await openClient(proxy.url, 'binary');
      const shell = telnetClient(ws);
      await shell.waitFor(/[#$] $/);
      ws.send(Buffer.from('echo wrapped-$((6*7))\r\n'));
      // Only a shell turns the command into this.
      await shell.waitFor(/wrapped-42/);
    } finally {
      ws?.terminate();
      await proxy?.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

const IAC = 255;
const [WILL, WONT, DO, DONT, SB, SE] = [251, 252, 253, 254, 250, 240];

/** The least telnet client: refuses every option the server offers and collects the text. */
function telnetClient(ws: WebSocket): { waitFor(pattern: RegExp, timeoutMs?: number): Promise<void> } {
  let text = '';
  const waiters = new Set<() => void>();
  ws.on('message', (data: Buffer) => {
    for (let i = 0; i < data.length; i++) {
      if (data[i] !== IAC) {
        text += String.fromCharCode(data[i]!);
        continue;
      }
      const command = data[i + 1];
      if (command === DO || command === DONT || command === WILL || command === WONT) {
        const option = data[i + 2]!;
        if (command === DO) ws.send(Buffer.from([IAC, WONT, option]));
        if (command === WILL) ws.send(Buffer.from([IAC, DONT, option]));
        i += 2;
      } else if (command === SB) {
        while (i < data.length && !(data[i] === IAC && data[i + 1] === SE)) i++;
        i++;
      } else {
        i++;
      }
    }
    for (const wake of waiters) wake();
  });
  return {
    waitFor: (pattern, timeoutMs = 20000) =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          if (!pattern.test(text)) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no ${pattern} from the telnet server within ${timeoutMs} ms; got: ${JSON.stringify(text)}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      }),
  };
}
