// The telnet machine of the wstelnet page, in Node: the page's bytes and keystrokes, with every answer
// checked byte for byte.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Cmd, escapeIac, Opt, TelnetClient, type WindowSize } from '../../web/telnet.js';

const { IAC, SB, SE, WILL, WONT, DO, DONT } = Cmd;
const NOP = 241;
const GA = 249;
const BINARY = 0;
const UNKNOWN = 99;

/** A machine with everything it sends and shows recorded. */
function harness(size: WindowSize = { cols: 80, rows: 24 }, terminalType?: string) {
  const sent: Uint8Array[] = [];
  const shown: string[] = [];
  const echoes: boolean[] = [];
  const telnet = new TelnetClient(
    {
      send: (bytes) => sent.push(Uint8Array.from(bytes)),
      display: (text) => shown.push(text),
      windowSize: () => size,
      echoChanged: (remote) => echoes.push(remote),
    },
    terminalType === undefined ? {} : { terminalType },
  );
  return {
    telnet,
    size,
    echoes,
    /** Everything sent so far, as one byte array, then forgotten. */
    takeSent(): number[] {
      const all = sent.flatMap((chunk) => [...chunk]);
      sent.length = 0;
      return all;
    },
    /** Everything shown so far, as one string, then forgotten. */
    takeShown(): string {
      const all = shown.join('');
      shown.length = 0;
      return all;
    },
  };
}

const bytes = (...parts: Array<number | string | number[]>): Uint8Array =>
  Uint8Array.from(
    parts.flatMap((part) => (typeof part === 'number' ? [part] : Array.isArray(part) ? part : [...Buffer.from(part, 'utf8')])),
  );

const ttypeIs = (name: string): number[] => [IAC, SB, Opt.TTYPE, 0, ...Buffer.from(name), IAC, SE];

describe('telnet: data', () => {
  it('passes plain text (ASCII, CR LF, UTF-8) through untouched and sends nothing', () => {
    const h = harness();
    const text = 'Hello, world\r\n220 smtp.example ESMTP ready\r\nnaïve – 日本語 – 🙂\r\n\ttab\x1b[1mbold\x1b[0m\r\n';
    h.telnet.receive(Buffer.from(text, 'utf8'));
    assert.equal(h.takeShown(), text);
    assert.deepEqual(h.takeSent(), []);
  });

  it('reads IAC IAC as one 0xFF data byte, and IAC with another command as no data', () => {
    const h = harness();
    // 0xFF alone is not UTF-8, so the terminal shows U+FFFD for it: one data byte, not a command.
    h.telnet.receive(bytes('a', IAC, IAC, 'b', IAC, NOP, 'c', IAC, GA, 'd'));
    assert.equal(h.takeShown(), 'a\uFFFDbcd');
    assert.deepEqual(h.takeSent(), []);
  });

  it('drops the NUL of CR NUL (a bare carriage return), even across messages, and keeps CR LF', () => {
    const h = harness();
    h.telnet.receive(bytes('one', 13, 0, 'two', 13));
    h.telnet.receive(bytes(0, 'three', 13, 10, 0, 'x'));
    assert.equal(h.takeShown(), 'one\rtwo\rthree\r\n\0x');
  });

  it('keeps a multibyte character split across messages and across a command', () => {
    const h = harness();
    const e = [...Buffer.from('é')];
    h.telnet.receive(bytes('caf', e[0]!));
    h.telnet.receive(bytes(IAC, WILL, Opt.SGA));
    h.telnet.receive(bytes(e[1]!, '!'));
    assert.equal(h.takeShown(), 'café!');
    assert.deepEqual(h.takeSent(), [IAC, DO, Opt.SGA]);
  });
});

