import assert from 'node:assert/strict';
import { type StdioOptions, spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { CLI, LISTENING_STDIN_LAUNCHER, runCli } from '../helpers/proxy.js';
import { startEchoServer, type TestServer } from '../helpers/targets.js';
import { waitUntil } from '../helpers/wait.js';
import { collect, openClient } from '../helpers/ws-client.js';

/** Daemons started by a test, killed by pid afterwards whether the test passed or not. */
const started = new Set<number>();

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * The pid of the process listening on 127.0.0.1:`port`: the socket's inode in /proc/net/tcp, then the
 * process holding that inode. Finds a daemon even when its pid file was never written.
 */
function listenerPid(port: number): number | undefined {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const inodes = new Set<string>();
  for (const line of fs.readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    // local_address is fields[1] (0100007F:PORT), st is fields[3] (0A = LISTEN), inode is fields[9].
    if (fields[1] === `0100007F:${hexPort}` && fields[3] === '0A' && fields[9]) inodes.add(fields[9]);
  }
  if (inodes.size === 0) return undefined;
  const tryRead = <T>(read: () => T): T | undefined => {
    try {
      return read();
    } catch {
      // another user's process, or a process or descriptor that just went away
      return undefined;
    }
  };
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    for (const fd of tryRead(() => fs.readdirSync(`/proc/${entry}/fd`)) ?? []) {
      const inode = /^socket:\[(\d+)\]$/.exec(tryRead(() => fs.readlinkSync(`/proc/${entry}/fd/${fd}`)) ?? '')?.[1];
      if (inode && inodes.has(inode)) return Number(entry);
    }
  }
  return undefined;
}

/**
 * Pids of the processes whose command line mentions `text` (a test's own temporary directory): a daemon
 * whose pid file never appeared is still found, and only a process this test started can match.
 */
