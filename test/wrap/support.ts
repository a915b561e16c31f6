// Shared pieces of the wrap tests: processes as /proc shows them, waiting, and tools the tests need.
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { WebSocket } from 'ws';
import type { RunningProxy } from '../helpers/proxy.js';
import { openClient } from '../helpers/ws-client.js';

/** Debian's Python (the one on PATH may be pyenv's). */
export const PYTHON = '/usr/bin/python3';

/** The shim as the build puts it, beside the compiled sources. */
export const SHIM = fileURLToPath(new URL('../../native/rebind.so', import.meta.url));

/** A process's state letter from /proc (R, S, Z...), or undefined when there is no such process. */
export function processState(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return undefined;
  }
}

/** Whether a process runs (a zombie has exited: only its exit status waits to be collected). */
export function isRunning(pid: number): boolean {
  const state = processState(pid);
  return state !== undefined && state !== 'Z';
}

/** Every process below `pid` (children, their children...), as /proc shows the tree now. */
export function descendants(pid: number): number[] {
  const parents = new Map<number, number>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      parents.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // gone meanwhile
    }
  }
  const found: number[] = [];
  const visit = (parent: number): void => {
    for (const [child, ppid] of parents) {
      if (ppid === parent && !found.includes(child)) {
        found.push(child);
        visit(child);
      }
    }
  };
  visit(pid);
  return found;
}

/** The proxy's log events named `name`, so far. */
export function eventsNamed(proxy: RunningProxy, name: string): Array<Record<string, unknown>> {
  return proxy.events().filter((event) => event.event === name);
}

/** Waits until the proxy has logged `count` events named `name`; returns the last. */
export async function waitForCount(proxy: RunningProxy, name: string, count: number, timeoutMs = 20000): Promise<Record<string, unknown>> {
  await proxy.waitForEvent(() => eventsNamed(proxy, name).length >= count, timeoutMs);
  return eventsNamed(proxy, name)[count - 1]!;
}

/** Receives binary messages until `size` bytes have come (or the connection closes). */
export function receive(ws: WebSocket, size: number, timeoutMs = 20000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    const done = (): void => {
      clearTimeout(timer);
      ws.off('message', onMessage);
      ws.off('close', onClose);
      resolve(Buffer.concat(chunks));
    };
    const onMessage = (data: Buffer): void => {
      chunks.push(data);
      length += data.length;
      if (length >= size) done();
    };
    const onClose = (): void => done();
    const timer = setTimeout(
      () => reject(new Error(`received ${length} of ${size} bytes in ${timeoutMs} ms: ${Buffer.concat(chunks).toString()}`)),
      timeoutMs,
    );
    ws.on('message', onMessage);
    ws.on('close', onClose);
  });
}

/** Opens a session, sends `text`, and returns what comes back once as many bytes have arrived. */
export async function echoSession(url: string, text: string): Promise<string> {
  const ws = await openClient(url, 'binary');
  try {
    const reply = receive(ws, Buffer.byteLength(text));
    ws.send(Buffer.from(text));
    return (await reply).toString();
  } finally {
    ws.close();
  }
}
