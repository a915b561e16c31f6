/** Addresses whose buckets are kept at once; beyond, the least recently seen is forgotten (it may start full again). */
export const MAX_RATE_ADDRESSES = 100_000;

interface Bucket {
  tokens: number;
  /** When `tokens` was counted (ms, monotonic). */
  at: number;
}

/**
 * `--max-handshake-rate N`: a token bucket per client address, refilled at `rate` per second and holding
 * at most `burst`. Memory is bounded by {@link MAX_RATE_ADDRESSES}; buckets are kept in the order of their
 * last use, so the ones forgotten first are those refilled longest ago (most likely full, as if new).
 */
export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  /**
   * @param rate tokens added per second.
   * @param burst the most a bucket holds (a new address starts with this many).
   */
  constructor(
    readonly rate: number,
    readonly burst: number,
    private readonly cap = MAX_RATE_ADDRESSES,
  ) {}

  /**
   * Takes one token for `address`.
   * @returns 0 when one was there, else the seconds until one will be (for `Retry-After`).
   */
  take(address: string, now = performance.now()): number {
    const bucket = this.buckets.get(address);
    let tokens = this.burst;
    if (bucket) {
      tokens = Math.min(this.burst, bucket.tokens + ((now - bucket.at) / 1000) * this.rate);
      this.buckets.delete(address); // set again below: the map's order is the order of last use
    } else if (this.buckets.size >= this.cap) {
      this.buckets.delete(this.buckets.keys().next().value as string);
    }
    if (tokens < 1) {
      this.buckets.set(address, { tokens, at: now });
      return (1 - tokens) / this.rate;
    }
    this.buckets.set(address, { tokens: tokens - 1, at: now });
    return 0;
  }

  /** Addresses followed now. */
  get size(): number {
    return this.buckets.size;
  }
}