function processesMentioning(text: string): number[] {
  return fs
    .readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry) && Number(entry) !== process.pid)
    .filter((entry) => {
      try {
        return fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(text);
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** A process's /proc/PID/stat fields after the command name: [state, ppid, pgrp, session, tty_nr, ...]. */
function statFields(pid: number): string[] {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** The daemon's pid from its pid file; remembered for the cleanup. */
function readPidFile(file: string): number {
  const text = fs.readFileSync(file, 'utf8');
  assert.match(text, /^\d+\n$/, `pid file content: ${JSON.stringify(text)}`);
  const pid = Number(text);
  started.add(pid);
  return pid;
}

interface Started {
  code: number | null;
  stderr: string;
  /** The starting command's pid (its own process group, started detached). */
  pid: number;
}

/** Runs the starting command (`websockify -D ...`) to its exit, in its own process group. */
async function startCommand(args: string[], cwd: string, stdio: StdioOptions = ['ignore', 'pipe', 'pipe']): Promise<Started> {
  const proc = spawn(process.execPath, [CLI, ...args], { cwd, stdio, detached: true });
  let stderr = '';
  proc.stderr!.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  proc.stdout!.resume();
  const timer = setTimeout(() => proc.kill('SIGKILL'), 15000);
  const [code] = (await once(proc, 'exit')) as [number | null];
  clearTimeout(timer);
  return { code, stderr, pid: proc.pid! };
}

/** Sends one message through the proxy on `port` and returns what comes back. */
async function echo(port: number, text: string): Promise<string> {
  const ws = await openClient(`ws://127.0.0.1:${port}`, 'binary');
  const received = collect(ws);
  ws.send(Buffer.from(text));
  const reply = await new Promise<Buffer>((resolve) => ws.once('message', (data: Buffer) => resolve(data)));
  ws.close();
  await received;
  return reply.toString();
}

/** The JSON log lines of `file`. */
function logEvents(file: string): Array<Record<string, unknown>> {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** The port the daemon logged in its listening line. */
async function loggedPort(logFile: string): Promise<number> {
  const listening = await waitUntil('the listening line', () => logEvents(logFile).find((e) => e.event === 'listening'));
  return Number(/:(\d+)$/.exec(String(listening.listen))![1]);
}

describe('daemon mode (-D, --pid-file)', () => {
  let target: TestServer;
  let dir: string;

  before(async () => {
    target = await startEchoServer();
  });
  after(async () => {
    await target.close();
  });
  afterEach(async () => {
    if (dir) for (const pid of processesMentioning(dir)) started.add(pid);
    for (const pid of started) {
      if (alive(pid)) process.kill(pid, 'SIGKILL');
    }
    started.clear();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  function tempDir(): string {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'websockify-daemon-'));
    return dir;
  }

  /** `-D` with a pid file and a JSON log file in a fresh directory, in front of the echo target. */
  async function startDaemonInTempDir() {
    const cwd = tempDir();
    const pidFile = path.join(cwd, 'ws.pid');
    const logFile = path.join(cwd, 'ws.log');
    const start = await startCommand(
      ['-D', '--pid-file', pidFile, '--log-file', logFile, '--log-format', 'json', '127.0.0.1:0', `127.0.0.1:${target.port}`],
      cwd,
    );
    return { cwd, pidFile, logFile, start };
  }

  it('detaches once listening: own session, no terminal, stdio on /dev/null, serves, stops on SIGTERM', async () => {
    const { pidFile, logFile, start } = await startDaemonInTempDir();
    // Known before any assertion, so that the cleanup finds the daemon even if one fails.
    const pid = fs.existsSync(pidFile) ? readPidFile(pidFile) : undefined;
    assert.equal(start.code, 0, start.stderr);
    assert.equal(start.stderr, '');
    assert.ok(pid !== undefined, 'the pid file exists once the starting command has exited');
    assert.notEqual(pid, start.pid);
    assert.ok(alive(pid));

    const [, ppid, pgrp, session, ttyNr] = statFields(pid);
    assert.equal(Number(session), pid, 'the daemon leads its own session (setsid)');
    assert.equal(Number(pgrp), pid, 'and its own process group');
    assert.equal(Number(ttyNr), 0, 'no controlling terminal');
    assert.notEqual(Number(ppid), start.pid);
    for (const fd of [0, 1, 2]) assert.equal(fs.readlinkSync(`/proc/${pid}/fd/${fd}`), '/dev/null', `fd ${fd}`);
    assert.equal(fs.readlinkSync(`/proc/${pid}/cwd`), '/');

    const port = await loggedPort(logFile);
    assert.equal(listenerPid(port), pid, 'the pid file names the process that listens');
    assert.equal(await echo(port, 'through the daemon'), 'through the daemon');

    process.kill(pid, 'SIGTERM');
    await waitUntil('the daemon to exit', () => !alive(pid));
    assert.equal(fs.existsSync(pidFile), false, 'the pid file is removed on a clean exit');
    const events = logEvents(logFile).map((e) => e.event);
    assert.ok(events.includes('stopping') && events.includes('stopped'), `log events: ${events.join(', ')}`);
  });

  /**
   * Starts `websockify -D ARGS` with fd 42 the other end of a pipe the test reads, as a shell's `42>&...`
   * would leave it, and tells whether that pipe ends (every process has closed it) once the command has
   * exited. Node itself marks low descriptors close-on-exec at start-up, so a low one would not show a leak.
   */
  async function leakedPipeEnds(args: string[], cwd: string, pidFile: string): Promise<boolean> {
    const LEAKED_FD = 42;
    const stdio: StdioOptions = Array.from({ length: LEAKED_FD + 1 }, (_, fd) => (fd === LEAKED_FD ? 'pipe' : 'ignore'));
    const start = spawn(process.execPath, [CLI, '-D', '--pid-file', pidFile, ...args], { cwd, stdio, detached: true });
    const extra = (start.stdio as unknown[])[LEAKED_FD] as NodeJS.ReadableStream;
    const ended = once(extra, 'end').then(() => true);
    extra.resume();
    const [code] = (await once(start, 'exit')) as [number | null];
    if (fs.existsSync(pidFile)) readPidFile(pidFile);
    assert.equal(code, 0);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), 5000)));
    const result = await Promise.race([ended, timeout]);
    clearTimeout(timer);
    return result;
  }

  it('does not keep descriptors the starting command inherited (a caller waiting for EOF is not held)', async () => {
    const cwd = tempDir();
    assert.ok(await leakedPipeEnds(['127.0.0.1:0', `127.0.0.1:${target.port}`], cwd, path.join(cwd, 'ws.pid')));
  });

  it('nor does a program it wraps (-- PROGRAM), started before the daemon reports ready', async () => {
    const cwd = tempDir();
    const pidFile = path.join(cwd, 'ws.pid');
    const logFile = path.join(cwd, 'ws.log');
    try {
      assert.ok(await leakedPipeEnds(['--log-file', logFile, '--log-format', 'json', '127.0.0.1:0', '--', 'sleep', '30'], cwd, pidFile));
    } finally {
      // The daemon stops its program on SIGTERM; the program's own pid is the fallback.
      const program = logEvents(logFile).find((e) => e.event === 'program-start')?.pid;
      if (typeof program === 'number') started.add(program);
      for (const pid of started) if (alive(pid)) process.kill(pid, 'SIGTERM');
      await waitUntil('the daemon and its program to exit', () => ![...started].some(alive), 5000).catch(() => undefined);
    }
  });

  it('a busy port: the starting command exits 1 with the reason, and no daemon is left', async () => {
    const cwd = tempDir();
    const pidFile = path.join(cwd, 'ws.pid');
    const busy = net.createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const { port } = busy.address() as net.AddressInfo;
    try {
      const start = await startCommand(['-D', '--pid-file', pidFile, `127.0.0.1:${port}`, `127.0.0.1:${target.port}`], cwd);
      assert.equal(start.code, 1);
      const lines = start.stderr.trimEnd().split('\n');
      assert.equal(lines.length, 1, start.stderr);
      assert.match(lines[0]!, /^websockify: .*127\.0\.0\.1:\d+.*in use/i);
      assert.equal(fs.existsSync(pidFile), false);
      // The only listener on the port is still the test's own server.
      assert.equal(listenerPid(port), process.pid);
      // No process runs the CLI with these arguments any more (the copy exits after its report).
      await waitUntil('the detached copy to exit', () => processesMentioning(pidFile).length === 0);
    } finally {
      busy.close();
    }
  });

  it('a usage error with -D: exit 2 in the foreground, nothing started', async () => {
    const cwd = tempDir();
    const pidFile = path.join(cwd, 'ws.pid');
    const result = await runCli(['-D', '--pid-file', pidFile, '--timeout', 'soon', '127.0.0.1:0', `127.0.0.1:${target.port}`]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /^websockify: error: .*--timeout/);
    assert.match(result.stderr, /usage: websockify/);
    assert.equal(fs.existsSync(pidFile), false);
  });

  it('relative --pid-file, --log-file and --record land in the starting directory; the daemon then works in /', async () => {
    const cwd = tempDir();
    const start = await startCommand(
      [
        '-D',
        '--pid-file',
        'ws.pid',
        '--log-file',
        'ws.log',
        '--log-format',
        'json',
        '--record',
        'rec',
        '127.0.0.1:0',
        `127.0.0.1:${target.port}`,
      ],
      cwd,
    );
    const pid = fs.existsSync(path.join(cwd, 'ws.pid')) ? readPidFile(path.join(cwd, 'ws.pid')) : undefined;
    assert.equal(start.code, 0, start.stderr);
    assert.ok(pid !== undefined);
    assert.equal(fs.readlinkSync(`/proc/${pid}/cwd`), '/');
    const port = await loggedPort(path.join(cwd, 'ws.log'));
    assert.equal(await echo(port, 'recorded'), 'recorded');
    process.kill(pid, 'SIGTERM');
    await waitUntil('the daemon to exit', () => !alive(pid));
    assert.equal(fs.existsSync(path.join(cwd, 'ws.pid')), false);
    const recording = fs.readFileSync(path.join(cwd, 'rec.1'), 'utf8');
    assert.match(recording, /recorded/);
    assert.equal(fs.existsSync('/rec.1'), false);
    assert.equal(fs.existsSync('/ws.log'), false);
  });

  it("survives the starting command's process group being killed", async () => {
    const { pidFile, logFile, start } = await startDaemonInTempDir();
    const pid = fs.existsSync(pidFile) ? readPidFile(pidFile) : undefined;
    assert.equal(start.code, 0, start.stderr);
    assert.ok(pid !== undefined);
    // As a terminal's hangup would: the whole group of the starting command.
    try {
      process.kill(-start.pid, 'SIGHUP');
      process.kill(-start.pid, 'SIGKILL');
    } catch (err) {
      // The group is already empty: the starting command has exited and the daemon is not in it.
      assert.equal((err as NodeJS.ErrnoException).code, 'ESRCH');
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.ok(alive(pid));
    const port = await loggedPort(logFile);
    assert.equal(await echo(port, 'still here'), 'still here');
  });

  it('-D --inetd: the daemon keeps the listening socket passed as stdin', async () => {
    const cwd = tempDir();
    const pidFile = path.join(cwd, 'ws.pid');
    // A helper binds 127.0.0.1:0, prints the port, moves the socket onto fd 0 and becomes the command.
    const script = LISTENING_STDIN_LAUNCHER;
    const start = spawn(
      '/usr/bin/python3',
      ['-c', script, process.execPath, CLI, '-D', '--inetd', '--pid-file', pidFile, `127.0.0.1:${target.port}`],
      {
        cwd,
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      },
    );
    let stdout = '';
    let stderr = '';
    start.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
    start.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    const [code] = (await once(start, 'exit')) as [number | null];
    const pid = fs.existsSync(pidFile) ? readPidFile(pidFile) : undefined;
    assert.equal(code, 0, stderr);
    assert.ok(pid !== undefined);
    const port = Number(stdout.split('\n')[0]);
    assert.equal(listenerPid(port), pid);
    assert.equal(await echo(port, 'via inetd, detached'), 'via inetd, detached');
  });

  it('--pid-file without -D: written once listening, removed on a SIGTERM exit', async () => {
    const cwd = tempDir();
    const pidFile = path.join(cwd, 'ws.pid');
    const proc = spawn(process.execPath, [CLI, '--log-format', 'json', '--pid-file', pidFile, '127.0.0.1:0', `127.0.0.1:${target.port}`], {
      cwd,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    started.add(proc.pid!);
    let stderr = '';
    proc.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    const exited = once(proc, 'exit');
    await waitUntil('the listening line', () => stderr.includes('"listening"'));
    const pid = await waitUntil('the pid file', () => (fs.existsSync(pidFile) ? readPidFile(pidFile) : undefined));
    assert.equal(pid, proc.pid);
    proc.kill('SIGTERM');
    const [code] = (await exited) as [number | null];
    assert.equal(code, 0);
    assert.equal(fs.existsSync(pidFile), false);
  });

  it('a pid file that cannot be written is a one-line start-up error, in the foreground with -D', async () => {
    const cwd = tempDir();
    const pidFile = path.join(cwd, 'missing-dir', 'ws.pid');
    const start = await startCommand(['-D', '--pid-file', pidFile, '127.0.0.1:0', `127.0.0.1:${target.port}`], cwd);
    assert.equal(start.code, 1);
    assert.match(start.stderr, /^websockify: cannot write pid file .*missing-dir\/ws\.pid: no such directory\n$/);
  });
});
