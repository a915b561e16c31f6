// Websock in Node: a channel object the test controls (every read at every message boundary, growth and
// compaction, the limit, the send queue, both encodings), then real WebSockets (the `ws` client) through
// this proxy and through Python websockify.
//
// The module under test is the shipped ES module dist/web/websock.mjs (scripts/build-web.mjs writes it;
// `npm run build` runs that), loaded by ./websock-support.ts (which says why not web/websock.ts).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { describe, test } from 'node:test';
import { WebSocket as WsClient } from 'ws';
import { cliFixture } from '../helpers/cli-fixture.js';
import type { RunningProxy } from '../helpers/proxy.js';
import { startEchoServer, unusedPort } from '../helpers/targets.js';
import { FakeChannel, openSock, Websock, websockModule } from './websock-support.js';

/** A deterministic pseudo-random generator (xorshift32), so that failures reproduce. */
function prng(seed: number): (limit: number) => number {
  let x = seed >>> 0 || 1;
  return (limit) => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % limit;
  };
}

/** The byte at position `i` of the long test streams (not periodic in 256, so misplaced bytes show). */
const patternByte = (i: number): number => (i * 31 + (i >>> 8) * 7 + (i >>> 16)) & 0xff;
function pattern(start: number, length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let k = 0; k < length; k++) bytes[k] = patternByte(start + k);
  return bytes;
}

/** Byte-for-byte equality without deepEqual's cost (and output) on megabytes. */
function assertSameBytes(actual: Uint8Array, expected: Uint8Array, message?: string): void {
  assert.equal(actual.length, expected.length, `${message ?? ''}: length`);
  assert.ok(Buffer.from(actual.buffer, actual.byteOffset, actual.length).equals(expected), `${message ?? ''}: contents differ`);
}

// ---- A little protocol read the noVNC way (rQwait with goback), for the boundary tests.

type Rec = ['u8' | 'u16' | 'u32' | 'peek', number] | ['str', string] | ['bytes' | 'to', number[]] | ['skip', number];
const RECORDS: Rec[] = [
  ['u8', 0],
  ['u32', 0xffffffff],
  ['u16', 0xffff],
  ['str', 'Hi \u00ff\u0000\u00e9!'],
  ['u32', 0x80000000],
  ['u8', 0xff],
  ['u16', 0x8000],
  ['bytes', [0, 1, 127, 128, 255, 42, 7]],
  ['u32', 0x01020304],
  ['peek', 0x9a],
  ['u16', 0x0102],
  ['to', [9, 8, 7, 6, 5]],
  ['skip', 3],
  ['u32', 0x7fffffff],
  ['str', ''],
  ['u32', 0],
  ['u8', 0x80],
];

/** The wire form: a type byte, then the value (strings and byte runs with a 1-byte length). */
function encodeRecords(records: Rec[]): number[] {
  const out: number[] = [];
  records.forEach(([kind, value], index) => {
    out.push(index);
    if (kind === 'u8' || kind === 'peek') out.push(value as number);
    else if (kind === 'u16') out.push((value as number) >> 8, (value as number) & 0xff);
    else if (kind === 'u32') for (const shift of [24, 16, 8, 0]) out.push(((value as number) >>> shift) & 0xff);
    else if (kind === 'str') out.push((value as string).length, ...[...(value as string)].map((c) => c.charCodeAt(0)));
    else if (kind === 'skip') out.push(value as number, ...new Array<number>(value as number).fill(0xee));
    else out.push((value as number[]).length, ...(value as number[]));
  });
  return out;
}