describe('telnet: negotiation', () => {
  it('accepts ECHO and SGA from the server, refuses other server options', () => {
    const h = harness();
    h.telnet.receive(bytes(IAC, WILL, Opt.ECHO, IAC, WILL, Opt.SGA, IAC, WILL, BINARY, IAC, WILL, UNKNOWN));
    assert.deepEqual(h.takeSent(), [IAC, DO, Opt.ECHO, IAC, DO, Opt.SGA, IAC, DONT, BINARY, IAC, DONT, UNKNOWN]);
    assert.equal(h.telnet.remoteEcho, true);
    assert.deepEqual(h.echoes, [true]);
    assert.equal(h.telnet.serverEnabled(BINARY), false);
  });

  it('enables SGA, TTYPE and NAWS on our side when asked, refuses ECHO and the rest', () => {
    const h = harness({ cols: 132, rows: 43 });
    h.telnet.receive(bytes(IAC, DO, Opt.SGA, IAC, DO, Opt.TTYPE, IAC, DO, Opt.NAWS, IAC, DO, Opt.ECHO, IAC, DO, UNKNOWN));
    assert.deepEqual(h.takeSent(), [
      IAC,
      WILL,
      Opt.SGA,
      IAC,
      WILL,
      Opt.TTYPE,
      IAC,
      WILL,
      Opt.NAWS,
      IAC,
      SB,
      Opt.NAWS,
      0,
      132,
      0,
      43,
      IAC,
      SE,
      IAC,
      WONT,
      Opt.ECHO,
      IAC,
      WONT,
      UNKNOWN,
    ]);
    assert.equal(h.telnet.clientEnabled(Opt.ECHO), false);
  });

  it('answers a request once per change of state: repeats and agreed refusals get no answer', () => {
    const h = harness();
    h.telnet.receive(bytes(IAC, WILL, Opt.ECHO, IAC, DO, Opt.TTYPE));
    assert.deepEqual(h.takeSent(), [IAC, DO, Opt.ECHO, IAC, WILL, Opt.TTYPE]);
    // Already enabled: a repeat is an acknowledgement, not a request.
    h.telnet.receive(bytes(IAC, WILL, Opt.ECHO, IAC, DO, Opt.TTYPE));
    assert.deepEqual(h.takeSent(), []);
    // Disabling is confirmed once; a second WONT/DONT finds the option already off.
    h.telnet.receive(bytes(IAC, WONT, Opt.ECHO, IAC, DONT, Opt.TTYPE, IAC, WONT, Opt.ECHO, IAC, DONT, Opt.TTYPE));
    assert.deepEqual(h.takeSent(), [IAC, DONT, Opt.ECHO, IAC, WONT, Opt.TTYPE]);
    assert.equal(h.telnet.remoteEcho, false);
    assert.deepEqual(h.echoes, [true, false]);
    // WONT/DONT for options never enabled are already agreed.
    h.telnet.receive(bytes(IAC, WONT, UNKNOWN, IAC, DONT, UNKNOWN, IAC, WONT, Opt.SGA, IAC, DONT, Opt.NAWS));
    assert.deepEqual(h.takeSent(), []);
  });

  it('never loops with a peer that acknowledges everything it hears', () => {
    // The classic loop-maker: it mirrors every command (DO for WILL, WONT for DONT...) without state, so
    // it answers acknowledgements too. (No side can settle with it if it also flips an option back and
    // forth itself, so each option is asked about once.)
    const h = harness();
    const mirror: Record<number, number> = { [WILL]: DO, [DO]: WILL, [WONT]: DONT, [DONT]: WONT };
    const opening = [
      [WILL, Opt.ECHO],
      [DO, Opt.NAWS],
      [WILL, BINARY],
      [DO, UNKNOWN],
      [DO, Opt.ECHO],
      [WILL, Opt.SGA],
      [DO, Opt.TTYPE],
      [WONT, Opt.TTYPE],
      [DONT, BINARY],
      [DO, Opt.SGA],
    ];
    let toClient = opening.flatMap(([verb, option]) => [IAC, verb!, option!]);
    let rounds = 0;
    let total = 0;
    while (toClient.length > 0) {
      assert.ok(++rounds < 10, 'the negotiation did not settle');
      h.telnet.receive(Uint8Array.from(toClient));
      const fromClient = h.takeSent();
      total += fromClient.length;
      toClient = [];
      for (let i = 0; i < fromClient.length; ) {
        assert.equal(fromClient[i], IAC);
        if (fromClient[i + 1] === SB) {
          i = fromClient.indexOf(SE, i) + 1;
          continue;
        }
        toClient.push(IAC, mirror[fromClient[i + 1]!]!, fromClient[i + 2]!);
        i += 3;
      }
    }
    assert.ok(total > 0);
    assert.ok(rounds <= 3, `settled after ${rounds} rounds`);
    assert.equal(h.telnet.remoteEcho, true);
    assert.equal(h.telnet.clientEnabled(Opt.NAWS), true);
    assert.equal(h.telnet.serverEnabled(BINARY), false);
  });
});

