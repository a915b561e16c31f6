import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import dgram from 'node:dgram';
import dns from 'node:dns';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, it } from 'node:test';
import { createSyslog, parseSyslogServer, type Syslog, type SyslogOptions } from '../../src/log/syslog.js';
import { udpReceiver } from './udp-receiver.js';

const HOST = os.hostname();
const PID = process.pid;
/** Debian's python; the pyenv one on PATH would do too (stdlib only). */
const PYTHON = fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const ISO_MS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const BSD_TIME = /^[A-Z][a-z]{2} [ 1-3]\d \d\d:\d\d:\d\d$/;

function escapeRe(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** `<PRI>1 TIMESTAMP HOSTNAME APP PROCID - - MSG` -> its parts, or a failed assertion. */
function parse5424(message: string, app = 'websockify'): { pri: number; time: string; msg: string } {
  const m = new RegExp(`^<(\\d+)>1 (\\S+) ${escapeRe(HOST)} ${escapeRe(app)} ${PID} - - (.*)$`, 's').exec(message);
  assert.ok(m, `not RFC 5424 as expected: ${JSON.stringify(message)}`);
  return { pri: Number(m[1]), time: m[2]!, msg: m[3]! };
}

/** `<PRI>Mmm dd hh:mm:ss HOSTNAME APP[PID]: MSG` -> its parts, or a failed assertion. */
function parse3164(message: string, app = 'websockify'): { pri: number; time: string; msg: string } {
  const m = new RegExp(`^<(\\d+)>(\\w{3} [ \\d]\\d \\d\\d:\\d\\d:\\d\\d) ${escapeRe(HOST)} ${escapeRe(app)}\\[${PID}\\]: (.*)$`, 's').exec(
    message,
  );
  assert.ok(m, `not RFC 3164 as expected: ${JSON.stringify(message)}`);
  return { pri: Number(m[1]), time: m[2]!, msg: m[3]! };
}

async function waitFor(what: string, condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A UDP port on loopback with nobody listening: bound, then released. */
async function closedUdpPort(): Promise<number> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

const RECEIVER_PY = `
import json, os, socket, sys, threading
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
# Exit when the test process goes away (stdin closes), so it can never be left behind.
threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
print("READY", flush=True)
while True:
    print(json.dumps(s.recv(65536).decode("utf-8", "replace")), flush=True)
`;

/** A real Unix datagram syslog receiver (Node cannot bind one, Python can). */
async function unixReceiver(socketPath: string): Promise<{ messages: string[]; close: () => Promise<void> }> {
  const child = spawn(PYTHON, ['-c', RECEIVER_PY, socketPath], { stdio: ['pipe', 'pipe', 'inherit'] });
  const messages: string[] = [];
  let ready = false;
  createInterface({ input: child.stdout! }).on('line', (line) => {
    if (line === 'READY') ready = true;
    else messages.push(JSON.parse(line) as string);
  });
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  try {
    await waitFor('the Python receiver', () => ready || child.exitCode !== null);
    assert.ok(ready, 'the Python receiver did not start');
  } catch (err) {
    child.kill();
    throw err;
  }
  return {
    messages,
    close: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill();
      await closed;
      fs.rmSync(socketPath, { force: true });
    },
  };
}

/** PIDs of our own child processes running `name` (Linux /proc), to check that logger is started and stopped. */
function childPids(name: string): number[] {
  const pids: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    const open = stat.indexOf('(');
    const close = stat.lastIndexOf(')');
    const comm = stat.slice(open + 1, close);
    const ppid = Number(stat.slice(close + 2).split(' ')[1]);
    if (comm === name && ppid === process.pid) pids.push(Number(entry));
  }
  return pids;
}

const tempDirs: string[] = [];
function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'websockify-syslog-'));
  tempDirs.push(dir);
  return dir;
}
after(() => {
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
});

/** Options that collect reports instead of writing them to stderr. */
function collecting(extra: Partial<SyslogOptions> = {}): { options: SyslogOptions; errors: string[] } {
  const errors: string[] = [];
  return { errors, options: { legacy: false, facility: 'user', onError: (m) => errors.push(m), ...extra } };
}

/** pino's level numbers. */
const LEVEL = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 } as const;

/** Sends `msg` at `level`, now. */
function log(syslog: Syslog, level: keyof typeof LEVEL, msg: string): void {
  syslog.send(LEVEL[level], Date.now(), msg);
}

