import { allowedOrigins } from '../auth/origin.js';
import { UsageError } from '../errors.js';

/** The limits' options, part of `ProxyOptions` (the flags in camelCase; docs/API.md lists each). */
export interface LimitOptions {
  /** Most connections open at once, handshaking or proxying, over the whole proxy (all workers). Default 0 (no limit). */
  maxConnections?: number | undefined;
  /** Most connections open at once from one client address (the real client behind a `trustedProxy`). Default 0 (no limit). */
  maxConnectionsPerIp?: number | undefined;
  /** Most WebSocket handshakes per second from one client address (a token bucket holding as many). Default 0 (no limit). */
  maxHandshakeRate?: number | undefined;
  /** Seconds a session may last; then it is closed with 1008 after what is in flight. Default 0 (no limit). */
  maxSessionDuration?: number | undefined;
  /** Ban a client address after this many failed authentications, unknown or refused tokens within `banTime`. Default 0 (no bans). */
  banAfter?: number | undefined;
  /** Seconds a ban lasts, and the window its failures are counted in. Default 600. */
  banTime?: number | undefined;
  /** The only origins (`scheme://host[:port]`) whose pages may open sessions, as ExpectOrigin checks them. Default any. */
  allowOrigin?: readonly string[] | undefined;
  /** Seconds during which refusals from one address are logged once, the rest counted in one line. Default 10; 0 logs each. */
  refusalLogInterval?: number | undefined;
}

/** The limits, checked; 0 turns each off. */
export interface LimitsConfig {
  maxConnections: number;
  maxConnectionsPerIp: number;
  maxHandshakeRate: number;
  maxSessionDuration: number;
  banAfter: number;
  banTime: number;
  /** Allowed origins, normalized; undefined = any. */
  allowOrigin?: readonly string[] | undefined;
  refusalLogInterval: number;
}

/** The limits' defaults; the option reference in README.md repeats them. */
export const LIMIT_DEFAULTS = {
  maxConnections: 0,
  maxConnectionsPerIp: 0,
  maxHandshakeRate: 0,
  maxSessionDuration: 0,
  banAfter: 0,
  banTime: 600,
  refusalLogInterval: 10,
} as const;

/** A whole number, 0 or more. */
function count(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 0) throw new UsageError(`${name}: expected a whole number (0 or more), got ${value}`);
  return value;
}

/** A number of seconds, 0 or more. */
function seconds(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0)
    throw new UsageError(`${name}: expected a number of seconds (0 or more), got ${value}`);
  return value;
}

/**
 * Checks the limits' options.
 * @throws UsageError naming the option that is malformed or needs another.
 */
export function resolveLimits(options: LimitOptions): LimitsConfig {
  const banAfter = count('--ban-after', options.banAfter, LIMIT_DEFAULTS.banAfter);
  if (options.banTime !== undefined && banAfter === 0) throw new UsageError('--ban-time needs --ban-after');
  const banTime = seconds('--ban-time', options.banTime, LIMIT_DEFAULTS.banTime);
  if (banAfter > 0 && banTime === 0) throw new UsageError('--ban-time: expected a number of seconds above 0 with --ban-after');
  const listed = options.allowOrigin;
  return {
    maxConnections: count('--max-connections', options.maxConnections, LIMIT_DEFAULTS.maxConnections),
    maxConnectionsPerIp: count('--max-connections-per-ip', options.maxConnectionsPerIp, LIMIT_DEFAULTS.maxConnectionsPerIp),
    maxHandshakeRate: count('--max-handshake-rate', options.maxHandshakeRate, LIMIT_DEFAULTS.maxHandshakeRate),
    maxSessionDuration: seconds('--max-session-duration', options.maxSessionDuration, LIMIT_DEFAULTS.maxSessionDuration),
    banAfter,
    banTime,
    allowOrigin:
      listed && listed.length > 0
        ? [
            ...allowedOrigins(
              listed,
              (entry) => new UsageError(`--allow-origin: '${entry}' is not an origin (expected scheme://host[:port], or null)`),
            ),
          ]
        : undefined,
    refusalLogInterval: seconds('--refusal-log-interval', options.refusalLogInterval, LIMIT_DEFAULTS.refusalLogInterval),
  };
}
