// A worker process of `--workers N`, forked by the primary (primary.ts) through node:cluster: it serves
// the shared port as a one-process proxy would, and leaves signals, timeouts and the wrapped program to
// the primary, which tells it what to do over the IPC channel.
import '../heap.js';
import { sharesLimits, WorkerLimits } from '../limits/cluster-limits.js';
import { createLogger } from '../log/logger.js';
import { resolveOptions } from '../options.js';
import { InProcessProxy } from '../server/proxy.js';
import { ID_BLOCK, type PrimaryMessage, WORKER_INIT_VARIABLE, type WorkerInit, type WorkerMessage } from './messages.js';
import { ProgramTarget } from './program-target.js';

/**
 * Sends a message to the primary, unless it is gone (node:cluster then ends this process anyway).
 * `then` runs once it is written, so that exiting next does not lose it.
 */
function tell(message: WorkerMessage, then?: () => void): void {
  if (process.connected && process.send) process.send(message, undefined, {}, () => then?.());
  else then?.();
}

const init = JSON.parse(process.env[WORKER_INIT_VARIABLE] ?? 'null') as WorkerInit | null;
if (!init) throw new Error(`${WORKER_INIT_VARIABLE} is not set: this script is started by websockify --workers`);
// Not for the plugins' or anyone else's eyes.
delete process.env[WORKER_INIT_VARIABLE];
// A terminal's Ctrl-C and systemd's stop signal reach every process of the group: the primary decides how
// to stop (drain, graceful close) and tells each worker; a worker cut by the signal would drop its sessions.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => undefined);

// A daemon's primary has left its starting directory by the time it replaces a worker.
process.chdir(init.cwd);
const { proxy: config } = resolveOptions(init.options);
const logger = createLogger({ ...init.log, worker: init.index });
const program = init.program && new ProgramTarget(init.program.host, init.program.port, init.program.description);
// --metrics-listen: the primary serves the listener and asks each worker for its metrics when scraped.
const metrics = config.metricsListen && new (await import('../metrics/registry.js')).ProxyMetrics();
// Counts and bans are the whole group's, kept by the primary; nothing is sent when no limit needs it.
const limits = sharesLimits(config.limits) ? new WorkerLimits((message) => tell(message)) : undefined;
const proxy = new InProcessProxy(
  // The primary keeps the clocks (--timeout, --idle-timeout, --drain-timeout) for all workers together.
  // The bound on unfinished messages is over all workers: each holds its share.
  {
    ...config,
    listen: init.listen,
    wrap: undefined,
    runOnce: false,
    timeout: 0,
    idleTimeout: 0,
    drainTimeout: 0,
    maxUnfinished: Math.floor(config.maxUnfinished / init.count),
    metricsListen: undefined,
  },
  logger,
  {
    sessionIds: { first: init.firstId, step: init.count },
    targets: program,
    share: { reusePort: init.reusePort, joining: init.joining },
    metrics,
    limits: limits ? limits.shared(config.limits, init.count) : { workers: init.count },
  },
);
// Told before the session's log line: whoever reads the log and kills this worker finds the primary knowing.
let busy = false;
let reservedUpTo = init.firstId + (ID_BLOCK - 1) * init.count;
proxy.on('session-open', (info) => {
  if (!busy) {
    busy = true;
    tell({ type: 'busy' });
  }
  if (reservedUpTo - info.id < (ID_BLOCK / 2) * init.count) {
    reservedUpTo += ID_BLOCK * init.count;
    tell({ type: 'reserve', upTo: reservedUpTo });
  }
  if (init.sessionOpen) tell({ type: 'session-open', info });
});
proxy.on('idle', () => {
  busy = false;
  tell({ type: 'idle' });
});
if (init.sessionClose) proxy.on('session-close', (info) => tell({ type: 'session-close', info }));

process.on('message', (message: PrimaryMessage) => {
  if (limits?.heard(message)) return;
  switch (message.type) {
    case 'reload-tls':
      return proxy.reloadTls(message.why);
    case 'stop-accepting':
      return proxy.stopAccepting();
    case 'close':
      return void proxy.close(message.why);
    case 'program-host':
      if (program) program.host = message.host;
      return;
    case 'metrics-request':
      if (metrics) void metrics.registry.getMetricsAsJSON().then((json) => tell({ type: 'metrics', id: message.id, metrics: json }));
  }
});

proxy.listen().then(
  (address) => {
    // Plugins and files are loaded: as the daemon's primary, do not keep the starting directory busy.
    if (init.log.detached) process.chdir('/');
    tell({ type: 'listening', address });
  },
  (err: unknown) => tell({ type: 'failed', message: err instanceof Error ? err.message : String(err) }, () => process.exit(1)),
);
// After the last session's messages; lingering handles (a client that never read its last bytes) must not
// keep a stopped worker alive.
void proxy.closed.then(() => tell({ type: 'idle' }, () => process.exit(0)));
