import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, afterEach, test } from 'node:test';
import type { WebSocket } from 'ws';
import { textLine } from '../../src/log/logger.js';
import { CLI } from '../helpers/proxy.js';
import { startEchoServer, type TestServer } from '../helpers/targets.js';
import { openClient } from '../helpers/ws-client.js';

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'wsfy-log-'));
after(() => fs.rmSync(scratch, { recursive: true, force: true }));

// Whatever a test starts is registered here and stopped after it, pass or fail.
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** The CLI with exactly the arguments given (no forced log format), its output captured. */
interface Cli {
  proc: ChildProcess;
  stdout(): string;
  stderr(): string;
  port: number;
  /** Sends SIGTERM and resolves with the exit code. */
  stop(): Promise<number | null>;
}

/** Starts the CLI and waits until its listening line (text or JSON) names the port. */
async function startCli(args: string[]): Promise<Cli> {
  const proc = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = once(proc, 'exit');
  let stdout = '';
  let stderr = '';
  proc.stdout!.setEncoding('utf8').on('data', (t: string) => (stdout += t));
  proc.stderr!.setEncoding('utf8').on('data', (t: string) => (stderr += t));
  const stop = async (): Promise<number | null> => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
    const [code] = (await exited) as [number | null];
    return code;
  };
  cleanups.push(async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await exited;
  });
  const port = await waitUntil(
    () => /listening on [^ ]*:(\d+)/.exec(stderr)?.[1],
    () => stderr,
  );
  return { proc, stdout: () => stdout, stderr: () => stderr, port: Number(port), stop };
}

