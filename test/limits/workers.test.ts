// With --workers N the limits are the whole process group's: the primary keeps the connection counts and
// the failures, and every worker refuses what the group's limits refuse.
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import type { WebSocket } from 'ws';
import { handshakeRequest } from '../../bench/wire.js';
import { servingWorker, workerPids } from '../cluster/support.js';
import { cliFixture } from '../helpers/cli-fixture.js';
import { startTokenFileProxy } from '../helpers/proxy.js';
import { RawConnection } from '../helpers/raw-connection.js';
import { waitUntil } from '../helpers/wait.js';
import { echoed, openClient } from '../helpers/ws-client.js';

const cli = cliFixture('limits-workers');

/** The status of a WebSocket handshake for `pathname` on a new connection (closed after). */
async function status(port: number, pathname = '/'): Promise<number | undefined> {
  const conn = await RawConnection.open(port);
  conn.write(handshakeRequest({ path: pathname }));
  const head = await conn.head();
  conn.socket.destroy();
  return head?.status;
}

describe('limits with --workers 2', () => {
  test('--max-connections counts over both workers: a worker holding fewer than the limit refuses too', async () => {
    const p = await cli.proxy(['--workers', '2', '--max-connections', '3']);
    const sessions: WebSocket[] = [];
    try {
      const perWorker = new Map<number, number>();
      for (let i = 0; i < 3; i++) {
        const ws = await openClient(p.url);
        sessions.push(ws);
        const { worker } = await servingWorker(p, ws);
        perWorker.set(worker, (perWorker.get(worker) ?? 0) + 1);
      }
      // Refusals until one comes from a worker that holds fewer than 3 itself: a per-worker count would let it through.
      await waitUntil('a refusal from a worker below the limit by itself', async () => {
        assert.equal(await status(p.port!), 503);
        return p.events().some((e) => e.event === 'refused' && e.kind === 'limit' && (perWorker.get(Number(e.worker)) ?? 0) < 3);
      });
      for (const ws of sessions) assert.equal(await echoed(ws, 'on'), 'on');
      // A closed session gives its place back through the primary.
      sessions.shift()!.close();
      const next = await waitUntil('a place given back', async () => openClient(p.url).catch(() => undefined));
      sessions.push(next);
    } finally {
      for (const ws of sessions) ws.close();
      await cli.stop(p);
    }
  });

  test('a worker that dies gives its places back', async () => {
    const p = await cli.proxy(['--workers', '2', '--max-connections', '2']);
    try {
      const ws = await openClient(p.url);
      const { worker } = await servingWorker(p, ws);
      // The start-up line lists the workers' pids in the order of their numbers.
      process.kill(workerPids(p)[worker - 1]!, 'SIGKILL');
      await p.waitForEvent((e) => e.event === 'worker-exit');
      // Two new sessions fit: the dead worker's place is free.
      const a = await waitUntil('a session after the exit', async () => openClient(p.url).catch(() => undefined));
      const b = await waitUntil('a second one', async () => openClient(p.url).catch(() => undefined));
      a.close();
      b.close();
    } finally {
      await cli.stop(p);
    }
  });

  test('a ban decided from failures on any worker is enforced by every worker', async () => {
    const p = await startTokenFileProxy(path.join(cli.scratch, 'tokens.cfg'), { good: cli.echoTarget.port }, [
      '--workers',
      '2',
      '--ban-after',
      '3',
      '--ban-time',
      '60',
    ]);
    try {
      const good = await openClient(`${p.url}/?token=good`);
      good.close();
      for (const guess of ['x', 'y', 'z']) assert.equal(await status(p.port!, `/?token=${guess}`), 404);
      await p.waitForEvent((e) => e.event === 'ban' && e.client === '127.0.0.1' && e.worker === undefined);
      await waitUntil('403 for the good token from both workers', async () => {
        assert.equal(await status(p.port!, '/?token=good'), 403);
        const workers = new Set(
          p
            .events()
            .filter((e) => e.event === 'refused' && e.kind === 'ban')
            .map((e) => e.worker),
        );
        return workers.size === 2;
      });
      // A worker started after the ban (replacing one killed) knows it too.
      process.kill(workerPids(p)[0]!, 'SIGKILL');
      await p.waitForEvent((e) => e.event === 'worker-listening' && e.worker === 1);
      const before = p.events().length;
      await waitUntil('403 from the replacement', async () => {
        assert.equal(await status(p.port!, '/?token=good'), 403);
        return p
          .events()
          .slice(before)
          .some((e) => e.event === 'refused' && e.kind === 'ban' && e.worker === 1);
      });
    } finally {
      await p.stop();
    }
  });
});
