// --record-max-bytes and the recording's own facts (who, what, how it ended), through the real CLI with
// a real echo target: the cap stops the recording, never the session.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import vm from 'node:vm';
import { UsageError } from '../../src/errors.js';
import { resolveOptions } from '../../src/options.js';
import { parseRecordingWithInfo } from '../../src/record/reader.js';
import { createRecorder } from '../../src/record/recorder.js';
import { cliFixture } from '../helpers/cli-fixture.js';
import { captureLog } from '../helpers/log-capture.js';
import { runCli, startProxy } from '../helpers/proxy.js';
import { openClient } from '../helpers/ws-client.js';

const REPLAY = fileURLToPath(new URL('../../src/cli/replay.js', import.meta.url));
const CAP = 4096;
const MESSAGE = 1000;
const COUNT = 20;

const cli = cliFixture('record-max-bytes');

/** The bytes of the file's message lines: everything from the line after `[` up to the 'EOF' line. */
function messageLineBytes(text: string): number {
  const lines = text.split('\n');
  const first = lines.indexOf('var VNC_frame_data = [') + 1;
  const eof = lines.indexOf("'EOF'];");
  return lines
    .slice(first, eof)
    .filter((line) => line.startsWith("'"))
    .reduce((sum, line) => sum + line.length + 1, 0);
}

test('the cap: the lines within it are kept, the first that would pass it stops the recording, and no later one is taken even if it would fit', async () => {
  let clock = 0;
  const session = { id: 4, client: 'c', peer: 'p', target: 't', path: '/', protocol: 'binary', start: '2026-01-01T00:00:00.000Z' };
  // '{0{aaaa',\n is 11 bytes and '}5}bb',\n 9: 20 fit in 27; '{7{c',\n (8) would not; '{9{',\n (7) would, too late.
  const recorder = createRecorder({
    basePath: join(cli.scratch, 'exact'),
    sessionNumber: 1,
    logger: captureLog().logger,
    now: () => clock,
    maxBytes: 27,
    session,
  });
  recorder.fromTarget(Buffer.from('aaaa'));
  clock = 5;
  recorder.fromClient(Buffer.from('bb'));
  clock = 7;
  recorder.fromTarget(Buffer.from('c'));
  assert.equal(recorder.capped, true);
  clock = 9;
  recorder.fromTarget(Buffer.from(''));
  recorder.closed({ bytesFromClient: 2, bytesFromTarget: 5, durationMs: 9, code: 1000, reason: '', initiator: 'target' });
  await recorder.finished;
  const text = await readFile(recorder.path, 'latin1');
  const head = `var VNC_frame_encoding = 'binary';\nvar VNC_frame_session = '${JSON.stringify(session)}';\nvar VNC_frame_data = [\n`;
  assert.ok(text.startsWith(head), text);
  const rest = text.slice(head.length);
  assert.match(
    rest,
    /^'\{0\{aaaa',\n'\}5\}bb',\n\/\/ recording stopped at 7 ms: --record-max-bytes 27 reached; the session went on unrecorded\n'EOF'\];\nvar VNC_frame_end = '.*';\n$/,
  );
  const { end, messages } = parseRecordingWithInfo(text);
  assert.equal(messages.length, 2);
  assert.deepEqual(end?.stopped, { reason: 'max-bytes', maxBytes: 27, ms: 7 });
  assert.equal(end?.initiator, 'target');
});

test('--record-max-bytes: the recording stops at the cap with a note, the file stays complete, the session goes on', async () => {
  const base = join(cli.scratch, 'capped');
  const proxy = await startProxy([
    '--run-once',
    '--record',
    base,
    '--record-max-bytes',
    String(CAP),
    '--trusted-proxy',
    '127.0.0.1/32',
    '127.0.0.1:0',
    `127.0.0.1:${cli.echoTarget.port}`,
  ]);
  try {
    const ws = await openClient(`${proxy.url}/websockify?token=desk-7`, ['binary'], { headers: { 'X-Forwarded-For': '198.51.100.23' } });
    // Every message comes back: the session is not cut when its recording stops.
    for (let i = 0; i < COUNT; i++) {
      const reply = once(ws, 'message');
      ws.send(Buffer.alloc(MESSAGE, 0x41 + i));
      const [data] = (await reply) as [Buffer];
      assert.equal(data.length, MESSAGE);
      assert.equal(data[0], 0x41 + i);
    }
    ws.close(1000);
    assert.equal((await proxy.exited).code, 0);

    const text = await readFile(`${base}.1`, 'latin1');
    const recording = parseRecordingWithInfo(text);
    assert.ok(recording.messages.length > 0 && recording.messages.length < 2 * COUNT, `${recording.messages.length} messages`);
    assert.ok(messageLineBytes(text) <= CAP, `${messageLineBytes(text)} bytes of message lines`);
    // The next message would not have fitted: the cap was reached, not merely approached.
    assert.ok(messageLineBytes(text) + MESSAGE > CAP);
    assert.match(text, /\n\/\/ recording stopped at \d+ ms: --record-max-bytes 4096 reached; the session went on unrecorded\n'EOF'\];\n/);

    assert.deepEqual(
      { ...recording.session, start: undefined },
      {
        id: 1,
        client: recording.session!.client,
        peer: recording.session!.peer,
        target: `127.0.0.1:${cli.echoTarget.port}`,
        token: 'desk-7',
        path: '/websockify?token=desk-7',
        protocol: 'binary',
        start: undefined,
      },
    );
    assert.equal(recording.session!.client, '198.51.100.23', 'the client the trusted proxy named');
    assert.match(recording.session!.peer, /^127\.0\.0\.1:\d+$/);
    assert.ok(Math.abs(Date.parse(recording.session!.start) - Date.now()) < 60_000, recording.session!.start);
    const end = recording.end!;
    assert.equal(end.initiator, 'client');
    assert.equal(end.code, 1000);
    assert.equal(end.bytesFromClient, COUNT * MESSAGE, 'the session itself carried every byte');
    assert.equal(end.bytesFromTarget, COUNT * MESSAGE);
    assert.equal(end.stopped?.reason, 'max-bytes');
    assert.equal(end.stopped?.maxBytes, CAP);
    assert.ok(Date.parse(end.end) >= Date.parse(recording.session!.start));

    // noVNC's player runs the file as a script: the extra variables and the comment are plain JavaScript.
    const context = vm.createContext({});
    vm.runInContext(text, context);
    assert.equal((context.VNC_frame_data as string[]).at(-1), 'EOF');
    assert.equal(context.VNC_frame_encoding, 'binary');
    assert.equal(JSON.parse(context.VNC_frame_session as string).token, 'desk-7');
    assert.equal(JSON.parse(context.VNC_frame_end as string).stopped.maxBytes, CAP);

    const capped = proxy.events().filter((e) => e.event === 'record-capped');
    assert.equal(capped.length, 1, 'one warning');
    assert.equal(capped[0]!.limit, CAP);

    // websockify-replay reads the file and names the session and the cap.
    const replay = await promisify(execFile)(process.execPath, [REPLAY, `${base}.1`]);
    assert.match(
      replay.stdout,
      /^session 1: 198\.51\.100\.23 via 127\.0\.0\.1:\d+ to 127\.0\.0\.1:\d+ \(\/websockify\?token=desk-7, token desk-7\), started /,
    );
    assert.match(replay.stdout, /ended .*: closed by client, code 1000; 20000 bytes from the client, 20000 from the target\n/);
    assert.match(replay.stdout, /the recording stopped at \d+ ms: its limit of 4096 bytes \(--record-max-bytes\) was reached\n$/);
  } finally {
    if (proxy.proc.exitCode === null) await proxy.stop();
  }
});

