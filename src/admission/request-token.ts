import type { IncomingMessage } from 'node:http';
import { HttpError } from '../errors.js';
import { cookieValue, MalformedCookieError } from './cookie.js';

/**
 * Where a handshake's token is read. With `fromHost` it is the Host header alone; otherwise the `token`
 * query parameter first (as Python websockify and OpenStack's nova-novncproxy read it), then the header
 * named `header`, then the cookie named `cookie`. The URL wins because it is given for this one request,
 * while a cookie is ambient and may be left over from an earlier console of the same site.
 */
export interface TokenLocation {
  /** `--host-token`: the Host header without its port. */
  fromHost: boolean;
  /** `--token-header NAME`, lower case as node:http keys headers. */
  header?: string | undefined;
  /** `--token-cookie NAME`, as the client spells it (cookie names are case-sensitive). */
  cookie?: string | undefined;
}

/** The Host header without its port (`[v6]:port` handled). */
function hostToken(req: IncomingMessage): string | undefined {
  const host = req.headers.host;
  if (!host) return undefined;
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(host);
  if (bracketed) return bracketed[1];
  return host.replace(/:\d+$/, '');
}

/**
 * The `token` query parameter of a request target, read as a URL's query is. Never throws: `new URL()`
 * did on targets such as `//host:99999/?token=t`, which turned a bad request into a 500.
 */
export function queryToken(url: string): string | undefined {
  const fragment = url.indexOf('#');
  const beforeFragment = fragment < 0 ? url : url.slice(0, fragment);
  const query = beforeFragment.indexOf('?');
  if (query < 0) return undefined;
  // With its '?', which URLSearchParams drops: a second one ('??token=') then stays part of the name, as in URL.
  return new URLSearchParams(beforeFragment.slice(query)).get('token') ?? undefined;
}

/**
 * The token of a request from the first place of {@link TokenLocation} that holds a non-empty one;
 * undefined when none does.
 * @throws HttpError 400 when the token header is sent more than once or the token cookie is malformed.
 */
export function tokenOf(req: IncomingMessage, location: TokenLocation): string | undefined {
  if (location.fromHost) return hostToken(req);
  const query = queryToken(req.url ?? '/');
  if (query) return query;
  if (location.header !== undefined) {
    const values = req.headersDistinct[location.header];
    // Two different tokens: which one the client meant cannot be known.
    if (values && values.length > 1) throw new HttpError(400, `more than one ${location.header} header`);
    if (values?.[0]) return values[0];
  }
  if (location.cookie !== undefined) {
    try {
      const value = cookieValue(req.headers.cookie, location.cookie);
      if (value) return value;
    } catch (err) {
      if (err instanceof MalformedCookieError) throw new HttpError(400, err.message);
      throw err;
    }
  }
  return undefined;
}

/** Where the token is read, in words, for the listening line and the 404 of a request without one. */
export function describeTokenLocation(location: TokenLocation): string {
  if (location.fromHost) return 'the Host header';
  const places = ['?token= in the URL'];
  if (location.header !== undefined) places.push(`the ${location.header} header`);
  if (location.cookie !== undefined) places.push(`the ${location.cookie} cookie`);
  return places.join(', then ');
}