describe('parseSyslogServer', () => {
  it('accepts host:port, [v6]:port, a bare host, and socket paths', () => {
    assert.deepEqual(parseSyslogServer('localhost:514'), { kind: 'udp', host: 'localhost', port: 514 });
    assert.deepEqual(parseSyslogServer('127.0.0.1:1514'), { kind: 'udp', host: '127.0.0.1', port: 1514 });
    assert.deepEqual(parseSyslogServer('syslog.example.com'), { kind: 'udp', host: 'syslog.example.com', port: 514 });
    assert.deepEqual(parseSyslogServer('[::1]:5140'), { kind: 'udp', host: '::1', port: 5140 });
    assert.deepEqual(parseSyslogServer('[fe80::1]'), { kind: 'udp', host: 'fe80::1', port: 514 });
    assert.deepEqual(parseSyslogServer('host:65535'), { kind: 'udp', host: 'host', port: 65535 });
    // Python splits at the last ':' whatever the host, so this worked there and works here.
    assert.deepEqual(parseSyslogServer('::1:514'), { kind: 'udp', host: '::1', port: 514 });
    assert.deepEqual(parseSyslogServer('/dev/log'), { kind: 'unix', path: '/dev/log' });
    // Relative paths become absolute, as Python's os.path.abspath (a daemon may chdir).
    assert.deepEqual(parseSyslogServer('run/log.sock'), { kind: 'unix', path: path.resolve('run/log.sock') });
  });

  it('rejects bad input with a message naming the problem', () => {
    const rejects: [string, RegExp][] = [
      ['', /empty/],
      ['host:', /port after ':' is missing/],
      ['host:abc', /port "abc" is not a number from 1 to 65535/],
      ['host:0', /port "0" is not a number from 1 to 65535/],
      ['host:65536', /port "65536"/],
      ['host:-1', /port "-1"/],
      ['host:1.5', /port "1.5"/],
      [':514', /host is missing/],
      ['[::1', /bracketed IPv6 address is malformed/],
      ['[::1]x', /bracketed IPv6 address is malformed/],
      ['[example.com]:514', /"example.com" is not an IPv6 address/],
      ['[::1]:99999', /port "99999"/],
      ['a:b:514', /"a:b" is not an IPv6 address; write IPv6 as \[address\]:port/],
      ['my host:514', /whitespace/],
    ];
    for (const [input, message] of rejects) {
      assert.throws(
        () => parseSyslogServer(input),
        (err: unknown) => {
          assert.ok(err instanceof Error);
          assert.match(err.message, message, `for ${JSON.stringify(input)}`);
          assert.ok(err.message.includes(`"${input}"`), `message names the input: ${err.message}`);
          return true;
        },
      );
    }
  });

  it('makes createSyslog throw on a bad server, before sending anything', () => {
    assert.throws(() => createSyslog('host:x', { legacy: false, facility: 'user' }), /port "x"/);
  });
});

