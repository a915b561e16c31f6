import { spawn } from 'node:child_process';
import fs from 'node:fs';
import type { Readable } from 'node:stream';
import { StartupError, systemErrorText } from '../errors.js';
import { exitStatus } from '../exit-status.js';

/**
 * Daemon mode (`-D`). Node cannot fork, so the command starts a detached copy of itself (a new session,
 * no terminal, stdio on /dev/null) and waits on a pipe until the copy reports that it listens, or why it
 * could not start. The starting command thus exits 0 only once the daemon serves, and prints the daemon's
 * start-up error in the foreground otherwise.
 */

/** Marks the detached copy; its value is the fd of the report pipe. */
const CHILD_ENV = 'WEBSOCKIFY_DAEMON_REPORT_FD';
const REPORT_FD = 3;
/** O_CLOEXEC as /proc/PID/fdinfo shows it (octal flags): Node opens every descriptor of its own with it. */
const O_CLOEXEC = 0o2000000;

/** True in the detached copy started by {@link detach}. */
export function isDaemonChild(): boolean {
  return process.env[CHILD_ENV] !== undefined;
}

/**
 * Starts the detached copy with the same arguments and waits for its report.
 * @param keepStdin pass stdin on (`--inetd`: it is the listening socket); otherwise the copy gets /dev/null.
 * @returns the exit code for the starting command: 0 once the daemon listens, else the daemon's code.
 */
export async function detach(keepStdin = false): Promise<number> {
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    detached: true,
    stdio: [keepStdin ? 'inherit' : 'ignore', 'ignore', 'ignore', 'pipe'],
    env: { ...process.env, [CHILD_ENV]: String(REPORT_FD) },
  });
  const pipe = child.stdio[REPORT_FD] as Readable;
  let report = '';
  pipe.setEncoding('utf8');
  const exited = new Promise<number>((resolve) => child.once('exit', (code, signal) => resolve(exitStatus(code, signal))));
  // The report is one line; the pipe's end means the copy died first. A program the daemon starts might
  // hold the pipe open past the report, so the line is what counts.
  await new Promise<void>((resolve) => {
    pipe.on('data', (text: string) => {
      report += text;
      if (report.includes('\n')) resolve();
    });
    pipe.once('close', () => resolve());
  });
  pipe.destroy();
  const [status, ...rest] = report.split('\n')[0]!.trim().split(' ');
  if (status === 'ready') {
    child.unref();
    return 0;
  }
  if (status === 'error') {
    process.stderr.write(`websockify: ${rest.slice(1).join(' ')}\n`);
    return Number(rest[0]) || 1;
  }
  const code = await exited;
  process.stderr.write(`websockify: the daemon exited (status ${code}) before it was ready\n`);
  return code || 1;
}

function send(line: string): void {
  const fd = Number(process.env[CHILD_ENV]);
  // Reported already: a failure after the start is the daemon's own, for its log.
  if (!Number.isInteger(fd)) return;
  delete process.env[CHILD_ENV];
  try {
    fs.writeSync(fd, `${line}\n`);
    fs.closeSync(fd);
  } catch {
    // The starting command is gone; nobody is waiting for the report.
  }
}

/**
 * In the daemon, first thing: closes the descriptors the starting command's own parent leaked into it (a
 * shell's redirections, a CI runner's pipes), before any program the daemon starts inherits them too. A
 * daemon holding them would keep whoever waits for their end waiting. They are the ones without
 * close-on-exec, which Node sets on everything it opens. Linux only (/proc); elsewhere a no-op.
 */
export function closeInheritedFiles(): void {
  let fds: string[];
  try {
    fds = fs.readdirSync('/proc/self/fd');
  } catch {
    return;
  }
  for (const name of fds) {
    const fd = Number(name);
    if (fd <= 2 || fd === REPORT_FD) continue;
    try {
      const flags = /^flags:\s*([0-7]+)$/m.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1];
      if (flags !== undefined && (parseInt(flags, 8) & O_CLOEXEC) === 0) fs.closeSync(fd);
    } catch {
      // Gone already (the directory listing's own descriptor).
    }
  }
}

/**
 * In the daemon: let go of the starting directory, then tell the starting command that the proxy
 * listens. Once that command has exited, the daemon is fully detached.
 */
export function reportReady(): void {
  // Every path was resolved at start-up; a daemon must not keep the directory it was started in busy.
  process.chdir('/');
  send('ready');
}

/** In the daemon: tell the starting command why the proxy could not start, and the exit code to use. */
export function reportFailure(code: number, message: string): void {
  send(`error ${code} ${message.replace(/\n/g, ' ')}`);
}

/**
 * Writes the process id to `path` and removes the file again when the process exits (unless another
 * process has written its own id there meanwhile).
 * @throws StartupError when the file cannot be written.
 */
export function writePidFile(path: string): void {
  try {
    fs.writeFileSync(path, `${process.pid}\n`);
  } catch (err) {
    throw new StartupError(`cannot write pid file ${path}: ${systemErrorText(err, { creating: true })}`);
  }
  process.once('exit', () => {
    try {
      if (fs.readFileSync(path, 'utf8').trim() === String(process.pid)) fs.unlinkSync(path);
    } catch {
      // already gone
    }
  });
}
