// Shared by the token plugin tests: targets that say who they are, and a client that reports either what
// the target said or how the proxy refused.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';
import { WebSocket } from 'ws';
import { ProxyPool } from '../helpers/proxy.js';
import { startServer, type TestServer } from '../helpers/targets.js';

/** A TCP target that sends its name and closes, so a client can tell which target it reached. */
export function startNamedServer(name: string, host = '127.0.0.1'): Promise<TestServer> {
  return startServer((socket) => socket.end(name), host);
}

/** What one handshake came to: the target's words after a 101, or the proxy's refusal. */
export type Outcome = { status: 101; said: string } | { status: number; body: string };

/**
 * Opens a WebSocket to `url` and returns what the target sent before closing, or the HTTP status and body
 * of the refusal. `headers` may override Host (for --host-token).
 */
export function attempt(url: string, headers: Record<string, string> = {}): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, ['binary'], { perMessageDeflate: false, headers });
    const chunks: Buffer[] = [];
    ws.on('message', (data: Buffer) => chunks.push(data));
    ws.once('close', () => resolve({ status: 101, said: Buffer.concat(chunks).toString() }));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (text: string) => (body += text));
      res.once('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.once('error', reject);
    });
    ws.once('error', (err) => {
      // After 'unexpected-response' ws also reports an error; the response has the answer.
      if (!/Unexpected server response/.test(err.message)) reject(err);
    });
  });
}

/** A fresh temporary directory, removed by the returned function. */
export function tempDir(): { dir: string; remove: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wsproxy-tokens-'));
  return { dir, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** What {@link tokenFixture} shares with a test file. */
export interface TokenFixture {
  /** A temporary directory of the file's own, made at once. */
  readonly temp: { dir: string };
  /** The file's proxies; whatever still runs after the file is stopped. */
  readonly proxies: ProxyPool;
  /** The targets that say 'server A' (`a`) and 'server B' (`b`); read them inside tests and hooks only. */
  readonly targets: { readonly a: TestServer; readonly b: TestServer };
}

/**
 * Registers on the calling file (call it at the top level) a `before` hook that starts the targets
 * 'server A' and 'server B', and an `after` hook that stops the file's proxies and the targets and removes
 * the directory. The file adds no top-level `before` hook of its own: Node 20 starts top-level `before`
 * hooks without awaiting the ones registered earlier (hooks inside a describe block wait for these).
 */
export function tokenFixture(): TokenFixture {
  const temp = tempDir();
  const proxies = new ProxyPool();
  let started: { a: TestServer; b: TestServer } | undefined;
  before(async () => {
    const [a, b] = await Promise.all([startNamedServer('server A'), startNamedServer('server B')]);
    started = { a, b };
  });
  after(async () => {
    await proxies.stopAll();
    await Promise.all([started?.a.close(), started?.b.close()]);
    temp.remove();
  });
  const ready = (): { a: TestServer; b: TestServer } => {
    if (!started) throw new Error('the targets start in a before hook: use them inside tests and hooks');
    return started;
  };
  return {
    temp,
    proxies,
    targets: {
      get a() {
        return ready().a;
      },
      get b() {
        return ready().b;
      },
    },
  };
}

/** A Unix socket server at `file` that sends `name` to each client and closes. */
export async function startUnixNamedServer(file: string, name: string): Promise<net.Server> {
  const server = net.createServer((socket) => {
    socket.on('error', () => undefined);
    socket.end(name);
  });
  server.listen(file);
  await once(server, 'listening');
  return server;
}

/** Where Debian's redis-server package puts the server. */
export const REDIS_SERVER = '/usr/bin/redis-server';

/** A redis-server of our own, without persistence, in a temporary directory. */
export class RedisServer {
  private proc: ChildProcess | undefined;
  constructor(
    readonly port: number,
    private readonly dir: string,
  ) {}

  async start(): Promise<void> {
    const proc = spawn(
      REDIS_SERVER,
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.proc = proc;
    let output = '';
    proc.stdout!.setEncoding('utf8');
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`redis-server did not start:\n${output}`)), 15000);
      proc.stdout!.on('data', (text: string) => {
        output += text;
        if (/Ready to accept connections/.test(output)) {
          clearTimeout(timer);
          resolve();
        }
      });
      proc.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`redis-server exited (${code}):\n${output}`));
      });
    });
    proc.stdout!.resume();
    proc.stderr!.resume();
  }

  async stop(): Promise<void> {
    const proc = this.proc;
    this.proc = undefined;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGKILL');
    await once(proc, 'exit');
  }
}

/** Retries `attempt` until `done` accepts its outcome: the proxy reconnects to Redis in the background. */
export async function eventually(url: string, done: (outcome: Outcome) => boolean, timeoutMs = 20000): Promise<Outcome> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const outcome = await attempt(url);
    if (done(outcome)) return outcome;
    if (Date.now() > deadline) assert.fail(`still ${JSON.stringify(outcome)} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
