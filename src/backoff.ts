/** Options of a {@link RestartBackoff}. */
export interface RestartBackoffOptions {
  /** Delay after a healthy run, in milliseconds; each quick death in a row doubles it. */
  initialMs: number;
  /** The longest delay, in milliseconds. */
  maxMs: number;
  /** A run at least this long (milliseconds) counts as healthy: the delay starts over. */
  healthyMs: number;
}

/**
 * Restart delays for a process that keeps dying (a wrapped program, a worker): quick deaths in a row
 * back off exponentially, so that a process that cannot start does not burn a core being restarted.
 */
export class RestartBackoff {
  private quickDeaths = 0;

  constructor(private readonly options: RestartBackoffOptions) {}

  /** The delay before the next start, given how long (milliseconds) the run that just ended lasted. */
  next(ranMs: number): number {
    const { initialMs, maxMs, healthyMs } = this.options;
    this.quickDeaths = ranMs >= healthyMs ? 0 : this.quickDeaths + 1;
    return Math.min(maxMs, initialMs * 2 ** this.quickDeaths);
  }
}