test('without a cap every message is recorded, with the session line and the end line', async () => {
  const base = join(cli.scratch, 'whole');
  const proxy = await startProxy(['--run-once', '--record', base, '127.0.0.1:0', `127.0.0.1:${cli.echoTarget.port}`]);
  try {
    const ws = await openClient(`${proxy.url}`, ['binary']);
    for (let i = 0; i < COUNT; i++) {
      const reply = once(ws, 'message');
      ws.send(Buffer.alloc(MESSAGE, i));
      await reply;
    }
    ws.close(1000);
    await proxy.exited;
    const recording = parseRecordingWithInfo(await readFile(`${base}.1`, 'latin1'));
    const fromClient = recording.messages.filter((m) => m.direction === 'fromClient');
    assert.equal(Buffer.concat(fromClient.map((m) => m.data)).length, COUNT * MESSAGE);
    assert.equal(recording.session?.token, undefined);
    assert.equal(recording.session?.client, recording.session?.peer);
    assert.equal(recording.end?.stopped, undefined);
    assert.equal(recording.end?.bytesFromClient, COUNT * MESSAGE);
  } finally {
    if (proxy.proc.exitCode === null) await proxy.stop();
  }
});

test('--record-max-bytes with --workers 2: the worker that serves the session caps its recording', async () => {
  const sub = join(cli.scratch, 'workers');
  await mkdir(sub);
  const proxy = await startProxy([
    '--workers',
    '2',
    '--record',
    join(sub, 'w'),
    '--record-max-bytes',
    String(CAP),
    '127.0.0.1:0',
    `127.0.0.1:${cli.echoTarget.port}`,
  ]);
  try {
    const ws = await openClient(proxy.url, ['binary']);
    for (let i = 0; i < COUNT; i++) {
      const reply = once(ws, 'message');
      ws.send(Buffer.alloc(MESSAGE, i));
      await reply;
    }
    ws.close(1000);
    await proxy.waitForEvent((e) => e.event === 'close');
    // The worker completes the file just after the session's close line.
    let text = '';
    for (let tries = 0; !text.includes('var VNC_frame_end') && tries < 100; tries++) {
      const files = await readdir(sub);
      text = files.length === 1 ? await readFile(join(sub, files[0]!), 'latin1') : '';
      if (!text.includes('var VNC_frame_end')) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const recording = parseRecordingWithInfo(text);
    assert.ok(messageLineBytes(text) <= CAP);
    assert.equal(recording.end?.stopped?.maxBytes, CAP);
    assert.equal(recording.end?.bytesFromClient, COUNT * MESSAGE);
  } finally {
    await proxy.stop();
  }
});

test('--record-max-bytes: a usage error (exit 2) without --record or with a count that is not positive; the library throws', async () => {
  for (const [args, message] of [
    [['--record-max-bytes', '100', '127.0.0.1:0', '127.0.0.1:1'], /--record-max-bytes needs --record/],
    [['--record', join(cli.scratch, 'x'), '--record-max-bytes', '0', '127.0.0.1:0', '127.0.0.1:1'], /positive number of bytes/],
    [['--record', join(cli.scratch, 'x'), '--record-max-bytes', '1k', '127.0.0.1:0', '127.0.0.1:1'], /positive number of bytes/],
  ] as const) {
    const result = await runCli([...args]);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, message);
  }
  assert.throws(() => resolveOptions({ listen: '127.0.0.1:0', target: '127.0.0.1:1', recordMaxBytes: 10 }), UsageError);
  assert.throws(
    () => resolveOptions({ listen: '127.0.0.1:0', target: '127.0.0.1:1', record: join(cli.scratch, 'y'), recordMaxBytes: 1.5 }),
    /--record-max-bytes: expected a positive number of bytes, got 1.5/,
  );
});