/** Reads as many whole records as are queued into `out`; partial ones are put back for the next message. */
function readRecords(sock: Websock, out: Rec[]): void {
  for (;;) {
    if (sock.rQwait('type', 1)) return;
    const [kind] = RECORDS[sock.rQshift8()]!;
    const sizes = { u8: 1, peek: 1, u16: 2, u32: 4 } as Record<string, number>;
    if (kind in sizes) {
      if (sock.rQwait(kind, sizes[kind]!, 1)) return;
      if (kind === 'u8') out.push(['u8', sock.rQshift8()]);
      else if (kind === 'u16') out.push(['u16', sock.rQshift16()]);
      else if (kind === 'u32') out.push(['u32', sock.rQshift32()]);
      else {
        const peeked = sock.rQpeek8();
        assert.equal(sock.rQshift8(), peeked);
        out.push(['peek', peeked]);
      }
      continue;
    }
    if (sock.rQwait(`${kind} length`, 1, 1)) return;
    const length = sock.rQpeekBytes(1)[0]!;
    if (sock.rQwait(kind, 1 + length, 1)) return;
    sock.rQskipBytes(1);
    if (kind === 'str') out.push(['str', sock.rQshiftStr(length)]);
    else if (kind === 'bytes') out.push(['bytes', [...sock.rQshiftBytes(length)]]);
    else if (kind === 'skip') {
      sock.rQskipBytes(length);
      out.push(['skip', length]);
    } else {
      const target = new Uint8Array(length + 2).fill(0x55);
      sock.rQshiftTo(target, length);
      assert.deepEqual([...target.subarray(length)], [0x55, 0x55], 'rQshiftTo writes only len bytes');
      out.push(['to', [...target.subarray(0, length)]]);
    }
  }
}

/** Delivers `wire` cut at `cuts` and returns the records read after each message. */
function readAcross(wire: number[], cuts: number[]): Rec[] {
  const { sock, channel } = openSock();
  const out: Rec[] = [];
  sock.on('message', () => readRecords(sock, out));
  const points = [0, ...cuts, wire.length];
  for (let k = 1; k < points.length; k++) channel.deliver(wire.slice(points[k - 1], points[k]));
  assert.equal(sock.rQlen(), 0, `bytes left over after cuts ${cuts.join(',')}`);
  return out;
}

