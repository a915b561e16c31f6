import { HttpError, StartupError } from '../errors.js';
import type { AuthPlugin } from './plugin.js';

/**
 * An origin in the form browsers send it (`scheme://host[:port]`, lower case, default port dropped), or
 * undefined when `text` is not one. `null` (sandboxed pages, files) is kept as the literal it is.
 */
function normalizeOrigin(text: string): string | undefined {
  if (text === 'null') return text;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return undefined;
  }
  // An origin has no path, query or credentials; `https://a.example/` is written often enough to allow the slash.
  if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.hash || url.username || url.password) return undefined;
  return url.origin === 'null' ? `${url.protocol}//${url.host}` : url.origin;
}

/**
 * The allowed origins, normalized as browsers serialize them.
 * @param fail makes the error for an entry that is not an origin.
 */
export function allowedOrigins(listed: readonly string[], fail: (entry: string) => Error): Set<string> {
  const allowed = new Set<string>();
  for (const entry of listed) {
    const origin = normalizeOrigin(entry);
    if (!origin) throw fail(entry);
    allowed.add(origin);
  }
  return allowed;
}

/**
 * Checks a handshake's `Origin` header against the allowed origins (ExpectOrigin, `--allow-origin`).
 * @param who names the check in the message for a missing header.
 * @throws HttpError 403 when the header is missing or names another origin.
 */
export function checkOrigin(header: string | undefined, allowed: ReadonlySet<string>, who: string): void {
  if (header === undefined) throw new HttpError(403, `no Origin header (${who})`, {}, 'origin');
  const origin = normalizeOrigin(header);
  if (!origin || !allowed.has(origin)) throw new HttpError(403, `origin '${header}' is not allowed`, {}, 'origin');
}

/**
 * `ExpectOrigin`: the handshake's `Origin` header must be one of the whitespace-separated origins in
 * `--auth-source` (compared as browsers serialize origins); otherwise 403.
 * @throws StartupError when the source is empty or names something that is not an origin.
 */
export function createExpectOrigin(source: string | undefined): AuthPlugin {
  const listed = (source ?? '').split(/\s+/).filter((entry) => entry !== '');
  if (listed.length === 0)
    throw new StartupError('ExpectOrigin: --auth-source must list the allowed origins (such as https://example.com)');
  const allowed = allowedOrigins(
    listed,
    (entry) => new StartupError(`ExpectOrigin: '${entry}' is not an origin (expected scheme://host[:port])`),
  );
  return {
    authenticate(request) {
      checkOrigin(request.headers.origin, allowed, 'ExpectOrigin');
    },
  };
}
