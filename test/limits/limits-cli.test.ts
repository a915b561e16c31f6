// The limits as the command runs them: --max-connections, --max-connections-per-ip, --max-handshake-rate,
// --max-session-duration, --ban-after/--ban-time, --allow-origin, and refusal lines once per address.
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import { handshakeRequest } from '../../bench/wire.js';
import { cliFixture } from '../helpers/cli-fixture.js';
import { runCli, startTokenFileProxy } from '../helpers/proxy.js';
import { type HttpHead, RawConnection } from '../helpers/raw-connection.js';
import { waitUntil } from '../helpers/wait.js';
import { collect, echoed, openClient } from '../helpers/ws-client.js';

const cli = cliFixture('limits');

/** Sends a WebSocket handshake (extra header lines as given) on a new connection; its answer's head. */
async function handshake(port: number, extra: string[] = [], pathname = '/'): Promise<{ head: HttpHead | undefined; conn: RawConnection }> {
  const conn = await RawConnection.open(port);
  conn.write(handshakeRequest({ path: pathname, extra }));
  return { head: await conn.head(), conn };
}

/** Holds a connection open without sending anything (it counts as a connection being handshaken). */
async function idle(port: number): Promise<RawConnection> {
  return RawConnection.open(port);
}

describe('--max-connections and --max-connections-per-ip', () => {
  test('past --max-connections a connection gets 503 with Retry-After, logged with kind limit; a freed place serves again', async () => {
    const p = await cli.proxy(['--max-connections', '2', '--handshake-timeout', '60']);
    try {
      const quiet = await idle(p.port!);
      const ws = await openClient(p.url);
      const { head, conn } = await handshake(p.port!);
      assert.equal(head?.status, 503);
      assert.equal(head?.headers['retry-after'], '5');
      conn.socket.destroy();
      const line = await p.waitForEvent((e) => e.event === 'refused' && e.kind === 'limit');
      assert.equal(line.status, 503);
      assert.match(String(line.reason), /too many connections \(--max-connections 2\)/);
      // The session still works, and once the idle connection leaves a new session gets its place.
      assert.equal(await echoed(ws, 'still here'), 'still here');
      quiet.socket.destroy();
      const next = await waitUntil('a place freed', async () => openClient(p.url).catch(() => undefined));
      assert.equal(await echoed(next, 'again'), 'again');
      ws.close();
      next.close();
    } finally {
      await cli.stop(p);
    }
  });

  test('with TLS on the port, a connection past the limit is closed unanswered: no TLS handshake is spent on it', async () => {
    const p = await cli.proxy(['--cert', cli.server.cert, '--key', cli.server.key, '--max-connections', '1', '--handshake-timeout', '60']);
    try {
      const quiet = await idle(p.port!);
      const over = await RawConnection.open(p.port!);
      assert.equal(await over.head(), undefined);
      assert.equal(over.received.length, 0, 'nothing was written to it');
      const line = await p.waitForEvent((e) => e.event === 'refused' && e.kind === 'limit');
      assert.equal(line.status, undefined);
      quiet.socket.destroy();
    } finally {
      await cli.stop(p);
    }
  });

  test('per address: the real client named by a trusted proxy is counted, not the proxy in front', async () => {
    const p = await cli.proxy(['--max-connections-per-ip', '1', '--trusted-proxy', '127.0.0.1']);
    try {
      const alice = await openClient(p.url, undefined, { headers: { 'X-Forwarded-For': '192.0.2.1' } });
      const bob = await openClient(p.url, undefined, { headers: { 'X-Forwarded-For': '192.0.2.2' } });
      const { head } = await handshake(p.port!, ['X-Forwarded-For: 192.0.2.1']);
      assert.equal(head?.status, 503);
      assert.equal(head?.headers['retry-after'], '5');
      const line = await p.waitForEvent((e) => e.event === 'refused' && e.kind === 'limit');
      assert.match(String(line.reason), /too many connections from 192\.0\.2\.1 \(--max-connections-per-ip 1\)/);
      assert.equal(line.client, '192.0.2.1');
      assert.equal(await echoed(bob, 'bob'), 'bob');
      alice.close();
      const again = await waitUntil('192.0.2.1 has its place back', async () =>
        openClient(p.url, undefined, { headers: { 'X-Forwarded-For': '192.0.2.1' } }).catch(() => undefined),
      );
      again.close();
      bob.close();
    } finally {
      await cli.stop(p);
    }
  });

  test('per address, PROXY protocol: the client a trusted peer names is counted once its header is read', async () => {
    const p = await cli.proxy([
      '--max-connections-per-ip',
      '1',
      '--trusted-proxy',
      '127.0.0.1',
      '--proxy-protocol',
      '-v',
      '--handshake-timeout',
      '60',
    ]);
    const header = (client: string): string => `PROXY TCP4 ${client} 127.0.0.1 40000 6080\r\n`;
    try {
      const first = await idle(p.port!);
      first.write(header('192.0.2.9'));
      await p.waitForEvent((e) => e.event === 'proxy-header' && e.client === '192.0.2.9:40000');
      const second = await RawConnection.open(p.port!);
      second.write(header('192.0.2.9') + handshakeRequest());
      const refused = await second.head();
      assert.equal(refused?.status, 503);
      assert.match(refused?.statusLine ?? '', /503/);
      const line = await p.waitForEvent((e) => e.event === 'refused' && e.kind === 'limit');
      assert.equal(line.client, '192.0.2.9:40000');
      // Another client through the same trusted peer has its own count.
      const other = await RawConnection.open(p.port!);
      other.write(header('192.0.2.10') + handshakeRequest());
      assert.equal((await other.head())?.status, 101);
      for (const conn of [first, second, other]) conn.socket.destroy();
    } finally {
      await cli.stop(p);
    }
  });

  test('per address, direct clients: a second connection from 127.0.0.1 is refused at accept', async () => {
    const p = await cli.proxy(['--max-connections-per-ip', '1', '--handshake-timeout', '60']);
    try {
      const quiet = await idle(p.port!);
      const { head } = await handshake(p.port!);
      assert.equal(head?.status, 503);
      quiet.socket.destroy();
    } finally {
      await cli.stop(p);
    }
  });
});

