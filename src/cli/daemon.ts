import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';

/**
 * Daemon mode (`-D`). Node cannot fork, so the command starts a detached copy of itself (a new session,
 * no terminal, stdio closed) and waits on a pipe until the copy reports that it listens, or why it could
 * not start. The starting command thus exits 0 only once the daemon serves, and prints the daemon's
 * start-up error in the foreground otherwise.
 */

/** Marks the detached copy; its value is the fd of the report pipe. */
const CHILD_ENV = 'WEBSOCKIFY_DAEMON_REPORT_FD';
const REPORT_FD = 3;

/** True in the detached copy started by {@link detach}. */
export function isDaemonChild(): boolean {
  return process.env[CHILD_ENV] !== undefined;
}

/**
 * Starts the detached copy with the same arguments and waits for its report.
 * @returns the exit code for the starting command: 0 once the daemon listens, else the daemon's code.
 */
export async function detach(): Promise<number> {
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    detached: true,
    stdio: ['ignore', 'ignore', 'ignore', 'pipe'],
    env: { ...process.env, [CHILD_ENV]: String(REPORT_FD) },
  });
  const pipe = child.stdio[REPORT_FD] as NodeJS.ReadableStream;
  let report = '';
  pipe.setEncoding('utf8');
  pipe.on('data', (text: string) => (report += text));
  const exited = new Promise<number>((resolve) => child.once('exit', (code, signal) => resolve(code ?? 128 + (signal ? os.constants.signals[signal] : 0))));
  await new Promise<void>((resolve) => pipe.once('close', () => resolve()));
  const [status, ...rest] = report.trim().split(' ');
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
  try {
    fs.writeSync(fd, `${line}\n`);
    fs.closeSync(fd);
  } catch {
    // The starting command is gone; nobody is waiting for the report.
  }
  delete process.env[CHILD_ENV];
}

/** In the daemon: tell the starting command that the proxy listens, and leave the starting directory. */
export function reportReady(): void {
  send('ready');
  // A daemon must not keep the directory it was started in busy; every path was resolved at start-up.
  process.chdir('/');
}

/** In the daemon: tell the starting command why the proxy could not start, and the exit code to use. */
export function reportFailure(code: number, message: string): void {
  send(`error ${code} ${message.replace(/\n/g, ' ')}`);
}

/** Writes the daemon's pid to `path` and removes the file again when the process exits. */
export function writePidFile(path: string): void {
  fs.writeFileSync(path, `${process.pid}\n`);
  process.once('exit', () => {
    try {
      if (fs.readFileSync(path, 'utf8').trim() === String(process.pid)) fs.unlinkSync(path);
    } catch {
      // already gone
    }
  });
}
