import { CloseCode } from './close-codes.js';

/** Fragments one client message may come in; one more closes the session with 1008 (ws's own default). */
export const MAX_MESSAGE_FRAGMENTS = 16_384;

/** ws's error codes for what a client's frames broke, with the close code ws sent for each. */
const CODES: Readonly<Record<string, number>> = {
  WS_ERR_INVALID_UTF8: CloseCode.INVALID_PAYLOAD,
  WS_ERR_TOO_MANY_BUFFERED_PARTS: CloseCode.POLICY_VIOLATION,
  WS_ERR_UNSUPPORTED_MESSAGE_LENGTH: CloseCode.MESSAGE_TOO_BIG,
  WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH: CloseCode.MESSAGE_TOO_BIG,
};

/**
 * The close that ws sent when a client's frames broke the protocol or a limit (it closes by itself,
 * with the code but no reason), as the session's log line should name it: the proxy closed, and why.
 * @returns undefined for an error that is not the client's frames (a socket error: its 'close' follows).
 */
export function protocolErrorClose(err: Error & { code?: string }): { code: number; reason: string } | undefined {
  const { code } = err;
  if (code === undefined || !code.startsWith('WS_ERR_')) return undefined;
  // ws's own words, except where they would not name the limit.
  const reason = err.message === 'Too many message fragments' ? `Message in more than ${MAX_MESSAGE_FRAGMENTS} fragments` : err.message;
  return { code: CODES[code] ?? CloseCode.PROTOCOL_ERROR, reason };
}
