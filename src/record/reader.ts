import { readFile } from 'node:fs/promises';
import { END_VARIABLE, type RecordingEnd, type RecordingSession, SESSION_VARIABLE } from './format.js';

/** One recorded message. */
export interface RecordedMessage {
  /** `toClient`: bytes the target sent, on their way to the client; `fromClient`: bytes the client sent. */
  direction: 'toClient' | 'fromClient';
  /** Milliseconds since the session started. */
  ms: number;
  data: Buffer;
}

/** A recording with what this proxy writes about its session, when the file has it. */
export interface Recording {
  messages: RecordedMessage[];
  /** Who and what the session was (`var VNC_frame_session`); absent in Python websockify's files. */
  session?: RecordingSession | undefined;
  /** How it ended (`var VNC_frame_end`); absent in Python websockify's files. */
  end?: RecordingEnd | undefined;
}

/** A file that is not a complete recording; the message names the line. */
export class RecordingFormatError extends Error {
  constructor(
    message: string,
    /** 1-based line of the file where reading stopped. */
    readonly line: number,
  ) {
    super(`line ${line}: ${message}`);
    this.name = 'RecordingFormatError';
  }
}

/**
 * Reads a session recording (this proxy's, or Python websockify's, including the older base64 ones).
 * @throws RecordingFormatError when the file is not a complete recording (for example when it has no
 * 'EOF' entry because the session is still open or its recording was dropped); fs errors as they come.
 */
export async function readRecording(path: string): Promise<RecordedMessage[]> {
  return (await readRecordingWithInfo(path)).messages;
}

