import type { Logger } from '../log/logger.js';
import type { Bridge } from './bridge.js';

/** A bridge with the number its log lines name. */
export interface Beating {
  readonly id: number;
  readonly bridge: Bridge | undefined;
}

/**
 * `--heartbeat SECONDS`: one timer for all sessions (not one per session) pings every client each
 * interval; a client whose pong has not come back by the next ping is dropped.
 * @param sessions read at each beat, so sessions come and go without telling the heartbeat.
 * @returns a function that stops the heartbeat.
 */
export function startHeartbeat(seconds: number, sessions: Iterable<Beating>, logger: Logger): () => void {
  const timer = setInterval(() => {
    for (const { id, bridge } of sessions) {
      if (bridge && !bridge.heartbeat()) {
        logger.info({ event: 'heartbeat-timeout', conn: id }, `conn ${id}: no pong within ${seconds} s, dropping`);
      }
    }
  }, seconds * 1000);
  return () => clearInterval(timer);
}
