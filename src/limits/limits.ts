import type { Duplex } from 'node:stream';
import type { Admission } from '../admission/admission.js';
import { checkOrigin } from '../auth/origin.js';
import { type NetAddress, originOf, originOfSocket, peerOf } from '../client-address/origin.js';
import type { TrustedProxies } from '../client-address/trusted-proxies.js';
import { HttpError } from '../errors.js';
import { disarmDeadline } from '../handshake/deadline.js';
import { logConnectionRefusal, writeHttpError } from '../handshake/http-response.js';
import type { Logger } from '../log/logger.js';
import type { RefusalCounter, RefusalReason } from '../metrics/refusals.js';
import { BanList, type Bans, localBans } from './bans.js';
import { ALL_CONNECTIONS, type Claim, ConnectionCounter, type ConnectionCounts } from './connection-counter.js';
import type { LimitsConfig } from './options.js';
import { RateLimiter } from './rate-limiter.js';

/** `Retry-After` of a 503 for too many connections: one may end at any time, so soon, but not at once. */
const RETRY_CONNECTIONS = '5';

/** Where the counts and bans are kept: this process by default; the primary's for a worker of `--workers N`. */
export interface SharedLimits {
  counts?: ConnectionCounts | undefined;
  bans?: Bans | undefined;
  /** Workers sharing the port: each allows its share of `--max-handshake-rate`. Default 1. */
  workers?: number | undefined;
  /** Counts the connections refused at accept (the metrics, when on). */
  counter?: RefusalCounter | undefined;
}

/** The refusals a guesser collects (`--ban-after` counts them): wrong credentials, unknown or refused tokens. */
function isGuess(kind: RefusalReason | undefined): boolean {
  return kind === 'auth' || kind === 'unknown_token' || kind === 'token_rejected';
}

/** The raw socket under a TLS one (as origin.ts finds it), which the counts are kept by. */
function rawOf(socket: Duplex): object {
  return (socket as { _parent?: object })._parent ?? socket;
}

/**
 * The limits of `--max-connections`, `--max-connections-per-ip`, `--max-handshake-rate`, `--ban-after`
 * and `--allow-origin`, applied at the earliest stage that knows what each needs:
 * - at accept, the count of all connections, and a direct client's count (its peer is its address);
 * - after a PROXY header, the count of the client it names;
 * - at the handshake, the count of a client named by a trusted proxy's forwarding headers (and both
 *   counts on an upgrade handler, which sees no accept), then bans, the rate, the origin; failed
 *   authentications and unknown tokens count towards a ban.
 * A connection holds its places until it closes.
 */
export class Limits {
  private readonly counts: ConnectionCounts;
  private readonly bans: Bans | undefined;
  private readonly rate: RateLimiter | undefined;
  private readonly origins: ReadonlySet<string> | undefined;
  private readonly counter: RefusalCounter | undefined;
  /** The keys each connection (by raw socket) holds. */
  private readonly held = new WeakMap<object, string[]>();

  /**
   * @param config the limits.
   * @param trusted `--trusted-proxy`: their connections are counted by the client they name, once known.
   * @param logger where refusals are logged.
   * @param shared where the counts and bans are kept (see {@link SharedLimits}).
   */
  constructor(
    private readonly config: LimitsConfig,
    private readonly trusted: TrustedProxies | undefined,
    private readonly logger: Logger,
    shared: SharedLimits = {},
  ) {
    this.counts = shared.counts ?? new ConnectionCounter();
    this.bans = config.banAfter > 0 ? (shared.bans ?? localBans(new BanList(config.banAfter, config.banTime), logger)) : undefined;
    if (config.maxHandshakeRate > 0) {
      // Workers split the rate: a client's connections are spread over them (by SO_REUSEPORT's hash or in
      // turn), so together they allow about the rate asked, without a message per handshake.
      const share = Math.max(1, Math.floor(config.maxHandshakeRate / (shared.workers ?? 1)));
      this.rate = new RateLimiter(share, share);
    }
    this.origins = config.allowOrigin && new Set(config.allowOrigin);
    this.counter = shared.counter;
  }

  /** Whether connections are counted at accept (`--max-connections`, `--max-connections-per-ip`). */
  get countsConnections(): boolean {
    return this.config.maxConnections > 0 || this.config.maxConnectionsPerIp > 0;
  }

  /** Whether any limit applies to handshakes ({@link guard} is needed). */
  get guardsHandshakes(): boolean {
    const { config } = this;
    return config.maxConnections + config.maxConnectionsPerIp + config.maxHandshakeRate + config.banAfter > 0 || !!this.origins;
  }

  /**
   * A new connection (at accept): takes its places, then `next()`; over a limit it is refused (503, or
   * closed unanswered when `tls` is on: no TLS handshake is spent on it) and `next` is not called.
   */
  admitConnection(socket: Duplex, tls: boolean, next: () => void): void {
    const claims: Claim[] = [];
    if (this.config.maxConnections > 0) claims.push({ key: ALL_CONNECTIONS, max: this.config.maxConnections });
    const peer = peerOf(socket);
    if (peer.address !== undefined && !this.trusted?.has(peer.address)) this.perIpClaim(claims, peer.address);
    this.take(socket, claims, (refused) => {
      if (refused) this.refuseConnection(socket, peer, refused, tls);
      else next();
    });
  }

