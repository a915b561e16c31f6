import type { Logger } from '../log/logger.js';
import { BanList, type Bans, logBan } from './bans.js';
import { type Claim, ConnectionCounter, type ConnectionCounts } from './connection-counter.js';
import type { SharedLimits } from './limits.js';
import type { LimitsConfig } from './options.js';

/** Limits' messages from a worker to the primary. */
export type LimitWorkerMessage =
  /** Take places for one connection (answered by `limit-answer` with the same id). */
  | { type: 'limit-acquire'; id: number; claims: Claim[] }
  /** A connection closed: give its places back. */
  | { type: 'limit-release'; keys: string[] }
  /** A failed authentication or unknown token from `address`. */
  | { type: 'ban-failure'; address: string };

/** Limits' messages from the primary to a worker. */
export type LimitPrimaryMessage =
  /** `refused`: -1 when every place was taken, else the index of the claim refused. */
  | { type: 'limit-answer'; id: number; refused: number }
  /** Refuse `address` for `seconds` from now. */
  | { type: 'ban'; address: string; seconds: number };

/** Whether the workers must share counts or bans through the primary (otherwise no message is sent). */
export function sharesLimits(config: LimitsConfig): boolean {
  return config.maxConnections > 0 || config.maxConnectionsPerIp > 0 || config.banAfter > 0;
}

/**
 * The primary's side of `--workers N`'s limits: it keeps the connection counts and the failures of every
 * worker, answers their requests for places, and tells every worker of each ban. A worker that dies
 * gives back the places it held.
 */
export class PrimaryLimits {
  private readonly counter = new ConnectionCounter();
  private readonly bans: BanList | undefined;
  /** Places held by each worker (by node:cluster's worker id), to give back when it exits. */
  private readonly held = new Map<number, Map<string, number>>();

  /** @param broadcast sends a message to every worker. */
  constructor(
    config: LimitsConfig,
    private readonly logger: Logger,
    private readonly broadcast: (message: LimitPrimaryMessage) => void,
  ) {
    this.bans = config.banAfter > 0 ? new BanList(config.banAfter, config.banTime) : undefined;
  }

  /** The bans in force, for a worker that starts now. */
  welcome(reply: (message: LimitPrimaryMessage) => void): void {
    if (!this.bans) return;
    for (const [address, seconds] of this.bans.current()) reply({ type: 'ban', address, seconds });
  }

  /**
   * A message of worker `worker`.
   * @returns whether it was one of the limits' (and handled).
   */
  heard(worker: number, message: { type: string }, reply: (message: LimitPrimaryMessage) => void): boolean {
    const limit = message as LimitWorkerMessage;
    switch (limit.type) {
      case 'limit-acquire': {
        const refused = this.counter.acquire(limit.claims);
        if (refused < 0)
          this.count(
            worker,
            limit.claims.map((claim) => claim.key),
            1,
          );
        reply({ type: 'limit-answer', id: limit.id, refused });
        return true;
      }
      case 'limit-release':
        this.counter.release(limit.keys);
        this.count(worker, limit.keys, -1);
        return true;
      case 'ban-failure':
        if (this.bans?.failed(limit.address)) {
          logBan(this.logger, limit.address, this.bans);
          this.broadcast({ type: 'ban', address: limit.address, seconds: this.bans.seconds });
        }
        return true;
      default:
        return false;
    }
  }

  /** Worker `worker` exited: the places it held are free. */
  exited(worker: number): void {
    const held = this.held.get(worker);
    if (!held) return;
    this.held.delete(worker);
    for (const [key, count] of held) this.counter.release(Array.from({ length: count }, () => key));
  }

  private count(worker: number, keys: readonly string[], by: 1 | -1): void {
    const held = this.held.get(worker) ?? new Map<string, number>();
    this.held.set(worker, held);
    for (const key of keys) {
      const count = (held.get(key) ?? 0) + by;
      if (count > 0) held.set(key, count);
      else held.delete(key);
    }
  }
}

/**
 * A worker's side: counts asked of the primary (one round trip per connection, only with a connection
 * limit), failures told to it, and the bans it announces kept here, so that checking one costs no message.
 */
export class WorkerLimits implements ConnectionCounts, Bans {
  private nextId = 1;
  private readonly waiting = new Map<number, (refused: number) => void>();
  /** Bans the primary decided (failures are counted there, not here). */
  private readonly banned = new BanList(1, 1);

  /** @param send sends a message to the primary. */
  constructor(private readonly send: (message: LimitWorkerMessage) => void) {}

  /** What the worker's limits use: the primary's counts and bans when configured, and the number of workers. */
  shared(config: LimitsConfig, workers: number): SharedLimits {
    return {
      counts: config.maxConnections > 0 || config.maxConnectionsPerIp > 0 ? this : undefined,
      bans: config.banAfter > 0 ? this : undefined,
      workers,
    };
  }

  acquire(claims: readonly Claim[]): Promise<number> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.send({ type: 'limit-acquire', id, claims: [...claims] });
    });
  }

  release(keys: readonly string[]): void {
    this.send({ type: 'limit-release', keys: [...keys] });
  }

  bannedFor(address: string): number {
    return this.banned.bannedFor(address);
  }

  failed(address: string): void {
    this.send({ type: 'ban-failure', address });
  }

  /**
   * A message of the primary.
   * @returns whether it was one of the limits' (and handled).
   */
  heard(message: { type: string }): boolean {
    const limit = message as LimitPrimaryMessage;
    switch (limit.type) {
      case 'limit-answer':
        this.waiting.get(limit.id)?.(limit.refused);
        this.waiting.delete(limit.id);
        return true;
      case 'ban':
        this.banned.ban(limit.address, limit.seconds);
        return true;
      default:
        return false;
    }
  }
}
