import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { treeListensOn } from '../../bench/proc.js';
import { parseRecording, type RecordedMessage, RecordingFormatError, readRecording } from '../../src/record/reader.js';
import { createRecorder } from '../../src/record/recorder.js';
import { cliFixture } from '../helpers/cli-fixture.js';
import { unusedPort } from '../helpers/targets.js';
import { waitUntil } from '../helpers/wait.js';
import { openClient } from '../helpers/ws-client.js';

const REPLAY = fileURLToPath(new URL('../../src/cli/replay.js', import.meta.url));
const CLOSED = { bytesFromClient: 0, bytesFromTarget: 0, durationMs: 0, code: 1000, reason: '', initiator: 'client' } as const;

const cli = cliFixture('replay');

/** Writes `messages` with our recorder, `ms` taken from each message, and resolves with the file's path. */
async function record(name: string, messages: RecordedMessage[]): Promise<string> {
  let clock = 0;
  const recorder = createRecorder({
    basePath: join(cli.scratch, name),
    sessionNumber: 1,
    logger: pino({ level: 'silent' }),
    now: () => clock,
  });
  for (const message of messages) {
    clock = message.ms;
    if (message.direction === 'toClient') recorder.fromTarget(message.data);
    else recorder.fromClient(message.data);
  }
  recorder.closed(CLOSED);
  await recorder.finished;
  return recorder.path;
}

