// A telnet client protocol machine (RFC 854/855 with ECHO, SUPPRESS-GO-AHEAD, TERMINAL-TYPE and NAWS).
// Pure TypeScript with no DOM: the page feeds it WebSocket bytes and keystrokes, and the Node tests feed
// it the same bytes split at every boundary.

/** Telnet command bytes (RFC 854) this machine reads or writes. */
export const Cmd = {
  SE: 240,
  SB: 250,
  WILL: 251,
  WONT: 252,
  DO: 253,
  DONT: 254,
  IAC: 255,
} as const;

/** Telnet option codes this machine agrees to (every other option is refused). */
export const Opt = {
  /** RFC 857: the server echoes what we type. */
  ECHO: 1,
  /** RFC 858: no GO AHEAD between turns. */
  SGA: 3,
  /** RFC 1091: the server asks for our terminal type. */
  TTYPE: 24,
  /** RFC 1073: we report the window size, and again on every change. */
  NAWS: 31,
} as const;

/** TERMINAL-TYPE subnegotiation verbs (RFC 1091). */
const TTYPE_IS = 0;
const TTYPE_SEND = 1;

const CR = 13;
const NUL = 0;
const BS = 8;
const DEL = 127;
const ESC = 27;
/** Ctrl-U: erase the line being edited, as a tty's VKILL does. */
const KILL = 21;

/** Options the server may enable on its side (answered with DO). */
const SERVER_OPTIONS: ReadonlySet<number> = new Set([Opt.ECHO, Opt.SGA]);
/** Options we enable on our side when asked (answered with WILL). */
const CLIENT_OPTIONS: ReadonlySet<number> = new Set([Opt.SGA, Opt.TTYPE, Opt.NAWS]);

/** A subnegotiation longer than this is dropped: nothing we agree to needs more, and memory stays bounded. */
const MAX_SUBNEGOTIATION = 1024;

/** A terminal size in character cells. */
export interface WindowSize {
  cols: number;
  rows: number;
}

/** What the machine needs from its surroundings. */
export interface TelnetIo {
  /** Bytes for the server (replies, NAWS reports, typed data), already escaped. */
  send(bytes: Uint8Array): void;
  /** Text for the terminal: server data decoded as UTF-8, and the local echo in line mode. */
  display(text: string): void;
  /** The terminal's current size, reported when the server accepts NAWS. */
  windowSize(): WindowSize;
  /** Called when the server starts or stops echoing (character mode versus local line mode). */
  echoChanged?(remoteEcho: boolean): void;
}

/** Settings of a {@link TelnetClient}. */
export interface TelnetOptions {
  /** The answer to TERMINAL-TYPE SEND; `xterm-256color` by default. */
  terminalType?: string;
}

/** Where the receive parser is between two bytes; kept across calls so any split is harmless. */
enum State {
  Data,
  /** After a CR in the data: a NUL that follows is dropped (RFC 854's bare carriage return). */
  DataCr,
  Iac,
  /** After IAC WILL/WONT/DO/DONT, waiting for the option byte. */
  Negotiate,
  /** After IAC SB, waiting for the option byte. */
  SbOption,
  SbData,
  SbIac,
}

/**
 * Doubles every IAC byte so that data cannot be read as a command (RFC 854).
 */
export function escapeIac(bytes: Uint8Array): Uint8Array {
  let count = 0;
  for (const byte of bytes) if (byte === Cmd.IAC) count++;
  if (count === 0) return bytes;
  const out = new Uint8Array(bytes.length + count);
  let j = 0;
  for (const byte of bytes) {
    out[j++] = byte;
    if (byte === Cmd.IAC) out[j++] = Cmd.IAC;
  }
  return out;
}

/**
 * The client side of a telnet connection. It never starts a negotiation itself, so a service that does
 * not speak telnet (IRC, SMTP, an echo server) sees only what the user types. It answers a request only
 * when it changes the option's state (RFC 854 and RFC 1143's rule): a request for the state already in
 * force is an acknowledgement, answered with silence, so no negotiation loop can start here. Options
 * other than ECHO and SGA (server side) and SGA, TERMINAL-TYPE and NAWS (our side) are refused.
 * Data is not in BINARY mode, so CR NUL is read as a bare CR and Enter is sent as CR LF.
 */
