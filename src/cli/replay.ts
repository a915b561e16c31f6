#!/usr/bin/env node
import { once } from 'node:events';
import { parseArgs } from 'node:util';
import { type RecordedMessage, type Recording, RecordingFormatError, readRecordingWithInfo } from '../record/reader.js';

const USAGE = 'usage: websockify-replay [--hex] FILE';
const HELP = `${USAGE}

Lists the messages of a session recording made with websockify --record FILE (FILE.<n>, one per session):
each message's time since the session started, its direction and its size; first and last, who and what
the session was and how it ended, when the file says so.

  --hex       also print a hex dump of each message
  -h, --help  show this help and exit

Exit status: 0 when the file was read, 1 when it cannot be opened, 2 for a malformed file or bad usage.
`;

/** Writes to stdout, waiting when the pipe is full, so a long dump is not buffered whole. */
async function write(text: string): Promise<void> {
  if (!process.stdout.write(text)) await once(process.stdout, 'drain');
}

/** The classic `offset  hex bytes  |ascii|` dump, 16 bytes a line, indented under the message line. */
function hexDump(data: Buffer): string {
  let out = '';
  for (let offset = 0; offset < data.length; offset += 16) {
    const row = data.subarray(offset, offset + 16);
    let hex = '';
    let ascii = '';
    for (let i = 0; i < 16; i++) {
      if (i === 8) hex += ' ';
      hex += i < row.length ? `${row[i]!.toString(16).padStart(2, '0')} ` : '   ';
      if (i < row.length) ascii += row[i]! >= 0x20 && row[i]! < 0x7f ? String.fromCharCode(row[i]!) : '.';
    }
    out += `    ${offset.toString(16).padStart(8, '0')}  ${hex} |${ascii}|\n`;
  }
  return out;
}

/** The recording's facts about its session, one line each, for the top and the bottom of the listing. */
function describe({ session, end }: Recording): { head: string; tail: string } {
  let head = '';
  if (session) {
    const via = session.peer === session.client ? '' : ` via ${session.peer}`;
    const token = session.token === undefined ? '' : `, token ${session.token}`;
    head = `session ${session.id}: ${session.client}${via} to ${session.target} (${session.path}${token}), started ${session.start}\n`;
  }
  let tail = '';
  if (end) {
    const why = end.reason ? ` (${end.reason})` : '';
    tail = `ended ${end.end}: closed by ${end.initiator}, code ${end.code}${why}; ${end.bytesFromClient} bytes from the client, ${end.bytesFromTarget} from the target\n`;
    if (end.stopped)
      tail += `the recording stopped at ${end.stopped.ms} ms: its limit of ${end.stopped.maxBytes} bytes (--record-max-bytes) was reached\n`;
  }
  return { head, tail };
}

async function print(messages: RecordedMessage[], hex: boolean): Promise<void> {
  const width = String(messages.at(-1)?.ms ?? 0).length;
  let toClient = 0;
  let fromClient = 0;
  for (const { direction, ms, data } of messages) {
    if (direction === 'toClient') toClient += data.length;
    else fromClient += data.length;
    const arrow = direction === 'toClient' ? 'to client  ' : 'from client';
    let text = `${String(ms).padStart(width)} ms  ${arrow}  ${data.length} bytes\n`;
    if (hex) text += hexDump(data);
    await write(text);
  }
  const span = messages.length > 0 ? messages.at(-1)!.ms - messages[0]!.ms : 0;
  await write(`${messages.length} messages over ${span} ms: ${toClient} bytes to the client, ${fromClient} bytes from the client\n`);
}

/** Entry point of `websockify-replay`: exit 0 after listing, 1 for an unreadable file, 2 for usage or format errors. */
async function main(): Promise<number> {
  let parsed: { values: { hex?: boolean | undefined; help?: boolean | undefined }; positionals: string[] };
  try {
    parsed = parseArgs({
      args: process.argv.slice(2),
      allowPositionals: true,
      options: { hex: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    });
  } catch (err) {
    process.stderr.write(`websockify-replay: error: ${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (parsed.values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (parsed.positionals.length !== 1) {
    process.stderr.write(`websockify-replay: error: expected one FILE\n${USAGE}\n`);
    return 2;
  }
  const file = parsed.positionals[0]!;
  let recording: Recording;
  try {
    recording = await readRecordingWithInfo(file);
  } catch (err) {
    if (err instanceof RecordingFormatError) {
      process.stderr.write(`websockify-replay: ${file} is not a valid session recording: ${err.message}\n`);
      return 2;
    }
    process.stderr.write(`websockify-replay: cannot read ${file}: ${(err as Error).message}\n`);
    return 1;
  }
  // A reader that went away (| head) is not an error.
  process.stdout.on('error', () => process.exit(0));
  const { head, tail } = describe(recording);
  await write(head);
  await print(recording.messages, parsed.values.hex ?? false);
  await write(tail);
  return 0;
}

process.exitCode = await main();
