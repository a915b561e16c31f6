import assert from 'node:assert/strict';
import fs from 'node:fs';
import type net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import tls from 'node:tls';
import { cliFixture } from '../helpers/cli-fixture.js';
import { type RunningProxy, runCli } from '../helpers/proxy.js';
import { startServer } from '../helpers/targets.js';
import { collect, echoed, openClient } from '../helpers/ws-client.js';

/** A TLS echo server on 127.0.0.1 that counts the connections whose handshake completed. */
interface TlsEcho {
  port: number;
  secured: number;
  close(): Promise<void>;
}

async function startTlsEcho(cert: Buffer, key: Buffer): Promise<TlsEcho> {
  const sockets = new Set<net.Socket>();
  const server = tls.createServer({ cert, key }, (socket) => {
    echo.secured++;
    socket.on('error', () => undefined);
    socket.pipe(socket);
  });
  // A client that refuses our certificate aborts the handshake: expected here.
  server.on('tlsClientError', () => undefined);
  server.on('connection', (raw: net.Socket) => {
    sockets.add(raw);
    raw.on('close', () => sockets.delete(raw));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const echo: TlsEcho = {
    port: (server.address() as net.AddressInfo).port,
    secured: 0,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
  return echo;
}

let signed: TlsEcho;
let selfSigned: TlsEcho;
let misnamed: TlsEcho;
const cli = cliFixture('ssl-target', {
  before: startTargets,
  after: async () => {
    await Promise.all([signed, selfSigned, misnamed].map((target) => target.close()));
  },
});
const { proxy, stop } = cli;

/** The TLS targets: one the test CA signed for 127.0.0.1, a self-signed one, one signed for another name. */
async function startTargets(): Promise<void> {
  const leaf = cli.pki.issue('target', cli.pki.ca);
  signed = await startTlsEcho(fs.readFileSync(leaf.cert), fs.readFileSync(leaf.key));
  const own = cli.pki.selfSigned('self-signed-target');
  const pem = fs.readFileSync(own.file);
  selfSigned = await startTlsEcho(pem, pem);
  // Signed by the CA, but for another name than the address the proxy dials.
  const other = cli.pki.issue('elsewhere', cli.pki.ca, { san: 'DNS:elsewhere.example' });
  misnamed = await startTlsEcho(fs.readFileSync(other.cert), fs.readFileSync(other.key));
}

/** Opens a client and resolves with how the proxy closed it (the target leg failed). */
async function closedBy(p: RunningProxy): Promise<{ code: number; reason: string }> {
  const ws = await openClient(p.url);
  const { code, reason } = await collect(ws);
  return { code, reason };
}

test("--ssl-target with --ssl-target-ca of the target's CA: bytes go through TLS to the target and back", async () => {
  const before = signed.secured;
  const p = await proxy(['--ssl-target', '--ssl-target-ca', cli.pki.ca.cert], signed.port);
  try {
    const ws = await openClient(p.url);
    assert.equal(await echoed(ws, 'through TLS'), 'through TLS');
    assert.equal(await echoed(ws, 'and again'), 'and again');
    assert.equal(signed.secured, before + 1);
    ws.close();
    const closed = await p.waitForEvent((e) => e.event === 'close');
    assert.equal(closed.bytesFromTarget, 'through TLS'.length + 'and again'.length);
  } finally {
    await stop(p);
  }
});

test('--ssl-target with the wrong CA: the client is closed 1011 naming the verification error', async () => {
  const p = await proxy(['--ssl-target', '--ssl-target-ca', cli.pki.otherCa.cert], signed.port);
  try {
    const { code, reason } = await closedBy(p);
    assert.equal(code, 1011);
    assert.match(reason, new RegExp(`^Failed to connect to target 127\\.0\\.0\\.1:${signed.port}: UNABLE_TO_VERIFY_LEAF_SIGNATURE$`));
    const failed = await p.waitForEvent((e) => e.event === 'target-failed');
    assert.equal(failed.err, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
  } finally {
    await stop(p);
  }
});

test('--ssl-target verifies the name too: a certificate for another host is refused', async () => {
  const p = await proxy(['--ssl-target', '--ssl-target-ca', cli.pki.ca.cert], misnamed.port);
  try {
    const { code, reason } = await closedBy(p);
    assert.equal(code, 1011);
    assert.match(reason, /: ERR_TLS_CERT_ALTNAME_INVALID$/);
  } finally {
    await stop(p);
  }
});

test('a self-signed target: refused by default, accepted with --ssl-target-insecure', async () => {
  const strict = await proxy(['--ssl-target'], selfSigned.port);
  try {
    const { code, reason } = await closedBy(strict);
    assert.equal(code, 1011);
    assert.match(reason, /: DEPTH_ZERO_SELF_SIGNED_CERT$/);
  } finally {
    await stop(strict);
  }
  const insecure = await proxy(['--ssl-target', '--ssl-target-insecure'], selfSigned.port);
  try {
    const ws = await openClient(insecure.url);
    assert.equal(await echoed(ws, 'no questions asked'), 'no questions asked');
    ws.close();
  } finally {
    await stop(insecure);
  }
});

test('--ssl-target to a target that does not speak TLS: closed 1011, not left hanging', async () => {
  const p = await proxy(['--ssl-target', '--connect-timeout', '5'], cli.echoTarget.port);
  try {
    const { code, reason } = await closedBy(p);
    assert.equal(code, 1011);
    assert.match(reason, /^Failed to connect to target 127\.0\.0\.1:\d+: \S+/);
  } finally {
    await stop(p);
  }
});

test('--ssl-target to a target that never answers the TLS hello: --connect-timeout covers the handshake', async () => {
  const silent = await startServer();
  const p = await proxy(['--ssl-target', '--ssl-target-insecure', '--connect-timeout', '1'], silent.port);
  try {
    const { code, reason } = await closedBy(p);
    assert.equal(code, 1011);
    assert.match(reason, /: ETIMEDOUT$/);
  } finally {
    await stop(p);
    await silent.close();
  }
});

test('--ssl-target usage errors exit 2; an unreadable --ssl-target-ca exits 1', async () => {
  const unix = path.join(cli.pki.dir, 'target.sock');
  const cases: Array<[string[], RegExp]> = [
    [['--ssl-target-ca', cli.pki.ca.cert, '127.0.0.1:0', '127.0.0.1:5900'], /--ssl-target-ca and --ssl-target-insecure need --ssl-target/],
    [['--ssl-target-insecure', '127.0.0.1:0', '127.0.0.1:5900'], /need --ssl-target/],
    [
      ['--ssl-target', '--ssl-target-ca', cli.pki.ca.cert, '--unix-target', unix, '127.0.0.1:0'],
      /--ssl-target needs a TCP target, not --unix-target/,
    ],
    [['--ssl-target-ca', cli.pki.ca.cert, '--unix-target', unix, '127.0.0.1:0'], /need --ssl-target/],
    [['--ssl-target', '--ssl-target-ca', cli.pki.ca.cert, '--ssl-target-insecure', '127.0.0.1:0', '127.0.0.1:5900'], /contradict/],
  ];
  for (const [args, message] of cases) {
    const result = await runCli(args);
    assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
    assert.match(result.stderr, /^websockify: error: [^\n]+\nusage: websockify /);
    assert.match(result.stderr, message);
  }

  const missing = await runCli([
    '--ssl-target',
    '--ssl-target-ca',
    path.join(cli.pki.dir, 'missing-ca.pem'),
    '127.0.0.1:0',
    '127.0.0.1:5900',
  ]);
  assert.equal(missing.code, 1, missing.stderr);
  assert.match(missing.stderr, /^websockify: cannot read --ssl-target-ca file [^\n]*missing-ca\.pem: ENOENT\n$/);
  const notPem = await runCli(['--ssl-target', '--ssl-target-ca', `${cli.pki.dir}/ca.key`, '127.0.0.1:0', '127.0.0.1:5900']);
  assert.equal(notPem.code, 1, notPem.stderr);
  assert.match(notPem.stderr, /^websockify: --ssl-target-ca file [^\n]*: no PEM certificate in it\n$/);
});
