// The example programs in examples/, run as a user would (`PORT=0 TARGET=... node examples/x.mjs` from the
// repository's root, `websockify-ts` resolved to the build by the package's self-reference): each bridges
// WebSocket clients to a TCP echo server byte-exact, keeps its app's own routes, and stops on SIGTERM with 0.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { WebSocket } from 'ws';
import { startEchoServer, type TestServer } from '../helpers/targets.js';
import { collect, openClient, type Received } from '../helpers/ws-client.js';

/** The repository's root (this file runs from dist/test/examples/). */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** How long a state may take to be reached before a test gives up (the machine may be busy). */
const DEADLINE_MS = 20_000;

type Stream = 'stdout' | 'stderr';
interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** One example program running as a child process, its output kept. */
class RunningExample {
  readonly proc: ChildProcess;
  /** Resolves once the process has exited and its output is all read. */
  readonly exited: Promise<ExitStatus>;
  /** The port from its `listening on` line. */
  port = 0;
  private readonly output: Record<Stream, string> = { stdout: '', stderr: '' };
  private readonly waiters = new Set<() => void>();

  constructor(
    readonly file: string,
    target: string,
  ) {
    this.proc = spawn(process.execPath, [file], {
      cwd: ROOT,
      env: { ...process.env, PORT: '0', TARGET: target, HOST: '127.0.0.1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    for (const stream of ['stdout', 'stderr'] as const) {
      this.proc[stream]!.setEncoding('utf8').on('data', (text: string) => {
        this.output[stream] += text;
        for (const wake of this.waiters) wake();
      });
    }
    this.exited = once(this.proc, 'close').then(([code, signal]) => ({
      code: code as number | null,
      signal: signal as NodeJS.Signals | null,
    }));
    void this.exited.then(() => {
      for (const wake of this.waiters) wake();
    });
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get wsUrl(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  /** Whole lines written to `stream` so far (a partial last line is left out). */
  lines(stream: Stream): string[] {
    const text = this.output[stream];
    return text.slice(0, text.lastIndexOf('\n') + 1).split('\n');
  }

  /** Waits until a whole line of `stream` matches `pattern`; fails when the program ends first or after the deadline. */
  waitForLine(stream: Stream, pattern: RegExp, timeoutMs = DEADLINE_MS): Promise<RegExpExecArray> {
    return new Promise((resolve, reject) => {
      let ended = false;
      const check = (): void => {
        for (const line of this.lines(stream)) {
          const match = pattern.exec(line);
          if (match) {
            done(() => resolve(match));
            return;
          }
        }
        if (ended) done(() => reject(new Error(`${this.file} exited without a line matching ${pattern}\n${this.describe()}`)));
      };
      const done = (settle: () => void): void => {
        this.waiters.delete(check);
        clearTimeout(timer);
        settle();
      };
      const timer = setTimeout(
        () => done(() => reject(new Error(`no line matching ${pattern} within ${timeoutMs} ms\n${this.describe()}`))),
        timeoutMs,
      );
      this.waiters.add(check);
      void this.exited.then(() => {
        ended = true;
        check();
      });
      check();
    });
  }

  /** Sends SIGTERM and resolves with the exit status, or fails after the deadline. */
  async stop(): Promise<ExitStatus> {
    this.proc.kill('SIGTERM');
    return withDeadline(this.exited, DEADLINE_MS, () => `${this.file} did not exit after SIGTERM\n${this.describe()}`);
  }

  /** Kills the process if it still runs (cleanup after a failure). */
  kill(): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
  }

  /** Its output so far, for failure messages. */
  describe(): string {
    return `--- stdout:\n${this.output.stdout}--- stderr:\n${this.output.stderr}`;
  }
}

function withDeadline<T>(promise: Promise<T>, ms: number, why: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(why())), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

let echo: TestServer;
const running = new Set<RunningExample>();

before(async () => {
  echo = await startEchoServer();
});

after(async () => {
  // Whatever a failed test left running, by its own PID.
  for (const example of running) example.kill();
  await Promise.all([...running].map((example) => example.exited));
  await echo?.close();
});

/** Starts `examples/<name>` against the echo server and waits for its `listening on` line. */
async function startExample(name: string): Promise<RunningExample> {
  const example = new RunningExample(`examples/${name}`, `127.0.0.1:${echo.port}`);
  running.add(example);
  const [, port] = await example.waitForLine('stdout', /^listening on http:\/\/127\.0\.0\.1:(\d+)$/);
  example.port = Number(port);
  return example;
}

/** A session on which bytes have made a round trip: it is open at both ends, its target connected. */
interface OpenSession {
  ws: WebSocket;
  /** Everything the client receives until the close. */
  received: Promise<Received>;
}

/** Opens a `binary` session, sends `payload` and waits until as many bytes have come back. */
async function roundTrip(url: string, payload: Buffer): Promise<OpenSession> {
  const ws = await openClient(url, 'binary');
  assert.equal(ws.protocol, 'binary');
  const received = collect(ws);
  let count = 0;
  const back = new Promise<void>((resolve) => {
    ws.on('message', (data: Buffer) => {
      count += data.length;
      if (count >= payload.length) resolve();
    });
  });
  ws.send(payload);
  await withDeadline(back, DEADLINE_MS, () => `${count} of ${payload.length} bytes came back`);
  return { ws, received };
}

/** A round trip of bytes of every value, then a close by the client: the echo comes back byte-exact. */
async function assertEcho(url: string, size = 100_000): Promise<void> {
  const payload = Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, i) => i)), randomBytes(size - 256)]);
  const { ws, received } = await roundTrip(url, payload);
  ws.close(1000);
  const got = await received;
  assert.ok(got.data.equals(payload), `the echo differs: ${got.data.length} bytes back of ${payload.length}`);
  assert.equal(got.binaryFrames > 0 && got.textFrames === 0, true, 'binary frames only');
  assert.equal(got.code, 1000);
}

