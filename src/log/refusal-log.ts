import type { Logger } from './logger.js';

/** Addresses followed at once; refusals from others beyond this share one line (an attack from many addresses). */
export const MAX_FOLLOWED_ADDRESSES = 10_000;
/** The key under which addresses beyond {@link MAX_FOLLOWED_ADDRESSES} are counted together. */
const OTHERS = 'other addresses';

interface Window {
  /** When this address's first logged refusal was (ms, monotonic). */
  since: number;
  /** Refusals not logged since. */
  suppressed: number;
}

/**
 * Refusal log lines, at most one per client address per interval: the first refusal of an interval is
 * logged as it comes, the rest are counted and told in one line at the interval's end ("refused N more
 * from X in the last 10 s"). 8,000 slow clients refused every few seconds then write a line per address
 * and interval, not one per connection. Memory is bounded by {@link MAX_FOLLOWED_ADDRESSES}.
 */
export class RefusalLog {
  private readonly windows = new Map<string, Window>();
  private timer: NodeJS.Timeout | undefined;
  private readonly ms: number;

  /** @param seconds the interval; 0 logs every refusal. */
  constructor(
    private readonly logger: Logger,
    readonly seconds: number,
  ) {
    this.ms = seconds * 1000;
  }

  /**
   * Logs a refusal from `address` (the client's IP address, or any stable name of it), or counts it
   * when one from that address was logged in this interval.
   */
  refused(address: string, fields: Record<string, unknown>, message: string): void {
    if (this.ms === 0) {
      this.logger.info(fields, message);
      return;
    }
    const key = this.windows.has(address) || this.windows.size < MAX_FOLLOWED_ADDRESSES ? address : OTHERS;
    const window = this.windows.get(key);
    if (window) {
      window.suppressed++;
      return;
    }
    this.windows.set(key, { since: performance.now(), suppressed: 0 });
    this.logger.info(fields, message);
    // One timer for every address, running only while some are followed.
    this.timer ??= setInterval(() => this.sweep(), Math.min(this.ms, 1000)).unref();
  }

  /** Ends the intervals that are over, logging what each suppressed. */
  private sweep(): void {
    const now = performance.now();
    for (const [address, window] of this.windows) {
      if (now - window.since < this.ms) continue;
      this.windows.delete(address);
      if (window.suppressed > 0) {
        this.logger.info(
          { event: 'refused-more', client: address, count: window.suppressed, seconds: this.seconds },
          `refused ${window.suppressed} more from ${address} in the last ${this.seconds} s`,
        );
      }
    }
    if (this.windows.size === 0) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }
}

/** Each logger's refusal log, set by {@link limitRefusalLog}; loggers without one log every refusal. */
const refusalLogs = new WeakMap<Logger, RefusalLog>();

/**
 * From now on, refusals logged through `logger` ({@link logRefused}) are logged once per address per
 * `seconds` (0: every one). A proxy calls this once for its logger as it starts.
 */
export function limitRefusalLog(logger: Logger, seconds: number): void {
  refusalLogs.set(logger, new RefusalLog(logger, seconds));
}

/**
 * Logs a refusal (of a request or a connection) through the logger's {@link RefusalLog}: every refusal
 * path goes through here, so that no client can flood the log.
 * @param address the client's IP address (without port), or 'unix-socket'.
 */
export function logRefused(logger: Logger, address: string, fields: Record<string, unknown>, message: string): void {
  const log = refusalLogs.get(logger);
  if (log) log.refused(address, fields, message);
  else logger.info(fields, message);
}
