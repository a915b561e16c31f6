import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { closeSync, constants, existsSync, openSync } from 'node:fs';
import { readFile, symlink, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import vm from 'node:vm';
import type { BridgeHook, BridgeSummary } from '../../src/bridge/bridge.js';
import { readRecording } from '../../src/record/reader.js';
import { createRecorder, type Recorder } from '../../src/record/recorder.js';
import { cliFixture } from '../helpers/cli-fixture.js';
import { captureLog } from '../helpers/log-capture.js';

const cli = cliFixture('record');

type Call = { direction: 'toClient' | 'fromClient'; data: Buffer };

/** Notes every hook call, as the recorder saw it. */
function observer(): BridgeHook & { calls: Call[] } {
  const calls: Call[] = [];
  return {
    calls,
    fromClient: (data) => calls.push({ direction: 'fromClient', data }),
    fromTarget: (data) => calls.push({ direction: 'toClient', data }),
  };
}

/**
 * A byte pump between one loopback client and the echo target, calling the hooks as the bridge does
 * (fromClient before writing to the target, fromTarget before writing to the client, closed once both
 * sides are gone): the recorder sees real socket reads, with their real chunking.
 */
async function startRelay(hooks: BridgeHook[]): Promise<{ port: number; closed: Promise<void>; stop(): Promise<void> }> {
  let finish!: () => void;
  const closed = new Promise<void>((resolve) => (finish = resolve));
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    const target = net.connect({ host: '127.0.0.1', port: cli.echoTarget.port, allowHalfOpen: true });
    for (const socket of [client, target]) {
      sockets.add(socket);
      socket.on('error', () => undefined);
    }
    let open = 2;
    const onClose = (): void => {
      if (--open > 0) return;
      const summary: BridgeSummary = { bytesFromClient: 0, bytesFromTarget: 0, durationMs: 0, code: 1000, reason: '', initiator: 'client' };
      for (const hook of hooks) hook.closed?.(summary);
      finish();
    };
    client.on('data', (data: Buffer) => {
      for (const hook of hooks) hook.fromClient?.(data);
      target.write(data);
    });
    target.on('data', (data: Buffer) => {
      for (const hook of hooks) hook.fromTarget?.(data);
      client.write(data);
    });
    client.on('end', () => target.end());
    target.on('end', () => client.end());
    client.on('close', onClose);
    target.on('close', onClose);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    closed,
    stop: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Sends each message, waits for its echo, then half-closes and reads to the end: what the client got back. */
async function echoSession(port: number, messages: Buffer[]): Promise<Buffer> {
  const client = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  await once(client, 'connect');
  const received: Buffer[] = [];
  let total = 0;
  let waiter: (() => void) | undefined;
  client.on('data', (chunk: Buffer) => {
    received.push(chunk);
    total += chunk.length;
    waiter?.();
  });
  const ended = once(client, 'end');
  let expected = 0;
  for (const message of messages) {
    expected += message.length;
    client.write(message);
    while (total < expected) await new Promise<void>((resolve) => (waiter = resolve));
  }
  client.end();
  await ended;
  client.destroy();
  return Buffer.concat(received);
}

/** Messages that exercise the escaping: every byte value, quotes, backslashes, line breaks, large random blocks. */
function trickyMessages(): Buffer[] {
  return [
    Buffer.from('RFB 003.008\n'),
    Buffer.from(Array.from({ length: 256 }, (_, i) => i)),
    Buffer.from("'\"\\\n\r\t\\'\\\\''\n\n\u2028</script>", 'latin1'),
    Buffer.from([0x5c]),
    Buffer.from([0x27]),
    Buffer.from([0x00, 0x30, 0x31]), // a NUL before digits must not become an octal escape
    randomBytes(1024 * 1024 + 17),
    ...Array.from({ length: 50 }, () => randomBytes(1 + Math.floor(Math.random() * 300))),
    randomBytes(3 * 1024 * 1024),
  ];
}

/** What the player's page sees once the recording's script has run. */
interface PlayerGlobals {
  VNC_frame_data: string[];
  VNC_frame_encoding?: string;
}

/** Runs the recording in a fresh JS context, as the player's script tag does, and returns its globals. */
function loadAsScript(text: string): PlayerGlobals {
  const context = vm.createContext({});
  vm.runInContext(text, context);
  return context as PlayerGlobals;
}

/** Decodes VNC_frame_data as noVNC's playback page does (tests/playback-ui.js). */
function decodeLikeNoVnc(context: PlayerGlobals): Array<{ fromClient: boolean; timestamp: number; data: Buffer }> {
  const frames = context.VNC_frame_data;
  let encoding = context.VNC_frame_encoding;
  if (!encoding) {
    const start = frames[0]!.indexOf('{', 1) + 1;
    encoding = frames[0]!.slice(start, start + 4) === 'UkZC' ? 'base64' : 'binary';
  }
  const decoded = [];
  for (const frame of frames) {
    if (frame === 'EOF') break;
    const fromClient = frame[0] === '}';
    // The player looks for '{' even in client frames, which it then skips; those are split at their own marker here.
    const dataIdx = frame.indexOf(fromClient ? '}' : '{', 1) + 1;
    const timestamp = parseInt(frame.slice(1, dataIdx - 1), 10);
    let data: Buffer;
    if (encoding === 'base64') {
      data = Buffer.from(frame.slice(dataIdx), 'base64');
    } else {
      data = Buffer.alloc(frame.length - dataIdx);
      for (let j = 0; j < data.length; j++) data[j] = frame.charCodeAt(dataIdx + j);
    }
    decoded.push({ fromClient, timestamp, data });
  }
  return decoded;
}

async function waitFinished(recorder: Recorder): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    recorder.finished,
    new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('the recording file was never closed')), 10_000))),
  ]);
  clearTimeout(timer);
}