/** An upgrade request for another path than /websockify is refused with 404. */
async function assertOtherPathRefused(example: RunningExample): Promise<void> {
  await assert.rejects(openClient(`${example.wsUrl}/other`, 'binary'), /HTTP 404/);
}

/** SIGTERM with a session open: the client gets 1001 (going away) and the program exits 0. */
async function assertStopsOnSigterm(example: RunningExample): Promise<void> {
  const { received } = await roundTrip(`${example.wsUrl}/websockify`, Buffer.from('still here'));
  const [got, status] = await Promise.all([
    withDeadline(received, DEADLINE_MS, () => `the session was not closed\n${example.describe()}`),
    example.stop(),
  ]);
  assert.equal(got.code, 1001);
  assert.deepEqual(status, { code: 0, signal: null }, example.describe());
}

async function getText(url: string): Promise<{ status: number; type: string; body: string }> {
  const res = await fetch(url);
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: await res.text() };
}

describe('examples/http-server.mjs', () => {
  let example: RunningExample;
  before(async () => {
    example = await startExample('http-server.mjs');
  });

  test('bridges /websockify to the target byte-exact; the session is logged on stderr', async () => {
    await assertEcho(`${example.wsUrl}/websockify`);
    await example.waitForLine('stderr', /conn 1: closed by client, code 1000; 100000 bytes from client, 100000 bytes from target/);
  });

  test('its own page still answers at /', async () => {
    const page = await getText(`${example.url}/`);
    assert.equal(page.status, 200);
    assert.match(page.type, /^text\/html/);
    assert.match(page.body, /\/websockify/);
    assert.equal((await getText(`${example.url}/nothing-here`)).status, 404);
  });

  test('an upgrade for another path is refused with 404', async () => {
    await assertOtherPathRefused(example);
  });

  test('SIGTERM closes the open session with 1001 and exits 0', async () => {
    await assertStopsOnSigterm(example);
  });
});

