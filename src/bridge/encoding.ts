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
  throw new HttpError(
    400,
    `Unsupported WebSocket subprotocol (offered: ${offered.join(', ')}); this proxy speaks 'binary' or 'base64'`,
  );
}

const BASE64_TEXT = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Decodes a base64 text message from the client.
 * @returns the bytes, or undefined when the text is not valid base64 (Node's decoder would silently
 * skip bad characters and hand the target corrupted bytes).
 */
export function decodeBase64Message(data: Buffer): Buffer | undefined {
  const text = data.toString('latin1');
  if (text.length % 4 === 1 || !BASE64_TEXT.test(text)) return undefined;
  return Buffer.from(text, 'base64');
}
