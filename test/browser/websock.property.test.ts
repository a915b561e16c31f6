// Properties of Websock's queues (the shipped dist/web/websock.mjs): the bytes a server sends come out of
// the receive queue in order whatever the message boundaries and however the reader reads them; the
// queue never exceeds its limit; its base64 decoder accepts exactly what the proxy's does; and what is
// pushed on the send queue is what goes out, in either encoding.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { decodeBase64Message } from '../../src/bridge/encoding.js';
import { chunked, propertyRuns } from '../helpers/fast-check.js';
import { openSock, type Websock } from './websock-support.js';

type Read = 'u8' | 'u16' | 'u32' | 'peek' | 'str' | 'bytes' | 'view' | 'to' | 'skip';
const read = fc.tuple(
  fc.constantFrom<Read>('u8', 'u16', 'u32', 'peek', 'str', 'bytes', 'view', 'to', 'skip'),
  fc.integer({ min: 1, max: 300 }),
);

/** Performs one read of `length` bytes (at least one, so the reader always moves on) (fixed for the integer reads) and returns the bytes it read. */
function perform(sock: Websock, [kind, length]: [Read, number]): number[] {
  switch (kind) {
    case 'u8':
      return [sock.rQshift8()];
    case 'u16': {
      const value = sock.rQshift16();
      return [value >> 8, value & 255];
    }
    case 'u32': {
      const value = sock.rQshift32();
      assert.ok(value >= 0 && value <= 0xffffffff);
      return [value >>> 24, (value >> 16) & 255, (value >> 8) & 255, value & 255];
    }
    case 'peek': {
      // Peeking takes nothing: the byte peeked is the one read next.
      const peeked = sock.rQpeek8();
      assert.equal(sock.rQpeekBytes(1)[0], peeked);
      assert.equal(sock.rQshift8(), peeked);
      return [peeked];
    }
    case 'str':
      return Array.from(sock.rQshiftStr(length), (char) => char.charCodeAt(0));
    case 'bytes':
      return [...sock.rQshiftBytes(length)];
    case 'view':
      return [...sock.rQshiftBytes(length, false)];
    case 'to': {
      const target = new Uint8Array(length + 3);
      sock.rQshiftTo(target, length);
      return [...target.subarray(0, length)];
    }
    case 'skip': {
      const skipped = [...sock.rQpeekBytes(length)];
      sock.rQskipBytes(length);
      return skipped;
    }
  }
}

/** How many bytes a read needs queued. */
const needs = ([kind, length]: [Read, number]): number =>
  ({ u8: 1, u16: 2, u32: 4, peek: 1, str: length, bytes: length, view: length, to: length, skip: length })[kind];

