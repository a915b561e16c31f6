/** A cookie that is present but cannot be read: the client gets 400. */
export class MalformedCookieError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MalformedCookieError';
  }
}

/** Whether `text` holds a C0 control or DEL: never part of a token, and a way to forge log lines once decoded. */
function hasControl(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x20 || code === 0x7f) return true;
  }
  return false;
}

/**
 * The value of the cookie `name` in a `Cookie` header (RFC 6265 section 4.2.1: `name=value` pairs
 * separated by `;`), with its optional double quotes removed and percent-escapes decoded, as browsers'
 * `document.cookie` users and most servers write them; undefined when there is no such cookie.
 * Names are compared exactly (they are case-sensitive). When the name appears more than once the first
 * pair wins: browsers send the cookie of the most specific path first. Other pairs are only split, never
 * judged, so another application's odd cookie on the same host does not refuse the request.
 * @throws MalformedCookieError when the named cookie's value has a bad percent-escape or a control
 *   character (raw or decoded).
 */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const pair of header.split(';')) {
    const equals = pair.indexOf('=');
    // RFC 6265 section 5.2: a pair without '=' is ignored.
    if (equals < 0 || pair.slice(0, equals).trim() !== name) continue;
    let value = pair.slice(equals + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    let decoded: string;
    try {
      decoded = decodeURIComponent(value);
    } catch {
      throw new MalformedCookieError(`cookie '${name}' has a malformed percent-escape`);
    }
    if (hasControl(decoded)) throw new MalformedCookieError(`cookie '${name}' holds a control character`);
    return decoded;
  }
  return undefined;
}
