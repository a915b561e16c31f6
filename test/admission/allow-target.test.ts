import assert from 'node:assert/strict';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { WebSocket } from 'ws';
import { ProxyPool, runCli } from '../helpers/proxy.js';
import { startServer, type TestServer } from '../helpers/targets.js';

let scratch: string;
/** Two targets that say who they are, so a test sees where a connection went. */
let inside: TestServer;
let outside: TestServer;
const pool = new ProxyPool();

before(async () => {
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'wsfy-allow-'));
  inside = await startServer((socket) => socket.end('inside\n'));
  outside = await startServer((socket) => socket.end('outside\n'));
});
after(async () => {
  await pool.stopAll();
  await inside.close();
  await outside.close();
  fs.rmSync(scratch, { recursive: true, force: true });
});

/** The handshake's status, and after a 101 everything the target sent before closing. */
async function connect(url: string): Promise<{ status: number; received?: string }> {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  ws.on('error', () => undefined);
  const chunks: Buffer[] = [];
  ws.on('message', (data: Buffer) => chunks.push(data));
  return new Promise((resolve, reject) => {
    ws.once('unexpected-response', (_req, res) => {
      res.resume();
      ws.terminate();
      resolve({ status: res.statusCode! });
    });
    ws.once('open', () => void once(ws, 'close').then(() => resolve({ status: 101, received: Buffer.concat(chunks).toString() })));
    ws.once('error', reject);
  });
}

test('a fixed target outside --allow-target is refused with 403 and a log line; one inside is proxied', async () => {
  const refused = await pool.start([
    '--allow-target',
    '10.0.0.0/8',
    '--allow-target',
    `127.0.0.1:${inside.port}`,
    '127.0.0.1:0',
    `127.0.0.1:${outside.port}`,
  ]);
  try {
    assert.equal((await connect(refused.url)).status, 403);
    const line = await refused.waitForEvent((e) => e.event === 'refused' && e.status === 403);
    assert.equal(line.reason, `target 127.0.0.1:${outside.port} is not allowed by --allow-target`);
  } finally {
    await pool.stop(refused);
  }
  const allowed = await pool.start(['--allow-target', `127.0.0.0/8:${inside.port}`, '127.0.0.1:0', `127.0.0.1:${inside.port}`]);
  try {
    assert.deepEqual(await connect(allowed.url), { status: 101, received: 'inside\n' });
  } finally {
    await pool.stop(allowed);
  }
});

test('a token store pointing elsewhere cannot get past --allow-target; a name is checked by the addresses it resolves to', async () => {
  const tokens = path.join(scratch, 'tokens');
  fs.writeFileSync(
    tokens,
    [`good: 127.0.0.1:${inside.port}`, `rogue: 127.0.0.1:${outside.port}`, `named: localhost:${inside.port}`, ''].join('\n'),
  );
  const p = await pool.start([
    '--token-plugin',
    'TokenFile',
    '--token-source',
    tokens,
    '--allow-target',
    `127.0.0.0/8:${inside.port}`,
    '--allow-target',
    `[::1]:${inside.port}`,
    '127.0.0.1:0',
  ]);
  try {
    assert.deepEqual(await connect(`${p.url}/?token=good`), { status: 101, received: 'inside\n' });
    assert.equal((await connect(`${p.url}/?token=rogue`)).status, 403);
    await p.waitForEvent((e) => e.event === 'refused' && e.status === 403 && String(e.reason).includes(`127.0.0.1:${outside.port}`));
    // 'localhost' matches no name pattern: it passes because every address it has is inside the ranges.
    assert.deepEqual(await connect(`${p.url}/?token=named`), { status: 101, received: 'inside\n' });
  } finally {
    await pool.stop(p);
  }
});

test('a Unix socket target needs a unix: pattern', async () => {
  const file = path.join(scratch, 'desk.sock');
  const unixTarget = net.createServer((socket) => socket.end('unix\n'));
  await new Promise<void>((resolve) => unixTarget.listen(file, resolve));
  try {
    const tcpOnly = await pool.start(['--allow-target', '*:*', '--unix-target', file, '127.0.0.1:0']);
    try {
      assert.equal((await connect(tcpOnly.url)).status, 403);
    } finally {
      await pool.stop(tcpOnly);
    }
    const unix = await pool.start(['--allow-target', `unix:${scratch}/*.sock`, '--unix-target', file, '127.0.0.1:0']);
    try {
      assert.deepEqual(await connect(unix.url), { status: 101, received: 'unix\n' });
    } finally {
      await pool.stop(unix);
    }
  } finally {
    await new Promise((resolve) => unixTarget.close(resolve));
  }
});

test('an invalid --allow-target pattern is a usage error naming it', async () => {
  for (const [pattern, why] of [
    ['10.0.0.0/33', /invalid prefix length/],
    ['host:70000', /invalid port/],
    ['fd00::1:5900x', /needs brackets/],
    ['a.*.example.com', /not a host name/],
  ] as const) {
    const result = await runCli(['--allow-target', pattern, '127.0.0.1:0', '127.0.0.1:5900']);
    assert.equal(result.code, 2, result.stderr);
    assert.ok(result.stderr.includes(`'${pattern}'`), result.stderr);
    assert.match(result.stderr, why);
  }
});
