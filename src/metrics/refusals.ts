/**
 * Why a connection or request was refused before any session: the bounded set of `reason` label values
 * of `websockify_handshakes_refused_total`. A new kind of refusal adds its name here and passes it
 * where it refuses (as `HttpError`'s `kind`, or to `logRefusal`/`logConnectionRefusal`).
 */
export const REFUSAL_REASONS = [
  /** A malformed request or handshake (400, 405 on the upgrade, 426, 431). */
  'bad_request',
  /** A plain HTTP request where only WebSocket handshakes are served (405). */
  'not_websocket',
  /** The auth plugin refused (401, 403). */
  'auth',
  /** The Origin header is not allowed (403). */
  'origin',
  /** No token, or a token the plugin does not know (404). */
  'unknown_token',
  /** A token the plugin knows to be invalid: expired, or signed with another key (403). */
  'token_rejected',
  /** The token plugin's source cannot be asked (503). */
  'token_source_down',
  /** `--allow-target` does not allow the target (403). */
  'target_not_allowed',
  /** `--max-connections` or `--max-connections-per-ip` (503, or closed unanswered on a TLS port). */
  'limit',
  /** More handshakes per second from one address than `--max-handshake-rate` (429). */
  'rate',
  /** The client's address is banned for a while (403). */
  'ban',
  /** The handshake did not complete in time (408, or closed unanswered). */
  'timeout',
  /** A plain connection under `--ssl-only`. */
  'tls_required',
  /** A PROXY protocol header that was missing, malformed or not expected. */
  'proxy_header',
  /** The proxy is shutting down (503). */
  'shutting_down',
  /** A plugin's own failure (500). */
  'internal',
  /** Anything else. */
  'other',
] as const;

/** One of {@link REFUSAL_REASONS}. */
export type RefusalReason = (typeof REFUSAL_REASONS)[number];

/** Counts one refusal: its HTTP status (undefined when the connection was closed unanswered) and why. */
export type RefusalCounter = (status: number | undefined, reason: RefusalReason) => void;

/** The reason of a refusal that named none, from its status alone. */
export function reasonForStatus(status: number | undefined): RefusalReason {
  switch (status) {
    case 400:
    case 405:
    case 426:
    case 431:
      return 'bad_request';
    case 401:
      return 'auth';
    case 408:
      return 'timeout';
    case 500:
      return 'internal';
    default:
      return 'other';
  }
}
