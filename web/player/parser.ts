// A streaming reader of session recordings (noVNC's format, see src/record/format.ts), for the player:
// it takes the file in chunks as they arrive and never holds its text, only the decoded messages.
import { type MessageStore, TO_CLIENT } from './store.js';

/** A file that is not a valid recording, or not a complete one; the message names the line. */
export class RecordingError extends Error {
  constructor(
    message: string,
    /** 1-based line of the file where reading stopped. */
    readonly line: number,
    /** True when the file is only cut short (no 'EOF' entry): what came before it is sound. */
    readonly incomplete = false,
  ) {
    super(`line ${line}: ${message}`);
    this.name = 'RecordingError';
  }
}

/** Where the tokenizer is between two bytes; kept across chunks so any split is harmless. */
enum Lex {
  Space,
  Slash,
  LineComment,
  BlockComment,
  BlockStar,
  Word,
  String,
  Escape,
  Hex,
  /** After a backslash and CR: a LF that follows is part of the line continuation. */
  EscapeCr,
}

/** What the grammar expects next. */
enum Expect {
  Var,
  Name,
  Equals,
  Value,
  Semicolon,
  Entry,
  Comma,
  Close,
  CloseSemicolon,
}

const SIMPLE_ESCAPES: Record<number, number> = { 98: 8, 116: 9, 110: 10, 118: 11, 102: 12, 114: 13, 34: 0x22, 39: 0x27, 92: 0x5c };
const isSpace = (c: number): boolean => c === 0x20 || (c >= 0x09 && c <= 0x0d);
const isWordChar = (c: number): boolean =>
  (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f || c === 0x24;
const hexValue = (c: number): number =>
  c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 87 : c >= 0x41 && c <= 0x46 ? c - 55 : -1;

/**
 * Parses a recording pushed to it chunk by chunk: `var VNC_frame_<name> = '...';` lines, then
 * `var VNC_frame_data = [` with one string per message and `'EOF'];`, then more such lines. Each message
 * goes to the store as it completes; the string being read is the only other buffer (one message's size).
 * Variables other than the data are kept as text (`VNC_frame_session`, `VNC_frame_end` are JSON).
 */
export class RecordingParser {
  /** The `VNC_frame_*` string variables read so far. */
  readonly variables = new Map<string, string>();
  /** True once the 'EOF' entry was read. */
  complete = false;
  #lex = Lex.Space;
  #expect = Expect.Var;
  #line = 1;
  #word = '';
  #name = '';
  #inData = false;
  #afterData = false;
  /** The string being decoded, and its length so far. */
  #buffer = new Uint8Array(4096);
  #length = 0;
  #hexDigits = 0;
  #hexValue = 0;
  #hexWanted = 0;
  /** Base64 data (Python websockify's old files): decided at the first entry. */
  #base64: boolean | undefined;

  constructor(
    private readonly store: MessageStore,
    /** Told of each message from the client (which the store keeps only the size of), for example to find terminal sizes. */
    private readonly onClientData?: (ms: number, data: Uint8Array) => void,
  ) {}

  /** Parses the next chunk of the file. @throws RecordingError */
  push(chunk: Uint8Array): void {
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i]!;
      switch (this.#lex) {
        case Lex.String: {
          // The common case, plain characters, is copied in one go up to the next quote or backslash.
          let end = i;
          while (end < chunk.length) {
            const d = chunk[end]!;
            if (d === 0x27 || d === 0x5c || d === 0x0a || d === 0x0d || d >= 0x80) break;
            end++;
          }
          if (end > i) {
            this.#reserve(end - i);
            this.#buffer.set(chunk.subarray(i, end), this.#length);
            this.#length += end - i;
            i = end - 1;
            continue;
          }
          if (c === 0x27) {
            this.#lex = Lex.Space;
            this.#token('string');
          } else if (c === 0x5c) this.#lex = Lex.Escape;
          else if (c >= 0x80) this.#fail(`a raw non-ASCII byte (0x${c.toString(16)}); bytes must be escaped`);
          else this.#fail('a line break inside a string');
          break;
        }
        case Lex.Escape:
          this.#escape(c);
          break;
        case Lex.Hex: {
          const v = hexValue(c);
          if (v < 0) this.#fail('a bad \\x or \\u escape');
          this.#hexValue = this.#hexValue * 16 + v;
          if (++this.#hexDigits === this.#hexWanted) {
            if (this.#hexValue > 0xff) this.#fail(`character U+${this.#hexValue.toString(16)} is not a byte`);
            this.#byte(this.#hexValue);
            this.#lex = Lex.String;
          }
          break;
        }
        case Lex.EscapeCr:
          this.#lex = Lex.String;
          if (c !== 0x0a) i--;
          else this.#line++;
          break;
        case Lex.Word:
          if (isWordChar(c)) {
            this.#word += String.fromCharCode(c);
            break;
          }
          this.#lex = Lex.Space;
          this.#token('word');
          i--;
          break;
        case Lex.LineComment:
          if (c === 0x0a) {
            this.#line++;
            this.#lex = Lex.Space;
          }
          break;
        case Lex.BlockComment:
          if (c === 0x2a) this.#lex = Lex.BlockStar;
          else if (c === 0x0a) this.#line++;
          break;
        case Lex.BlockStar:
          if (c === 0x2f) this.#lex = Lex.Space;
          else if (c !== 0x2a) {
            if (c === 0x0a) this.#line++;
            this.#lex = Lex.BlockComment;
          }
          break;
        case Lex.Slash:
          if (c === 0x2f) this.#lex = Lex.LineComment;
          else if (c === 0x2a) this.#lex = Lex.BlockComment;
          else this.#fail("unexpected '/'");
          break;
        default:
          if (c === 0x0a) this.#line++;
          if (isSpace(c)) break;
          if (c === 0x2f) this.#lex = Lex.Slash;
          else if (c === 0x27) {
            this.#lex = Lex.String;
            this.#length = 0;
          } else if (isWordChar(c)) {
            this.#lex = Lex.Word;
            this.#word = String.fromCharCode(c);
          } else this.#token(String.fromCharCode(c));
      }
    }
  }

  /** The file has ended. @throws RecordingError when it ended where a complete recording cannot. */
  finish(): void {
    if (this.#lex === Lex.Word) {
      this.#lex = Lex.Space;
      this.#token('word');
    }
    if (this.#lex === Lex.String || this.#lex === Lex.Escape || this.#lex === Lex.Hex)
      throw new RecordingError('the file ends inside a string (an incomplete recording?)', this.#line, this.#inData);
    if (this.#lex === Lex.BlockComment || this.#lex === Lex.BlockStar) this.#fail('the file ends inside a comment');
    if (!this.#afterData) {
      if (this.#inData) throw new RecordingError("the file ends without the 'EOF' entry (an incomplete recording?)", this.#line, true);
      this.#fail(this.#line === 1 && this.#expect === Expect.Var ? 'the file is empty' : 'the file ends before its data');
    }
    if (this.#expect !== Expect.Var && this.#expect !== Expect.CloseSemicolon) this.#fail('the file ends inside a variable');
  }

  #fail(message: string): never {
    throw new RecordingError(message, this.#line);
  }

  #reserve(extra: number): void {
    if (this.#length + extra <= this.#buffer.length) return;
    const grown = new Uint8Array(Math.max(this.#buffer.length * 2, this.#length + extra));
    grown.set(this.#buffer.subarray(0, this.#length));
    this.#buffer = grown;
  }

  #byte(value: number): void {
    this.#reserve(1);
    this.#buffer[this.#length++] = value;
  }

  #escape(c: number): void {
    this.#lex = Lex.String;
    if (c === 0x78 || c === 0x75) {
      this.#lex = Lex.Hex;
      this.#hexWanted = c === 0x78 ? 2 : 4;
      this.#hexDigits = 0;
      this.#hexValue = 0;
    } else if (c === 0x0a) this.#line++;
    else if (c === 0x0d) this.#lex = Lex.EscapeCr;
    else if (c === 0x30) this.#byte(0);
    else if (c >= 0x31 && c <= 0x39) this.#fail('octal escapes are not allowed');
    else if (c >= 0x80) this.#fail(`a raw non-ASCII byte (0x${c.toString(16)}); bytes must be escaped`);
    else this.#byte(SIMPLE_ESCAPES[c] ?? c);
  }

  /** The grammar: one token, a word, a string or a punctuation character. */
  #token(token: string): void {
    switch (this.#expect) {
      case Expect.Var:
        if (token !== 'word' || this.#word !== 'var')
          this.#fail(this.#afterData ? "unexpected text after the closing '];'" : "expected 'var'");
        this.#expect = Expect.Name;
        return;
      case Expect.Name:
        if (token !== 'word') this.#fail('expected a variable name');
        if (!this.#word.startsWith('VNC_frame_')) this.#fail(`unexpected variable ${this.#word}: expected VNC_frame_data`);
        if (this.#word === 'VNC_frame_data' && this.#afterData) this.#fail('a second VNC_frame_data');
        this.#name = this.#word;
        this.#expect = Expect.Equals;
        return;
      case Expect.Equals:
        if (token !== '=') this.#fail("expected '='");
        this.#expect = Expect.Value;
        return;
      case Expect.Value:
        if (this.#name === 'VNC_frame_data') {
          if (token !== '[') this.#fail("expected '['");
          this.#inData = true;
          this.#expect = Expect.Entry;
          return;
        }
        if (token !== 'string') this.#fail('expected a single-quoted string');
        this.#variable(this.#name, this.#text());
        this.#expect = Expect.Semicolon;
        return;
      case Expect.Semicolon:
        if (token !== ';') this.#fail("expected ';'");
        this.#expect = Expect.Var;
        return;
      case Expect.Entry:
        if (token !== 'string') this.#fail(token === ']' ? "the data ends without its 'EOF' entry" : 'expected a single-quoted string');
        if (this.#length === 3 && this.#text() === 'EOF') {
          this.complete = true;
          this.#expect = Expect.Close;
          return;
        }
        this.#entry();
        this.#expect = Expect.Comma;
        return;
      case Expect.Comma:
        if (token !== ',') this.#fail("expected ','");
        this.#expect = Expect.Entry;
        return;
      case Expect.Close:
        if (token !== ']') this.#fail("expected ']' after 'EOF'");
        this.#inData = false;
        this.#afterData = true;
        this.#expect = Expect.CloseSemicolon;
        return;
      case Expect.CloseSemicolon:
        this.#expect = Expect.Var;
        if (token !== ';') this.#token(token);
        return;
    }
  }

  #text(): string {
    let text = '';
    for (let i = 0; i < this.#length; i++) text += String.fromCharCode(this.#buffer[i]!);
    return text;
  }

  #variable(name: string, value: string): void {
    if (name === 'VNC_frame_encoding' && value !== 'binary' && value !== 'base64') this.#fail(`unknown VNC_frame_encoding '${value}'`);
    this.variables.set(name, value);
  }

  /** One message, `{ms{data` (to the client) or `}ms}data` (from it). */
  #entry(): void {
    const entry = this.#buffer.subarray(0, this.#length);
    const marker = entry[0];
    if (marker !== 0x7b && marker !== 0x7d) this.#fail("an entry must start with '{' (to client) or '}' (from client)");
    let at = 1;
    let ms = 0;
    const negative = entry[1] === 0x2d;
    if (negative) at++;
    const digitsAt = at;
    while (at < entry.length && entry[at]! >= 0x30 && entry[at]! <= 0x39) ms = ms * 10 + entry[at++]! - 0x30;
    if (at === digitsAt || entry[at] !== marker) {
      const m = String.fromCharCode(marker);
      this.#fail(`an entry must start with ${m}<milliseconds>${m}`);
    }
    let data: Uint8Array = entry.subarray(at + 1);
    this.#base64 ??= this.variables.has('VNC_frame_encoding')
      ? this.variables.get('VNC_frame_encoding') === 'base64'
      : marker === 0x7b && data.length >= 4 && String.fromCharCode(...data.subarray(0, 4)) === 'UkZC';
    if (this.#base64) data = this.#decodeBase64(data);
    const time = negative ? -ms : ms;
    if (marker === TO_CLIENT) this.store.add(time, true, data);
    else {
      this.store.add(time, false, data);
      this.onClientData?.(time, data);
    }
  }

  #decodeBase64(data: Uint8Array): Uint8Array {
    let text = '';
    for (let i = 0; i < data.length; i++) text += String.fromCharCode(data[i]!);
    let binary: string;
    try {
      binary = atob(text);
    } catch {
      this.#fail('data is not valid base64');
    }
    const out = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
    return out;
  }
}