describe('examples/express.mjs', () => {
  let example: RunningExample;
  before(async () => {
    example = await startExample('express.mjs');
  });

  test('bridges /websockify to the target byte-exact; the app prints the session-close event', async () => {
    await assertEcho(`${example.wsUrl}/websockify`);
    await example.waitForLine('stdout', /^session 1 closed by client \(code 1000\) after \d+ ms$/);
  });

  test("the app's routes still answer; /status follows the session events", async () => {
    const page = await getText(`${example.url}/`);
    assert.equal(page.status, 200);
    assert.match(page.type, /^text\/html/);
    assert.match(page.body, /\/websockify/);
    const first = JSON.parse((await getText(`${example.url}/status`)).body) as Record<string, unknown>;
    assert.deepEqual(first, { target: `127.0.0.1:${echo.port}`, open: 0, sessions: 1, bytesFromClient: 100_000, bytesFromTarget: 100_000 });

    const { ws, received } = await roundTrip(`${example.wsUrl}/websockify`, Buffer.from('abc'));
    const during = JSON.parse((await getText(`${example.url}/status`)).body) as Record<string, unknown>;
    assert.equal(during.open, 1);
    ws.close(1000);
    await received;
    await example.waitForLine('stdout', /^session 2 closed by client/);
    const afterwards = JSON.parse((await getText(`${example.url}/status`)).body) as Record<string, unknown>;
    assert.deepEqual(afterwards, { ...first, sessions: 2, bytesFromClient: 100_003, bytesFromTarget: 100_003 });
    assert.equal((await getText(`${example.url}/nothing-here`)).status, 404);
  });

  test('an upgrade for another path is refused with 404', async () => {
    await assertOtherPathRefused(example);
  });

  test('SIGTERM closes the open session with 1001 and exits 0', async () => {
    await assertStopsOnSigterm(example);
  });
});

describe('examples/fastify.mjs', () => {
  let example: RunningExample;
  before(async () => {
    example = await startExample('fastify.mjs');
  });

  /** Fastify's JSON log lines on stdout. */
  const logEvents = (): Array<Record<string, unknown>> =>
    example
      .lines('stdout')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);

  test("bridges /websockify to the target byte-exact; the session is logged through Fastify's logger", async () => {
    await assertEcho(`${example.wsUrl}/websockify`);
    await example.waitForLine('stdout', /"event":"close"/);
    const close = logEvents().find((event) => event.event === 'close');
    assert.ok(close, example.describe());
    assert.equal(close.conn, 1);
    assert.equal(close.initiator, 'client');
    assert.equal(close.code, 1000);
    assert.equal(close.bytesFromClient, 100_000);
    assert.equal(close.bytesFromTarget, 100_000);
    assert.equal(example.lines('stderr').join(''), '', 'nothing on stderr: the library logs through Fastify');
  });

  test("the app's routes still answer", async () => {
    const page = await getText(`${example.url}/`);
    assert.equal(page.status, 200);
    assert.match(page.type, /^text\/html/);
    assert.match(page.body, /\/websockify/);
    assert.deepEqual(JSON.parse((await getText(`${example.url}/status`)).body), { target: `127.0.0.1:${echo.port}`, open: 0 });
    assert.equal((await getText(`${example.url}/nothing-here`)).status, 404);
  });

  test('an upgrade for another path is refused with 404', async () => {
    await assertOtherPathRefused(example);
  });

  test('SIGTERM closes the open session with 1001 and exits 0', async () => {
    await assertStopsOnSigterm(example);
  });
});

describe('examples/standalone.mjs', () => {
  let example: RunningExample;
  before(async () => {
    example = await startExample('standalone.mjs');
  });

  test('bridges WebSocket clients to the target byte-exact and prints the session events', async () => {
    await assertEcho(`${example.wsUrl}/`);
    await example.waitForLine(
      'stdout',
      new RegExp(`^session 1 open: 127\\.0\\.0\\.1:\\d+ -> 127\\.0\\.0\\.1:${echo.port} \\(binary, /\\)$`),
    );
    await example.waitForLine('stdout', /^session 1 closed by client \(code 1000\): 100000 bytes in, 100000 bytes out, \d+ ms$/);
  });

  test('SIGTERM closes the open session with 1001 and exits 0', async () => {
    await assertStopsOnSigterm(example);
  });
});
