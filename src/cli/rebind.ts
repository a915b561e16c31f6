#!/usr/bin/env node
import { spawn } from 'node:child_process';
import { StartupError } from '../errors.js';
import { exitStatus } from '../exit-status.js';
import { portFromText } from '../targets/address.js';
import { locateShim, shimEnvironment } from '../wrap/shim.js';

/**
 * `rebind OLD_PORT NEW_PORT [--] PROGRAM [ARGS...]`: runs PROGRAM in the foreground with the bind()
 * shim, so that its binds to OLD_PORT (any address, IPv4 or IPv6) go to NEW_PORT on loopback. For
 * running a program with a moved port outside the proxy, for example to put it behind another one.
 *
 * The program shares the terminal and the process group: a terminal's Ctrl-C (SIGINT) or Ctrl-\ reaches
 * it directly, so rebind itself ignores those; SIGTERM and SIGHUP sent to rebind are passed on. When
 * rebind dies, the program gets SIGTERM (the shim's parent-death signal). rebind exits with the
 * program's status (128 + n for a signal n), 127 when the program is not found, 126 when it cannot run.
 */

const USAGE = 'usage: rebind OLD_PORT NEW_PORT [--] PROGRAM [ARGS...]';

/** A port 1-65535 from the command line. */
function port(text: string | undefined, what: string): number {
  const port = text === undefined ? undefined : portFromText(text);
  if (port === undefined) throw new Error(`${what}: expected a port 1-65535, got '${text ?? ''}'`);
  return port;
}

/** Runs the program and resolves with the status to exit with. */
async function main(argv: string[]): Promise<number> {
  if (argv[0] === '-h' || argv[0] === '--help') {
    process.stdout.write(
      `${USAGE}\nRuns PROGRAM with its binds to OLD_PORT (any address, IPv4 or IPv6) moved to NEW_PORT on loopback (127.0.0.1 or ::1).\n`,
    );
    return 0;
  }
  let oldPort: number;
  let newPort: number;
  let command: string[];
  try {
    oldPort = port(argv[0], 'OLD_PORT');
    newPort = port(argv[1], 'NEW_PORT');
    if (oldPort === newPort) throw new Error('OLD_PORT and NEW_PORT are the same port');
    command = argv.slice(argv[2] === '--' ? 3 : 2);
    if (command.length === 0) throw new Error('missing the PROGRAM to run');
  } catch (err) {
    process.stderr.write(`rebind: error: ${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  let shim: string;
  try {
    shim = locateShim();
  } catch (err) {
    if (!(err instanceof StartupError)) throw err;
    process.stderr.write(`rebind: ${err.message}\n`);
    return 1;
  }
  const child = spawn(command[0]!, command.slice(1), {
    stdio: 'inherit',
    env: shimEnvironment(process.env, shim, { oldPort, newPort, parentPid: process.pid }),
  });
  const forward = (signal: NodeJS.Signals): void => void child.kill(signal);
  process.on('SIGTERM', forward);
  process.on('SIGHUP', forward);
  process.on('SIGINT', () => undefined);
  process.on('SIGQUIT', () => undefined);
  return new Promise((resolve) => {
    child.once('error', (err: NodeJS.ErrnoException) => {
      if (child.pid !== undefined) return;
      process.stderr.write(`rebind: ${command[0]}: ${err.code === 'ENOENT' ? 'command not found' : err.message}\n`);
      resolve(err.code === 'ENOENT' ? 127 : 126);
    });
    child.once('exit', (code, signal) => resolve(exitStatus(code, signal)));
  });
}

process.exit(await main(process.argv.slice(2)));