  /** After a trusted peer's PROXY header: the count of the client it names (unless that is a trusted proxy too). */
  afterProxyHeader(socket: Duplex, tls: boolean, next: () => void): void {
    if (this.config.maxConnectionsPerIp === 0) {
      next();
      return;
    }
    const { client } = originOfSocket(socket);
    const claims: Claim[] = [];
    if (client.address !== undefined && !this.trusted?.has(client.address) && !this.holds(socket, client.address))
      this.perIpClaim(claims, client.address);
    this.take(socket, claims, (refused) => {
      if (refused) this.refuseConnection(socket, client, refused, tls);
      else next();
    });
  }

  /** Wraps the route stage: bans, rate, the counts not taken yet, the origin; then counts its failures. */
  guard(admit: Admission): Admission {
    return async (req) => {
      const { address } = originOf(req).client;
      if (address !== undefined) this.checkAddress(address);
      const claims: Claim[] = [];
      if (this.config.maxConnections > 0 && !this.holds(req.socket, ALL_CONNECTIONS))
        claims.push({ key: ALL_CONNECTIONS, max: this.config.maxConnections });
      if (address !== undefined && !this.holds(req.socket, address)) this.perIpClaim(claims, address);
      if (claims.length > 0) {
        const refused = await new Promise<Claim | undefined>((resolve) => this.take(req.socket, claims, resolve));
        if (refused) throw new HttpError(503, this.tooMany(refused), { 'Retry-After': RETRY_CONNECTIONS }, 'limit');
      }
      if (this.origins) checkOrigin(req.headers.origin, this.origins, '--allow-origin');
      try {
        return await admit(req);
      } catch (err) {
        // Wrong credentials and unknown or refused tokens are what a brute force produces; other refusals are not.
        if (this.bans && address !== undefined && err instanceof HttpError && isGuess(err.kind)) this.bans.failed(address);
        throw err;
      }
    };
  }

  /** Bans and the handshake rate of one address. */
  private checkAddress(address: string): void {
    const banned = this.bans?.bannedFor(address) ?? 0;
    if (banned > 0) throw new HttpError(403, `${address} is banned for ${banned} s more (too many failed attempts)`, {}, 'ban');
    const wait = this.rate?.take(address) ?? 0;
    if (wait > 0) {
      throw new HttpError(
        429,
        `more than ${this.config.maxHandshakeRate} handshakes per second from ${address}`,
        { 'Retry-After': String(Math.ceil(wait)) },
        'rate',
      );
    }
  }

  private perIpClaim(claims: Claim[], address: string): void {
    if (this.config.maxConnectionsPerIp > 0) claims.push({ key: address, max: this.config.maxConnectionsPerIp });
  }

  private holds(socket: Duplex, key: string): boolean {
    return this.held.get(rawOf(socket))?.includes(key) ?? false;
  }

  /**
   * Takes the claims' places for the connection on `socket`, released when it closes; `then` gets the
   * claim refused, or undefined. Not called back for a connection that closed meanwhile.
   */
  private take(socket: Duplex, claims: Claim[], then: (refused: Claim | undefined) => void): void {
    if (claims.length === 0) {
      then(undefined);
      return;
    }
    const done = (refused: number): void => {
      if (refused >= 0) {
        if (!socket.destroyed) then(claims[refused]);
        return;
      }
      const keys = claims.map((claim) => claim.key);
      if (socket.destroyed) {
        this.counts.release(keys);
        return;
      }
      const raw = rawOf(socket);
      const held = this.held.get(raw);
      if (held) held.push(...keys);
      else {
        this.held.set(raw, keys);
        socket.once('close', () => this.counts.release(this.held.get(raw) ?? []));
      }
      then(undefined);
    };
    const answer = this.counts.acquire(claims);
    if (typeof answer === 'number') done(answer);
    else void answer.then(done);
  }

  private tooMany(claim: Claim): string {
    return claim.key === ALL_CONNECTIONS
      ? `too many connections (--max-connections ${claim.max})`
      : `too many connections from ${claim.key} (--max-connections-per-ip ${claim.max})`;
  }

  /** A connection over a limit before any request: 503 on a plain socket; closed when it may be TLS. */
  private refuseConnection(socket: Duplex, client: NetAddress, claim: Claim, tls: boolean): void {
    const reason = this.tooMany(claim);
    // Answered now: the handshake deadline has nothing left to end (and no second line to log).
    disarmDeadline(socket);
    logConnectionRefusal(this.logger, client, reason, { status: tls ? undefined : 503, kind: 'limit', counter: this.counter });
    if (tls) {
      socket.destroy();
      return;
    }
    writeHttpError(socket, 503, reason, { 'Retry-After': RETRY_CONNECTIONS });
    // The request comes after the answer: read and dropped, so that the close is a FIN, not a reset.
    socket.resume();
  }
}