describe('--max-handshake-rate', () => {
  test('past N handshakes in a burst the address gets 429 with Retry-After, logged with kind rate', async () => {
    const p = await cli.proxy(['--max-handshake-rate', '2']);
    try {
      const first = await openClient(p.url);
      const second = await openClient(p.url);
      const { head } = await handshake(p.port!);
      assert.equal(head?.status, 429);
      assert.ok(Number(head?.headers['retry-after']) >= 1);
      const line = await p.waitForEvent((e) => e.event === 'refused' && e.kind === 'rate');
      assert.match(String(line.reason), /more than 2 handshakes per second from 127\.0\.0\.1/);
      // The bucket fills again.
      const later = await waitUntil('the bucket refilled', async () => openClient(p.url).catch(() => undefined));
      for (const ws of [first, second, later]) ws.close();
    } finally {
      await cli.stop(p);
    }
  });
});

describe('--max-session-duration', () => {
  test('a session past its duration closes with 1008 and a reason, after the bytes in flight', async () => {
    const p = await cli.proxy(['--max-session-duration', '1']);
    try {
      const ws = await openClient(p.url);
      const received = collect(ws);
      const payload = Buffer.alloc(256 * 1024, 7);
      ws.send(payload);
      const { code, reason, data } = await received;
      assert.equal(code, 1008);
      assert.match(reason, /Session longer than 1 s/);
      assert.equal(data.length, payload.length, 'the echo of what was sent arrived before the close');
      const closed = await p.waitForEvent((e) => e.event === 'close');
      assert.equal(closed.code, 1008);
      assert.equal(closed.initiator, 'proxy');
    } finally {
      await cli.stop(p);
    }
  });
});