describe('Websock receive queue', () => {
  const wire = encodeRecords(RECORDS);

  test('records split into two messages at every byte position read back whole', () => {
    for (let cut = 0; cut <= wire.length; cut++) assert.deepEqual(readAcross(wire, [cut]), RECORDS, `cut at ${cut}`);
  });

  test('records split into three messages at every pair of positions read back whole', () => {
    for (let a = 1; a < wire.length; a++) {
      for (let b = a + 1; b < wire.length; b++) assert.deepEqual(readAcross(wire, [a, b]), RECORDS, `cuts at ${a},${b}`);
    }
  });

  test('one byte per message reads back whole', () => {
    assert.deepEqual(
      readAcross(
        wire,
        wire.map((_, i) => i),
      ),
      RECORDS,
    );
  });

  test('big-endian values are unsigned, 0xffffffff included', () => {
    const { sock, channel } = openSock();
    channel.deliver([0xff, 0xff, 0xff, 0xff, 0x80, 0x00, 0x00, 0x00, 0xff, 0xff, 0x80, 0x00, 0x12, 0x34, 0x56, 0x78, 0xfe]);
    assert.equal(sock.rQshift32(), 4294967295);
    assert.equal(sock.rQshift32(), 2147483648);
    assert.equal(sock.rQshift16(), 65535);
    assert.equal(sock.rQshift16(), 32768);
    assert.equal(sock.rQshift32(), 0x12345678);
    assert.equal(sock.rQshift8(), 254);
    assert.equal(sock.rQlen(), 0);
  });

  test('rQshiftStr maps bytes to the characters with those codes, past its 4096-byte slices', () => {
    const { sock, channel } = openSock();
    const bytes = pattern(0, 10000);
    channel.deliver(bytes);
    assert.equal(sock.rQshiftStr(), String.fromCharCode(...bytes));
    channel.deliver([0, 0x41, 0xff]);
    assert.equal(sock.rQshiftStr(2), '\u0000A');
    assert.equal(sock.rQshiftStr(1), '\u00ff');
  });

  test('copies are independent of the queue, views are not; peeks leave the bytes queued', () => {
    const { sock, channel } = openSock();
    channel.deliver([1, 2, 3, 4, 5, 6]);
    const copy = sock.rQpeekBytes(3);
    const view = sock.rQpeekBytes(3, false);
    assert.deepEqual([...copy], [1, 2, 3]);
    assert.deepEqual([...view], [1, 2, 3]);
    assert.equal(sock.rQlen(), 6);
    view[0] = 99; // the view is the queue itself
    assert.equal(sock.rQpeek8(), 99);
    assert.equal(copy[0], 1);
    const shiftedView = sock.rQshiftBytes(2, false);
    const shiftedCopy = sock.rQshiftBytes(2);
    assert.equal(shiftedView.buffer, view.buffer);
    assert.notEqual(shiftedCopy.buffer, view.buffer);
    assert.deepEqual([...shiftedCopy], [3, 4]);
    assert.deepEqual([...sock.rQshiftBytes()], [5, 6], 'no length: everything queued');
  });

  test('reading past the queued bytes throws and consumes nothing', () => {
    const { sock, channel } = openSock();
    channel.deliver([1, 2, 3]);
    assert.throws(() => sock.rQshift32(), RangeError);
    assert.throws(() => sock.rQshiftBytes(4), RangeError);
    assert.throws(() => sock.rQskipBytes(4), RangeError);
    assert.throws(() => sock.rQshiftTo(new Uint8Array(4), 4), RangeError);
    assert.equal(sock.rQshift16(), 0x0102);
    assert.throws(() => sock.rQshift16(), /2 bytes wanted, 1 queued/);
    assert.equal(sock.rQshift8(), 3);
    assert.throws(() => sock.rQpeek8(), RangeError);
  });

  test('rQwait: false when enough is queued; true when not, after putting back goback bytes', () => {
    const { sock, channel } = openSock();
    channel.deliver([7, 0, 1]);
    assert.equal(sock.rQwait('x', 3), false);
    assert.equal(sock.rQwait('x', 4), true);
    assert.equal(sock.rQlen(), 3, 'no goback: nothing put back');
    assert.equal(sock.rQshift8(), 7);
    assert.equal(sock.rQwait('body', 2, 1), false, 'enough: goback is not applied');
    assert.equal(sock.rQlen(), 2);
    assert.equal(sock.rQwait('body', 4, 1), true);
    assert.equal(sock.rQlen(), 3, 'the type byte is back');
    assert.equal(sock.rQpeek8(), 7);
    assert.throws(() => sock.rQwait('body', 9, 1), /cannot put back 1 bytes.*body|body.*cannot put back 1 bytes/);
    assert.equal(sock.rQwait('empty', 0), false);
  });

  test('the message event has no payload and is not raised for empty messages', () => {
    const { sock, channel } = openSock();
    const calls: number[] = [];
    sock.on('message', (...args: unknown[]) => calls.push(args.length));
    channel.deliver([]);
    channel.deliverText('');
    assert.deepEqual(calls, []);
    channel.deliver([1]);
    assert.deepEqual(calls, [0]);
    sock.off('message');
    channel.deliver([2]);
    assert.deepEqual(calls, [0]);
    assert.equal(sock.rQlen(), 2);
  });

  test('16 MiB in random pieces with interleaved reads: every byte in order, the queue stays small', () => {
    const { sock, channel } = openSock();
    const random = prng(1234);
    const total = 16 * 1024 * 1024;
    let sent = 0;
    let read = 0;
    let maxUnread = 0;
    const check = (bytes: Uint8Array): void => {
      for (let k = 0; k < bytes.length; k++) {
        if (bytes[k] !== patternByte(read + k)) assert.fail(`byte ${read + k} is ${bytes[k]}, expected ${patternByte(read + k)}`);
      }
      read += bytes.length;
    };
    while (sent < total) {
      const size = Math.min(1 + random(96 * 1024), total - sent);
      channel.deliver(pattern(sent, size));
      sent += size;
      maxUnread = Math.max(maxUnread, sock.rQlen());
      // Read most of it, in several ways, leaving a random remainder queued across the next message.
      while (sock.rQlen() > random(4096)) {
        const choice = random(4);
        if (choice === 0 && sock.rQlen() >= 4) {
          const value = sock.rQshift32();
          check(Uint8Array.of(value >>> 24, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff));
        } else if (choice === 1) check(sock.rQshiftBytes(1 + random(sock.rQlen()), false));
        else if (choice === 2) {
          const target = new Uint8Array(1 + random(sock.rQlen()));
          sock.rQshiftTo(target, target.length);
          check(target);
        } else check(Uint8Array.of(sock.rQshift8()));
      }
    }
    check(sock.rQshiftBytes());
    assert.equal(read, total);
    // Doubling until twice the bytes needed fit: under 4x the most ever queued, and a power-of-two multiple.
    assert.ok(sock.rQbufferSize < 4 * maxUnread, `capacity ${sock.rQbufferSize} for at most ${maxUnread} unread`);
    assert.equal(Math.log2(sock.rQbufferSize / (64 * 1024)) % 1, 0, `capacity ${sock.rQbufferSize}`);
  });

  test('compaction, not growth, when reads keep up: 8 MiB through the initial 64 KiB', () => {
    const { sock, channel } = openSock();
    const initial = sock.rQbufferSize;
    let read = 0;
    for (let sent = 0; sent < 8 * 1024 * 1024; sent += 3000) {
      channel.deliver(pattern(sent, 3000));
      const bytes = sock.rQshiftBytes(Math.max(0, sock.rQlen() - 1000));
      assertSameBytes(bytes, pattern(read, bytes.length), `at ${read}`);
      read += bytes.length;
    }
    assert.equal(initial, 64 * 1024);
    assert.equal(sock.rQbufferSize, initial);
    const left = sock.rQlen();
    assertSameBytes(sock.rQshiftBytes(), pattern(read, left));
  });

  test('growth by doubling when data piles up, keeping the unread bytes', () => {
    const { sock, channel } = openSock();
    const sizes: number[] = [sock.rQbufferSize];
    channel.deliver(pattern(0, 10));
    sock.rQshiftBytes(10);
    const total = 60 * 50 * 1024;
    for (let sent = 10; sent < 10 + total; sent += 50 * 1024) {
      channel.deliver(pattern(sent, 50 * 1024));
      if (sock.rQbufferSize !== sizes.at(-1)) sizes.push(sock.rQbufferSize);
    }
    for (let k = 1; k < sizes.length; k++) assert.equal(Math.log2(sizes[k]! / sizes[k - 1]!) % 1, 0, `sizes ${sizes.join(',')}`);
    assert.ok(sizes.length > 3, `grew: ${sizes.join(',')}`);
    assert.ok(sock.rQbufferSize < 4 * total, `capacity ${sock.rQbufferSize}`);
    assertSameBytes(sock.rQshiftBytes(), pattern(10, total));
  });
});

