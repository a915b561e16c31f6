import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { closeFrame, type HandshakeParts, handshakeRequest, maskedFrame } from '../../bench/wire.js';
import { RawConnection } from '../helpers/raw-connection.js';
import { unusedPort } from '../helpers/targets.js';
import { CaseTarget, PYTHON_WEBSOCKIFY, pythonAvailable, type Subject, startOurs, startPython } from './subjects.js';

/*
 * The same handshake and close cases against Python websockify and this proxy. Each row states whether
 * the two agree; where they differ on purpose, the row names both outcomes and why, so a change on
 * either side fails here and the README's list of differences stays true.
 */

/** What a case needs to run against one subject. */
interface CaseContext {
  subject: Subject;
  /** The target both subjects of the live pair proxy to. */
  target: CaseTarget;
  /** The port that the refused-target pair points at (nothing listens there). */
  deadPort: number;
}

type Row = {
  name: string;
  /** Which pair of subjects: in front of the live target (default) or of a port nobody listens on. */
  pair?: 'live' | 'refused';
  /** Runs the case and returns its outcome as one line. */
  run(context: CaseContext): Promise<string>;
} & ({ expect: 'same'; outcome: string } | { expect: 'differs'; python: string; ours: string; why: string });

const PAYLOAD = Buffer.from(Array.from({ length: 256 * 1024 }, (_, i) => (i * 7 + (i >> 8)) & 0xff));

/** Sends `request` and describes the answer: status, chosen protocol, and the headers that matter. */
async function handshake(context: CaseContext, request: string | Buffer): Promise<string> {
  const conn = await RawConnection.open(context.subject.port);
  try {
    conn.write(request);
    const head = await conn.head(8000);
    if (!head) {
      const closed = await conn.waitClosed(8000);
      if (conn.received.length === 0) return closed ? 'closed, no response' : 'no response, still open';
      // Python answers a request line it cannot parse as HTTP/0.9 would: a bare HTML error page.
      const code = /Error code: (\d+)/.exec(conn.received.toString('latin1'))?.[1] ?? '?';
      return `no status line, bare error page (code ${code})`;
    }
    const parts = [`HTTP ${head.status}`];
    if (head.status === 101) {
      parts.push(`protocol ${head.headers['sec-websocket-protocol'] ?? '(none)'}`);
      // Let the session reach the target, so that its connection cannot spill into the next case.
      await context.target.waitUntil((all) => all.length > 0);
    }
    const version = head.headers['sec-websocket-version'];
    if (version !== undefined) parts.push(`Sec-WebSocket-Version: ${version}`);
    return parts.join(', ');
  } finally {
    conn.destroy();
  }
}

/** A row that only sends a handshake built from `parts`. */
function handshakeRow(parts: HandshakeParts): Row['run'] {
  return (context) => handshake(context, handshakeRequest(parts));
}

/** Opens a session with the `binary` protocol; throws unless the answer is 101. */
async function openSession(context: CaseContext): Promise<RawConnection> {
  const conn = await RawConnection.open(context.subject.port);
  conn.write(handshakeRequest({ protocol: 'binary' }));
  const head = await conn.head();
  if (head?.status !== 101) {
    conn.destroy();
    throw new Error(`expected 101, got ${head?.statusLine ?? 'nothing'}`);
  }
  return conn;
}

/** The close frame as one line, the target's port replaced so that rows compare across runs. */
function describeClose(code: number | undefined, reason: string, context: CaseContext): string {
  return code === undefined ? 'no close frame' : `close ${code} '${reason.replaceAll(String(context.deadPort), 'PORT')}'`;
}

/** The client sends `chunks` as binary frames (in separate writes, or with the close frame in one write) and then closes. */
async function clientSendsThenCloses(context: CaseContext, oneWrite: boolean): Promise<string> {
  const chunks = [PAYLOAD.subarray(0, 1000), PAYLOAD.subarray(1000, 5000), PAYLOAD.subarray(5000, 6000)];
  const frames = chunks.map((chunk) => maskedFrame(chunk));
  const conn = await openSession(context);
  try {
    const { target } = context;
    await target.waitUntil((all) => all.length > 0);
    if (oneWrite) {
      conn.write(Buffer.concat([...frames, closeFrame(1000)]));
    } else {
      for (const frame of frames) conn.write(frame);
      // Everything has reached the target before the close frame is sent.
      await target.waitUntil((all) => all[0]!.data.length >= 6000);
      conn.write(closeFrame(1000));
    }
    const seen = await conn.frames(20_000, false);
    await target.waitUntil((all) => all[0]!.fin);
    const got = target.connections[0]!;
    const intact = got.data.equals(PAYLOAD.subarray(0, got.data.length)) ? '' : ' (corrupted)';
    return `target got ${got.data.length} of 6000 bytes${intact}${got.fin ? ' + FIN' : ', no FIN'}; client got ${describeClose(seen.closeCode, seen.closeReason, context)}`;
  } finally {
    conn.destroy();
  }
}

