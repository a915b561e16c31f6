// A telnet service for the browser tests: Debian's telnetd, one per connection as inetd runs it, with a
// shell in place of login.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';

export const TELNETD = '/usr/sbin/telnetd';
/** The shell's prompt. */
export const PROMPT = 'wstelnet$ ';

/** A process and a promise of its exit, stopped by PID in cleanup. */
export interface Started {
  proc: ChildProcess;
  exited: Promise<unknown>;
}

/** Stops a process we started: SIGTERM, then SIGKILL if it lingers. */
export async function stopProcess(started: Started): Promise<void> {
  const { proc, exited } = started;
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

export function track(proc: ChildProcess): Started {
  return { proc, exited: once(proc, 'exit').catch(() => undefined) };
}

/**
 * A telnet service as inetd runs one: each connection accepted here gets its own telnetd with the socket
 * as stdin and stdout. `-E` runs a shell script in place of login (no password prompt); telnetd gives it
 * a pty sized by NAWS and TERM from TERMINAL-TYPE.
 */
export async function startTelnetService(dir: string): Promise<{ port: number; stop(): Promise<void> }> {
  const shell = join(dir, 'shell.sh');
  writeFileSync(shell, `#!/bin/sh\nexport PS1='${PROMPT}' HOME='${dir}'\ncd '${dir}'\nexec /bin/bash --norc --noprofile -i\n`, {
    mode: 0o755,
  });
  const daemons: Started[] = [];
  // Paused, so that no byte is read here before telnetd gets the socket.
  const server = net.createServer({ pauseOnConnect: true }, (socket) => {
    const proc = spawn(TELNETD, ['-h', '-E', shell], { stdio: [socket, socket, 'ignore'] });
    daemons.push(track(proc));
    proc.on('spawn', () => socket.destroy());
    proc.on('error', () => socket.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    stop: async () => {
      server.close();
      await Promise.all(daemons.map(stopProcess));
    },
  };
}
