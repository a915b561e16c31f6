import { UsageError } from '../errors.js';

/** The first file descriptor a service manager passes (after stdin, stdout and stderr). */
export const LISTEN_FDS_START = 3;

/** The variables of systemd's socket activation protocol (sd_listen_fds(3)). */
const VARIABLES = ['LISTEN_PID', 'LISTEN_FDS', 'LISTEN_FDNAMES'] as const;

/** Whether a service manager passed this process sockets (without taking them: see {@link passedSocket}). */
export function socketActivated(env: NodeJS.ProcessEnv = process.env, pid = process.pid): boolean {
  return env.LISTEN_PID !== undefined && Number(env.LISTEN_PID) === pid && Number(env.LISTEN_FDS) >= 1;
}

/**
 * The listening socket a service manager passed to this process (systemd's socket activation:
 * `LISTEN_PID` is this process and `LISTEN_FDS` counts the sockets from fd 3), or undefined. The
 * variables are then removed, as sd_listen_fds does, so that the wrapped program and the workers do not
 * take the socket for theirs.
 * @throws UsageError when more than one socket was passed: the proxy serves one.
 */
export function passedSocket(env: NodeJS.ProcessEnv = process.env, pid = process.pid): number | undefined {
  if (!socketActivated(env, pid)) return undefined;
  const count = Number(env.LISTEN_FDS);
  for (const name of VARIABLES) delete env[name];
  if (count > 1) {
    throw new UsageError(
      `the service manager passed ${count} sockets (LISTEN_FDS); websockify serves one: give its socket unit a single Listen line`,
    );
  }
  return LISTEN_FDS_START;
}
