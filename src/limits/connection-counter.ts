/** The key under which every connection of the proxy is counted (`--max-connections`). */
export const ALL_CONNECTIONS = '*';

/** One place to take: under `key` (an IP address, or {@link ALL_CONNECTIONS}), unless `max` are taken. */
export interface Claim {
  key: string;
  max: number;
}

/**
 * Open-connection counts by key. In one process a {@link ConnectionCounter}; in a worker of
 * `--workers N`, the primary's counter asked over IPC (src/limits/cluster-limits.ts), so that limits hold
 * for the whole process group.
 */
export interface ConnectionCounts {
  /**
   * Takes a place under every claim's key, or none when one of them is full.
   * @returns -1 when all were taken, else the index of the first claim refused.
   */
  acquire(claims: readonly Claim[]): number | Promise<number>;
  /** Gives back places taken by {@link acquire}. */
  release(keys: readonly string[]): void;
}

/**
 * Counts in this process. Keys whose count falls to 0 are dropped, so memory is bounded by the open
 * connections (themselves bounded by the limits and the process's descriptors).
 */
export class ConnectionCounter implements ConnectionCounts {
  private readonly counts = new Map<string, number>();

  acquire(claims: readonly Claim[]): number {
    const refused = claims.findIndex(({ key, max }) => (this.counts.get(key) ?? 0) >= max);
    if (refused >= 0) return refused;
    for (const { key } of claims) this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    return -1;
  }

  release(keys: readonly string[]): void {
    for (const key of keys) {
      const count = this.counts.get(key) ?? 0;
      if (count <= 1) this.counts.delete(key);
      else this.counts.set(key, count - 1);
    }
  }

  /** Places taken under `key` now. */
  count(key: string): number {
    return this.counts.get(key) ?? 0;
  }
}
