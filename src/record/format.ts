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
