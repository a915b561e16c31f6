import { HttpError } from '../errors.js';

/** How payload bytes travel in WebSocket frames. */
export type Encoding = 'binary' | 'base64';

/** The outcome of subprotocol negotiation. */
export interface SubprotocolChoice {
  /** The value of the `Sec-WebSocket-Protocol` response header, or undefined for none. */
  protocol: 'binary' | 'base64' | undefined;
  /** Binary frames, or text frames holding base64 (the seed's encoding, for legacy clients). */
  encoding: Encoding;
}

/** Splits a `Sec-WebSocket-Protocol` header into its entries, trimmed, empty ones dropped. */
export function parseOfferedProtocols(header: string | undefined): string[] {
  if (header === undefined) return [];
  return header
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
}

/**
 * Chooses the subprotocol: `binary` wins whenever offered; `base64` is used only when offered without
 * `binary`; nothing offered means plain binary frames and no protocol in the reply.
 * @throws HttpError 400 when only protocols this proxy does not speak are offered.
 */
export function chooseSubprotocol(offered: readonly string[]): SubprotocolChoice {
  if (offered.length === 0) return { protocol: undefined, encoding: 'binary' };
  if (offered.includes('binary')) return { protocol: 'binary', encoding: 'binary' };
  if (offered.includes('base64')) return { protocol: 'base64', encoding: 'base64' };
  throw new HttpError(400, `Unsupported WebSocket subprotocol (offered: ${offered.join(', ')}); this proxy speaks 'binary' or 'base64'`);
}

// A plain character class, not a grouped pattern: it stays linear and shallow on 16 MiB messages.
const BASE64_ALPHABET = /^[A-Za-z0-9+/]*$/;

/**
 * Decodes a base64 text message from the client. Padding is optional, but when present it must complete
 * a group of four characters.
 * @returns the bytes, or undefined when the text is not valid base64 (Node's decoder would silently
 * skip bad characters, or stop at a stray '=', and hand the target corrupted bytes).
 */
export function decodeBase64Message(data: Buffer): Buffer | undefined {
  const text = data.toString('latin1');
  const padding = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0;
  const body = padding === 0 ? text : text.slice(0, -padding);
  if (padding > 0 && text.length % 4 !== 0) return undefined;
  // One leftover character holds only 6 bits, less than a byte; a padded group needs 2 or 3 characters.
  if (body.length % 4 === 1 || (padding > 0 && body.length % 4 === 0)) return undefined;
  if (!BASE64_ALPHABET.test(body)) return undefined;
  return Buffer.from(body, 'base64');
}
