import { createHash, timingSafeEqual } from 'node:crypto';
import { HttpError, StartupError } from '../errors.js';
import type { AuthPlugin } from './plugin.js';

/** The realm Python websockify sends, so that browsers' saved credentials carry over. */
const CHALLENGE = { 'WWW-Authenticate': 'Basic realm="Websockify", charset="UTF-8"' };

/** SHA-256 of the bytes: equal-length digests let timingSafeEqual compare secrets of any length. */
function digest(bytes: Buffer): Buffer {
  return createHash('sha256').update(bytes).digest();
}

/**
 * `BasicHTTPAuth`: HTTP Basic authentication against one `user:password` (`--auth-source`). Missing,
 * malformed or wrong credentials all get 401 with the challenge, so that a browser asks again.
 * @throws StartupError when the source is not `user:password`.
 */
export function createBasicHttpAuth(source: string | undefined): AuthPlugin {
  if (!source?.includes(':')) throw new StartupError("BasicHTTPAuth: --auth-source must be 'user:password'");
  // Browsers send UTF-8 nowadays, older clients Latin-1 (as Python decodes): either encoding of the secret
  // passes. Latin-1 only matters for non-ASCII secrets, and only those it can encode.
  const encodings: BufferEncoding[] =
    /[^\p{ASCII}]/u.test(source) && !/[^\p{ASCII}\u0080-\u00ff]/u.test(source) ? ['utf8', 'latin1'] : ['utf8'];
  const expected = encodings.map((encoding) => digest(Buffer.from(source, encoding)));
  return {
    authenticate(request) {
      const header = request.headers.authorization;
      if (!header) throw new HttpError(401, 'authentication required (HTTP Basic)', CHALLENGE);
      const match = /^basic\s+([A-Za-z0-9+/]+=*)\s*$/i.exec(header);
      if (!match) throw new HttpError(401, 'malformed Authorization header (expected Basic credentials)', CHALLENGE);
      const given = digest(Buffer.from(match[1]!, 'base64'));
      // Every candidate is compared, so the time taken does not say which encoding came close.
      let ok = false;
      for (const candidate of expected) ok = timingSafeEqual(given, candidate) || ok;
      if (!ok) throw new HttpError(401, 'wrong user name or password', CHALLENGE);
    },
  };
}
