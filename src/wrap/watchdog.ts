import { type ChildProcess, spawn } from 'node:child_process';
import type net from 'node:net';

/**
 * The watchdog's script (POSIX sh). It reads the program's process group from the proxy, one line per
 * start (an empty line when the program has exited: see {@link Watchdog.forget}); the end of its input means that the proxy is stopping or gone, however it went (even SIGKILL:
 * the kernel closes the pipe). It then sends SIGTERM to the program's processes, waits up to the grace
 * period for them to exit, and sends SIGKILL to those left.
 *
 * The program's processes: those of its process group (not zombies), and every process whose initial
 * environment carries the wrap token, which finds daemons that left the group (setsid) as long as
 * they did not clear or overwrite their environment.
 */
const SCRIPT = `
token=$1 grace=$2 group=
while read -r line; do group=$line; done
set -f
members() {
  if [ -n "$group" ]; then
    for stat in /proc/[0-9]*/stat; do
      { read -r line < "$stat"; } 2>/dev/null || continue
      set -- \${line##*") "}
      [ "$3" = "$group" ] && [ "$1" != Z ] && { pid=\${stat#/proc/}; echo "\${pid%/stat}"; }
    done
  fi
  set +f
  grep -lzxF "WEBSOCKIFY_WRAP_TOKEN=$token" /proc/[0-9]*/environ 2>/dev/null | sed -e 's|^/proc/||' -e 's|/environ$||'
  set -f
}
signal() { for pid in $(members); do kill -s "$1" "$pid" 2>/dev/null; done; }
signal TERM
ticks=0
while [ -n "$(members)" ] && [ "$ticks" -lt "$((grace * 10))" ]; do sleep 0.1; ticks=$((ticks + 1)); done
signal KILL
`;

/** The variable that marks a wrapped program's processes; its value is the proxy's random token. */
export const TOKEN_VARIABLE = 'WEBSOCKIFY_WRAP_TOKEN';

/**
 * A small shell process that stops the wrapped program when the proxy stops or dies. It runs in a
 * session of its own, so a terminal's Ctrl-C or a signal to the proxy's process group does not take
 * it down before it has done its work.
 */
export class Watchdog {
  private readonly process: ChildProcess;
  private readonly exited: Promise<unknown>;

  /**
   * @param token the value of {@link TOKEN_VARIABLE} in the program's environment.
   * @param graceSeconds how long the program has between SIGTERM and SIGKILL.
   */
  constructor(token: string, graceSeconds: number) {
    this.process = spawn('/bin/sh', ['-c', SCRIPT, 'websockify-watchdog', token, String(Math.ceil(graceSeconds))], {
      detached: true,
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    // A watchdog that cannot start ('error', no 'exit') leaves the shim's parent-death signal as the only guard.
    this.exited = new Promise((resolve) => {
      this.process.once('exit', resolve);
      this.process.once('error', resolve);
    });
    // EPIPE when the watchdog is gone: the shim's parent-death signal is then the only guard.
    this.process.stdin!.on('error', () => undefined);
    // Neither may keep the proxy's event loop alive: the watchdog exists for the proxy's end.
    this.process.unref();
    (this.process.stdin as net.Socket).unref();
  }

  /** Tells the watchdog the process group of the program's latest start. */
  track(processGroup: number): void {
    this.send(`${processGroup}`);
  }

  /**
   * The program's main process has exited: the group id is forgotten, since once the group's last
   * process is gone the number may come back as an unrelated group. Processes it left behind are still
   * found by the token.
   */
  forget(): void {
    this.send('');
  }

  private send(line: string): void {
    // After finish() the watchdog no longer listens: the program is being stopped as a whole.
    if (!this.process.stdin!.writableEnded) this.process.stdin!.write(`${line}\n`);
  }

  /** Stops the program (SIGTERM, then SIGKILL after the grace period) and resolves when that is done. */
  async finish(): Promise<void> {
    this.process.stdin!.end();
    // Now the proxy waits for it.
    this.process.ref();
    await this.exited;
  }
}
