import type { Logger } from '../log/logger.js';

/** When the proxy stops by itself (every field 0/false = never), and how long a drain lasts. */
export interface LifecyclePolicy {
  /** Serve one session, then stop (`--run-once`). */
  runOnce: boolean;
  /** Seconds after start to stop accepting; the proxy stops once no session is open (`--timeout`). */
  timeout: number;
  /** Seconds without any open session before the proxy stops (`--idle-timeout`). */
  idleTimeout: number;
  /** Seconds a drain lets open sessions go on before the graceful stop (`--drain-timeout`). */
  drainTimeout: number;
}

/** What the lifecycle acts on. */
export interface LifecycleActions {
  /** Close the listener: no new connections, open sessions carry on. */
  stopAccepting(): void;
  /** Stop the proxy gracefully, for the reason given. */
  stop(why: string): void;
  /** How many sessions are open now. */
  sessions(): number;
}

/**
 * The proxy's own stopping rules (`--run-once`, `--timeout`, `--idle-timeout`), told of sessions
 * opening and the last one ending.
 */
export class Lifecycle {
  private accepting = true;
  private timeoutTimer: NodeJS.Timeout | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private drainTimer: NodeJS.Timeout | undefined;
  /** While draining: the reason to stop with once the last session ends. */
  private drainReason: string | undefined;

  constructor(
    private readonly policy: LifecyclePolicy,
    private readonly actions: LifecycleActions,
    private readonly logger: Logger,
  ) {}

  /** The proxy listens: the clocks start. */
  started(): void {
    const { timeout } = this.policy;
    this.armIdle();
    if (timeout <= 0) return;
    this.timeoutTimer = setTimeout(() => {
      this.logger.info({ event: 'timeout' }, `--timeout ${timeout} s reached: no new connections`);
      this.closeListener();
      if (this.actions.sessions() === 0) this.actions.stop('--timeout reached and no session is open');
    }, timeout * 1000);
  }

  /** A session opened. */
  opened(): void {
    clearTimeout(this.idleTimer);
    if (this.policy.runOnce) this.closeListener();
  }

  /**
   * Stops accepting at once and lets open sessions go on for up to the drain timeout, then stops; stops
   * at once when none is open or the drain timeout is 0.
   */
  drain(why: string): void {
    const { drainTimeout } = this.policy;
    if (this.drainReason !== undefined) return;
    if (drainTimeout <= 0 || this.actions.sessions() === 0) {
      this.actions.stop(why);
      return;
    }
    this.drainReason = why;
    clearTimeout(this.idleTimer);
    this.closeListener();
    this.logger.info(
      { event: 'draining', reason: why, drainTimeout },
      `draining (${why}): no new connections; open sessions may go on for up to ${drainTimeout} s`,
    );
    this.drainTimer = setTimeout(() => this.actions.stop(`${why}; --drain-timeout ${drainTimeout} s reached`), drainTimeout * 1000);
  }

  /** Whether a drain has begun (the proxy no longer accepts and is not ready for new sessions). */
  get draining(): boolean {
    return this.drainReason !== undefined;
  }

  /** The last open session ended. */
  idle(): void {
    if (this.drainReason !== undefined) this.actions.stop(`${this.drainReason}; the last session ended`);
    else if (this.policy.runOnce) this.actions.stop('--run-once: the session ended');
    else if (!this.accepting) this.actions.stop('--timeout reached and no session is open');
    else this.armIdle();
  }

  /** The proxy is stopping: no more clocks. */
  dispose(): void {
    clearTimeout(this.timeoutTimer);
    clearTimeout(this.idleTimer);
    clearTimeout(this.drainTimer);
  }

  private closeListener(): void {
    if (!this.accepting) return;
    this.accepting = false;
    this.actions.stopAccepting();
  }

  private armIdle(): void {
    const { idleTimeout } = this.policy;
    if (idleTimeout <= 0) return;
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.actions.stop(`--idle-timeout: no session for ${idleTimeout} s`), idleTimeout * 1000);
  }
}
