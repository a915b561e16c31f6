import { HttpError } from '../errors.js';

/** A request target reduced to the names it walks through, each decoded and checked. */
export interface RequestPath {
  /** Decoded path segments below the web root; empty for the root itself. */
  segments: string[];
  /** The target ended in `/` (a directory was asked for). */
  trailingSlash: boolean;
  /** The query string with its `?`, or ''; kept for redirects. */
  query: string;
}

/**
 * Splits a request target into path segments and decodes each one separately, so that an encoded
 * separator (`%2f`, `%5c`) can never create a segment boundary after the checks. Empty and `.` segments
 * are dropped (so `//host` cannot become a protocol-relative redirect); `..`, separators, backslashes and
 * NUL bytes inside a segment are refused.
 * @throws HttpError 400 for a target that is not an absolute path or has broken percent-encoding;
 *   403 for a segment that could leave the web root.
 */
export function parseRequestPath(target: string): RequestPath {
  if (!target.startsWith('/')) throw new HttpError(400, 'the request target must be an absolute path');
  const queryAt = target.search(/[?#]/);
  const pathPart = queryAt === -1 ? target : target.slice(0, queryAt);
  const query = queryAt === -1 || target[queryAt] === '#' ? '' : target.slice(queryAt).replace(/#.*/s, '');
  const segments: string[] = [];
  for (const raw of pathPart.split('/')) {
    if (raw === '') continue;
    let name: string;
    try {
      name = decodeURIComponent(raw);
    } catch {
      throw new HttpError(400, 'malformed percent-encoding in the path');
    }
    if (name === '.') continue;
    if (name === '..' || /[/\\\0]/.test(name)) throw new HttpError(403, 'the path leaves the web root');
    segments.push(name);
  }
  return { segments, trailingSlash: pathPart.endsWith('/'), query };
}

/** The canonical URL path of `segments` (each percent-encoded), with a trailing `/` for a directory. */
export function encodeSegments(segments: readonly string[], directory: boolean): string {
  const path = `/${segments.map(encodeURIComponent).join('/')}`;
  return directory && segments.length > 0 ? `${path}/` : path;
}