describe('syslog over UDP', () => {
  it('sends RFC 5424 messages with the right PRI, app name, pid and text', async () => {
    const server = await udpReceiver();
    const dest = createSyslog(`127.0.0.1:${server.port}`, collecting().options);
    try {
      const before = Date.now();
      log(dest, 'info', 'hello info');
      log(dest, 'error', 'it broke\nsecond line');
      log(dest, 'warn', 'careful');
      log(dest, 'debug', 'some detail');
      log(dest, 'trace', 'finer detail');
      log(dest, 'fatal', 'the end');
      await waitFor('6 datagrams', () => server.raw.length >= 6);
      const got = new Map(server.texts().map((t) => [parse5424(t).msg, parse5424(t)]));
      // facility user (1) * 8 + severity: info 6, error 3, warn 4, debug 7, fatal -> critical 2
      assert.equal(got.get('hello info')?.pri, 14);
      assert.equal(got.get('it broke second line')?.pri, 11, 'newlines become spaces, as in Python');
      assert.equal(got.get('careful')?.pri, 12);
      assert.equal(got.get('some detail')?.pri, 15);
      assert.equal(got.get('finer detail')?.pri, 15);
      assert.equal(got.get('the end')?.pri, 10);
      const { time } = got.get('hello info')!;
      assert.match(time, ISO_MS);
      assert.ok(Math.abs(Date.parse(time) - before) < 10_000, `timestamp ${time} is now`);
      for (const raw of server.raw) assert.notEqual(raw.at(-1), 0x0a, 'no trailing newline on datagrams');
    } finally {
      await dest.end();
      await server.close();
    }
  });

  it('sends RFC 3164 messages with --legacy-syslog', async () => {
    const server = await udpReceiver();
    const dest = createSyslog(`127.0.0.1:${server.port}`, collecting({ legacy: true }).options);
    try {
      log(dest, 'info', 'legacy info');
      log(dest, 'error', 'legacy error');
      await waitFor('2 datagrams', () => server.raw.length >= 2);
      const got = new Map(server.texts().map((t) => [parse3164(t).msg, parse3164(t)]));
      assert.equal(got.get('legacy info')?.pri, 14);
      assert.equal(got.get('legacy error')?.pri, 11);
      assert.match(got.get('legacy info')!.time, BSD_TIME);
    } finally {
      await dest.end();
      await server.close();
    }
  });

  it('uses the daemon facility when asked, and the time of the event', async () => {
    const server = await udpReceiver();
    const dest = createSyslog(`127.0.0.1:${server.port}`, collecting({ facility: 'daemon' }).options);
    try {
      dest.send(LEVEL.info, Date.UTC(2021, 0, 2, 3, 4, 5, 678), 'daemon info');
      await waitFor('a datagram', () => server.raw.length >= 1);
      const m = parse5424(server.texts()[0]!);
      assert.equal(m.pri, 3 * 8 + 6);
      assert.equal(m.time, '2021-01-02T03:04:05.678Z');
      assert.equal(m.msg, 'daemon info');
    } finally {
      await dest.end();
      await server.close();
    }
  });

  it('marks UTF-8 text with a BOM in RFC 5424 (as Python does) and not in RFC 3164', async () => {
    const server = await udpReceiver();
    const modern = createSyslog(`127.0.0.1:${server.port}`, collecting().options);
    const legacy = createSyslog(`127.0.0.1:${server.port}`, collecting({ legacy: true }).options);
    try {
      log(modern, 'info', 'héllo wörld');
      await waitFor('a datagram', () => server.raw.length >= 1);
      log(legacy, 'info', 'héllo wörld');
      await waitFor('a datagram', () => server.raw.length >= 2);
      const bom = Buffer.from([0xef, 0xbb, 0xbf]);
      const withBom = Buffer.concat([bom, Buffer.from('héllo wörld')]);
      assert.ok(server.raw[0]!.subarray(-withBom.length).equals(withBom), 'RFC 5424: BOM then UTF-8');
      assert.equal(parse5424(server.texts()[0]!).msg, '\ufeffhéllo wörld');
      assert.equal(parse3164(server.texts()[1]!).msg, 'héllo wörld');
    } finally {
      await modern.end();
      await legacy.end();
      await server.close();
    }
  });

  it('skips empty messages', async () => {
    const server = await udpReceiver();
    const dest = createSyslog(`127.0.0.1:${server.port}`, collecting().options);
    try {
      log(dest, 'info', '');
      log(dest, 'error', 'not empty');
      await waitFor('a datagram', () => server.raw.length >= 1);
      await sleep(100);
      assert.deepEqual(
        server.texts().map((t) => parse5424(t).msg),
        ['not empty'],
      );
    } finally {
      await dest.end();
      await server.close();
    }
  });

  it('cuts very long messages at a character boundary', async () => {
    const server = await udpReceiver();
    const dest = createSyslog(`127.0.0.1:${server.port}`, collecting().options);
    try {
      log(dest, 'info', 'é'.repeat(10_000));
      await waitFor('a datagram', () => server.raw.length >= 1);
      const { msg } = parse5424(server.texts()[0]!);
      assert.match(msg, /^\ufeffé+$/);
      assert.ok(Buffer.byteLength(msg) <= 8192);
    } finally {
      await dest.end();
      await server.close();
    }
  });

  it('resolves a host name, and end() flushes what was written before it', async () => {
    const server = await udpReceiver();
    // localhost may resolve to ::1 first; only check when it resolves to the IPv4 receiver.
    const { address } = await dns.promises.lookup('localhost');
    const dest = createSyslog(`localhost:${server.port}`, collecting().options);
    try {
      log(dest, 'info', 'before end'); // while the name is being looked up
      await dest.end();
      log(dest, 'info', 'after end');
      if (address === '127.0.0.1') {
        await waitFor('a datagram', () => server.raw.length >= 1);
        await sleep(100);
        assert.deepEqual(
          server.texts().map((t) => parse5424(t).msg),
          ['before end'],
        );
      }
    } finally {
      await dest.end();
      await server.close();
    }
  });
  it('holds at most 1000 messages while the name is looked up; more are dropped, reported once', async () => {
    const server = await udpReceiver();
    const { address } = await dns.promises.lookup('localhost');
    const { options, errors } = collecting();
    const dest = createSyslog(`localhost:${server.port}`, options);
    try {
      for (let i = 0; i < 1200; i++) log(dest, 'info', `m${i}`);
      assert.equal(errors.length, 1);
      assert.match(errors[0]!, /localhost:\d+ is not keeping up; dropping messages/);
      await dest.end();
      if (address === '127.0.0.1') {
        // The receiver shares this thread, so the kernel may drop some of the burst too; none past the bound arrives.
        await waitFor('datagrams', () => server.raw.length >= 1);
        await sleep(100);
        const numbers = server.texts().map((t) => Number(/ m(\d+)$/.exec(t)?.[1]));
        assert.ok(
          numbers.every((n) => n < 1000),
          `past the bound: ${numbers.filter((n) => !(n < 1000)).join(' ')}`,
        );
      }
    } finally {
      await dest.end();
      await server.close();
    }
  });
});