/** Polls `probe` until it returns a value; fails after 10 s with `context()` in the message. */
async function waitUntil<T>(probe: () => T | undefined, context: () => string): Promise<T> {
  const deadline = Date.now() + 10000;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out; output so far:\n${context()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function echo(): Promise<TestServer> {
  const server = await startEchoServer();
  cleanups.push(() => server.close());
  return server;
}

/** One session: `messages` sent one at a time, each echo awaited, then a normal close. */
async function session(port: number, messages: string[]): Promise<void> {
  const ws: WebSocket = await openClient(`ws://127.0.0.1:${port}`, ['binary']);
  cleanups.push(() => ws.terminate());
  for (const text of messages) {
    const reply = once(ws, 'message');
    ws.send(Buffer.from(text));
    await reply;
  }
  ws.close(1000, 'done');
  await once(ws, 'close');
}

const lines = (text: string): string[] => text.split('\n').filter((line) => line !== '');

test('text (default): one human-readable line per event, with the open and close details', async () => {
  const target = await echo();
  const cli = await startCli(['127.0.0.1:0', `127.0.0.1:${target.port}`]);
  await session(cli.port, ['hello', 'world!']);
  await waitUntil(() => (/closed by/.test(cli.stderr()) ? true : undefined), cli.stderr);
  assert.equal(await cli.stop(), 0);
  const out = lines(cli.stderr());
  for (const line of out) {
    assert.match(line, /^\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\] (INFO|WARN|ERROR): \S/, `not a text log line: ${line}`);
    assert.ok(!line.includes('{"'), `JSON in a text line: ${line}`);
  }
  assert.equal(out.length, 5, out.join('\n')); // listening, open, close, stopping, stopped
  assert.match(
    out[0]!,
    new RegExp(
      `listening on 127\\.0\\.0\\.1:${cli.port}, proxying to 127\\.0\\.0\\.1:${target.port} \\(plain only, no TLS certificate at `,
    ),
  );
  assert.match(
    out[1]!,
    new RegExp(`conn 1: 127\\.0\\.0\\.1:\\d+ connected \\(/, protocol binary\\); proxying to 127\\.0\\.0\\.1:${target.port}`),
  );
  assert.match(out[2]!, /conn 1: closed by client, code 1000 \(done\); 11 bytes from client, 11 bytes from target, \d+\.\d{3} s/);
  assert.match(out[3]!, /stopping \(received SIGTERM\)/);
  assert.match(out[4]!, /INFO: stopped$/);
  assert.equal(cli.stdout(), '', 'log lines or traffic on stdout without --traffic');
});

test('--log-format json: one JSON object per line, with the open and close fields', async () => {
  const target = await echo();
  const cli = await startCli(['--log-format', 'json', '127.0.0.1:0', `127.0.0.1:${target.port}`]);
  await session(cli.port, ['abc']);
  await waitUntil(() => (/"event":"close"/.test(cli.stderr()) ? true : undefined), cli.stderr);
  assert.equal(await cli.stop(), 0);
  const events = lines(cli.stderr()).map((line) => JSON.parse(line) as Record<string, unknown>);
  assert.deepEqual(
    events.map((e) => e.event),
    ['listening', 'open', 'close', 'stopping', 'stopped'],
  );
  for (const event of events) {
    assert.match(String(event.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'time is ISO 8601 UTC');
    assert.equal(typeof event.level, 'number');
    assert.equal(typeof event.msg, 'string');
  }
  const [, open, close] = events;
  assert.match(String(open!.client), /^127\.0\.0\.1:\d+$/);
  assert.equal(open!.target, `127.0.0.1:${target.port}`);
  assert.equal(open!.protocol, 'binary');
  assert.equal(close!.bytesFromClient, 3);
  assert.equal(close!.bytesFromTarget, 3);
  assert.equal(typeof close!.durationMs, 'number');
  assert.equal(close!.code, 1000);
  assert.equal(close!.reason, 'done');
  assert.equal(close!.conn, open!.conn);
});

test('-v adds debug lines; without it there are none', async () => {
  const target = await echo();
  for (const verbose of [false, true]) {
    const cli = await startCli([...(verbose ? ['-v'] : []), '--log-format', 'json', '127.0.0.1:0', `127.0.0.1:${target.port}`]);
    await session(cli.port, ['x']);
    await waitUntil(() => (/"event":"close"/.test(cli.stderr()) ? true : undefined), cli.stderr);
    assert.equal(await cli.stop(), 0);
    const events = lines(cli.stderr()).map((line) => JSON.parse(line) as Record<string, unknown>);
    const debug = events.filter((e) => e.level === 20);
    if (verbose) {
      assert.ok(debug.length > 0, 'no debug line with -v');
      assert.match(String(debug.find((e) => e.event === 'accept')?.client), /^127\.0\.0\.1:\d+$/);
    } else {
      assert.deepEqual(debug, []);
    }
  }
});

for (const format of ['text', 'json'] as const) {
  test(`--log-file (${format}): the file gets the same lines as stderr`, async () => {
    const target = await echo();
    const file = path.join(scratch, `${format}.log`);
    const cli = await startCli(['--log-format', format, '--log-file', file, '127.0.0.1:0', `127.0.0.1:${target.port}`]);
    await session(cli.port, ['to the file']);
    await waitUntil(() => (/closed by|"event":"close"/.test(cli.stderr()) ? true : undefined), cli.stderr);
    assert.equal(await cli.stop(), 0);
    const written = lines(fs.readFileSync(file, 'utf8'));
    assert.equal(written.length, 5);
    assert.deepEqual(written, lines(cli.stderr()));
  });
}

test('--log-file appends to an existing file', async () => {
  const target = await echo();
  const file = path.join(scratch, 'append.log');
  fs.writeFileSync(file, 'an earlier line\n');
  const cli = await startCli(['--log-file', file, '127.0.0.1:0', `127.0.0.1:${target.port}`]);
  assert.equal(await cli.stop(), 0);
  const written = lines(fs.readFileSync(file, 'utf8'));
  assert.equal(written[0], 'an earlier line');
  assert.deepEqual(written.slice(1), lines(cli.stderr()));
});

test('--traffic prints a character per message on stdout: } from the client, { from the target', async () => {
  const target = await echo();
  const cli = await startCli(['--traffic', '127.0.0.1:0', `127.0.0.1:${target.port}`]);
  await session(cli.port, ['one', 'two', 'three']);
  await waitUntil(() => (/closed by/.test(cli.stderr()) ? true : undefined), cli.stderr);
  assert.equal(await cli.stop(), 0);
  // Each echo was awaited before the next message, so the two directions alternate.
  assert.equal(cli.stdout(), '}{}{}{');
  assert.ok(!/[{}]/.test(cli.stderr()), 'traffic characters on stderr');
});

test('textLine: each level by name, the message as is, an unknown level by number', () => {
  const time = '2026-11-28T07:00:00.000Z';
  const line = (level: number, msg?: string): string => textLine(JSON.stringify({ level, time, ...(msg === undefined ? {} : { msg }) }));
  assert.equal(line(30, 'conn 1: closed'), `[${time}] INFO: conn 1: closed\n`);
  assert.equal(line(20, 'd'), `[${time}] DEBUG: d\n`);
  assert.equal(line(40, 'w'), `[${time}] WARN: w\n`);
  assert.equal(line(50, 'e: "quoted" \u00e9'), `[${time}] ERROR: e: "quoted" \u00e9\n`);
  assert.equal(line(60, 'f'), `[${time}] FATAL: f\n`);
  assert.equal(line(35, 'x'), `[${time}] LEVEL35: x\n`);
  assert.equal(line(30), `[${time}] INFO: \n`);
});
