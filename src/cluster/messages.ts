import type { ListenSpec } from '../config.js';
import type { SessionEndInfo, SessionInfo } from '../endpoint/session.js';
import type { LimitPrimaryMessage, LimitWorkerMessage } from '../limits/cluster-limits.js';
import type { LogOptions } from '../log/logger.js';
import type { MetricsJson } from '../metrics/cluster.js';
import type { ProxyOptions } from '../options.js';
import type { LoopbackHost } from '../wrap/loopback.js';

/**
 * Session numbers a worker may give without telling the primary: it announces the next block while half
 * of this one is left, so the primary always knows a number past any the worker has given, and a
 * replacement starts after it (with no message per session).
 */
export const ID_BLOCK = 64;

/** The environment variable that carries a worker's {@link WorkerInit}, as JSON. */
export const WORKER_INIT_VARIABLE = 'WEBSOCKIFY_WORKER_INIT';

/** What a worker is started with: the options as given, and what the primary decided for it. */
export interface WorkerInit {
  /** The proxy's options (named plugins and files only: they are read again in the worker). */
  options: ProxyOptions;
  log: LogOptions;
  /** The primary's directory when it started, which relative paths in {@link options} are relative to. */
  cwd: string;
  /** This worker's number, 1 to {@link count}; a replacement keeps the number of the worker it replaces. */
  index: number;
  count: number;
  /** The first session number to give; it goes up by {@link count}, {@link ID_BLOCK} numbers at a time. */
  firstId: number;
  /** Where to listen: the port the first worker got when 0 was asked for. */
  listen: ListenSpec;
  reusePort: boolean;
  /** Another worker listens already (so the Unix socket file is not a stale one). */
  joining: boolean;
  /** Send each session's opening facts (somebody listens to 'session-open'). */
  sessionOpen: boolean;
  /** Send each session's closing facts (somebody listens to 'session-close'). */
  sessionClose: boolean;
  /** The primary's wrapped program, which every session goes to. */
  program?: { host: LoopbackHost; port: number; description: string } | undefined;
}

/** Messages from a worker to the primary. */
export type WorkerMessage =
  | { type: 'listening'; address: string }
  /** The worker could not start; it exits next. */
  | { type: 'failed'; message: string }
  /** The worker's first open session (none was open before). */
  | { type: 'busy' }
  /** The worker's last open session ended. */
  | { type: 'idle' }
  /** The worker may give session numbers up to this one. */
  | { type: 'reserve'; upTo: number }
  | { type: 'session-open'; info: SessionInfo }
  | { type: 'session-close'; info: SessionEndInfo }
  /** `--metrics-listen`: the worker's metrics, answering the `metrics-request` of the same id. */
  | { type: 'metrics'; id: number; metrics: MetricsJson }
  | LimitWorkerMessage;

/** Messages from the primary to a worker. */
export type PrimaryMessage =
  | { type: 'reload-tls'; why: string }
  /** Close the listener; open sessions go on (a drain, `--timeout`). */
  | { type: 'stop-accepting' }
  /** Stop gracefully and exit. */
  | { type: 'close'; why: string }
  /** The wrapped program was seen listening on this loopback address. */
  | { type: 'program-host'; host: LoopbackHost }
  /** `--metrics-listen`: send your metrics (a scrape asks; nothing is sent otherwise). */
  | { type: 'metrics-request'; id: number }
  | LimitPrimaryMessage;
