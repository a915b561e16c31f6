/** A bridge whose client is paused, asked once a probe interval whether its client is still there. */
export interface Probed {
  probeClient(): void;
}

/** How often paused clients are probed. */
export const PROBE_INTERVAL_MS = 1000;

const paused = new Set<Probed>();
let timer: NodeJS.Timeout | undefined;

function probeAll(): void {
  for (const bridge of paused) bridge.probeClient();
}

/**
 * Watches a bridge while its client is paused (its target's backlog is above the high-water mark). A
 * paused socket is not read, so a client that leaves is never seen: its FIN waits behind the bytes it
 * sent. One timer for all such bridges (none while no client is paused) lets each probe its client.
 */
export function watchPaused(bridge: Probed): void {
  paused.add(bridge);
  if (timer === undefined) {
    timer = setInterval(probeAll, PROBE_INTERVAL_MS);
    timer.unref();
  }
}

/** Stops watching a bridge: its client was resumed, or has gone. */
export function unwatchPaused(bridge: Probed): void {
  if (!paused.delete(bridge) || paused.size > 0 || timer === undefined) return;
  clearInterval(timer);
  timer = undefined;
}