const ROWS: Row[] = [
  {
    name: 'valid handshake offering binary',
    run: handshakeRow({ protocol: 'binary' }),
    expect: 'same',
    outcome: 'HTTP 101, protocol binary',
  },
  {
    name: 'no Sec-WebSocket-Protocol header',
    run: handshakeRow({}),
    expect: 'same',
    outcome: 'HTTP 101, protocol (none)',
  },
  {
    name: "'binary, base64' offered",
    run: handshakeRow({ protocol: 'binary, base64' }),
    expect: 'same',
    outcome: 'HTTP 101, protocol binary',
  },
  {
    name: "'base64, binary' offered (space after the comma)",
    run: handshakeRow({ protocol: 'base64, binary' }),
    expect: 'differs',
    python: 'HTTP 400',
    ours: 'HTTP 101, protocol binary',
    why: "Python does not trim the list, so it sees ' binary', not 'binary'; this proxy trims (RFC 7230 lists allow spaces)",
  },
  {
    name: 'only base64 offered',
    run: handshakeRow({ protocol: 'base64' }),
    expect: 'differs',
    python: 'HTTP 400',
    ours: 'HTTP 101, protocol base64',
    why: 'this proxy still speaks the base64 subprotocol (text frames) for old clients; Python 0.10 dropped it',
  },
  {
    name: 'only unknown protocols offered',
    run: handshakeRow({ protocol: 'chat, superchat' }),
    expect: 'same',
    outcome: 'HTTP 400',
  },
  {
    name: 'Sec-WebSocket-Version: 8',
    run: handshakeRow({ protocol: 'binary', version: '8' }),
    expect: 'same',
    outcome: 'HTTP 101, protocol binary',
  },
  {
    name: 'Sec-WebSocket-Version: 12',
    run: handshakeRow({ protocol: 'binary', version: '12' }),
    expect: 'differs',
    python: 'HTTP 400',
    ours: 'HTTP 426, Sec-WebSocket-Version: 13',
    why: 'RFC 6455 4.4: an unsupported version gets 426 naming the version spoken; Python answers 400',
  },
  {
    name: 'Sec-WebSocket-Version: 7 (HyBi-07 draft)',
    run: handshakeRow({ protocol: 'binary', version: '7' }),
    expect: 'differs',
    python: 'HTTP 101, protocol binary',
    ours: 'HTTP 426, Sec-WebSocket-Version: 13',
    why: 'this proxy speaks versions 13 and 8 (HyBi-08, as the ws library does); Python also accepts the HyBi-07 draft',
  },
  {
    name: 'missing Sec-WebSocket-Version',
    run: handshakeRow({ protocol: 'binary', version: null }),
    expect: 'differs',
    python: 'HTTP 400',
    ours: 'HTTP 426, Sec-WebSocket-Version: 13',
    why: 'a missing version is an unsupported one: 426 with the version spoken (RFC 6455 4.4)',
  },
  {
    name: 'missing Sec-WebSocket-Key',
    run: handshakeRow({ protocol: 'binary', key: null }),
    expect: 'same',
    outcome: 'HTTP 400',
  },
  {
    name: 'malformed Sec-WebSocket-Key (not 16 bytes of base64)',
    run: handshakeRow({ protocol: 'binary', key: 'not-a-key' }),
    expect: 'differs',
    python: 'HTTP 101, protocol binary',
    ours: 'HTTP 400',
    why: 'RFC 6455 4.1 requires a base64 16-byte nonce; Python hashes whatever it is given',
  },
  {
    name: 'Connection: keep-alive, Upgrade (as Firefox sends)',
    run: handshakeRow({ protocol: 'binary', connection: 'keep-alive, Upgrade' }),
    expect: 'same',
    outcome: 'HTTP 101, protocol binary',
  },
  {
    name: 'Upgrade: websocket without Connection: Upgrade',
    run: handshakeRow({ protocol: 'binary', connection: null }),
    expect: 'differs',
    python: 'HTTP 101, protocol binary',
    ours: 'HTTP 400',
    why: 'RFC 6455 4.2.1 requires Connection: Upgrade; Python looks at the Upgrade header only',
  },
  {
    name: 'Upgrade: h2c (not a WebSocket)',
    run: handshakeRow({ upgrade: 'h2c', key: null, version: null, extra: ['HTTP2-Settings: AAMAAABkAAQAAP__'] }),
    expect: 'differs',
    python: 'HTTP 405',
    ours: 'HTTP 400',
    why: 'this proxy answers an upgrade to another protocol with 400 naming it; Python treats it as a plain GET (405)',
  },
  {
    name: 'POST with the upgrade headers',
    run: handshakeRow({ method: 'POST', protocol: 'binary' }),
    expect: 'differs',
    python: 'HTTP 501',
    ours: 'HTTP 405',
    why: 'this proxy answers any method but GET with 405 and Allow: GET; Python has no POST handler (501)',
  },
  {
    name: 'plain GET without upgrade',
    run: (context) => handshake(context, 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'),
    expect: 'same',
    outcome: 'HTTP 405',
  },
  {
    name: 'malformed request line',
    run: (context) => handshake(context, 'THIS IS NOT HTTP AT ALL\r\n\r\n'),
    expect: 'differs',
    python: 'no status line, bare error page (code 400)',
    ours: 'HTTP 400',
    why: 'Python answers a request line it cannot parse HTTP/0.9-style (no status line, no headers); this proxy sends an HTTP/1.1 400',
  },
  {
    name: 'handshake over HTTP/1.0',
    run: handshakeRow({ protocol: 'binary', httpVersion: 'HTTP/1.0' }),
    expect: 'same',
    outcome: 'HTTP 101, protocol binary',
  },
  {
    name: 'handshake with request line HTTP/2.0',
    run: handshakeRow({ protocol: 'binary', httpVersion: 'HTTP/2.0' }),
    expect: 'differs',
    python: 'no status line, bare error page (code 505)',
    ours: 'HTTP 101, protocol binary',
    why: 'RFC 6455 4.1 asks for HTTP/1.1 or higher; Python refuses any version from 2 up (HTTP/0.9-style 505)',
  },
  {
    name: 'a 20 KiB header line',
    run: handshakeRow({ protocol: 'binary', extra: [`X-Filler: ${'a'.repeat(20 * 1024)}`] }),
    expect: 'differs',
    python: 'HTTP 101, protocol binary',
    ours: 'HTTP 431',
    why: 'this proxy bounds the whole request head (--max-header-size, 16 KiB by default); Python bounds each line to 64 KiB',
  },
  {
    name: 'a 70 KiB header line',
    run: handshakeRow({ protocol: 'binary', extra: [`X-Filler: ${'a'.repeat(70 * 1024)}`] }),
    expect: 'same',
    outcome: 'HTTP 431',
  },
  {
    name: 'client connects and sends nothing',
    run: (context) => handshake(context, ''),
    expect: 'same',
    outcome: 'closed, no response',
  },
  {
    name: 'target refuses the connection',
    pair: 'refused',
    run: async (context) => {
      const conn = await openSession(context);
      try {
        const seen = await conn.frames();
        return `HTTP 101, ${describeClose(seen.closeCode, seen.closeReason, context)}`;
      } finally {
        conn.destroy();
      }
    },
    expect: 'differs',
    python: "HTTP 101, close 1011 'Failed to connect to downstream server'",
    ours: "HTTP 101, close 1011 'Failed to connect to target 127.0.0.1:PORT: ECONNREFUSED'",
    why: 'the close reason names the target and the error',
  },
  {
    name: 'target sends 256 KiB then closes',
    run: async (context) => {
      context.target.reset({ kind: 'send-and-close', data: PAYLOAD });
      const conn = await openSession(context);
      try {
        const seen = await conn.frames();
        const intact = seen.data.equals(PAYLOAD.subarray(0, seen.data.length)) ? '' : ' (corrupted)';
        return `client got ${seen.data.length} of ${PAYLOAD.length} bytes${intact}, ${describeClose(seen.closeCode, seen.closeReason, context)}`;
      } finally {
        conn.destroy();
      }
    },
    expect: 'same',
    outcome: "client got 262144 of 262144 bytes, close 1000 'Target closed'",
  },
  {
    name: 'client sends 6000 bytes, then closes',
    run: (context) => clientSendsThenCloses(context, false),
    expect: 'same',
    outcome: "target got 6000 of 6000 bytes + FIN; client got close 1000 ''",
  },
  {
    name: 'client sends data and close frame in one write',
    run: (context) => clientSendsThenCloses(context, true),
    expect: 'differs',
    python: "target got 0 of 6000 bytes + FIN; client got close 1000 ''",
    ours: "target got 6000 of 6000 bytes + FIN; client got close 1000 ''",
    why: 'Python drops client data still queued for the target when the close frame arrives in the same read',
  },
];

const python: Record<'live' | 'refused', Subject | undefined> = { live: undefined, refused: undefined };
const ours: Record<'live' | 'refused', Subject | undefined> = { live: undefined, refused: undefined };
const target = new CaseTarget();
let deadPort = 0;
const table: Array<{ name: string; python: string; ours: string; verdict: string }> = [];
const skip = pythonAvailable() ? false : `${PYTHON_WEBSOCKIFY} is not installed (apt-get install websockify)`;

before(async () => {
  if (skip) return;
  await target.start();
  deadPort = await unusedPort();
  const live = `127.0.0.1:${target.port}`;
  const dead = `127.0.0.1:${deadPort}`;
  const started = await Promise.allSettled([startPython(live), startOurs(live), startPython(dead), startOurs(dead)]);
  // Keep whatever did start, so that after() stops it even when another failed.
  const value = (i: number): Subject | undefined =>
    started[i]!.status === 'fulfilled' ? (started[i] as PromiseFulfilledResult<Subject>).value : undefined;
  [python.live, ours.live, python.refused, ours.refused] = [value(0), value(1), value(2), value(3)];
  const failed = started.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failed) throw failed.reason;
});