describe('Websock receive limit', () => {
  test('past maxQueueBytes unread: throws a clear Error, reports it, closes, and takes no more data', () => {
    const { sock, channel } = openSock('', { maxQueueBytes: 1024 * 1024 });
    const errors: unknown[] = [];
    sock.on('error', (error) => errors.push(error));
    channel.deliver(pattern(0, 1000));
    sock.rQskipBytes(1000);
    channel.deliver(pattern(0, 1024 * 1024 - 1));
    channel.deliver([1]);
    assert.equal(sock.rQlen(), 1024 * 1024, 'exactly the limit is fine');
    assert.equal(channel.closeCalls, 0);
    assert.throws(() => channel.deliver([2]), /receive queue limit exceeded: 1048576 unread bytes \+ 1 arriving > 1048576 bytes/);
    assert.equal(channel.closeCalls, 1);
    assert.equal(errors.length, 1);
    assert.match(String(errors[0]), /limit exceeded/);
    assert.equal(channel.onmessage, null, 'no more data is taken');
    assert.equal(sock.rQlen(), 1024 * 1024, 'what was queued can still be read');
  });

  test('the limit is on unread bytes, not on the total: 8 MiB through a 1 MiB limit', () => {
    const { sock, channel } = openSock('', { maxQueueBytes: 1024 * 1024 });
    let read = 0;
    for (let sent = 0; sent < 8 * 1024 * 1024; sent += 256 * 1024) {
      channel.deliver(pattern(sent, 256 * 1024));
      const bytes = sock.rQshiftBytes(sock.rQlen() - 100);
      assertSameBytes(bytes, pattern(read, bytes.length), `at ${read}`);
      read += bytes.length;
    }
    assert.equal(read, 8 * 1024 * 1024 - 100);
    assert.ok(sock.rQbufferSize <= 1024 * 1024);
  });

  test('the default limit is 64 MiB', () => {
    assert.equal(websockModule.DEFAULT_MAX_QUEUE_BYTES, 64 * 1024 * 1024);
    const { sock, channel } = openSock();
    const chunk = new Uint8Array(8 * 1024 * 1024);
    for (let k = 0; k < 8; k++) channel.deliver(chunk);
    assert.equal(sock.rQlen(), 64 * 1024 * 1024);
    assert.equal(sock.rQbufferSize, 64 * 1024 * 1024);
    assert.throws(() => channel.deliver([0]), /limit exceeded.*67108864 bytes/);
    assert.equal(channel.closeCalls, 1);
  });

  test('a limit that is not a positive integer is refused', () => {
    for (const bad of [0, -1, 1.5, Number.NaN]) assert.throws(() => new Websock({ maxQueueBytes: bad }), RangeError);
  });
});

