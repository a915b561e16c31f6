import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { treeListensOn } from '../../bench/proc.js';
import { startProxy } from '../helpers/proxy.js';
import { unusedPort } from '../helpers/targets.js';
import { waitUntil } from '../helpers/wait.js';

/** The reference implementation: Debian's Python websockify, or another build named by `$PYTHON_WEBSOCKIFY`. */
export const PYTHON_WEBSOCKIFY = process.env.PYTHON_WEBSOCKIFY ?? '/usr/bin/websockify';

/** True when the reference implementation is installed. */
export function pythonAvailable(): boolean {
  return existsSync(PYTHON_WEBSOCKIFY);
}

/** A running proxy under test: this one or Python's, listening on 127.0.0.1:`port`. */
export interface Subject {
  name: 'python' | 'ours';
  port: number;
  /** Stops the process (and, for Python, the children it forked per connection). */
  stop(): Promise<void>;
}

/**
 * Starts Python websockify on a free loopback port in front of `target` (`host:port`). It runs in a
 * process group of its own (`detached`), so that stopping it also ends the children it forks.
 */
export async function startPython(target: string): Promise<Subject> {
  let lastError = '';
  // The free port is found by binding and releasing it, so another process may take it first: retry.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await unusedPort();
    const proc = spawn(PYTHON_WEBSOCKIFY, [`127.0.0.1:${port}`, target], { detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    proc.stderr!.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    const exited = once(proc, 'exit');
    let gone = false;
    void exited.then(() => (gone = true));
    const pid = proc.pid!;
    const stop = async (): Promise<void> => {
      const signalGroup = (signal: NodeJS.Signals): void => {
        try {
          process.kill(-pid, signal);
        } catch {
          // the group is already gone
        }
      };
      signalGroup('SIGTERM');
      const timer = setTimeout(() => signalGroup('SIGKILL'), 2000);
      if (!gone) await exited;
      clearTimeout(timer);
      // Forked children outlive the parent when it dies first; they are in the same group.
      signalGroup('SIGKILL');
    };
    // Its own listening socket, not a probe connection: a program that took the port first must not pass for it.
    const listening = await waitUntil(`Python websockify to listen on ${port} or exit`, () => gone || treeListensOn(pid, port)).then(
      () => !gone,
      () => false,
    );
    if (listening) return { name: 'python', port, stop };
    lastError = stderr;
    await stop();
  }
  throw new Error(`Python websockify did not start:\n${lastError}`);
}

/** Starts this proxy (the real CLI) on a free loopback port in front of `target`, with extra `args`. */
export async function startOurs(target: string, args: readonly string[] = []): Promise<Subject> {
  const proxy = await startProxy([...args, '127.0.0.1:0', target]);
  return {
    name: 'ours',
    port: proxy.port!,
    stop: async () => {
      await proxy.stop();
    },
  };
}

/** What a target saw of one connection. */
export interface TargetConnection {
  socket: net.Socket;
  /** Every byte received. */
  data: Buffer;
  /** The proxy ended its side (FIN). */
  fin: boolean;
  /** The socket is closed. */
  closed: boolean;
}

/** How the target treats a connection: `hold` keeps it open and ends its side after the proxy's FIN. */
export type TargetBehaviour = { kind: 'hold' } | { kind: 'send-and-close'; data: Buffer };

/**
 * A loopback target whose behaviour is set per case; it records every connection so that a case can
 * wait for the one its session opened, and for it to close, before the next case starts.
 */
export class CaseTarget {
  behaviour: TargetBehaviour = { kind: 'hold' };
  connections: TargetConnection[] = [];
  private readonly server = net.createServer({ allowHalfOpen: true }, (socket) => this.accept(socket));
  private readonly wakers = new Set<() => void>();

  /** The port, once {@link start} resolved. */
  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /** Listens on a free loopback port. */
  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
  }

  /** Forgets the previous case's connections (call after {@link settle}). */
  reset(behaviour: TargetBehaviour = { kind: 'hold' }): void {
    this.behaviour = behaviour;
    this.connections = [];
  }

  /** Waits until `test` holds for the recorded connections; false after `timeoutMs`. */
  waitUntil(test: (connections: TargetConnection[]) => boolean, timeoutMs = 20_000): Promise<boolean> {
    return new Promise((resolve) => {
      const done = (value: boolean): void => {
        this.wakers.delete(waker);
        clearTimeout(timer);
        resolve(value);
      };
      const waker = (): void => {
        if (test(this.connections)) done(true);
      };
      const timer = setTimeout(() => done(false), timeoutMs);
      this.wakers.add(waker);
      waker();
    });
  }

  /** Waits for every connection to close, then destroys any still open, so cases cannot overlap. */
  async settle(timeoutMs = 3000): Promise<void> {
    await this.waitUntil((all) => all.every((c) => c.closed), timeoutMs);
    for (const connection of this.connections) connection.socket.destroy();
  }

  /** Closes the server and every connection. */
  async close(): Promise<void> {
    for (const connection of this.connections) connection.socket.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private accept(socket: net.Socket): void {
    const connection: TargetConnection = { socket, data: Buffer.alloc(0), fin: false, closed: false };
    this.connections.push(connection);
    const wake = (): void => {
      for (const waker of this.wakers) waker();
    };
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      connection.data = Buffer.concat([connection.data, chunk]);
      wake();
    });
    socket.on('end', () => {
      connection.fin = true;
      socket.end();
      wake();
    });
    socket.on('close', () => {
      connection.closed = true;
      wake();
    });
    if (this.behaviour.kind === 'send-and-close') socket.end(this.behaviour.data);
    wake();
  }
}