/** Runs the replay command to its exit. */
async function replay(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const proc = spawn(process.execPath, [REPLAY, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  proc.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const [code] = (await once(proc, 'close')) as [number | null];
  return { code, stdout, stderr };
}

function assertFormatError(text: string, pattern: RegExp): void {
  assert.throws(
    () => parseRecording(text),
    (err: unknown) => err instanceof RecordingFormatError && pattern.test(err.message),
    `expected a format error matching ${pattern} for ${JSON.stringify(text.slice(0, 60))}`,
  );
}

test('the reader follows JavaScript string syntax and rejects what is not a complete recording', () => {
  const head = 'var VNC_frame_data = [\n';
  // Escapes a hand-edited or other writer's file may use, comments, and no encoding line.
  assert.deepEqual(
    parseRecording(`// made by hand\n${head}'{1{a\\x41\\u0042\\0\\'\\"\\\\\\b\\f\\v\\q\\\ncontinued', /* note */\n'}2}\\xff',\n'EOF'];`),
    [
      { direction: 'toClient', ms: 1, data: Buffer.from('aAB\0\'"\\\b\f\vqcontinued', 'latin1') },
      { direction: 'fromClient', ms: 2, data: Buffer.from([0xff]) },
    ],
  );
  // Older recordings: base64 data, declared or (as the player guesses) starting with "UkZC".
  const rfb = Buffer.from('RFB 003.008\n').toString('base64');
  assert.equal(parseRecording(`var VNC_frame_encoding = 'base64';\n${head}'{0{${rfb}',\n'EOF'];\n`)[0]!.data.toString(), 'RFB 003.008\n');
  assert.equal(parseRecording(`${head}'{0{${rfb}',\n'EOF'];\n`)[0]!.data.toString(), 'RFB 003.008\n');

  assertFormatError('', /empty/);
  assertFormatError(`${head}'{0{abc',\n'{5{de`, /line 3: .*ends inside a string.*incomplete/);
  assertFormatError(`${head}'{0{abc',\n`, /line 3: .*without the 'EOF' entry.*incomplete/);
  assertFormatError(`${head}'{0{a\nb',\n'EOF'];`, /line 2: a line break inside a string/);
  assertFormatError(`${head}'{0{\\u0100',\n'EOF'];`, /U\+0100 is not a byte/);
  assertFormatError(`${head}'{0{\u00e9',\n'EOF'];`, /non-ASCII/);
  assertFormatError(`${head}'{x{a',\n'EOF'];`, /milliseconds/);
  assertFormatError(`${head}'{12}a',\n'EOF'];`, /milliseconds/);
  assertFormatError(`${head}'x0xa',\n'EOF'];`, /must start with '\{'/);
  assertFormatError(`${head}'{0{a'\n'EOF'];`, /line 3: expected ','/);
  assertFormatError(`${head}'EOF'];\nalert(1);`, /unexpected text after/);
  assertFormatError(`var VNC_frame_encoding = 'utf-16';\n${head}'EOF'];`, /unknown VNC_frame_encoding/);
  assertFormatError(`var other = [\n'EOF'];`, /unexpected variable other/);
  assertFormatError(`var VNC_frame_encoding = 'base64';\n${head}'{0{not base64!',\n'EOF'];`, /line 3: data is not valid base64/);
});

/** Starts Python websockify (the reference) recording one session, with `--run-once` so that it exits after it. */
async function startPythonWebsockify(recordBase: string): Promise<{ proc: ChildProcess; port: number; output(): string }> {
  const port = await unusedPort();
  const proc = spawn('websockify', ['--run-once', '--record', recordBase, `127.0.0.1:${port}`, `127.0.0.1:${cli.echoTarget.port}`], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  proc.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  proc.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  // Its settings are printed before it binds: ready is its own listening socket.
  await waitUntil('websockify to listen or exit', () => proc.exitCode !== null || treeListensOn(proc.pid!, port));
  if (proc.exitCode !== null) throw new Error(`websockify did not start: ${output}`);
  return { proc, port, output: () => output };
}

test("Python websockify's recordings read back exactly, and our lines for the same messages are identical to its lines", async () => {
  const base = join(cli.scratch, 'python');
  const python = await startPythonWebsockify(base);
  try {
    const ws = await openClient(`ws://127.0.0.1:${python.port}`, ['binary']);
    const messages = [
      Buffer.from(Array.from({ length: 256 }, (_, i) => i)),
      Buffer.from("'\\\n\r\t\"\\'", 'latin1'),
      randomBytes(300 * 1024),
      randomBytes(1000),
    ];
    let received = 0;
    let wake: (() => void) | undefined;
    ws.on('message', (data: Buffer) => {
      received += data.length;
      wake?.();
    });
    let expected = 0;
    for (const message of messages) {
      ws.send(message);
      expected += message.length;
      while (received < expected) await new Promise<void>((resolve) => (wake = resolve));
    }
    ws.close(1000);
    const exited = once(python.proc, 'exit');
    const timeout = setTimeout(() => python.proc.kill(), 10_000);
    await exited;
    clearTimeout(timeout);

    const [name] = (await readdir(cli.scratch)).filter((file) => file.startsWith('python.'));
    assert.ok(name, `websockify wrote a recording: ${python.output()}`);
    const pythonPath = join(cli.scratch, name);
    const recorded = await readRecording(pythonPath);
    const bytes = (direction: RecordedMessage['direction']): Buffer =>
      Buffer.concat(recorded.filter((message) => message.direction === direction).map((message) => message.data));
    assert.ok(bytes('fromClient').equals(Buffer.concat(messages)));
    assert.ok(bytes('toClient').equals(Buffer.concat(messages)));

    // The same messages through our recorder: every message line is byte for byte Python's.
    const pythonText = await readFile(pythonPath, 'latin1');
    const oursText = await readFile(await record('same', recorded), 'latin1');
    assert.ok(pythonText.startsWith('var VNC_frame_data = [\n'));
    assert.ok(oursText.startsWith("var VNC_frame_encoding = 'binary';\nvar VNC_frame_data = [\n"));
    assert.equal(oursText.split('\n').slice(2).join('\n'), pythonText.split('\n').slice(1).join('\n'));
  } finally {
    if (python.proc.exitCode === null && python.proc.signalCode === null) {
      python.proc.kill();
      await once(python.proc, 'exit');
    }
  }
});

test('websockify-replay lists each message, dumps bytes with --hex, and exits 2 on a malformed file', async () => {
  const path = await record('cli', [
    { direction: 'toClient', ms: 0, data: Buffer.from('RFB 003.008\n') },
    { direction: 'fromClient', ms: 7, data: Buffer.from('RFB 003.008\n') },
    { direction: 'toClient', ms: 1234, data: Buffer.from(Array.from({ length: 20 }, (_, i) => i * 13)) },
  ]);

  const listed = await replay([path]);
  assert.equal(listed.code, 0, listed.stderr);
  assert.equal(
    listed.stdout,
    '   0 ms  to client    12 bytes\n' +
      '   7 ms  from client  12 bytes\n' +
      '1234 ms  to client    20 bytes\n' +
      '3 messages over 1234 ms: 32 bytes to the client, 12 bytes from the client\n',
  );

  const dumped = await replay(['--hex', path]);
  assert.equal(dumped.code, 0, dumped.stderr);
  assert.equal(
    dumped.stdout,
    '   0 ms  to client    12 bytes\n' +
      '    00000000  52 46 42 20 30 30 33 2e  30 30 38 0a              |RFB 003.008.|\n' +
      '   7 ms  from client  12 bytes\n' +
      '    00000000  52 46 42 20 30 30 33 2e  30 30 38 0a              |RFB 003.008.|\n' +
      '1234 ms  to client    20 bytes\n' +
      "    00000000  00 0d 1a 27 34 41 4e 5b  68 75 82 8f 9c a9 b6 c3  |...'4AN[hu......|\n" +
      '    00000010  d0 dd ea f7                                       |....|\n' +
      '3 messages over 1234 ms: 32 bytes to the client, 12 bytes from the client\n',
  );

  const broken = join(cli.scratch, 'broken.1');
  await writeFile(broken, "var VNC_frame_data = [\n'{0{abc',\n");
  const malformed = await replay([broken]);
  assert.equal(malformed.code, 2);
  assert.equal(malformed.stdout, '');
  assert.match(malformed.stderr, /^websockify-replay: .*broken\.1 is not a valid session recording: line 3: .*incomplete/);

  const missing = await replay([join(cli.scratch, 'nothing-here')]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /cannot read .*nothing-here.*ENOENT/);

  const usage = await replay([]);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /usage: websockify-replay \[--hex\] FILE/);
  const unknown = await replay(['--bogus', path]);
  assert.equal(unknown.code, 2);
});