describe('Websock send queue', () => {
  test('pushes are big-endian and queued until flush, which sends one message', () => {
    const { sock, channel } = openSock('binary');
    sock.sQpush8(0xab);
    sock.sQpush8(0x1ff);
    sock.sQpush16(0xfffe);
    sock.sQpush32(0xffffffff);
    sock.sQpush32(0x01020304);
    sock.sQpushString('A\u00ff\u0000');
    sock.sQpushBytes(Uint8Array.of(9, 8));
    assert.equal(channel.sent.length, 0);
    sock.flush();
    assert.equal(channel.sent.length, 1);
    assert.ok(channel.sent[0] instanceof Uint8Array);
    assert.deepEqual(
      [...(channel.sent[0] as Uint8Array)],
      [0xab, 0xff, 0xff, 0xfe, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4, 0x41, 0xff, 0, 9, 8],
    );
    sock.flush();
    assert.equal(channel.sent.length, 1, 'nothing queued: nothing sent');
  });

  test('a sent message is a copy: later pushes do not change it', () => {
    const { sock, channel } = openSock();
    sock.sQpushBytes(Uint8Array.of(1, 2, 3));
    sock.flush();
    sock.sQpushBytes(Uint8Array.of(4, 5, 6));
    sock.flush();
    assert.deepEqual(
      channel.sent.map((m) => [...(m as Uint8Array)]),
      [
        [1, 2, 3],
        [4, 5, 6],
      ],
    );
  });

  test('before open the queue keeps (and grows for) everything; flush after open sends it in one message', () => {
    const sock = new Websock();
    const channel = new FakeChannel();
    sock.attach(channel);
    const big = pattern(0, 100 * 1024);
    sock.sQpushBytes(big);
    sock.sQpush32(0xdeadbeef);
    sock.flush();
    assert.equal(channel.sent.length, 0, 'connecting: nothing sent');
    channel.open();
    sock.flush();
    assert.equal(channel.sent.length, 1);
    assert.deepEqual(channel.sentBytes(), Buffer.concat([big, Buffer.of(0xde, 0xad, 0xbe, 0xef)]));
  });

  test('pushing more than the queue holds while open sends queue-sized messages, in order', () => {
    const { sock, channel } = openSock();
    sock.sQpush8(1);
    const big = pattern(5, 50 * 1024);
    sock.sQpushBytes(big);
    sock.flush();
    assert.ok(channel.sent.length > 2, `${channel.sent.length} messages`);
    assert.deepEqual(channel.sentBytes(), Buffer.concat([Buffer.of(1), big]));
  });

  test('the old names: send(array) and send_string(str) queue and flush at once', () => {
    const { sock, channel } = openSock();
    sock.send([1, 2, 0x1ff]);
    sock.send(Uint8Array.of(4));
    sock.send_string('hi\u00e9');
    assert.deepEqual(
      channel.sent.map((m) => [...(m as Uint8Array)]),
      [[1, 2, 0xff], [4], [0x68, 0x69, 0xe9]],
    );
  });
});