test('records a real session losslessly: the reader and a JS engine both give back every byte, in order', async () => {
  const { logger, events: lines } = captureLog();
  const seen = observer();
  // A bound no burst reaches: this test is about the bytes, whatever the disk's speed.
  const recorder = createRecorder({ basePath: join(cli.scratch, 'session'), sessionNumber: 3, logger, maxBufferedBytes: 1024 ** 3 });
  assert.equal(recorder.path, join(cli.scratch, 'session.3'));
  const relay = await startRelay([seen, recorder]);
  try {
    const messages = trickyMessages();
    const echoed = await echoSession(relay.port, messages);
    await relay.closed;
    await waitFinished(recorder);
    assert.deepEqual(
      lines.filter((line) => line.level === 40),
      [],
      'no warning',
    );
    assert.equal(recorder.dropped, false);

    const sent = Buffer.concat(messages);
    assert.ok(echoed.equals(sent), 'the session itself carried every byte');
    const bytesOf = (calls: Call[], direction: Call['direction']): Buffer =>
      Buffer.concat(calls.filter((call) => call.direction === direction).map((call) => call.data));
    assert.ok(bytesOf(seen.calls, 'fromClient').equals(sent));
    assert.ok(bytesOf(seen.calls, 'toClient').equals(sent));

    // The reader: the same messages, in the same order, as the hook was given.
    const recorded = await readRecording(recorder.path);
    assert.equal(recorded.length, seen.calls.length);
    recorded.forEach((message, i) => {
      assert.equal(message.direction, seen.calls[i]!.direction, `direction of message ${i}`);
      assert.ok(message.data.equals(seen.calls[i]!.data), `bytes of message ${i}`);
      assert.ok(Number.isInteger(message.ms) && message.ms >= 0);
      if (i > 0) assert.ok(message.ms >= recorded[i - 1]!.ms, `timestamps never go back (message ${i})`);
    });

    // A JS engine loads the file as the player's script tag would, and the player's decoding gives the bytes.
    const text = await readFile(recorder.path, 'utf8');
    assert.ok(/^[\x20-\x7e\n]*$/.test(text), 'the file is printable ASCII');
    assert.ok(text.startsWith("var VNC_frame_encoding = 'binary';\nvar VNC_frame_data = [\n"));
    assert.ok(text.endsWith("'EOF'];\n"));
    const context = loadAsScript(text);
    assert.equal(context.VNC_frame_data.length, seen.calls.length + 1);
    assert.equal(context.VNC_frame_data.at(-1), 'EOF');
    const frames = decodeLikeNoVnc(context);
    frames.forEach((frame, i) => {
      assert.equal(frame.fromClient, seen.calls[i]!.direction === 'fromClient');
      assert.equal(frame.timestamp, recorded[i]!.ms);
      assert.ok(frame.data.equals(seen.calls[i]!.data), `player bytes of frame ${i}`);
    });

    assert.equal(recorder.bufferedBytes, 0);
    assert.ok(lines.some((line) => line.event === 'record-open' && line.file === recorder.path));
  } finally {
    await relay.stop();
  }
});