after(async () => {
  await Promise.all([python.live, ours.live, python.refused, ours.refused].map((subject) => subject?.stop()));
  if (!skip) await target.close();
  if (table.length > 0) {
    const header = { name: 'case', python: 'python', ours: 'ours', verdict: 'same/differs' };
    const width = (key: 'name' | 'python' | 'ours'): number => Math.max(...[header, ...table].map((row) => row[key].length));
    const line = (row: typeof header): string =>
      `${row.name.padEnd(width('name'))} | ${row.python.padEnd(width('python'))} | ${row.ours.padEnd(width('ours'))} | ${row.verdict}`;
    const lines = [line(header), ...table.map(line)];
    console.log(`\nConformance with Python websockify:\n${lines.join('\n')}\n`);
  }
});

test('Python websockify is installed (required in CI)', { skip: skip && !process.env.CI ? skip : false }, () => {
  assert.ok(pythonAvailable(), `${PYTHON_WEBSOCKIFY} is missing: CI must install Debian's websockify package`);
});

for (const row of ROWS) {
  test(`conformance: ${row.name}`, { skip }, async (t) => {
    const pair = row.pair ?? 'live';
    const outcomes: string[] = [];
    for (const subject of [python[pair]!, ours[pair]!]) {
      try {
        outcomes.push(await row.run({ subject, target, deadPort }));
      } finally {
        await target.settle();
        target.reset();
      }
    }
    const [pythonOutcome, ourOutcome] = outcomes as [string, string];
    table.push({
      name: row.name,
      python: pythonOutcome,
      ours: ourOutcome,
      verdict: row.expect === 'same' ? 'same' : `differs: ${row.why}`,
    });
    t.diagnostic(`python: ${pythonOutcome}`);
    t.diagnostic(`ours:   ${ourOutcome}`);
    if (row.expect === 'same') {
      assert.equal(ourOutcome, pythonOutcome, 'the row says both agree');
      assert.equal(ourOutcome, row.outcome);
    } else {
      assert.notEqual(ourOutcome, pythonOutcome, `the row says they differ: ${row.why}`);
      assert.equal(pythonOutcome, row.python, 'Python websockify changed');
      assert.equal(ourOutcome, row.ours, 'this proxy changed');
    }
  });
}