describe('Websock base64 subprotocol', () => {
  test('chosen by the protocol the server accepted: text frames of padded base64 out', () => {
    for (let length = 0; length <= 7; length++) {
      const { sock, channel } = openSock('base64');
      assert.equal(sock.encoding, 'base64');
      const bytes = pattern(length * 10, length);
      sock.sQpushBytes(bytes);
      sock.flush();
      if (length === 0) assert.equal(channel.sent.length, 0);
      else assert.deepEqual(channel.sent, [Buffer.from(bytes).toString('base64')]);
    }
    const { sock, channel } = openSock('binary');
    assert.equal(sock.encoding, 'binary');
    sock.send_string('x');
    assert.ok(channel.sent[0] instanceof Uint8Array);
  });

  test('text frames in: padded and unpadded base64 decode, across message boundaries of the stream', () => {
    const { sock, channel } = openSock('base64');
    const expected: Uint8Array[] = [];
    for (let length = 0; length < 40; length++) {
      const bytes = pattern(length * 7, length);
      const text = Buffer.from(bytes).toString('base64');
      channel.deliverText(length % 2 ? text : text.replace(/=+$/, ''));
      expected.push(bytes);
    }
    const big = pattern(3, 3 * 1024 * 1024 + 1);
    channel.deliverText(Buffer.from(big).toString('base64'));
    expected.push(big);
    assertSameBytes(sock.rQshiftBytes(), Buffer.concat(expected));
  });

  test('all 256 byte values survive base64 both ways', () => {
    const { sock, channel } = openSock('base64');
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    sock.sQpushBytes(all);
    sock.flush();
    channel.deliverText(channel.sent[0] as string);
    assert.deepEqual(sock.rQshiftBytes(), all);
  });

  test('text that is not base64 throws, is reported, and closes', () => {
    for (const bad of ['QUJD!', 'QQ=', 'QUJDR', 'QUJD==', 'Q===', 'QQ==QUJD', 'QUJ\u00e9', 'ab c']) {
      const { sock, channel } = openSock('base64');
      const errors: unknown[] = [];
      sock.on('error', (error) => errors.push(error));
      assert.throws(() => channel.deliverText(bad), /not valid base64/, JSON.stringify(bad));
      assert.equal(channel.closeCalls, 1);
      assert.equal(errors.length, 1);
      assert.equal(sock.rQlen(), 0);
    }
  });
});

