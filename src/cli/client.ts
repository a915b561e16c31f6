#!/usr/bin/env node
import { once } from 'node:events';
import { Duplex } from 'node:stream';
import { connectToWebSocket } from '../client/connect.js';
import { listenForClients } from '../client/listen.js';
import type { ClientOptions } from '../client/options.js';
import { StartupError, UsageError } from '../errors.js';
import { createLogger, type Logger } from '../log/logger.js';
import { type ClientCommand, type ClientParseResult, clientUsageLine, loadClientFiles, parseClientArgs } from './client-options.js';

/** How long a stop by signal waits for open sessions to close before exiting anyway. */
const STOP_GRACE_MS = 2000;

/**
 * One session on stdin/stdout. The process's exit is the local side's FIN, so it exits as soon as the
 * WebSocket is closed and everything received is written out.
 * @returns 0 after a session, 1 when the WebSocket could not be opened.
 */
async function runStdio(command: ClientCommand, options: ClientOptions): Promise<number> {
  const local = Duplex.from({ readable: process.stdin, writable: process.stdout });
  const session = connectToWebSocket(local, command.url, options);
  let opened = false;
  session.ws.once('open', () => (opened = true));
  await Promise.race([session.closed, once(local, 'finish')]);
  return opened ? 0 : 1;
}

/** Listens until a signal (or, with --run-once, until the one session is over). */
async function runListener(command: ClientCommand, options: ClientOptions, logger: Logger): Promise<number> {
  if (command.mode.kind !== 'listen') throw new Error('not a listening command');
  const listener = await listenForClients(command.url, { ...options, listen: command.mode.listen, runOnce: command.runOnce });
  logger.info(
    { event: 'listening', listen: listener.address, url: new URL(command.url).origin },
    `listening on ${listener.address}, connecting each to ${new URL(command.url).origin}`,
  );
  const onSignal = (signal: NodeJS.Signals): void => {
    logger.info({ event: 'stopping', signal }, `received ${signal}, stopping`);
    listener.close();
    setTimeout(() => listener.destroy(), STOP_GRACE_MS).unref();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  await listener.closed;
  return 0;
}

/** Entry point of `websockify-client`: exit 2 for a usage error, 1 for a failed start or session. */
async function main(): Promise<number> {
  let parsed: ClientParseResult;
  try {
    parsed = parseClientArgs(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`websockify-client: error: ${err.message}\n${clientUsageLine()}\n`);
    return 2;
  }
  if (parsed.kind === 'exit') {
    process.stdout.write(parsed.output);
    return 0;
  }
  const { command } = parsed;
  try {
    const logger = createLogger(command.log);
    const options = { ...loadClientFiles(command), logger };
    return command.mode.kind === 'stdio' ? await runStdio(command, options) : await runListener(command, options, logger);
  } catch (err) {
    if (!(err instanceof StartupError)) throw err;
    process.stderr.write(`websockify-client: ${err.message}\n`);
    return 1;
  }
}

process.exitCode = await main();
// A local peer that never closes its side must not keep a stopped client alive.
process.exit();
