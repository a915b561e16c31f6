import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, afterEach, test } from 'node:test';
import type { WebSocket } from 'ws';
import { createLogger, type LogOptions } from '../../src/log/logger.js';
import { CLI } from '../helpers/proxy.js';
import { startEchoServer, type TestServer } from '../helpers/targets.js';
import { openClient } from '../helpers/ws-client.js';
import { udpReceiver } from './udp-receiver.js';

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

/** The time field of a text line, checked to be ISO 8601 UTC and now-ish. */
function assertTextTime(line: string, before: number): void {
  const time = /^\[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)\] /.exec(line)?.[1];
  assert.ok(time, `no [ISO time] at the start of ${JSON.stringify(line)}`);
  const ms = Date.parse(time);
  assert.ok(ms >= before - 1 && ms <= Date.now(), `time ${time} is not now`);
}

test('text lines: [ISO time] LEVEL: message, for each level; fields not shown; pino call forms', () => {
  const file = path.join(scratch, 'levels.log');
  const before = Date.now();
  const logger = createLogger({ format: 'text', verbose: true, legacySyslog: false, detached: true, file });
  logger.trace('not at -v');
  logger.debug({ event: 'x', conn: 1 }, 'd');
  logger.info({ event: 'open', conn: 1 }, 'conn 1: closed');
  logger.warn('w');
  logger.error('e: "quoted" \u00e9');
  logger.fatal('f');
  logger.error(new Error('an error object'));
  logger.info({ event: 'printf' }, '%s and %d', 'a', 5);
  logger.info({ event: 'no message' });
  const written = lines(fs.readFileSync(file, 'utf8'));
  for (const line of written) assertTextTime(line, before);
  assert.deepEqual(
    written.map((line) => line.replace(/^\[[^\]]*\] /, '')),
    [
      'DEBUG: d',
      'INFO: conn 1: closed',
      'WARN: w',
      'ERROR: e: "quoted" \u00e9',
      'FATAL: f',
      'ERROR: an error object',
      'INFO: a and 5',
      'INFO: ',
    ],
  );
});

test('JSON lines: the fields, the ISO time, no debug without -v', () => {
  const file = path.join(scratch, 'fields.json.log');
  const logger = createLogger({ format: 'json', verbose: false, legacySyslog: false, detached: true, file });
  logger.debug({ event: 'hidden' }, 'not without -v');
  logger.info({ event: 'open', conn: 7 }, 'conn 7: open');
  assert.equal(logger.isLevelEnabled('debug'), false);
  const written = lines(fs.readFileSync(file, 'utf8')).map((line) => JSON.parse(line) as Record<string, unknown>);
  assert.equal(written.length, 1);
  const { time, ...rest } = written[0]!;
  assert.match(String(time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.deepEqual(rest, { level: 30, event: 'open', conn: 7, msg: 'conn 7: open' });
});

/** Runs createLogger(options) in a child process, logs one info line, and returns what it wrote on stderr. */
async function logInChild(options: LogOptions): Promise<string> {
  const moduleUrl = new URL('../../src/log/logger.js', import.meta.url).href;
  const script = `
    const { createLogger } = await import(${JSON.stringify(moduleUrl)});
    createLogger(${JSON.stringify(options)}).info({ event: 'x', conn: 1 }, 'to syslog');
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (t: string) => (stderr += t));
  const [code] = (await once(child, 'close')) as [number | null];
  assert.equal(code, 0, stderr);
  return stderr;
}

test('stderr and syslog (user facility) in the foreground; detached: no stderr, daemon facility', async () => {
  const server = await udpReceiver();
  cleanups.push(() => server.close());
  const syslog = `127.0.0.1:${server.port}`;

  const foreground = await logInChild({ format: 'json', verbose: false, syslog, legacySyslog: false });
  assert.equal((JSON.parse(foreground) as { msg: string }).msg, 'to syslog');
  await waitUntil(
    () => server.texts()[0],
    () => 'no syslog message',
  );
  // <user * 8 + info>, and the message, not the JSON line, in RFC 5424.
  assert.match(server.texts()[0]!, /^<14>1 \S+ \S+ websockify \d+ - - to syslog$/);

  const detached = await logInChild({ format: 'text', verbose: false, syslog, legacySyslog: true, detached: true });
  assert.equal(detached, '', 'detached: nothing on stderr');
  await waitUntil(
    () => server.texts()[1],
    () => 'no syslog message',
  );
  // <daemon * 8 + info>, RFC 3164 as asked.
  assert.match(server.texts()[1]!, /^<30>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \S+ websockify\[\d+\]: to syslog$/);
});
