// The player's streaming reader (web/player/parser.ts) against the proxy's own reader (src/record/reader.ts):
// for any recording, cut into chunks anywhere, both give the same messages and the same session facts;
// a cut or broken file is refused with the line, and a cut one is told apart as incomplete.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  END_VARIABLE,
  FROM_CLIENT,
  RECORDING_FOOTER,
  RECORDING_HEADER,
  recordLength,
  SESSION_VARIABLE,
  TO_CLIENT,
  variableLine,
  writeRecord,
} from '../../src/record/format.js';
import { parseRecordingWithInfo, RecordingFormatError } from '../../src/record/reader.js';
import { RecordingError, RecordingParser } from '../../web/player/parser.js';
import { MessageStore } from '../../web/player/store.js';
import { propertyRuns } from '../helpers/fast-check.js';

interface Message {
  toClient: boolean;
  ms: number;
  data: Uint8Array;
}

/** A recording as the recorder writes it, with the session's facts when `facts` is set. */
function recordingText(messages: Message[], facts: boolean): Buffer {
  const lines = messages.map(({ toClient, ms, data }) => {
    const line = Buffer.alloc(recordLength(ms, data));
    writeRecord(line, 0, toClient ? TO_CLIENT : FROM_CLIENT, ms, data);
    return line;
  });
  const split = RECORDING_HEADER.indexOf('\n') + 1;
  const session = {
    id: 3,
    client: '203.0.113.9:5000',
    peer: '127.0.0.1:1',
    target: 'h:5900',
    token: "t'ö\\",
    path: '/',
    protocol: 'binary',
    start: 'x',
  };
  const head = facts
    ? RECORDING_HEADER.slice(0, split) + variableLine(SESSION_VARIABLE, session) + RECORDING_HEADER.slice(split)
    : RECORDING_HEADER;
  const tail = facts ? RECORDING_FOOTER + variableLine(END_VARIABLE, { code: 1000, reason: 'é' }) : RECORDING_FOOTER;
  return Buffer.concat([Buffer.from(head, 'latin1'), ...lines, Buffer.from(tail, 'latin1')]);
}

/** Feeds `bytes` to a new parser cut at `cuts`; returns the store and the parser, or the error. */
function parseInChunks(bytes: Uint8Array, cuts: number[]): { store: MessageStore; parser: RecordingParser; error?: unknown } {
  const store = new MessageStore();
  const parser = new RecordingParser(store);
  const points = [...new Set(cuts.map((cut) => cut % (bytes.length + 1)))].sort((a, b) => a - b);
  let at = 0;
  try {
    for (const point of [...points, bytes.length]) {
      parser.push(bytes.subarray(at, point));
      at = Math.max(at, point);
    }
    parser.finish();
  } catch (error) {
    return { store, parser, error };
  }
  return { store, parser };
}

const messageArb = fc.record({
  toClient: fc.boolean(),
  ms: fc.nat({ max: 10_000_000 }),
  data: fc.uint8Array({ maxLength: 300 }),
});

describe('the player reads recordings as the proxy reader does', () => {
  it('any messages, any chunking: the same messages (the server bytes, the client sizes) and the same facts', () => {
    fc.assert(
      fc.property(fc.array(messageArb, { maxLength: 30 }), fc.boolean(), fc.array(fc.nat(), { maxLength: 12 }), (messages, facts, cuts) => {
        messages.sort((a, b) => a.ms - b.ms);
        const text = recordingText(messages, facts);
        const expected = parseRecordingWithInfo(text.toString('latin1'));
        const { store, parser, error } = parseInChunks(text, cuts);
        assert.equal(error, undefined);
        assert.equal(parser.complete, true);
        assert.equal(store.count, expected.messages.length);
        expected.messages.forEach((message, i) => {
          assert.equal(store.time(i), message.ms);
          assert.equal(store.toClient(i), message.direction === 'toClient');
          assert.equal(store.size(i), message.data.length);
          if (store.toClient(i)) assert.deepEqual(Buffer.from(store.data(i)), message.data);
        });
        const json = (name: string) => (parser.variables.has(name) ? JSON.parse(parser.variables.get(name)!) : undefined);
        assert.deepEqual(json(SESSION_VARIABLE), expected.session);
        assert.deepEqual(json(END_VARIABLE), expected.end);
      }),
      propertyRuns(300),
    );
  });

  it('a file cut anywhere inside its data is refused as incomplete, as the reader refuses it; what came before is kept', () => {
    fc.assert(
      fc.property(fc.array(messageArb, { minLength: 1, maxLength: 10 }), fc.nat(), (messages, cut) => {
        messages.sort((a, b) => a.ms - b.ms);
        const text = recordingText(messages, true);
        const dataStart = text.indexOf('[') + 1;
        const end = dataStart + (cut % (text.indexOf("'EOF'") - dataStart));
        const truncated = text.subarray(0, end);
        assert.throws(() => parseRecordingWithInfo(truncated.toString('latin1')), RecordingFormatError);
        const { store, error } = parseInChunks(truncated, [cut]);
        assert.ok(error instanceof RecordingError, String(error));
        assert.equal(error.incomplete, true, error.message);
        assert.ok(store.count <= messages.length);
      }),
      propertyRuns(300),
    );
  });

  it("Python websockify's base64 files, comments and escapes are read; broken files name their line", () => {
    const rfb = Buffer.from('RFB 003.008\n').toString('base64');
    const old = Buffer.from(
      `var VNC_frame_data = [\n'{0{${rfb}',\n/* a comment */ '}5}${Buffer.from('x').toString('base64')}',\n'EOF'];\n`,
    );
    const { store, error } = parseInChunks(old, [3, 30]);
    assert.equal(error, undefined);
    assert.equal(Buffer.from(store.data(0)).toString(), 'RFB 003.008\n');
    assert.equal(store.size(1), 1);

    const escapes = Buffer.from(
      "var VNC_frame_encoding = 'binary';\nvar VNC_frame_data = [\n'{1{a\\x41\\u0042\\0\\t\\'\\\\\\\nz',\n'EOF'];",
    );
    const read = parseInChunks(escapes, [40, 41, 42, 43, 44, 45]);
    assert.equal(read.error, undefined);
    assert.deepEqual(Buffer.from(read.store.data(0)), Buffer.from("aAB\0\t'\\z", 'latin1'));

    for (const [text, pattern] of [
      ['', /^line 1: the file is empty$/],
      ["var VNC_frame_data = [\n'{0{ok',\n'{x{bad',\n'EOF'];", /^line 3: an entry must start with \{<milliseconds>\{$/],
      ["var VNC_frame_data = [\n'{0{\\u0100',\n'EOF'];", /^line 2: character U\+100 is not a byte$/],
      ["var VNC_frame_data = [\n'{0{ok'\n'{1{ok',\n'EOF'];", /^line 3: expected ','$/],
      ["var VNC_frame_encoding = 'utf-16';\nvar VNC_frame_data = [\n'EOF'];", /^line 1: unknown VNC_frame_encoding 'utf-16'$/],
      ["var VNC_frame_data = [\n'EOF'];\nalert(1);", /^line 3: unexpected text after the closing '\];'$/],
      ['<html>not a recording</html>', /^line 1: expected 'var'$/],
    ] as const) {
      const result = parseInChunks(Buffer.from(text), []);
      assert.ok(result.error instanceof RecordingError, text);
      assert.match(result.error.message, pattern);
      assert.equal(result.error.incomplete, false, text);
      assert.throws(() => parseRecordingWithInfo(text), RecordingFormatError, text);
    }
  });
});