describe('Websock receive queue', () => {
  test('any bytes, in any messages, read in any pieces the noVNC way, come out in order, none lost or added', () => {
    fc.assert(
      fc.property(
        chunked(fc.uint8Array({ maxLength: 3000 })),
        fc.array(read, { minLength: 1, maxLength: 12 }),
        fc.boolean(),
        ({ bytes, chunks }, reads, base64) => {
          const { sock, channel } = openSock(base64 ? 'base64' : 'binary', { maxQueueBytes: 4096 });
          const out: number[] = [];
          let next = 0;
          sock.on('message', () => {
            for (;;) {
              const step = reads[next % reads.length]!;
              // As noVNC parses: a header read first is put back (goback) when the rest has not arrived.
              const half = Math.min(sock.rQlen(), needs(step) >> 1);
              const partial = half > 0 ? [...sock.rQshiftBytes(half)] : [];
              if (sock.rQwait('property', needs(step), half)) break;
              out.push(...partial, ...perform(sock, step));
              next++;
            }
          });
          for (const chunk of chunks) {
            if (base64) channel.deliverText(chunk.toString('base64'));
            else channel.deliver(chunk);
          }
          out.push(...sock.rQshiftBytes());
          assert.equal(sock.rQlen(), 0);
          assert.deepEqual(Buffer.from(out), bytes);
          assert.ok(sock.rQbufferSize <= 4096);
        },
      ),
      propertyRuns(),
    );
  });

  test('unread bytes past the limit close the channel with an error; below it, all are kept and the buffer stays within it', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5000 }), fc.array(fc.integer({ min: 0, max: 1500 }), { maxLength: 8 }), (limit, sizes) => {
        const { sock, channel } = openSock('', { maxQueueBytes: limit });
        const errors: unknown[] = [];
        sock.on('error', (error) => errors.push(error));
        let queued = 0;
        for (const size of sizes) {
          if (queued + size > limit) {
            assert.throws(() => channel.deliver(new Uint8Array(size)), /receive queue limit exceeded/);
            assert.equal(errors.length, 1);
            assert.equal(channel.closeCalls, 1);
            return;
          }
          channel.deliver(new Uint8Array(size).fill(size & 255));
          queued += size;
          assert.equal(sock.rQlen(), queued);
          assert.ok(sock.rQbufferSize <= limit);
        }
        assert.deepEqual(errors, []);
      }),
      propertyRuns(),
    );
  });

  test("its base64 decoder accepts exactly the texts the proxy's accepts, with the same bytes", () => {
    const text = fc.oneof(
      fc.uint8Array({ maxLength: 40 }).map((bytes) => Buffer.from(bytes).toString('base64')),
      fc.uint8Array({ maxLength: 40 }).map((bytes) => Buffer.from(bytes).toString('base64').replace(/=+$/, '')),
      fc
        .array(fc.constantFrom('A', 'z', '0', '+', '/', '=', '-', '_', ' ', '\xff', '\u0100'), { maxLength: 16 })
        .map((chars) => chars.join('')),
    );
    fc.assert(
      fc.property(text, (message) => {
        const { sock, channel } = openSock('base64');
        sock.on('error', () => undefined);
        let browser: Buffer | undefined;
        try {
          channel.deliverText(message);
          browser = Buffer.from(sock.rQshiftBytes());
        } catch (err) {
          assert.match(String(err), /not valid base64/);
        }
        // Latin-1 is what the proxy reads a text frame's bytes as; a character above U+00FF is not base64 either way.
        const proxy = /[^\0-\xff]/.test(message) ? undefined : decodeBase64Message(Buffer.from(message, 'latin1'));
        assert.deepEqual(browser, proxy);
      }),
      propertyRuns(),
    );
  });
});

type Push = ['u8' | 'u16' | 'u32', number] | ['string', string] | ['bytes', Uint8Array] | ['flush'];
const push: fc.Arbitrary<Push> = fc.oneof(
  fc.tuple(fc.constantFrom('u8' as const, 'u16' as const, 'u32' as const), fc.integer({ min: -(2 ** 31), max: 2 ** 32 - 1 })),
  fc.tuple(fc.constant('string' as const), fc.string({ maxLength: 50, unit: 'binary' })),
  fc.tuple(fc.constant('bytes' as const), fc.uint8Array({ maxLength: 30_000 })),
  fc.constant(['flush'] as ['flush']),
);

describe('Websock send queue', () => {
  test('what is pushed is what is sent, in order, in either encoding; each base64 message is one the proxy decodes', () => {
    fc.assert(
      fc.property(fc.array(push, { maxLength: 20 }), fc.boolean(), (pushes, base64) => {
        const { sock, channel } = openSock(base64 ? 'base64' : 'binary');
        const expected: number[] = [];
        for (const step of pushes) {
          switch (step[0]) {
            case 'u8':
              sock.sQpush8(step[1]);
              expected.push(step[1] & 255);
              break;
            case 'u16':
              sock.sQpush16(step[1]);
              expected.push((step[1] >> 8) & 255, step[1] & 255);
              break;
            case 'u32':
              sock.sQpush32(step[1]);
              expected.push((step[1] >>> 24) & 255, (step[1] >> 16) & 255, (step[1] >> 8) & 255, step[1] & 255);
              break;
            case 'string':
              sock.sQpushString(step[1]);
              for (let i = 0; i < step[1].length; i++) expected.push(step[1].charCodeAt(i) & 255);
              break;
            case 'bytes':
              sock.sQpushBytes(step[1]);
              expected.push(...step[1]);
              break;
            case 'flush':
              sock.flush();
          }
        }
        sock.flush();
        for (const message of channel.sent) {
          assert.equal(typeof message === 'string', base64);
          if (typeof message === 'string') assert.ok(decodeBase64Message(Buffer.from(message, 'latin1')), 'the proxy refuses it');
        }
        assert.deepEqual(channel.sentBytes(), Buffer.from(expected));
      }),
      propertyRuns(200),
    );
  });
});
