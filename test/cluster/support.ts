// Shared pieces of the --workers tests: which worker served a session, and sessions on every worker.
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import type { RunningProxy } from '../helpers/proxy.js';
import { waitUntil } from '../helpers/wait.js';
import { openClient } from '../helpers/ws-client.js';
import { isRunning } from '../wrap/support.js';

/** A session of a test, and the worker that serves it. */
export interface WorkerSession {
  ws: WebSocket;
  worker: number;
  /** Its number (`conn N`). */
  conn: number;
}

/** The worker that logged the opening of the session whose client socket is `ws`'s. */
export async function servingWorker(proxy: RunningProxy, ws: WebSocket): Promise<{ worker: number; conn: number }> {
  const socket = (ws as unknown as { _socket: Socket })._socket;
  const client = `127.0.0.1:${socket.localPort}`;
  const open = await proxy.waitForEvent((e) => e.event === 'open' && e.client === client);
  return { worker: Number(open.worker), conn: Number(open.conn) };
}

/**
 * Opens sessions to `url` until each of the `workers` has served at least one (and at least `atLeast`
 * in all). Round robin alternates; SO_REUSEPORT spreads by connection hash, so a few more may be needed.
 */
export async function sessionsOnEveryWorker(
  proxy: RunningProxy,
  url: string,
  workers: number,
  atLeast = workers,
  options: Parameters<typeof openClient>[2] = {},
): Promise<WorkerSession[]> {
  const sessions: WorkerSession[] = [];
  const seen = new Set<number>();
  for (let i = 0; i < 64 && (seen.size < workers || sessions.length < atLeast); i++) {
    const ws = await openClient(url, 'binary', options);
    const { worker, conn } = await servingWorker(proxy, ws);
    seen.add(worker);
    sessions.push({ ws, worker, conn });
  }
  if (seen.size < workers) throw new Error(`64 sessions all went to workers ${[...seen].join(', ')}`);
  return sessions;
}

/** The pid of every worker the primary's log names as started (its start-up line). */
export function workerPids(proxy: RunningProxy): number[] {
  const listening = proxy.events().find((e) => e.event === 'listening' && e.worker === undefined);
  return (listening?.pids as number[] | undefined) ?? [];
}

/** Waits until no process with `pid` runs any more (a zombie counts as ended). */
export async function gone(pid: number): Promise<void> {
  await waitUntil(`process ${pid} to end`, () => !isRunning(pid));
}