export class TelnetClient {
  readonly #io: TelnetIo;
  readonly #terminalType: string;
  readonly #decoder = new TextDecoder('utf-8');
  readonly #encoder = new TextEncoder();
  /** Options enabled on the server's side (it sent WILL and we sent DO). */
  readonly #server = new Set<number>();
  /** Options enabled on our side (it sent DO and we sent WILL). */
  readonly #client = new Set<number>();
  #state = State.Data;
  #verb = 0;
  #sbOption = 0;
  #sb: number[] = [];
  #sbOverflow = false;
  /** The line being typed while the server does not echo. */
  #line = '';

  /** @param io where replies, text and size queries go */
  constructor(io: TelnetIo, options: TelnetOptions = {}) {
    this.#io = io;
    this.#terminalType = options.terminalType ?? 'xterm-256color';
  }

  /** True while the server echoes (character mode); false for local echo and line editing. */
  get remoteEcho(): boolean {
    return this.#server.has(Opt.ECHO);
  }

  /** True when `option` is enabled on the server's side. */
  serverEnabled(option: number): boolean {
    return this.#server.has(option);
  }

  /** True when `option` is enabled on our side. */
  clientEnabled(option: number): boolean {
    return this.#client.has(option);
  }

  /**
   * Parses bytes from the server, in whatever pieces they arrive: data goes to `display`, answers to
   * `send`. Commands, subnegotiations and multibyte characters may be split anywhere.
   */
  receive(chunk: Uint8Array): void {
    const data: number[] = [];
    for (const byte of chunk) {
      switch (this.#state) {
        case State.Data:
        case State.DataCr:
          if (byte === Cmd.IAC) {
            this.#state = State.Iac;
          } else {
            // CR NUL is a bare carriage return: the NUL only marks it and is not data.
            if (!(this.#state === State.DataCr && byte === NUL)) data.push(byte);
            this.#state = byte === CR ? State.DataCr : State.Data;
          }
          break;
        case State.Iac:
          this.#command(byte, data);
          break;
        case State.Negotiate:
          this.#state = State.Data;
          // Answers go out after the data seen so far, so the display stays in stream order.
          this.#flushData(data);
          this.#negotiate(this.#verb, byte);
          break;
        case State.SbOption:
          this.#sbOption = byte;
          this.#sb = [];
          this.#sbOverflow = false;
          this.#state = State.SbData;
          break;
        case State.SbData:
          if (byte === Cmd.IAC) this.#state = State.SbIac;
          else this.#sbPush(byte);
          break;
        case State.SbIac:
          if (byte === Cmd.IAC) {
            this.#sbPush(Cmd.IAC);
            this.#state = State.SbData;
          } else if (byte === Cmd.SE) {
            this.#state = State.Data;
            this.#flushData(data);
            if (!this.#sbOverflow) this.#subnegotiation(this.#sbOption, this.#sb);
          } else {
            // IAC and another command inside SB: the server forgot SE. Drop the SB, read the command.
            this.#command(byte, data);
          }
          break;
      }
    }
    this.#flushData(data);
  }

  /**
   * Sends what the user typed (a keystroke, a key's escape sequence or a paste). Enter (CR, or CR LF) is
   * sent as CR LF. While the server does not echo, text is echoed locally and edited as a line
   * (Backspace, Ctrl-U) and sent when Enter is pressed.
   */
  type(input: string): void {
    if (this.remoteEcho) {
      this.#sendText(input.replace(/\r\n?/g, '\r\n'));
      return;
    }
    // Cursor and function keys have no meaning on a line nobody but us edits.
    if (input.length > 1 && input.charCodeAt(0) === ESC) return;
    for (const char of input.replace(/\r\n/g, '\r')) {
      const code = char.charCodeAt(0);
      if (code === CR) {
        this.#io.display('\r\n');
        this.#sendText(`${this.#line}\r\n`);
        this.#line = '';
      } else if (code === BS || code === DEL) {
        if (this.#line.length > 0) {
          this.#line = Array.from(this.#line).slice(0, -1).join('');
          this.#io.display('\b \b');
        }
      } else if (code === KILL) {
        this.#io.display('\b \b'.repeat(Array.from(this.#line).length));
        this.#line = '';
      } else if (code < 32) {
        // Other control keys (Ctrl-C, Ctrl-D, Tab...) go straight to the server.
        this.#sendText(char);
      } else {
        this.#line += char;
        this.#io.display(char);
      }
    }
  }

  /** Reports the terminal's size again (call on every resize); nothing is sent until NAWS is agreed. */
  resized(): void {
    if (this.#client.has(Opt.NAWS)) this.#sendNaws();
  }

  /** Reads the byte after an IAC (outside a subnegotiation, or one that lacks its SE). */
  #command(byte: number, data: number[]): void {
    this.#state = State.Data;
    if (byte === Cmd.IAC) {
      data.push(Cmd.IAC);
    } else if (byte >= Cmd.WILL && byte <= Cmd.DONT) {
      this.#verb = byte;
      this.#state = State.Negotiate;
    } else if (byte === Cmd.SB) {
      this.#state = State.SbOption;
    }
    // Every other command (NOP, GA, DM, AYT, ...) carries nothing a terminal shows.
  }

  #flushData(data: number[]): void {
    if (data.length === 0) return;
    // The streaming decoder keeps a split multibyte character until its last byte arrives.
    const text = this.#decoder.decode(Uint8Array.from(data), { stream: true });
    data.length = 0;
    if (text !== '') this.#io.display(text);
  }

  #sbPush(byte: number): void {
    if (this.#sb.length >= MAX_SUBNEGOTIATION) this.#sbOverflow = true;
    else this.#sb.push(byte);
  }

  #sendText(text: string): void {
    if (text !== '') this.#io.send(escapeIac(this.#encoder.encode(text)));
  }

  #sendCommand(verb: number, option: number): void {
    this.#io.send(Uint8Array.of(Cmd.IAC, verb, option));
  }