describe('Websock channel handling', () => {
  test('readyState follows WebSocket numbers and RTCDataChannel strings', () => {
    const sock = new Websock();
    assert.equal(sock.readyState, 'unused');
    const channel = new FakeChannel();
    sock.attach(channel);
    assert.equal(channel.binaryType, 'arraybuffer');
    const states: Array<[number | string, string]> = [
      [0, 'connecting'],
      [1, 'open'],
      [2, 'closing'],
      [3, 'closed'],
      ['connecting', 'connecting'],
      ['open', 'open'],
      ['closing', 'closing'],
      ['closed', 'closed'],
      [7, 'unknown'],
    ];
    for (const [raw, expected] of states) {
      channel.readyState = raw;
      assert.equal(sock.readyState, expected, String(raw));
    }
  });

  test('open, close and error events reach the handlers; off removes one', () => {
    const sock = new Websock();
    const channel = new FakeChannel();
    const seen: unknown[] = [];
    sock.on('open', () => seen.push('open'));
    sock.on('error', (e) => seen.push(e));
    sock.on('close', (e) => seen.push(e.code));
    sock.attach(channel);
    channel.open();
    channel.onerror?.('boom');
    channel.onclose?.({ code: 1006, reason: '', wasClean: false });
    sock.off('close');
    channel.onclose?.({ code: 1000 });
    assert.deepEqual(seen, ['open', 'boom', 1006]);
  });

  test('close() closes a connecting or open channel once, drops later data, still reports the close', () => {
    const { sock, channel } = openSock();
    let closed = 0;
    sock.on('close', () => closed++);
    sock.close();
    assert.equal(channel.closeCalls, 1);
    sock.close();
    assert.equal(channel.closeCalls, 1, 'closing: not closed again');
    channel.deliver([1, 2]);
    assert.equal(sock.rQlen(), 0);
    channel.onclose?.({ code: 1000 });
    assert.equal(closed, 1);
    new Websock().close(); // unused: nothing to do, no error
  });

  test('attach() empties the queues and silences the previous channel', () => {
    const { sock, channel: first } = openSock();
    first.deliver([1, 2, 3]);
    sock.sQpush8(5);
    const second = new FakeChannel();
    sock.attach(second);
    assert.equal(sock.rQlen(), 0);
    assert.equal(first.onmessage, null);
    second.open();
    sock.flush();
    assert.equal(second.sent.length, 0, 'the old send queue is gone');
    second.deliver([4]);
    assert.equal(sock.rQshift8(), 4);
  });

  test('attach() refuses what is not a channel; open() needs a global WebSocket', () => {
    const sock = new Websock();
    assert.throws(() => sock.attach({}), /must be a WebSocket or an RTCDataChannel/);
    assert.throws(() => sock.attach(null as unknown as object), TypeError);
    // Node 22 and later have a global WebSocket: hide it for this check, as an old browser would lack it.
    const global = globalThis as { WebSocket?: unknown };
    const saved = global.WebSocket;
    delete global.WebSocket;
    try {
      assert.throws(() => sock.open('ws://127.0.0.1:9'), /no global WebSocket/);
    } finally {
      if (saved !== undefined) global.WebSocket = saved;
    }
  });

  test('a message that is neither text nor binary data is refused loudly', () => {
    const { sock, channel } = openSock();
    assert.throws(() => channel.onmessage?.({ data: { size: 3 } }), /binaryType must be 'arraybuffer'/);
    assert.equal(channel.closeCalls, 1);
    assert.equal(sock.rQlen(), 0);
  });
});

/** Opens, sends `payload` with the send queue and reads it back with the rQ methods; resolves with what came back. */
async function echoThrough(sock: Websock, payload: Uint8Array): Promise<Uint8Array> {
  const back = new Uint8Array(payload.length);
  let got = 0;
  const done = new Promise<void>((resolve, reject) => {
    sock.on('error', (error) => reject(error instanceof Error ? error : new Error(`channel error: ${String(error)}`)));
    sock.on('close', (event) => reject(new Error(`closed early (${event.code}) after ${got} bytes`)));
    sock.on('message', () => {
      const n = sock.rQlen();
      sock.rQshiftTo(back.subarray(got), n);
      got += n;
      if (got === payload.length) resolve();
    });
  });
  await new Promise<void>((resolve, reject) => {
    sock.on('open', () => resolve());
    sock.on('error', () => reject(new Error('no open')));
  });
  sock.sQpushBytes(payload);
  sock.flush();
  await done;
  return back;
}