test('timestamps are whole milliseconds since the recorder was created, from the given clock', async () => {
  let clock = 5000.9;
  const recorder = createRecorder({
    basePath: join(cli.scratch, 'clock'),
    sessionNumber: 1,
    logger: captureLog().logger,
    now: () => clock,
  });
  clock = 5000.95;
  recorder.fromTarget(Buffer.from('a'));
  clock = 5012.2;
  recorder.fromClient(Buffer.from('b'));
  clock = 7001;
  recorder.fromTarget(Buffer.from('c'));
  recorder.closed({ bytesFromClient: 1, bytesFromTarget: 2, durationMs: 2000, code: 1000, reason: '', initiator: 'client' });
  await waitFinished(recorder);
  assert.equal(
    await readFile(recorder.path, 'latin1'),
    "var VNC_frame_encoding = 'binary';\nvar VNC_frame_data = [\n'{0{a',\n'}11}b',\n'{2000{c',\n'EOF'];\n",
  );
});

test('an empty session still makes a complete file the player loads', async () => {
  const recorder = createRecorder({ basePath: join(cli.scratch, 'empty'), sessionNumber: 1, logger: captureLog().logger });
  recorder.closed({ bytesFromClient: 0, bytesFromTarget: 0, durationMs: 0, code: 1005, reason: '', initiator: 'client' });
  await waitFinished(recorder);
  assert.deepEqual(await readRecording(recorder.path), []);
  const context = loadAsScript(await readFile(recorder.path, 'utf8'));
  assert.deepEqual(decodeLikeNoVnc(context), []);
});

test('binary data that starts like base64 RFB ("UkZC") is still played as binary, thanks to the encoding line', async () => {
  const recorder = createRecorder({ basePath: join(cli.scratch, 'ukzc'), sessionNumber: 1, logger: captureLog().logger });
  const data = Buffer.from('UkZC\x00\xff!', 'latin1');
  recorder.fromTarget(data);
  recorder.closed({ bytesFromClient: 0, bytesFromTarget: data.length, durationMs: 0, code: 1000, reason: '', initiator: 'target' });
  await waitFinished(recorder);
  const context = loadAsScript(await readFile(recorder.path, 'utf8'));
  assert.ok(decodeLikeNoVnc(context)[0]!.data.equals(data));
  assert.ok((await readRecording(recorder.path))[0]!.data.equals(data));
});

test('a single message larger than the bound is recorded when little is waiting: only a backlog drops the recording', async () => {
  const { logger, events: lines } = captureLog();
  const recorder = createRecorder({ basePath: join(cli.scratch, 'big'), sessionNumber: 1, logger, maxBufferedBytes: 256 * 1024 });
  const big = randomBytes(1024 * 1024);
  recorder.fromTarget(big);
  assert.equal(recorder.dropped, false);
  assert.ok(recorder.bufferedBytes > 256 * 1024, 'the message is waiting whole');
  // Now a backlog past the bound is waiting: the next message ends the recording.
  recorder.fromClient(Buffer.from('x'));
  assert.equal(recorder.dropped, true);
  recorder.closed({ bytesFromClient: 1, bytesFromTarget: big.length, durationMs: 0, code: 1000, reason: '', initiator: 'client' });
  await waitFinished(recorder);
  assert.equal(lines.filter((line) => line.level === 40).length, 1);

  const second = createRecorder({ basePath: join(cli.scratch, 'big'), sessionNumber: 2, logger, maxBufferedBytes: 256 * 1024 });
  second.fromTarget(big);
  second.closed({ bytesFromClient: 0, bytesFromTarget: big.length, durationMs: 0, code: 1000, reason: '', initiator: 'client' });
  await waitFinished(second);
  const recorded = await readRecording(second.path);
  assert.equal(recorded.length, 1);
  assert.ok(recorded[0]!.data.equals(big));
});

