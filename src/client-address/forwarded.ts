import net from 'node:net';
import { portFromText, splitHostPort } from '../targets/address.js';
import { type NetAddress, plainIp } from './origin.js';

/**
 * One hop of a forwarding header: the address a proxy saw its client connect from, or undefined when it
 * cannot be read (RFC 7239's `unknown` and obfuscated identifiers such as `_hidden`, or malformed text).
 * Headers list hops from the original client to the nearest proxy's client, left to right.
 */
export type Hop = NetAddress | undefined;

/**
 * An address as a hop names it: `1.2.3.4`, `1.2.3.4:80`, `2001:db8::1` (X-Forwarded-For only), or
 * `[2001:db8::1]` and `[2001:db8::1]:80`. A port that is obfuscated (`_abc`) is dropped, as RFC 7239
 * allows; an address that is, or anything else, cannot be read.
 */
function hopAddress(text: string): Hop {
  if (net.isIPv6(text)) return text.includes('%') ? undefined : { address: plainIp(text), port: undefined };
  const split = splitHostPort(text);
  if (!split) return undefined;
  const family = net.isIP(split.host);
  // A bare IPv6 address with a port would be ambiguous (`::1:80`); only the bracketed form may carry one.
  if (family === 0 || split.host.includes('%') || (family === 6 && !split.bracketed) || (family === 4 && split.bracketed)) return undefined;
  if (split.port === undefined || split.port.startsWith('_')) return { address: plainIp(split.host), port: undefined };
  const port = portFromText(split.port);
  return port === undefined ? undefined : { address: plainIp(split.host), port };
}

/** `X-Forwarded-For: client, proxy1, proxy2`: comma-separated addresses. Never throws. */
export function xForwardedForHops(value: string): Hop[] {
  return value.split(',').map((item) => hopAddress(item.trim()));
}

/**
 * `Forwarded` (RFC 7239): comma-separated elements of `;`-separated `name=value` pairs, values being
 * tokens or quoted strings (`for="[2001:db8::1]:4711"`). Each element's `for` is a hop; an element
 * without one, or that cannot be parsed, is a hop that cannot be read. Never throws.
 */
export function forwardedHops(value: string): Hop[] {
  return splitOutsideQuotes(value, ',').map((element) => {
    const values: string[] = [];
    for (const pair of splitOutsideQuotes(element, ';')) {
      const equals = pair.indexOf('=');
      if (equals < 0) return undefined;
      if (pair.slice(0, equals).trim().toLowerCase() === 'for') values.push(pair.slice(equals + 1).trim());
    }
    // None: the proxy did not say; more than one: which would be the truth?
    if (values.length !== 1) return undefined;
    const text = unquote(values[0]!);
    return text === undefined ? undefined : hopAddress(text);
  });
}

/** Splits at `separator` where it is not inside a quoted string (whose `\` escapes the next character). */
function splitOutsideQuotes(text: string, separator: string): string[] {
  const parts: string[] = [];
  let start = 0;
  let quoted = false;
  for (let at = 0; at < text.length; at++) {
    const char = text[at];
    if (quoted && char === '\\') at++;
    else if (char === '"') quoted = !quoted;
    else if (!quoted && char === separator) {
      parts.push(text.slice(start, at));
      start = at + 1;
    }
  }
  parts.push(text.slice(start));
  return parts;
}

/** A token as it is, or a quoted string's content unescaped; undefined for a broken quoted string. */
function unquote(value: string): string | undefined {
  if (!value.startsWith('"')) return value.includes('"') ? undefined : value;
  if (value.length < 2 || !value.endsWith('"')) return undefined;
  let text = '';
  for (let at = 1; at < value.length - 1; at++) {
    const char = value[at]!;
    if (char === '"') return undefined;
    if (char === '\\') {
      at++;
      if (at >= value.length - 1) return undefined;
      text += value[at];
    } else {
      text += char;
    }
  }
  return text;
}