describe('syslog to a local Unix datagram socket', () => {
  it('delivers RFC 5424 and RFC 3164 messages through logger', async () => {
    const socketPath = path.join(tempDir(), 'log.sock');
    const receiver = await unixReceiver(socketPath);
    const { options, errors } = collecting();
    const modern = createSyslog(socketPath, options);
    const legacy = createSyslog(socketPath, { ...options, legacy: true });
    try {
      log(modern, 'info', 'unix info');
      log(modern, 'error', 'unix error\nwith two lines');
      await waitFor('2 messages', () => receiver.messages.length >= 2);
      log(legacy, 'warn', 'unix legacy');
      await waitFor('3 messages', () => receiver.messages.length >= 3);
      const byText = new Map(receiver.messages.slice(0, 2).map((t) => [parse5424(t).msg, parse5424(t).pri]));
      assert.equal(byText.get('unix info'), 14);
      assert.equal(byText.get('unix error with two lines'), 11);
      const old = parse3164(receiver.messages[2]!);
      assert.equal(old.pri, 12);
      assert.equal(old.msg, 'unix legacy');
      assert.deepEqual(errors, []);
    } finally {
      await modern.end();
      await legacy.end();
      await receiver.close();
    }
    assert.deepEqual(childPids('logger'), [], 'end() stops logger');
  });

  it('keeps going when the receiver restarts', async () => {
    const socketPath = path.join(tempDir(), 'log.sock');
    let receiver = await unixReceiver(socketPath);
    const { options } = collecting();
    const dest = createSyslog(socketPath, options);
    try {
      log(dest, 'info', 'first');
      await waitFor('first message', () => receiver.messages.length >= 1);
      await receiver.close(); // also removes the socket file, as a restarting syslogd does
      log(dest, 'info', 'lost while down');
      await sleep(100);
      receiver = await unixReceiver(socketPath);
      log(dest, 'info', 'after restart');
      await waitFor('message after restart', () => receiver.messages.some((m) => m.endsWith(' after restart')));
    } finally {
      await dest.end();
      await receiver.close();
    }
  });

  it('restarts logger after it dies, reporting once', async () => {
    const socketPath = path.join(tempDir(), 'log.sock');
    const receiver = await unixReceiver(socketPath);
    const { options, errors } = collecting({ retryDelayMs: 50 });
    const dest = createSyslog(socketPath, options);
    try {
      await waitFor('logger to start', () => childPids('logger').length === 1);
      const [pid] = childPids('logger');
      process.kill(pid!, 'SIGKILL');
      await waitFor('the report', () => errors.length === 1);
      assert.match(errors[0]!, /exited \(signal SIGKILL\)/);
      for (let i = 0; i < 20 && !receiver.messages.some((m) => m.endsWith(' back again')); i++) {
        assert.doesNotThrow(() => log(dest, 'info', 'back again'));
        await sleep(100);
      }
      assert.ok(
        receiver.messages.some((m) => m.endsWith(' back again')),
        'a new logger delivers',
      );
      assert.equal(errors.length, 1);
    } finally {
      await dest.end();
      await receiver.close();
    }
    assert.deepEqual(childPids('logger'), []);
  });
  it('drops messages while logger does not keep up, and end() stops it anyway', async () => {
    const dir = tempDir();
    const socketPath = path.join(dir, 'log.sock');
    const receiver = await unixReceiver(socketPath);
    // A stand-in that never reads its stdin nor exits on EOF.
    const stuck = path.join(dir, 'stuck-logger');
    fs.writeFileSync(stuck, '#!/bin/sh\nexec sleep 30\n', { mode: 0o755 });
    const { options, errors } = collecting({ loggerPath: stuck });
    const dest = createSyslog(socketPath, options);
    try {
      await waitFor('the stand-in to start', () => childPids('sleep').length === 1);
      for (let i = 0; i < 300; i++) log(dest, 'info', 'x'.repeat(8000));
      assert.equal(errors.length, 1);
      assert.match(errors[0]!, /log\.sock is not keeping up; dropping messages/);
    } finally {
      await dest.end();
      await receiver.close();
    }
    await waitFor('the stand-in to stop', () => childPids('sleep').length === 0);
  });
});

