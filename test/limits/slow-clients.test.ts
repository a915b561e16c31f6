// Slow and abusive clients: request heads dribbled a byte at a time, TLS hellos stopped half-way, idle and
// half-closed connections. Each is dropped by the handshake deadline, a legitimate client gets its
// session while 2,000 of them hang, and the log has a line per address and interval, not one per client.
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, test } from 'node:test';
import { cliFixture } from '../helpers/cli-fixture.js';
import { waitUntil } from '../helpers/wait.js';
import { echoed, openClient } from '../helpers/ws-client.js';

const cli = cliFixture('slow-clients');

/** How many of each kind of slow client. */
const EACH = 500;
const HANDSHAKE_TIMEOUT = 4;

/** The first bytes of a TLS ClientHello record announcing 512 bytes, of which only these few come. */
const HALF_HELLO = Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]);

interface Hanging {
  socket: net.Socket;
  /** The proxy closed its side (or the whole connection). */
  closed: boolean;
  /** What the proxy wrote before closing. */
  received: string;
}

function connect(port: number): Promise<Hanging> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true }, () => resolve(hanging));
    const hanging: Hanging = { socket, closed: false, received: '' };
    socket.once('error', reject);
    socket.on('error', () => undefined);
    socket.setEncoding('latin1');
    socket.on('data', (text: string) => (hanging.received += text));
    // The proxy's FIN is its close: these clients are half-open, so their own side stays open after it.
    socket.on('end', () => (hanging.closed = true));
    socket.on('close', () => (hanging.closed = true));
  });
}

/** Opens `count` connections, a hundred at a time (the listen backlog is finite), running `start` on each. */
async function open(port: number, count: number, start: (h: Hanging) => void): Promise<Hanging[]> {
  const all: Hanging[] = [];
  for (let at = 0; at < count; at += 100) {
    const batch = await Promise.all(Array.from({ length: Math.min(100, count - at) }, () => connect(port)));
    for (const h of batch) start(h);
    all.push(...batch);
  }
  return all;
}

describe('slow clients', () => {
  test('2,000 slow connections are each dropped by the deadline while a real client gets its session; the log stays short', async () => {
    const p = await cli.proxy([
      '--cert',
      cli.server.cert,
      '--key',
      cli.server.key,
      '--handshake-timeout',
      String(HANDSHAKE_TIMEOUT),
      '--refusal-log-interval',
      '10',
    ]);
    const timers: NodeJS.Timeout[] = [];
    const all: Hanging[] = [];
    try {
      const port = p.port!;
      const request = 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n';
      const dribbling = await open(port, EACH, (h) => {
        let at = 0;
        const timer = setInterval(() => {
          if (h.closed || at >= request.length) return;
          h.socket.write(request[at++]!);
        }, 200);
        timers.push(timer);
      });
      const tlsHalf = await open(port, EACH, (h) => h.socket.write(HALF_HELLO));
      const idle = await open(port, EACH, () => undefined);
      const halfClosed = await open(port, EACH, (h) => h.socket.end());
      all.push(...dribbling, ...tlsHalf, ...idle, ...halfClosed);

      // A legitimate client, while all of them hang.
      const ws = await openClient(p.url);
      assert.equal(await echoed(ws, 'through the crowd'), 'through the crowd');
      ws.close();
      const hangingStill = all.filter((h) => !h.closed).length;
      assert.ok(hangingStill > all.length / 2, `only ${hangingStill} were still open when the session was served`);

      // Bounded in time: the proxy closes every one of them (none of these clients ever closes by itself).
      const stillOpen = (kind: Hanging[]): number => kind.filter((h) => !h.closed).length;
      await waitUntil('every slow connection closed by the proxy', () => all.every((h) => h.closed), 60_000).catch((err: Error) => {
        const left = `open: ${stillOpen(dribbling)} dribbling, ${stillOpen(tlsHalf)} TLS, ${stillOpen(idle)} idle, ${stillOpen(halfClosed)} half-closed`;
        throw new Error(`${err.message} (${left})`);
      });
      // A dribbler that sent part of a head is told why; a silent one is just closed.
      assert.ok(
        dribbling.some((h) => h.received.startsWith('HTTP/1.1 408')),
        'a dribbling client got 408',
      );
      assert.ok(idle.every((h) => h.received === ''));

      // Bounded log: the refusals of one address are a line per interval plus a count.
      const summary = await p.waitForEvent((e) => e.event === 'refused-more', 30_000);
      assert.equal(summary.client, '127.0.0.1');
      const lines = p.events().filter((e) => e.event === 'refused' || e.event === 'tls-failed').length;
      assert.ok(lines < 20, `${lines} refusal lines for ${all.length} refused connections`);
    } finally {
      for (const timer of timers) clearInterval(timer);
      for (const h of all) h.socket.destroy();
      await cli.stop(p);
    }
  });
});