  #negotiate(verb: number, option: number): void {
    switch (verb) {
      case Cmd.WILL:
        if (this.#server.has(option)) return;
        if (SERVER_OPTIONS.has(option)) {
          this.#server.add(option);
          this.#sendCommand(Cmd.DO, option);
          if (option === Opt.ECHO) this.#echoChanged();
        } else {
          this.#sendCommand(Cmd.DONT, option);
        }
        return;
      case Cmd.WONT:
        // Only a change of state is answered; a WONT for a disabled option is already agreed.
        if (!this.#server.delete(option)) return;
        this.#sendCommand(Cmd.DONT, option);
        if (option === Opt.ECHO) this.#echoChanged();
        return;
      case Cmd.DO:
        if (this.#client.has(option)) return;
        if (CLIENT_OPTIONS.has(option)) {
          this.#client.add(option);
          this.#sendCommand(Cmd.WILL, option);
          if (option === Opt.NAWS) this.#sendNaws();
        } else {
          this.#sendCommand(Cmd.WONT, option);
        }
        return;
      default:
        if (!this.#client.delete(option)) return;
        this.#sendCommand(Cmd.WONT, option);
    }
  }

  #subnegotiation(option: number, body: number[]): void {
    if (option === Opt.TTYPE && this.#client.has(Opt.TTYPE) && body[0] === TTYPE_SEND) {
      const name = this.#encoder.encode(this.#terminalType);
      this.#io.send(Uint8Array.of(Cmd.IAC, Cmd.SB, Opt.TTYPE, TTYPE_IS, ...escapeIac(name), Cmd.IAC, Cmd.SE));
    }
  }

  #sendNaws(): void {
    const { cols, rows } = this.#io.windowSize();
    const clamp = (n: number): number => Math.max(0, Math.min(0xffff, Math.floor(n)));
    const size = Uint8Array.of(clamp(cols) >> 8, clamp(cols) & 0xff, clamp(rows) >> 8, clamp(rows) & 0xff);
    this.#io.send(Uint8Array.of(Cmd.IAC, Cmd.SB, Opt.NAWS, ...escapeIac(size), Cmd.IAC, Cmd.SE));
  }

  #echoChanged(): void {
    // From now on keys go straight to the server, so a half-typed local line goes first.
    if (this.remoteEcho && this.#line !== '') {
      this.#sendText(this.#line);
      this.#line = '';
    }
    this.#io.echoChanged?.(this.remoteEcho);
  }
}
