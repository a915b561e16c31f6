// Properties of the wstelnet page's telnet machine, which reads whatever the server (or anyone between)
// sends: it never throws, any split of the same bytes gives the same screen, answers and option states,
// and data that is escaped as RFC 854 asks is shown as sent.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { Cmd, escapeIac, Opt, TelnetClient } from '../../web/telnet.js';
import { chunked, propertyRuns } from '../helpers/fast-check.js';

const { IAC, SB, SE, WILL, WONT, DO, DONT } = Cmd;

/** A machine that records, in order, what it shows and sends (adjacent pieces of the same kind joined). */
function harness() {
  const log: Array<['display', string] | ['send', number[]] | ['echo', boolean]> = [];
  const telnet = new TelnetClient({
    send: (bytes) => {
      const last = log.at(-1);
      if (last?.[0] === 'send') last[1].push(...bytes);
      else log.push(['send', [...bytes]]);
    },
    display: (text) => {
      const last = log.at(-1);
      if (last?.[0] === 'display') last[1] += text;
      else log.push(['display', text]);
    },
    windowSize: () => ({ cols: 300, rows: 255 }),
    echoChanged: (remote) => log.push(['echo', remote]),
  });
  const options = (): boolean[] =>
    Array.from({ length: 256 }, (_, option) => [telnet.serverEnabled(option), telnet.clientEnabled(option)]).flat();
  return { telnet, log, options };
}

const option = fc.oneof(fc.constantFrom(Opt.ECHO, Opt.SGA, Opt.TTYPE, Opt.NAWS, 0, 99, IAC), fc.integer({ min: 0, max: 255 }));

/** Server bytes as telnet servers (and broken or hostile ones) send them. */
const serverBytes = fc
  .array(
    fc.oneof(
      fc.tuple(fc.constantFrom(WILL, WONT, DO, DONT), option).map(([verb, opt]) => [IAC, verb, opt]),
      fc.constant([IAC, SB, Opt.TTYPE, 1, IAC, SE]),
      fc.tuple(option, fc.uint8Array({ maxLength: 8 })).map(([opt, body]) => [IAC, SB, opt, ...escapeIac(body), IAC, SE]),
      // Broken subnegotiations: no SE, another command inside, cut short.
      fc
        .tuple(option, fc.uint8Array({ maxLength: 6 }), fc.integer({ min: 236, max: 255 }))
        .map(([opt, body, cmd]) => [IAC, SB, opt, ...body, IAC, cmd]),
      fc.constantFrom(
        [IAC],
        [IAC, IAC],
        [13, 0],
        [13, 10],
        [13],
        [0],
        [IAC, 241],
        [IAC, 249],
        [0xc3, 0xa9],
        [0xe2, 0x82, 0xac],
        [0xf0, 0x9f, 0x98, 0x80],
        [0xc3],
      ),
      fc.uint8Array({ maxLength: 12 }).map((bytes) => [...bytes]),
    ),
    { maxLength: 30 },
  )
  .map((pieces) => Uint8Array.from(pieces.flat()));

describe('telnet machine', () => {
  test('any bytes, split anywhere, give the same screen, answers, echo changes and option states as in one piece', () => {
    fc.assert(
      fc.property(chunked(serverBytes), ({ bytes, chunks }) => {
        const whole = harness();
        whole.telnet.receive(bytes);
        const split = harness();
        for (const chunk of chunks) split.telnet.receive(chunk);
        assert.deepEqual(split.log, whole.log);
        assert.deepEqual(split.options(), whole.options());
      }),
      propertyRuns(),
    );
  });

  test('data with every IAC doubled is shown as its UTF-8 text, whatever the split', () => {
    // CR is left out: CR NUL is a bare CR by RFC 854, so a NUL after a CR is not data.
    const data = fc.uint8Array({ maxLength: 200 }).map((bytes) => bytes.filter((byte) => byte !== 13));
    fc.assert(
      fc.property(chunked(data.map((bytes) => escapeIac(bytes))), ({ chunks }) => {
        const machine = harness();
        for (const chunk of chunks) machine.telnet.receive(chunk);
        const shown = machine.log.map((entry) => (entry[0] === 'display' ? entry[1] : '')).join('');
        const sent = Buffer.concat(chunks);
        // Undo the doubling to find the data these chunks carried.
        const original: number[] = [];
        for (let i = 0; i < sent.length; i++) {
          original.push(sent[i]!);
          if (sent[i] === IAC) i++;
        }
        assert.equal(shown, new TextDecoder().decode(Uint8Array.from(original), { stream: true }));
        assert.ok(
          machine.log.every((entry) => entry[0] === 'display'),
          'data alone is never answered',
        );
      }),
      propertyRuns(),
    );
  });

  test('a request for the state already in force is an acknowledgement: silent, and nothing changes (no loop)', () => {
    const negotiation = fc
      .array(fc.tuple(fc.constantFrom(WILL, WONT, DO, DONT), option), { maxLength: 12 })
      .map((pairs) => Uint8Array.from(pairs.flatMap(([verb, opt]) => [IAC, verb, opt])));
    fc.assert(
      fc.property(negotiation, fc.array(option, { maxLength: 8 }), (bytes, more) => {
        const machine = harness();
        machine.telnet.receive(bytes);
        const before = machine.options();
        machine.log.length = 0;
        for (const opt of [...more, ...Array.from({ length: bytes.length / 3 }, (_, i) => bytes[i * 3 + 2]!)]) {
          const server = machine.telnet.serverEnabled(opt) ? WILL : WONT;
          const client = machine.telnet.clientEnabled(opt) ? DO : DONT;
          machine.telnet.receive(Uint8Array.of(IAC, server, opt, IAC, client, opt));
        }
        assert.deepEqual(machine.log, []);
        assert.deepEqual(machine.options(), before);
      }),
      propertyRuns(),
    );
  });
});
