#!/usr/bin/env node
import '../heap.js';
import { StartupError, UsageError } from '../errors.js';
import { createLogger } from '../log/logger.js';
import { proxyFor } from '../server/create-proxy.js';
import { ServiceNotifier } from '../service/notify.js';
import { closeInheritedFiles, detach, isDaemonChild, reportFailure, reportReady, writePidFile } from './daemon.js';
import { type ParseResult, parseArgs, usageLine } from './options.js';

/** Entry point of the `websockify` command: exit 2 for a usage error, 1 for a failed start, 0 after a clean stop. */
async function main(): Promise<number> {
  let parsed: ParseResult;
  try {
    parsed = parseArgs(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`websockify: error: ${err.message}\n${usageLine()}\n`);
    return 2;
  }
  if (parsed.kind === 'exit') {
    process.stdout.write(parsed.output);
    return 0;
  }
  const { config, options } = parsed;
  const daemonChild = config.daemon.detach && isDaemonChild();
  if (daemonChild) closeInheritedFiles();
  // The starting command waits for the detached copy's report and exits with its outcome.
  if (config.daemon.detach && !daemonChild) return detach(config.proxy.listen.kind === 'inetd');
  try {
    const log = { ...config.log, detached: daemonChild };
    const logger = createLogger(log);
    const proxy = proxyFor(options, { proxy: config.proxy, log }, logger);
    // systemd's Type=notify: READY=1, STATUS=, STOPPING=1 (before listen(): workers must report sessions).
    const notifier = ServiceNotifier.follow(proxy, logger);
    // Before listening: SIGHUP's default action ends the process, and a reload may come as soon as we listen.
    process.on('SIGHUP', () => proxy.reloadTls('SIGHUP'));
    // SIGTERM drains (with --drain-timeout); SIGINT, or SIGTERM while draining, stops gracefully at once;
    // a signal while stopping exits at once.
    let state: 'starting' | 'serving' | 'draining' | 'stopping' = 'starting';
    let early: NodeJS.Signals | undefined;
    const onSignal = (signal: NodeJS.Signals): void => {
      // Heard from the start (the listening line may be read before listen() returns here), acted on once
      // listening; a second one while a slow start goes on exits at once.
      if (state === 'starting' && !early) {
        early = signal;
        return;
      }
      if (state === 'stopping' || state === 'starting') {
        logger.warn({ event: 'forced-exit', signal }, `second ${signal}: exiting at once`);
        process.exit(1);
      }
      notifier?.stopping();
      if (signal === 'SIGTERM' && state === 'serving' && config.proxy.drainTimeout > 0) {
        state = 'draining';
        void proxy.drain(`received ${signal}`);
        return;
      }
      state = 'stopping';
      void proxy.close(`received ${signal}`);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    await proxy.listen();
    state = 'serving';
    if (early) onSignal(early);
    // Only now: whoever reads the pid file (or sees the starting command exit) may signal at once.
    if (config.daemon.pidFile) writePidFile(config.daemon.pidFile);
    if (daemonChild) reportReady();
    await proxy.closed;
    // --wrap-mode exit: the program's status, when it ended by itself.
    return proxy.programStatus ?? 0;
  } catch (err) {
    // The detached copy's stderr is /dev/null: even an unexpected error is worth a line in the foreground.
    if (daemonChild) reportFailure(1, err instanceof Error ? err.message : String(err));
    if (!(err instanceof StartupError)) throw err;
    if (!daemonChild) process.stderr.write(`websockify: ${err.message}\n`);
    return 1;
  }
}

process.exitCode = await main();
// Lingering handles (a client that never read its last bytes) must not keep a stopped proxy alive.
process.exit();
