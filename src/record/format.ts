/**
 * The session recording format that noVNC's recording player (tests/vnc_playback.html) loads as a script:
 *
 *     var VNC_frame_encoding = 'binary';
 *     var VNC_frame_data = [
 *     '{12{RFB 003.008\n',
 *     '}15}RFB 003.008\n',
 *     'EOF'];
 *
 * One single-quoted JavaScript string per message: `{ms{data` for bytes sent to the client, `}ms}data` for
 * bytes received from it, `ms` counted from the session's start. Each data byte is one character of the
 * string (the player takes `charCodeAt` of each). The escaping is Python websockify's, so the message lines
 * are byte for byte what it writes, and the file is pure ASCII.
 *
 * The encoding line is one that Python websockify stopped writing; current players still honour it, older
 * players require it, and without it a player guesses base64 when the first message starts with "UkZC".
 */

/** Opens a recording, up to and including the array's `[`. */
export const RECORDING_HEADER = "var VNC_frame_encoding = 'binary';\nvar VNC_frame_data = [\n";

/** Closes a recording: the player stops at the 'EOF' entry. */
export const RECORDING_FOOTER = "'EOF'];\n";

/** The marker of a message sent to the client ('{'). */
export const TO_CLIENT = 0x7b;
/** The marker of a message received from the client ('}'). */
export const FROM_CLIENT = 0x7d;

const QUOTE = 0x27;
const BACKSLASH = 0x5c;
const HEX_DIGITS = Buffer.from('0123456789abcdef', 'latin1');

/**
 * For each byte value, the length of its escaped form: 1 (itself), 2 (`\\`, `\'`, `\t`, `\n`, `\r`) or
 * 4 (`\xNN`, lowercase, for every other byte outside printable ASCII).
 */
const ESCAPED_LENGTH = new Uint8Array(256);
/** The letter after the backslash of the two-character escapes. */
const SHORT_ESCAPE = new Uint8Array(256);
for (let byte = 0; byte < 256; byte++) ESCAPED_LENGTH[byte] = byte >= 0x20 && byte <= 0x7e ? 1 : 4;
for (const [byte, letter] of [
  [QUOTE, "'"],
  [BACKSLASH, '\\'],
  [0x09, 't'],
  [0x0a, 'n'],
  [0x0d, 'r'],
] as const) {
  ESCAPED_LENGTH[byte] = 2;
  SHORT_ESCAPE[byte] = letter.charCodeAt(0);
}

/** An upper bound on a message's line length, found without reading the data: every byte escaped as `\xNN`. */
export function maxRecordLength(ms: number, dataLength: number): number {
  return 4 * dataLength + String(ms).length + 6;
}

/** The exact length in bytes of one message's line, `'{ms{escaped',\n`. */
export function recordLength(ms: number, data: Uint8Array): number {
  let length = 0;
  for (let i = 0; i < data.length; i++) length += ESCAPED_LENGTH[data[i]!]!;
  // quote, two markers, quote, comma, newline
  return length + String(ms).length + 6;
}

/**
 * Writes one message's line into `out` at `offset`; the caller made room with {@link recordLength} or
 * {@link maxRecordLength}.
 * @returns the offset just after the line.
 */
export function writeRecord(out: Buffer, offset: number, marker: number, ms: number, data: Uint8Array): number {
  let at = offset;
  out[at++] = QUOTE;
  out[at++] = marker;
  at += out.write(String(ms), at, 'latin1');
  out[at++] = marker;
  for (let i = 0; i < data.length; i++) {
    const byte = data[i]!;
    const length = ESCAPED_LENGTH[byte]!;
    if (length === 1) {
      out[at++] = byte;
    } else if (length === 2) {
      out[at++] = BACKSLASH;
      out[at++] = SHORT_ESCAPE[byte]!;
    } else {
      out[at++] = BACKSLASH;
      out[at++] = 0x78; // x
      out[at++] = HEX_DIGITS[byte >> 4]!;
      out[at++] = HEX_DIGITS[byte & 15]!;
    }
  }
  out[at++] = QUOTE;
  out[at++] = 0x2c; // ,
  out[at++] = 0x0a; // \n
  return at;
}

/**
 * The name of the variable, before the data, that says who and what a recording is ({@link RecordingSession}).
 * noVNC's player loads the file as a script, so an extra `var VNC_frame_*` string is only one more global to it.
 */
export const SESSION_VARIABLE = 'VNC_frame_session';
/** The name of the variable, after the closing `];`, that says how the session ended ({@link RecordingEnd}). */
export const END_VARIABLE = 'VNC_frame_end';

/** Who and what a recorded session was, written as JSON in the file's {@link SESSION_VARIABLE}. */
export interface RecordingSession {
  /** The session's number (`conn N` in the log, `FILE.N`). */
  id: number;
  /** The real client's address (behind a trusted proxy, the one it named). */
  client: string;
  /** The connection's own peer: the client itself, or the trusted proxy in front of it. */
  peer: string;
  /** Where the session went: `host:port` or `unix:PATH`. */
  target: string;
  /** The `token` query parameter of the request, when it had one. */
  token?: string | undefined;
  /** The request's path and query. */
  path: string;
  /** The chosen subprotocol: `binary`, `base64` or `none`. */
  protocol: string;
  /** When the session started, as an ISO 8601 UTC time. */
  start: string;
}

/** How a recorded session ended, written as JSON in the file's {@link END_VARIABLE}. */
export interface RecordingEnd {
  /** When the session ended, as an ISO 8601 UTC time. */
  end: string;
  durationMs: number;
  /** The close code the proxy sent, or else the one the client sent (1005 none, 1006 dropped). */
  code: number;
  reason: string;
  /** Who closed: `client`, `target` or `proxy`. */
  initiator: string;
  bytesFromClient: number;
  bytesFromTarget: number;
  /** Set when the recording stopped before the session did; the file then holds its first part only. */
  stopped?: { reason: 'max-bytes'; maxBytes: number; ms: number } | undefined;
}

/**
 * One `var NAME = '<JSON>';` line: the JSON is kept ASCII (`\uXXXX` for the rest) and then escaped as the
 * message data is, so that both noVNC's player (a script) and the reader take it.
 */
export function variableLine(name: string, value: object): string {
  const json = JSON.stringify(value).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return `var ${name} = '${json.replace(/[\\']/g, '\\$&')}';\n`;
}
