import type { Logger } from '../log/logger.js';

/** Addresses with failures, and banned addresses, kept at once (each); beyond, the oldest are forgotten. */
export const MAX_BAN_ADDRESSES = 100_000;

interface Failures {
  count: number;
  /** The first failure of this window (ms, monotonic). */
  since: number;
}

/**
 * `--ban-after N --ban-time SECONDS`: an address with N failed authentications, unknown or refused
 * tokens within SECONDS is banned for SECONDS. Both tables are bounded ({@link MAX_BAN_ADDRESSES}):
 * expired entries go first, then the oldest; an attacker with more addresses than that can only get old
 * bans forgotten.
 */
export class BanList {
  private readonly failures = new Map<string, Failures>();
  /** Banned addresses and the end of their ban (ms, monotonic), in the order they were banned. */
  private readonly bans = new Map<string, number>();
  private readonly ms: number;

  /**
   * @param after failures within `seconds` that ban an address.
   * @param seconds the failures' window, and the ban's length.
   */
  constructor(
    readonly after: number,
    readonly seconds: number,
    private readonly cap = MAX_BAN_ADDRESSES,
  ) {
    this.ms = seconds * 1000;
  }

  /**
   * Counts a failure of `address`.
   * @returns true when this failure bans it.
   */
  failed(address: string, now = performance.now()): boolean {
    if (this.bannedFor(address, now) > 0) return false;
    let entry = this.failures.get(address);
    if (!entry || now - entry.since >= this.ms) {
      this.failures.delete(address);
      makeRoom(this.failures, this.cap, (old) => now - old.since >= this.ms);
      entry = { count: 0, since: now };
      this.failures.set(address, entry);
    }
    entry.count++;
    if (entry.count < this.after) return false;
    this.failures.delete(address);
    this.ban(address, this.seconds, now);
    return true;
  }

  /** Bans `address` for `seconds` from `now` (a ban decided elsewhere: the primary of `--workers`). */
  ban(address: string, seconds: number, now = performance.now()): void {
    this.bans.delete(address);
    makeRoom(this.bans, this.cap, (until) => until <= now);
    this.bans.set(address, now + seconds * 1000);
  }

  /** Seconds left of `address`'s ban (rounded up), or 0 when it is not banned. */
  bannedFor(address: string, now = performance.now()): number {
    const until = this.bans.get(address);
    if (until === undefined) return 0;
    if (until <= now) {
      this.bans.delete(address);
      return 0;
    }
    return Math.ceil((until - now) / 1000);
  }

  /** The bans in force: address and seconds left (to tell a new worker). */
  *current(now = performance.now()): Generator<[address: string, seconds: number]> {
    for (const [address, until] of this.bans) if (until > now) yield [address, (until - now) / 1000];
  }
}

/** Below `cap` entries in `map`: expired ones from the oldest on, then the oldest whatever it is. */
function makeRoom<V>(map: Map<string, V>, cap: number, expired: (value: V) => boolean): void {
  if (map.size < cap) return;
  for (const [key, value] of map) {
    if (!expired(value)) break;
    map.delete(key);
  }
  if (map.size >= cap) map.delete(map.keys().next().value as string);
}

/**
 * The bans as the handshake stage uses them: in one process a {@link BanList} ({@link localBans}); in a
 * worker of `--workers N`, failures go to the primary, which tells every worker of each ban it decides.
 */
export interface Bans {
  /** Seconds left of `address`'s ban, or 0. */
  bannedFor(address: string): number;
  /** A failed authentication, or an unknown or refused token, from `address`. */
  failed(address: string): void;
}

/** The line that says an address is banned, from whichever process decides it. */
export function logBan(logger: Logger, address: string, list: BanList): void {
  logger.warn(
    { event: 'ban', client: address, seconds: list.seconds, failures: list.after },
    `banned ${address} for ${list.seconds} s after ${list.after} failed authentications or bad tokens`,
  );
}

/** Bans decided in this process. */
export function localBans(list: BanList, logger: Logger): Bans {
  return {
    bannedFor: (address) => list.bannedFor(address),
    failed: (address) => {
      if (list.failed(address)) logBan(logger, address, list);
    },
  };
}
