// Properties of the recording reader, which reads files a user hands to websockify-replay: what the
// recorder's format writes reads back exactly, and any other text is read or refused with a
// RecordingFormatError naming a line of the file, never another exception.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { FROM_CLIENT, RECORDING_FOOTER, RECORDING_HEADER, recordLength, TO_CLIENT, writeRecord } from '../../src/record/format.js';
import { parseRecording, type RecordedMessage, RecordingFormatError } from '../../src/record/reader.js';
import { propertyRuns } from '../helpers/fast-check.js';

const message: fc.Arbitrary<RecordedMessage> = fc
  .tuple(fc.constantFrom('toClient' as const, 'fromClient' as const), fc.nat({ max: 10_000_000 }), fc.uint8Array({ maxLength: 80 }))
  .map(([direction, ms, data]) => ({ direction, ms, data: Buffer.from(data) }));

/** A recording as the recorder writes it. */
function recording(messages: readonly RecordedMessage[]): string {
  const lines = messages.map(({ direction, ms, data }) => {
    const line = Buffer.alloc(recordLength(ms, data));
    writeRecord(line, 0, direction === 'toClient' ? TO_CLIENT : FROM_CLIENT, ms, data);
    return line.toString('latin1');
  });
  return RECORDING_HEADER + lines.join('') + RECORDING_FOOTER;
}

/** Python websockify's older base64 recordings: no encoding line, each entry's data in base64. */
function base64Recording(messages: readonly RecordedMessage[]): string {
  const entries = messages.map(({ direction, ms, data }) => {
    const marker = direction === 'toClient' ? '{' : '}';
    return `'${marker}${ms}${marker}${data.toString('base64')}',\n`;
  });
  return `var VNC_frame_encoding = 'base64';\nvar VNC_frame_data = [\n${entries.join('')}'EOF'];\n`;
}

/** Reads `text`; a RecordingFormatError is returned, any other exception fails the property. */
function read(text: string): RecordedMessage[] | RecordingFormatError {
  try {
    return parseRecording(text);
  } catch (err) {
    if (!(err instanceof RecordingFormatError)) throw err;
    const lines = text.split('\n').length;
    assert.ok(err.line >= 1 && err.line <= lines, `line ${err.line} of ${lines}`);
    return err;
  }
}

describe('recording reader', () => {
  test('any messages, written as the recorder writes them, read back exactly', () => {
    fc.assert(
      fc.property(fc.array(message, { maxLength: 12 }), (messages) => {
        assert.deepEqual(parseRecording(recording(messages)), messages);
      }),
      propertyRuns(),
    );
  });

  test('base64 recordings read back exactly', () => {
    fc.assert(
      fc.property(fc.array(message, { maxLength: 12 }), (messages) => {
        assert.deepEqual(parseRecording(base64Recording(messages)), messages);
      }),
      propertyRuns(),
    );
  });

  test('a recording cut anywhere before its EOF entry is refused as incomplete', () => {
    fc.assert(
      fc.property(
        fc.array(message, { maxLength: 6 }).chain((messages) => {
          const text = recording(messages);
          return fc.tuple(fc.constant(text), fc.integer({ min: 0, max: text.lastIndexOf("'EOF'") + 4 }));
        }),
        ([text, cut]) => {
          assert.ok(read(text.slice(0, cut)) instanceof RecordingFormatError);
        },
      ),
      propertyRuns(),
    );
  });

  test('any text, and a recording with bytes changed, is read or refused with a line number, never anything else', () => {
    const noise = fc.oneof(
      fc.string({ maxLength: 200, unit: 'binary' }),
      // The format's own pieces in any order, where a parser's corner cases live.
      fc
        .array(
          fc.constantFrom(
            'var ',
            'VNC_frame_data',
            'VNC_frame_encoding',
            ' = ',
            '[',
            ']',
            ';',
            ',',
            "'",
            '\\',
            '\\x',
            '\\u00',
            '\\0',
            '/*',
            '*/',
            '//',
            '\n',
            '\r',
            'EOF',
            '{1{',
            '}2}',
            'UkZC',
            "'base64'",
            '=',
            '7',
          ),
          { maxLength: 40 },
        )
        .map((parts) => parts.join('')),
      fc
        .tuple(
          fc.array(message, { maxLength: 4 }),
          fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
        )
        .map(([messages, changes]) => {
          const bytes = Buffer.from(recording(messages), 'latin1');
          for (const [at, value] of changes) bytes[at % bytes.length] = value;
          return bytes.toString('latin1');
        }),
    );
    fc.assert(
      fc.property(noise, (text) => {
        const result = read(text);
        if (!(result instanceof RecordingFormatError))
          for (const entry of result) assert.ok(Buffer.isBuffer(entry.data) && Number.isInteger(entry.ms));
      }),
      propertyRuns(),
    );
  });
});
