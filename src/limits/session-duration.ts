/** What a session clock can end. */
export interface Expiring {
  /** Closes the session with 1008 and `reason`, after what is in flight. */
  expire(reason: string): void;
}

/**
 * `--max-session-duration`: each session is closed (1008, after the bytes in flight) once it has lasted
 * that long. One timer per session, only when the limit is on.
 */
export class SessionClock<S extends Expiring> {
  private readonly timers = new Map<S, NodeJS.Timeout>();
  private readonly reason: string;

  /** @param seconds the longest a session may last. */
  constructor(private readonly seconds: number) {
    this.reason = `Session longer than ${seconds} s (--max-session-duration)`;
  }

  /** A session opened. */
  start(session: S): void {
    this.timers.set(
      session,
      setTimeout(() => {
        this.timers.delete(session);
        session.expire(this.reason);
      }, this.seconds * 1000),
    );
  }

  /** A session ended. */
  stop(session: S): void {
    clearTimeout(this.timers.get(session));
    this.timers.delete(session);
  }
}
