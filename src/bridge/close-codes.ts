/** WebSocket close codes (RFC 6455 section 7.4.1) that the proxy sends or reports. */
export const CloseCode = {
  /** The target closed its side; everything it sent was delivered. */
  NORMAL: 1000,
  /** The proxy is shutting down. */
  GOING_AWAY: 1001,
  /** A frame type the negotiated subprotocol does not carry (text without base64). */
  UNSUPPORTED_DATA: 1003,
  /** The peer closed without a status code. */
  NO_STATUS: 1005,
  /** The connection dropped without a close frame (also used when a heartbeat goes unanswered). */
  ABNORMAL: 1006,
  /** A frame that breaks the protocol (a bad opcode, an unmasked frame...). */
  PROTOCOL_ERROR: 1002,
  /** A base64 message that does not decode, or a close reason that is not UTF-8. */
  INVALID_PAYLOAD: 1007,
  /** A policy of the proxy ended the session: a message in more fragments than it takes, or `--max-session-duration`. */
  POLICY_VIOLATION: 1008,
  /** A message larger than the configured maximum. */
  MESSAGE_TOO_BIG: 1009,
  /** The target could not be reached, or failed. */
  INTERNAL_ERROR: 1011,
} as const;

/** Close reasons are limited to 123 bytes of UTF-8 by the protocol; longer ones are cut. */
export function closeReason(text: string): string {
  const bytes = Buffer.from(text);
  if (bytes.length <= 123) return text;
  // Cutting inside a multi-byte character would make the reason invalid UTF-8.
  const cut = bytes
    .subarray(0, 120)
    .toString('utf8')
    .replace(/\uFFFD+$/, '');
  return `${cut}...`;
}