describe('telnet: subnegotiation', () => {
  it('answers TERMINAL-TYPE SEND with IS xterm-256color, once TTYPE is agreed', () => {
    const h = harness();
    h.telnet.receive(bytes(IAC, SB, Opt.TTYPE, 1, IAC, SE));
    assert.deepEqual(h.takeSent(), [], 'no answer before DO TTYPE');
    h.telnet.receive(bytes(IAC, DO, Opt.TTYPE, IAC, SB, Opt.TTYPE, 1, IAC, SE, 'after'));
    assert.deepEqual(h.takeSent(), [IAC, WILL, Opt.TTYPE, ...ttypeIs('xterm-256color')]);
    assert.equal(h.takeShown(), 'after');
  });

  it('answers with the configured terminal type', () => {
    const h = harness(undefined, 'vt100');
    h.telnet.receive(bytes(IAC, DO, Opt.TTYPE, IAC, SB, Opt.TTYPE, 1, IAC, SE));
    assert.deepEqual(h.takeSent(), [IAC, WILL, Opt.TTYPE, ...ttypeIs('vt100')]);
  });

  it('reads IAC IAC inside SB as data, so it does not end the subnegotiation', () => {
    const h = harness();
    // A parser that took the second IAC for a command would end the SB at "IAC SE" and show "x".
    h.telnet.receive(bytes(IAC, SB, UNKNOWN, IAC, IAC, SE, 'x', IAC, SE, 'text'));
    assert.equal(h.takeShown(), 'text');
    assert.deepEqual(h.takeSent(), []);
  });

  it('ends a subnegotiation that lacks its SE at the next command', () => {
    const h = harness();
    h.telnet.receive(bytes(IAC, SB, UNKNOWN, 1, 2, IAC, WILL, Opt.ECHO, 'text'));
    assert.equal(h.takeShown(), 'text');
    assert.deepEqual(h.takeSent(), [IAC, DO, Opt.ECHO]);
  });

  it('sends NAWS with the real size, again on resize, with a 255 byte doubled', () => {
    const h = harness({ cols: 80, rows: 24 });
    h.telnet.resized();
    assert.deepEqual(h.takeSent(), [], 'no report before DO NAWS');
    h.telnet.receive(bytes(IAC, DO, Opt.NAWS));
    assert.deepEqual(h.takeSent(), [IAC, WILL, Opt.NAWS, IAC, SB, Opt.NAWS, 0, 80, 0, 24, IAC, SE]);
    h.size.cols = 255;
    h.size.rows = 0x1ff;
    h.telnet.resized();
    assert.deepEqual(h.takeSent(), [IAC, SB, Opt.NAWS, 0, 255, 255, 1, 255, 255, IAC, SE]);
    h.telnet.receive(bytes(IAC, DONT, Opt.NAWS));
    assert.deepEqual(h.takeSent(), [IAC, WONT, Opt.NAWS]);
    h.telnet.resized();
    assert.deepEqual(h.takeSent(), [], 'no report after DONT NAWS');
  });
});