/** Runs a session through a recorder that cannot write: one warning, and the session's bytes all arrive. */
async function sessionWithBrokenDisk(basePath: string, sessionNumber: number, expectedCode: string): Promise<void> {
  const { logger, events: lines } = captureLog();
  const recorder = createRecorder({ basePath, sessionNumber, logger });
  const relay = await startRelay([recorder]);
  try {
    const messages = [Buffer.from('hello'), randomBytes(2 * 1024 * 1024), ...Array.from({ length: 20 }, () => randomBytes(100))];
    const echoed = await echoSession(relay.port, messages);
    await relay.closed;
    await waitFinished(recorder);
    assert.ok(echoed.equals(Buffer.concat(messages)), 'the session carried every byte despite the disk');
    const warnings = lines.filter((line) => line.level === 40);
    assert.equal(warnings.length, 1, `exactly one warning: ${JSON.stringify(warnings)}`);
    assert.equal(warnings[0]!.event, 'record-stopped');
    assert.equal(warnings[0]!.err, expectedCode);
    assert.equal(warnings[0]!.file, recorder.path);
    assert.match(String(warnings[0]!.msg), /^conn \d+: recording to .* stopped .*the session goes on unrecorded$/);
    assert.equal(recorder.dropped, true);
    assert.equal(recorder.bufferedBytes, 0);
  } finally {
    await relay.stop();
  }
}

test('a recording path that cannot be created (its parent is a file): one warning, the session goes on', async () => {
  const notADirectory = join(cli.scratch, 'plain-file');
  await writeFile(notADirectory, 'x');
  await sessionWithBrokenDisk(join(notADirectory, 'rec'), 1, 'ENOTDIR');
});

test('a disk that fails every write (/dev/full): one warning, the session goes on', {
  skip: !existsSync('/dev/full') && 'no /dev/full',
}, async () => {
  const base = join(cli.scratch, 'full');
  await symlink('/dev/full', `${base}.9`);
  await sessionWithBrokenDisk(base, 9, 'ENOSPC');
});

test('a stalled disk (a FIFO nobody reads): memory stays within the bound, then one warning, and the session goes on', async () => {
  const fifo = join(cli.scratch, 'stalled.1');
  execFileSync('mkfifo', [fifo]);
  // A reader that never reads: the recorder's open succeeds, its writes block once the pipe is full.
  const readerFd = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
  const { logger, events: lines } = captureLog();
  const bound = 512 * 1024;
  const recorder = createRecorder({ basePath: join(cli.scratch, 'stalled'), sessionNumber: 1, logger, maxBufferedBytes: bound });
  let highest = 0;
  let droppedAfterMessages = -1;
  let calls = 0;
  const sampler: BridgeHook = {
    fromClient: () => sample(),
    fromTarget: () => sample(),
  };
  function sample(): void {
    calls++;
    highest = Math.max(highest, recorder.bufferedBytes);
    if (recorder.dropped && droppedAfterMessages < 0) droppedAfterMessages = calls;
  }
  const relay = await startRelay([recorder, sampler]);
  let readerOpen = true;
  try {
    const messages = Array.from({ length: 64 }, () => randomBytes(128 * 1024));
    const echoed = await echoSession(relay.port, messages);
    await relay.closed;
    assert.ok(echoed.equals(Buffer.concat(messages)), 'the session carried every byte');
    assert.ok(droppedAfterMessages > 0, 'the recording was dropped once the bound was reached');
    assert.ok(highest > 0 && highest <= bound, `buffered ${highest} bytes, bound ${bound}`);
    const warnings = lines.filter((line) => line.level === 40);
    assert.equal(warnings.length, 1, `exactly one warning: ${JSON.stringify(warnings)}`);
    assert.equal(warnings[0]!.event, 'record-stopped');
    assert.equal(warnings[0]!.limit, bound);
    // Closing the only reader fails the blocked write (EPIPE), which frees the file stream.
    closeSync(readerFd);
    readerOpen = false;
    await waitFinished(recorder);
    assert.equal(lines.filter((line) => line.level === 40).length, 1, 'the later write error adds no second warning');
  } finally {
    if (readerOpen) closeSync(readerFd);
    await relay.stop();
  }
});
