import type { Logger } from '../log/logger.js';

/** When the proxy stops by itself; every field 0/false = never. */
export interface LifecyclePolicy {
  /** Serve one session, then stop (`--run-once`). */
  runOnce: boolean;
  /** Seconds after start to stop accepting; the proxy stops once no session is open (`--timeout`). */
  timeout: number;
  /** Seconds without any open session before the proxy stops (`--idle-timeout`). */
  idleTimeout: number;
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

  /** The last open session ended. */
  idle(): void {
    if (this.policy.runOnce) this.actions.stop('--run-once: the session ended');
    else if (!this.accepting) this.actions.stop('--timeout reached and no session is open');
    else this.armIdle();
  }

  /** The proxy is stopping: no more clocks. */
  dispose(): void {
    clearTimeout(this.timeoutTimer);
    clearTimeout(this.idleTimer);
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
