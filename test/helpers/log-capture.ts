import { type Logger, pino } from 'pino';

/** A real pino logger whose JSON lines are kept in memory, for asserting on log events. */
export interface CapturedLog {
  logger: Logger;
  /** Every event logged so far, parsed. */
  events: Array<Record<string, unknown>>;
  /** Resolves with the first event (already logged or to come) that satisfies `test`. */
  waitFor(test: (event: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
}

/** Creates a debug-level logger writing into memory. */
export function captureLog(): CapturedLog {
  const events: Array<Record<string, unknown>> = [];
  const waiters = new Set<() => void>();
  const logger = pino(
    { level: 'debug', base: null },
    {
      write(line: string) {
        events.push(JSON.parse(line) as Record<string, unknown>);
        for (const wake of waiters) wake();
      },
    },
  );
  const waitFor = (test: (event: Record<string, unknown>) => boolean, timeoutMs = 20_000): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const found = events.find(test);
        if (!found) return;
        waiters.delete(check);
        clearTimeout(timer);
        resolve(found);
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`no matching log event within ${timeoutMs} ms; got ${JSON.stringify(events)}`));
      }, timeoutMs);
      waiters.add(check);
      check();
    });
  return { logger, events, waitFor };
}