describe('telnet: any split', () => {
  // Every construct in one stream; the answers and the text must not depend on how it is cut.
  const stream = bytes(
    'login: ',
    IAC,
    WILL,
    Opt.ECHO,
    IAC,
    DO,
    Opt.TTYPE,
    'a',
    IAC,
    IAC,
    'b',
    IAC,
    SB,
    Opt.TTYPE,
    1,
    IAC,
    SE,
    IAC,
    DO,
    Opt.NAWS,
    IAC,
    SB,
    UNKNOWN,
    IAC,
    IAC,
    SE,
    9,
    IAC,
    SE,
    IAC,
    WILL,
    BINARY,
    'é日🙂',
    13,
    0,
    'x',
    13,
    10,
    IAC,
    NOP,
    IAC,
    DONT,
    Opt.TTYPE,
    'end',
  );
  const expectedText = 'login: a\uFFFDbé日🙂\rx\r\nend';
  const expectedSent = [
    IAC,
    DO,
    Opt.ECHO,
    IAC,
    WILL,
    Opt.TTYPE,
    ...ttypeIs('xterm-256color'),
    IAC,
    WILL,
    Opt.NAWS,
    IAC,
    SB,
    Opt.NAWS,
    0,
    100,
    0,
    30,
    IAC,
    SE,
    IAC,
    DONT,
    BINARY,
    IAC,
    WONT,
    Opt.TTYPE,
  ];
  const run = (cuts: number[]): { text: string; sent: number[] } => {
    const h = harness({ cols: 100, rows: 30 });
    let start = 0;
    for (const cut of [...cuts, stream.length]) {
      h.telnet.receive(stream.subarray(start, cut));
      start = cut;
    }
    return { text: h.takeShown(), sent: h.takeSent() };
  };

  it('gives the expected text and answers in one piece', () => {
    assert.deepEqual(run([]), { text: expectedText, sent: expectedSent });
  });

  it('gives the same at every split point, and every pair of split points', () => {
    for (let i = 0; i <= stream.length; i++) {
      for (let j = i; j <= stream.length; j++) {
        assert.deepEqual(run([i, j]), { text: expectedText, sent: expectedSent }, `cut at ${i} and ${j}`);
      }
    }
  });

  it('gives the same one byte at a time', () => {
    assert.deepEqual(run(Array.from({ length: stream.length }, (_, i) => i)), { text: expectedText, sent: expectedSent });
  });
});

describe('telnet: typing', () => {
  it('escapes IAC in outgoing data', () => {
    assert.deepEqual([...escapeIac(Uint8Array.of(1, 255, 2, 255, 255))], [1, 255, 255, 2, 255, 255, 255, 255]);
    const plain = Uint8Array.of(1, 2, 3);
    assert.equal(escapeIac(plain), plain);
  });

  it('edits a line locally while the server does not echo, and sends it with CR LF on Enter', () => {
    const h = harness();
    for (const key of 'NICK testerr') h.telnet.type(key);
    assert.deepEqual(h.takeSent(), [], 'nothing leaves before Enter');
    h.telnet.type('\x7f');
    h.telnet.type('\x1b[A'); // a cursor key: ignored in line mode
    h.telnet.type('\r');
    assert.equal(Buffer.from(h.takeSent()).toString(), 'NICK tester\r\n');
    assert.equal(h.takeShown(), 'NICK testerr\b \b\r\n');
    h.telnet.type('junk\x15USER tester 0 * :Tést\r');
    assert.equal(Buffer.from(h.takeSent()).toString(), 'USER tester 0 * :Tést\r\n');
    h.telnet.type('\x03');
    assert.deepEqual(h.takeSent(), [3], 'control keys go straight out');
  });

  it('sends every key at once while the server echoes; Enter becomes CR LF', () => {
    const h = harness();
    h.telnet.type('ec');
    h.telnet.receive(bytes(IAC, WILL, Opt.ECHO));
    assert.deepEqual(h.takeSent(), [IAC, DO, Opt.ECHO, ...Buffer.from('ec')], 'the half-typed line goes first');
    h.takeShown();
    h.telnet.type('h');
    h.telnet.type('o ü\r');
    h.telnet.type('\x1b[A');
    h.telnet.type('a\r\nb\r');
    assert.equal(Buffer.from(h.takeSent()).toString(), 'ho ü\r\n\x1b[Aa\r\nb\r\n');
    assert.equal(h.takeShown(), '', 'no local echo');
  });
});