/** As {@link readRecording}, with the session's facts when the file has them. */
export async function readRecordingWithInfo(path: string): Promise<Recording> {
  // latin1 maps every byte to one character; the format is ASCII and anything else is rejected below.
  return parseRecordingWithInfo(await readFile(path, 'latin1'));
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Parses the text of a recording, written to the format rather than evaluated: `var VNC_frame_<name> = '...';`
 * lines, then `var VNC_frame_data = [`, string entries separated by commas, `'EOF'` and `];`. Whitespace
 * and comments are allowed wherever JavaScript allows them. The data is decoded as noVNC's player does:
 * by `VNC_frame_encoding` when given, else base64 only when the first message starts with "UkZC".
 */
export function parseRecording(text: string): RecordedMessage[] {
  return parseRecordingWithInfo(text).messages;
}

/**
 * As {@link parseRecording}, with the session's facts: `var VNC_frame_<name> = '...';` lines are also
 * allowed after the closing `];`, and those named `VNC_frame_session` and `VNC_frame_end` are read as JSON.
 */
export function parseRecordingWithInfo(text: string): Recording {
  const parser = new Parser(text);
  const variables = new Map<string, { value: string; line: number }>();
  const variable = (name: string): void => {
    if (!name.startsWith('VNC_frame_')) parser.fail(`unexpected variable ${name}: expected VNC_frame_data`);
    const line = parser.line();
    const value = parser.string().toString('latin1');
    parser.skipSpace();
    parser.expect(';');
    variables.set(name, { value, line });
  };
  for (;;) {
    parser.skipSpace();
    const name = parser.declaration();
    if (name === 'VNC_frame_data') break;
    variable(name);
  }
  let encoding: string | undefined;
  {
    const declared = variables.get('VNC_frame_encoding');
    if (declared) {
      const value = declared.value;
      if (value !== 'binary' && value !== 'base64') throw new RecordingFormatError(`unknown VNC_frame_encoding '${value}'`, declared.line);
      encoding = value;
    }
  }
  parser.expect('[');
  const entries: Array<{ entry: Buffer; line: number }> = [];
  for (;;) {
    parser.skipSpace();
    const line = parser.line();
    const entry = parser.string();
    if (entry.length === 3 && entry.toString('latin1') === 'EOF') break;
    entries.push({ entry, line });
    parser.skipSpace();
    parser.expect(',');
  }
  parser.skipSpace();
  parser.expect(']');
  parser.skipSpace();
  if (parser.peek() === ';') parser.advance();
  parser.skipSpace();
  while (!parser.atEnd()) {
    if (!parser.startsWith('var')) parser.fail("unexpected text after the closing '];'");
    variable(parser.declaration());
    parser.skipSpace();
  }

  const messages = entries.map(({ entry, line }) => splitEntry(entry, line));
  encoding ??= messages[0]?.direction === 'toClient' && messages[0].data.subarray(0, 4).toString('latin1') === 'UkZC' ? 'base64' : 'binary';
  if (encoding === 'base64') {
    messages.forEach((message, i) => {
      const text = message.data.toString('latin1');
      if (!BASE64.test(text) || text.length % 4 === 1) throw new RecordingFormatError('data is not valid base64', entries[i]!.line);
      message.data = Buffer.from(text, 'base64');
    });
  }
  return { messages, session: json(variables.get(SESSION_VARIABLE)), end: json(variables.get(END_VARIABLE)) };
}

/** A variable's JSON value. */
function json<T>(variable: { value: string; line: number } | undefined): T | undefined {
  if (variable === undefined) return undefined;
  try {
    return JSON.parse(variable.value) as T;
  } catch (err) {
    throw new RecordingFormatError(`a VNC_frame_ variable that is not JSON: ${(err as Error).message}`, variable.line);
  }
}

/** Splits `{ms{data` or `}ms}data`. */
function splitEntry(entry: Buffer, line: number): RecordedMessage {
  const marker = entry[0];
  if (marker !== 0x7b && marker !== 0x7d)
    throw new RecordingFormatError("an entry must start with '{' (to client) or '}' (from client)", line);
  const end = entry.indexOf(marker, 1);
  const stamp = end < 0 ? '' : entry.toString('latin1', 1, end);
  if (!/^-?\d+$/.test(stamp))
    throw new RecordingFormatError(
      `an entry must start with ${String.fromCharCode(marker)}<milliseconds>${String.fromCharCode(marker)}`,
      line,
    );
  return { direction: marker === 0x7b ? 'toClient' : 'fromClient', ms: Number(stamp), data: entry.subarray(end + 1) };
}

const SIMPLE_ESCAPES: Record<string, number> = { b: 8, t: 9, n: 10, v: 11, f: 12, r: 13, '"': 0x22, "'": 0x27, '\\': 0x5c };

/** A cursor over the file's text. */
class Parser {
  private pos = 0;
  private lineNumber = 1;

  constructor(private readonly text: string) {}

  fail(message: string): never {
    throw new RecordingFormatError(message, this.lineNumber);
  }

  line(): number {
    return this.lineNumber;
  }

  peek(): string {
    return this.text.charAt(this.pos);
  }

  advance(): void {
    if (this.text.charCodeAt(this.pos) === 0x0a) this.lineNumber++;
    this.pos++;
  }

  startsWith(text: string): boolean {
    return this.text.startsWith(text, this.pos);
  }

  atEnd(): boolean {
    return this.pos >= this.text.length;
  }

  /** Skips whitespace and comments; `required` demands at least one. */
  skipSpace(required = false): void {
    const start = this.pos;
    for (;;) {
      const c = this.peek();
      if (c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '\v') {
        this.advance();
      } else if (this.text.startsWith('//', this.pos)) {
        while (!this.atEnd() && this.peek() !== '\n') this.advance();
      } else if (this.text.startsWith('/*', this.pos)) {
        const close = this.text.indexOf('*/', this.pos + 2);
        if (close < 0) this.fail('unterminated comment');
        while (this.pos < close + 2) this.advance();
      } else {
        break;
      }
    }
    if (required && this.pos === start) this.fail('expected a space');
  }

  expect(char: string): void {
    if (this.peek() !== char)
      this.fail(this.atEnd() ? `the file ends where '${char}' was expected (an incomplete recording?)` : `expected '${char}'`);
    this.advance();
  }

  expectWord(word: string): void {
    if (!this.text.startsWith(word, this.pos)) this.fail(this.atEnd() ? 'the file is empty or ends early' : `expected '${word}'`);
    this.pos += word.length;
  }

  /** Reads `var <name> =` and the space after it; returns the name. */
  declaration(): string {
    this.expectWord('var');
    this.skipSpace(true);
    const name = this.identifier();
    this.skipSpace();
    this.expect('=');
    this.skipSpace();
    return name;
  }

  identifier(): string {
    const match = /[A-Za-z_$][\w$]*/y;
    match.lastIndex = this.pos;
    const found = match.exec(this.text);
    if (!found) this.fail('expected a variable name');
    this.pos += found[0].length;
    return found[0];
  }

  /** A single-quoted JavaScript string whose characters are all bytes (0-255), decoded into a Buffer. */
  string(): Buffer {
    if (this.peek() !== "'") {
      this.fail(this.atEnd() ? "the file ends without the 'EOF' entry (an incomplete recording?)" : 'expected a single-quoted string');
    }
    const text = this.text;
    const close = this.findClose();
    // Escapes only shrink the text, so the literal's length bounds the decoded one.
    const out = Buffer.allocUnsafe(close - this.pos - 1);
    let length = 0;
    let i = this.pos + 1;
    while (i < close) {
      const c = text.charCodeAt(i);
      if (c >= 0x80) this.failAt(i, `a raw non-ASCII byte (0x${c.toString(16)}); bytes must be escaped`);
      if (c !== 0x5c) {
        out[length++] = c;
        i++;
        continue;
      }
      const e = text.charAt(i + 1);
      if (e === 'x' || e === 'u') {
        const digits = e === 'x' ? 2 : 4;
        const hex = text.slice(i + 2, i + 2 + digits);
        if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== digits) this.failAt(i, `bad \\${e} escape`);
        const code = parseInt(hex, 16);
        if (code > 0xff) this.failAt(i, `character U+${hex} is not a byte`);
        out[length++] = code;
        i += 2 + digits;
      } else if (e === '0' && !/[0-9]/.test(text.charAt(i + 2))) {
        out[length++] = 0;
        i += 2;
      } else if (e === '\n' || e === '\r') {
        // a line continuation adds nothing
        i += e === '\r' && text.charAt(i + 2) === '\n' ? 3 : 2;
      } else if (SIMPLE_ESCAPES[e] !== undefined) {
        out[length++] = SIMPLE_ESCAPES[e]!;
        i += 2;
      } else if (/[0-9]/.test(e)) {
        this.failAt(i, 'octal escapes are not allowed');
      } else {
        // JavaScript keeps the character itself for any other escape
        out[length++] = e.charCodeAt(0);
        i += 2;
      }
    }
    // Only line continuations put line breaks inside a string.
    for (let at = this.pos; at < close; at++) if (text.charCodeAt(at) === 0x0a) this.lineNumber++;
    this.pos = close + 1;
    return out.subarray(0, length);
  }

  /** The index of the quote closing the string at `pos`; a raw line break before it is an error, as in JavaScript. */
  private findClose(): number {
    const text = this.text;
    let i = this.pos + 1;
    for (;;) {
      const c = text.charCodeAt(i);
      if (Number.isNaN(c)) this.failAt(i, 'the file ends inside a string (an incomplete recording?)');
      if (c === 0x27) return i;
      if (c === 0x5c) i += text.startsWith('\r\n', i + 1) ? 3 : 2;
      else if (c === 0x0a || c === 0x0d) this.failAt(i, 'a line break inside a string');
      else i++;
    }
  }

  /** Fails naming the line of `index`, which is inside the current string. */
  private failAt(index: number, message: string): never {
    let line = this.lineNumber;
    for (let i = this.pos; i < index; i++) if (this.text.charCodeAt(i) === 0x0a) line++;
    throw new RecordingFormatError(message, line);
  }
}