describe('an unreachable syslog server', () => {
  it('UDP port with no listener: send() never throws, the error is reported once', async () => {
    const port = await closedUdpPort();
    const { options, errors } = collecting();
    const dest = createSyslog(`127.0.0.1:${port}`, options);
    for (let i = 0; i < 10; i++) {
      assert.doesNotThrow(() => log(dest, 'error', `nobody hears ${i}`));
      await sleep(20);
    }
    await dest.end();
    assert.equal(errors.length, 1, errors.join('\n'));
    assert.match(errors[0]!, /ECONNREFUSED/);
  });

  it('unresolvable host name: send() never throws, the error is reported once', async () => {
    const { options, errors } = collecting();
    const dest = createSyslog('no-such-host.invalid:514', options);
    for (let i = 0; i < 5; i++) assert.doesNotThrow(() => log(dest, 'info', `m${i}`));
    await waitFor('the report', () => errors.length >= 1);
    assert.doesNotThrow(() => log(dest, 'info', 'later'));
    await dest.end();
    assert.equal(errors.length, 1);
    assert.match(errors[0]!, /cannot resolve no-such-host\.invalid/);
  });

  it('missing Unix socket: send() never throws, the error is reported once', async () => {
    const socketPath = path.join(tempDir(), 'nobody.sock');
    const { options, errors } = collecting();
    const dest = createSyslog(socketPath, options);
    for (let i = 0; i < 5; i++) assert.doesNotThrow(() => log(dest, 'info', `into the void ${i}`));
    await waitFor('the report', () => errors.length >= 1);
    await sleep(200);
    await dest.end();
    assert.equal(errors.length, 1);
    assert.match(errors[0]!, /nobody\.sock: ENOENT/);
    assert.deepEqual(childPids('logger'), []);
  });

  it('missing logger program: send() never throws, the error is reported once', async () => {
    const socketPath = path.join(tempDir(), 'log.sock');
    const receiver = await unixReceiver(socketPath);
    const { options, errors } = collecting({ loggerPath: '/nonexistent/logger' });
    const dest = createSyslog(socketPath, options);
    try {
      for (let i = 0; i < 5; i++) assert.doesNotThrow(() => log(dest, 'info', `nowhere ${i}`));
      await waitFor('the report', () => errors.length >= 1);
      assert.match(errors[0]!, /cannot run \/nonexistent\/logger/);
      assert.equal(errors.length, 1);
    } finally {
      await dest.end();
      await receiver.close();
    }
  });

  it('the default report is one line on stderr, and nothing keeps the process alive', async () => {
    const port = await closedUdpPort();
    const socketPath = path.join(tempDir(), 'nobody.sock');
    const moduleUrl = new URL('../../src/log/syslog.js', import.meta.url).href;
    const script = `
      const { createSyslog } = await import(${JSON.stringify(moduleUrl)});
      const udp = createSyslog('127.0.0.1:${port}', { legacy: false, facility: 'user' });
      const unix = createSyslog(${JSON.stringify(socketPath)}, { legacy: true, facility: 'user' });
      for (let i = 0; i < 5; i++) {
        udp.send(30, Date.now(), 'x' + i);
        unix.send(30, Date.now(), 'x' + i);
        await new Promise((r) => setTimeout(r, 20));
      }
      // No end(): the process must still exit by itself.
    `;
    const child: ChildProcess = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    const code = await exited;
    clearTimeout(timer);
    assert.equal(code, 0, `exited by itself; stderr: ${stderr}`);
    const lines = stderr.trim().split('\n');
    assert.equal(lines.length, 2, stderr);
    assert.ok(
      lines.some((l) => /^websockify: syslog: .*ECONNREFUSED/.test(l)),
      stderr,
    );
    assert.ok(
      lines.some((l) => /^websockify: syslog: .*nobody\.sock/.test(l)),
      stderr,
    );
  });
});
