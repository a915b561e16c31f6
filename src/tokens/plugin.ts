import { HttpError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { Target } from '../targets/target.js';

/** Who asks for a token's target: for plugins that log lookups or decide by the client. */
export interface TokenLookupRequest {
  /**
   * The real client as log lines name it: `host:port`, `host` alone when a forwarding header gave no
   * port, `unix-socket`. Behind a trusted proxy (`--trusted-proxy`) it is the client that proxy named.
   */
  client: string;
  /** The real client's IP address alone, or undefined on a Unix socket. */
  remoteAddress: string | undefined;
}

/**
 * A source of targets by token (`--token-plugin`). Built-in plugins and users' own modules implement
 * this one interface.
 */
export interface TokenPlugin {
  /**
   * The target for `token`, or undefined when the source does not know it (the client gets 404).
   * @param request who asks; the proxy always passes it (optional so that a plugin may be called without).
   * @throws TokenSourceError when the source cannot be asked (the client gets 503).
   * @throws TokenRejectedError when the token is known to be invalid (the client gets 403).
   */
  lookup(token: string, request?: TokenLookupRequest): Promise<Target | undefined>;
  /** Releases connections and watchers when the proxy stops. */
  close?(): Promise<void> | void;
}

/** What a plugin is given besides its source: where to log, how long a lookup may take, what to cache. */
export interface TokenPluginContext {
  logger: Logger;
  /** A lookup slower than this must fail (TokenSourceError), so the client gets 503 before its handshake times out. */
  timeoutMs: number;
  /**
   * `--token-cache`: keep answers this long, at most this many. The built-in remote plugins (TokenRedis,
   * BaseTokenAPI, JSONTokenApi, JWTTokenApi) honour it; absent, every lookup asks the source.
   */
  cache?: TokenCacheOptions | undefined;
}

/** How long and how many token answers a plugin keeps (`--token-cache SECONDS`, `--token-cache-entries N`). */
export interface TokenCacheOptions {
  /** Seconds an answer (a target, an unknown token, a rejection) is kept; more than 0. */
  seconds: number;
  /** Most answers kept; beyond it the least recently used is dropped. */
  entries: number;
}

/**
 * The default export of a user's plugin module (`--token-plugin ./my-plugin.js`): called once at
 * start-up with `--token-source` (undefined when not given); throwing stops the start with its message.
 */
export type TokenPluginFactory = (source: string | undefined, context: TokenPluginContext) => TokenPlugin | Promise<TokenPlugin>;

/** The token source is unreachable or answered nonsense: the client gets 503, the proxy carries on. */
export class TokenSourceError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TokenSourceError';
  }
}

/**
 * The token is recognised as invalid (a JWT expired, not yet valid, or signed with another key): the client
 * gets 403 with this reason, which the route stage passes through as any HttpError.
 */
export class TokenRejectedError extends HttpError {
  /** When this answer may change (ms since the epoch: a JWT's `nbf`), so no cache keeps it longer. */
  readonly until: number | undefined;

  constructor(reason: string, options: { until?: number | undefined } = {}) {
    super(403, reason, {}, 'token_rejected');
    this.name = 'TokenRejectedError';
    this.until = options.until;
  }
}