/** Closes a Websock and waits for its close event. */
async function closeAndWait(sock: Websock): Promise<void> {
  const closed = new Promise<void>((resolve) => sock.on('close', () => resolve()));
  sock.close();
  await closed;
}

describe('Websock over real WebSockets (ws client as the channel)', () => {
  let proxy: RunningProxy;
  const cli = cliFixture('websock', {
    async before() {
      proxy = await cli.proxy([]);
    },
  });

  test('open() with the default protocols gets binary from this proxy; 1 MiB echoes back intact', async () => {
    assert.deepEqual(websockModule.DEFAULT_PROTOCOLS, ['binary', 'base64']);
    const globals = globalThis as { WebSocket?: unknown };
    globals.WebSocket = WsClient;
    const sock = new Websock();
    try {
      sock.open(proxy.url);
    } finally {
      delete globals.WebSocket;
    }
    try {
      const payload = pattern(0, 1024 * 1024);
      const back = await echoThrough(sock, payload);
      assert.equal(sock.protocol, 'binary');
      assertSameBytes(back, payload);
    } finally {
      await closeAndWait(sock);
    }
    assert.equal(sock.readyState, 'closed');
  });

  test("attach() of a client that offered only 'base64': text frames both ways, bytes intact", async () => {
    const ws = new WsClient(proxy.url, ['base64'], { perMessageDeflate: false });
    const frames = { text: 0, binary: 0 };
    ws.on('message', (_data, isBinary) => (isBinary ? frames.binary++ : frames.text++));
    const sock = new Websock();
    sock.attach(ws);
    try {
      const payload = Uint8Array.from({ length: 70000 }, (_, i) => (i * 131) & 0xff);
      const back = await echoThrough(sock, payload);
      assert.equal(sock.protocol, 'base64');
      assert.equal(sock.encoding, 'base64');
      assert.deepEqual(back, payload);
      assert.ok(frames.text > 0);
      assert.equal(frames.binary, 0);
    } finally {
      await closeAndWait(sock);
    }
  });
});

describe('Websock against Python websockify', () => {
  test('the default protocols get binary from Python websockify too; bytes echo back', async () => {
    const echo = await startEchoServer();
    const port = await unusedPort();
    const python = spawn('websockify', ['--run-once', `127.0.0.1:${port}`, `127.0.0.1:${echo.port}`], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    python.stderr.setEncoding('utf8').on('data', (t: string) => (stderr += t));
    const spawnError = once(python, 'error');
    try {
      await Promise.race([
        waitForPort(port, 15000),
        spawnError.then(([error]) => {
          throw error;
        }),
      ]);
      const globals = globalThis as { WebSocket?: unknown };
      globals.WebSocket = WsClient;
      const sock = new Websock();
      try {
        sock.open(`ws://127.0.0.1:${port}`);
      } finally {
        delete globals.WebSocket;
      }
      try {
        const payload = pattern(7, 200 * 1024);
        assertSameBytes(await echoThrough(sock, payload), payload, stderr);
        assert.equal(sock.protocol, 'binary');
      } finally {
        await closeAndWait(sock);
      }
    } finally {
      if (python.pid !== undefined && python.exitCode === null && python.signalCode === null) {
        python.kill('SIGTERM');
        await once(python, 'exit');
      }
      await echo.close();
    }
  });
});

/** Resolves once something accepts TCP connections on 127.0.0.1:`port`. */
async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on port ${port} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