describe('--ban-after and --ban-time', () => {
  test('unknown tokens ban the address: then even a valid token gets 403 until the ban ends', async () => {
    const p = await startTokenFileProxy(path.join(cli.scratch, 'tokens.cfg'), { good: cli.echoTarget.port }, [
      '--ban-after',
      '3',
      '--ban-time',
      '2',
      '--refusal-log-interval',
      '0',
    ]);
    try {
      for (const guess of ['a', 'b', 'c']) assert.equal((await handshake(p.port!, [], `/?token=${guess}`)).head?.status, 404);
      const ban = await p.waitForEvent((e) => e.event === 'ban');
      assert.equal(ban.client, '127.0.0.1');
      const { head } = await handshake(p.port!, [], '/?token=good');
      assert.equal(head?.status, 403);
      const line = await p.waitForEvent((e) => e.event === 'refused' && e.kind === 'ban');
      assert.match(String(line.reason), /127\.0\.0\.1 is banned for \d+ s more/);
      const after = await waitUntil('the ban ended', async () => openClient(`${p.url}/?token=good`).catch(() => undefined), 10_000);
      assert.equal(await echoed(after, 'free again'), 'free again');
      after.close();
    } finally {
      await p.stop();
    }
  });

  test('wrong Basic credentials ban the address; other refusals (a bad handshake) do not count', async () => {
    const p = await cli.proxy(['--auth-plugin', 'BasicHTTPAuth', '--auth-source', 'user:secret', '--ban-after', '2', '--ban-time', '60']);
    const good = `Authorization: Basic ${Buffer.from('user:secret').toString('base64')}`;
    const bad = `Authorization: Basic ${Buffer.from('user:guess').toString('base64')}`;
    try {
      // A malformed handshake is not a failed authentication.
      for (let i = 0; i < 3; i++) {
        const conn = await RawConnection.open(p.port!);
        conn.write(handshakeRequest({ version: '99' }));
        assert.equal((await conn.head())?.status, 426);
      }
      const opened = await handshake(p.port!, [good]);
      assert.equal(opened.head?.status, 101);
      opened.conn.socket.destroy();
      assert.equal((await handshake(p.port!, [bad])).head?.status, 401);
      assert.equal((await handshake(p.port!, [bad])).head?.status, 401);
      assert.equal((await handshake(p.port!, [good])).head?.status, 403, 'the right password no longer helps');
    } finally {
      await cli.stop(p);
    }
  });

  test('--ban-time without --ban-after is a usage error', async () => {
    const { code, stderr } = await runCli(['--ban-time', '5', '127.0.0.1:0', '127.0.0.1:9']);
    assert.equal(code, 2);
    assert.match(stderr, /--ban-time needs --ban-after/);
  });
});

describe('--allow-origin', () => {
  test("only the listed origins' pages get sessions (compared as ExpectOrigin compares them); others 403 with kind origin", async () => {
    const p = await cli.proxy(['--allow-origin', 'https://app.example', '--allow-origin', 'http://localhost:8080']);
    try {
      const ws = await openClient(p.url, undefined, { origin: 'HTTPS://APP.example:443' });
      assert.equal(await echoed(ws, 'hi'), 'hi');
      ws.close();
      assert.equal((await handshake(p.port!, ['Origin: https://evil.example'])).head?.status, 403);
      assert.equal((await handshake(p.port!)).head?.status, 403, 'no Origin header');
      const line = await p.waitForEvent((e) => e.event === 'refused' && e.kind === 'origin');
      assert.match(String(line.reason), /origin 'https:\/\/evil\.example' is not allowed/);
    } finally {
      await cli.stop(p);
    }
  });

  test('a value that is not an origin is a usage error', async () => {
    const { code, stderr } = await runCli(['--allow-origin', 'https://a.example/path', '127.0.0.1:0', '127.0.0.1:9']);
    assert.equal(code, 2);
    assert.match(stderr, /'https:\/\/a\.example\/path' is not an origin/);
  });
});

describe('refusal log lines', () => {
  test('refusals from one address: one line per interval, then one line with the count of the others', async () => {
    const p = await cli.proxy(['--refusal-log-interval', '1']);
    try {
      for (let i = 0; i < 40; i++) {
        const conn = await RawConnection.open(p.port!);
        conn.write('GARBAGE\r\n\r\n');
        assert.equal((await conn.head())?.status, 400);
      }
      const summary = await p.waitForEvent((e) => e.event === 'refused-more');
      assert.equal(summary.client, '127.0.0.1');
      const lines = p.events().filter((e) => e.event === 'refused');
      assert.ok(lines.length >= 1 && lines.length <= 3, `${lines.length} refusal lines for 40 refusals within about a second`);
      const told = p
        .events()
        .filter((e) => e.event === 'refused-more')
        .reduce((sum, e) => sum + Number(e.count), 0);
      await waitUntil('every refusal told', () => {
        const all =
          p.events().filter((e) => e.event === 'refused').length +
          p
            .events()
            .filter((e) => e.event === 'refused-more')
            .reduce((sum, e) => sum + Number(e.count), 0);
        return all === 40;
      });
      assert.ok(told > 0);
    } finally {
      await cli.stop(p);
    }
  });

  test('--refusal-log-interval 0 logs every refusal', async () => {
    const p = await cli.proxy(['--refusal-log-interval', '0']);
    try {
      for (let i = 0; i < 5; i++) {
        const conn = await RawConnection.open(p.port!);
        conn.write('GARBAGE\r\n\r\n');
        await conn.head();
      }
      await waitUntil('five lines', () => p.events().filter((e) => e.event === 'refused').length === 5);
    } finally {
      await cli.stop(p);
    }
  });
});
