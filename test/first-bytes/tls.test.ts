import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import tls from 'node:tls';
import type { ClientOptions } from 'ws';
import { createPlainRefusedRoute } from '../../src/first-bytes/tls.js';
import { TlsContextStore } from '../../src/tls/context.js';
import { captureLog } from '../helpers/log-capture.js';
import { createPki, type Issued, type Pki, replaceAtomically } from '../helpers/pki.js';
import { readAll } from '../helpers/targets.js';
import { echoed, openClient } from '../helpers/ws-client.js';
import { getRequest, startFront, tlsExchange } from './front.js';

let pki: Pki;
let server: Issued;
let ca: Buffer;
before(() => {
  pki = createPki();
  server = pki.issue('server', pki.ca);
  ca = fs.readFileSync(pki.ca.cert);
});
after(() => pki.remove());

/** A store over copies of the server certificate and key in a fresh directory (so a test may replace them). */
function freshStore(options: { verifyClient?: boolean; minVersion?: 'tlsv1_3' } = {}, log = captureLog()) {
  const dir = fs.mkdtempSync(path.join(pki.dir, 'front-'));
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  fs.copyFileSync(server.cert, cert);
  fs.copyFileSync(server.key, key);
  const store = TlsContextStore.open(
    {
      cert,
      key,
      ...(options.verifyClient ? { verifyClient: true, cafile: pki.ca.cert } : {}),
      ...(options.minVersion ? { minVersion: options.minVersion } : {}),
    },
    log.logger,
    { debounceMs: 50 },
  );
  return { store, cert, key, log };
}

/** Plain HTTP GET over a raw socket; resolves with everything the server sent before closing. */
async function plainGet(port: number, pathname = '/'): Promise<string> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  socket.write(getRequest(pathname));
  return (await readAll(socket).catch(() => Buffer.alloc(0))).toString();
}

/** A wss client that records the server certificate's fingerprint. */
async function openWss(port: number): Promise<{ ws: Awaited<ReturnType<typeof openClient>>; fingerprint: string }> {
  let fingerprint = '';
  // Passed through to tls.connect; @types/ws declares it with another signature.
  const checkServerIdentity = (host: string, cert: tls.PeerCertificate): Error | undefined => {
    fingerprint = cert.fingerprint256;
    return tls.checkServerIdentity(host, cert);
  };
  const ws = await openClient(`wss://localhost:${port}/`, undefined, {
    ca,
    checkServerIdentity: checkServerIdentity as unknown as NonNullable<ClientOptions['checkServerIdentity']>,
  });
  return { ws, fingerprint };
}

test('--ssl-only refuses every first byte but a TLS record or an SSLv2-style hello', () => {
  const refused = createPlainRefusedRoute(captureLog().logger);
  assert.equal(refused.match(Buffer.from([0x16, 0x03, 0x01])), false);
  assert.equal(refused.match(Buffer.from([0x80])), false);
  assert.equal(refused.match(Buffer.from('GET / HTTP/1.1')), true);
  assert.equal(refused.match(Buffer.alloc(0)), undefined);
});

test('wss and ws, https and http, on one port', async () => {
  const { store } = freshStore();
  const front = await startFront({ store });
  try {
    const secure = await openWss(front.port);
    assert.equal(secure.fingerprint, server.fingerprint);
    assert.equal(await echoed(secure.ws, 'over TLS'), 'over TLS');
    const plain = await openClient(`ws://127.0.0.1:${front.port}/`);
    assert.equal(await echoed(plain, 'in the clear'), 'in the clear');
    secure.ws.close();
    plain.close();

    const https = await tlsExchange(front.port, { ca }, getRequest('/page'));
    assert.equal(https.error, undefined);
    assert.match(https.data, /^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\ntls \/page$/);
    assert.match(await plainGet(front.port, '/page'), /\r\n\r\nplain \/page$/);
  } finally {
    await front.close();
    store.close();
  }
});

test("Debian's python3-websockets talks wss to the route", async (t) => {
  try {
    execFileSync('/usr/bin/python3', ['-c', 'import websockets'], { stdio: 'ignore' });
  } catch {
    if (process.env.CI === 'true') assert.fail('python3-websockets is missing (apt-get install -y python3-websockets)');
    t.skip('python3-websockets is not installed (apt-get install -y python3-websockets)');
    return;
  }
  const { store } = freshStore();
  const front = await startFront({ store });
  const script = [
    'import asyncio, ssl, sys, websockets',
    'async def main():',
    '    context = ssl.create_default_context(cafile=sys.argv[2])',
    '    async with websockets.connect(sys.argv[1], ssl=context) as ws:',
    "        await ws.send(b'hello from python')",
    '        reply = await ws.recv()',
    "        print(reply.decode() if isinstance(reply, bytes) else 'text:' + reply)",
    'asyncio.run(main())',
  ].join('\n');
  try {
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile('/usr/bin/python3', ['-c', script, `wss://127.0.0.1:${front.port}/`, pki.ca.cert], { timeout: 15000 }, (err, out, errOut) =>
        err ? reject(new Error(`${err.message}\n${errOut}`)) : resolve(out),
      );
    });
    assert.equal(stdout.trim(), 'hello from python');
  } finally {
    await front.close();
    store.close();
  }
});

test('--verify-client: no certificate and a certificate from another CA are refused and logged; the right CA is let in', async () => {
  const { store, log } = freshStore({ verifyClient: true });
  const front = await startFront({ store, verifyClient: true, log });
  const good = pki.issue('client-good', pki.ca, { usage: 'clientAuth' });
  const stranger = pki.issue('client-stranger', pki.otherCa, { usage: 'clientAuth' });
  try {
    const none = await tlsExchange(front.port, { ca }, getRequest('/none'));
    assert.equal(none.data, '', 'nothing is served without a certificate');
    const noneLog = await log.waitFor((e) => e.event === 'tls-failed');
    assert.equal(noneLog.level, 30);
    assert.equal(noneLog.reason, 'no client certificate');

    const wrong = await tlsExchange(
      front.port,
      { ca, cert: fs.readFileSync(stranger.cert), key: fs.readFileSync(stranger.key) },
      getRequest('/wrong'),
    );
    assert.equal(wrong.data, '', 'nothing is served to a client the CA did not vouch for');
    const wrongLog = await log.waitFor((e) => e.event === 'tls-failed' && e !== noneLog);
    assert.match(String(wrongLog.reason), /^client certificate not trusted \(UNABLE_TO_(GET_ISSUER_CERT_LOCALLY|VERIFY_LEAF_SIGNATURE)\)$/);

    const right = await tlsExchange(
      front.port,
      { ca, cert: fs.readFileSync(good.cert), key: fs.readFileSync(good.key) },
      getRequest('/right'),
    );
    assert.equal(right.error, undefined);
    assert.match(right.data, /\r\n\r\ntls \/right$/);
    assert.equal(log.events.filter((e) => e.event === 'tls-failed').length, 2);
  } finally {
    await front.close();
    store.close();
  }
});

test('a certificate renamed over the old one serves new connections; an open TLS connection keeps working', async () => {
  const { store, cert, key, log } = freshStore();
  const front = await startFront({ store, log });
  try {
    const old = await openWss(front.port);
    assert.equal(old.fingerprint, server.fingerprint);

    const renewed = pki.issue('renewed', pki.ca);
    replaceAtomically(key, fs.readFileSync(renewed.key));
    replaceAtomically(cert, fs.readFileSync(renewed.cert));
    await log.waitFor((e) => e.event === 'tls-reloaded');

    const fresh = await openWss(front.port);
    assert.equal(fresh.fingerprint, renewed.fingerprint, 'a new connection gets the new certificate');
    assert.equal(await echoed(fresh.ws, 'new'), 'new');
    assert.equal(await echoed(old.ws, 'still here'), 'still here', 'the old connection is untouched');
    old.ws.close();
    fresh.ws.close();
  } finally {
    await front.close();
    store.close();
  }
});

test('a broken replacement file is logged and the previous certificate stays', async () => {
  const { store, cert, log } = freshStore();
  const front = await startFront({ store, log });
  try {
    replaceAtomically(cert, '-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n');
    const failed = await log.waitFor((e) => e.event === 'tls-reload-failed');
    assert.equal(failed.level, 40);
    const after = await tlsExchange(front.port, { ca }, getRequest('/after'));
    assert.equal(after.fingerprint, server.fingerprint);
    assert.match(after.data, /tls \/after$/);
  } finally {
    await front.close();
    store.close();
  }
});

test('the handshake deadline: a stalled TLS hello is dropped; after TLS the deadline answers over TLS', async () => {
  const { store, log } = freshStore();
  const front = await startFront({ store, log, handshakeTimeoutMs: 400 });
  try {
    const stalled = net.connect(front.port, '127.0.0.1');
    stalled.on('error', () => undefined);
    stalled.write(Buffer.from([0x16, 0x03, 0x01]));
    const got = await readAll(stalled).catch(() => Buffer.alloc(0));
    assert.equal(got.length, 0);
    const timedOut = await log.waitFor((e) => e.event === 'tls-failed');
    assert.match(String(timedOut.reason), /timeout/i);

    // Secure, then silent: the deadline moved to the TLS socket, so its answer arrives decrypted.
    const silent = await tlsExchange(front.port, { ca });
    assert.equal(silent.error, undefined);
    assert.match(silent.data, /^HTTP\/1\.1 408 /);
    assert.ok(front.expired.length >= 1);
    assert.ok(
      front.expired.every((socket) => (socket as tls.TLSSocket).encrypted === true),
      'only the TLS socket expired, not the raw one',
    );
  } finally {
    await front.close();
    store.close();
  }
});

test('garbage after a TLS first byte (or an SSLv2 hello) is logged at info and dropped; others are unaffected', async () => {
  const { store, log } = freshStore();
  const front = await startFront({ store, log });
  try {
    const garbage = [
      Buffer.from('\x16GARBAGE GARBAGE GARBAGE', 'latin1'),
      Buffer.concat([Buffer.from([0x80, 0x41]), Buffer.alloc(65, 'A')]),
    ];
    for (const bytes of garbage) {
      const socket = net.connect(front.port, '127.0.0.1');
      socket.on('error', () => undefined);
      socket.write(bytes);
      await once(socket, 'close');
    }
    await log.waitFor(() => log.events.filter((e) => e.event === 'tls-failed').length === 2);
    for (const failed of log.events.filter((e) => e.event === 'tls-failed')) {
      assert.equal(failed.level, 30);
      assert.match(String(failed.reason), /^[a-z ]+ \(ERR_SSL_[A-Z_]+\)$/, 'the reason in words, with its code');
      assert.match(String(failed.client), /^127\.0\.0\.1:\d+$/);
    }
    const { ws } = await openWss(front.port);
    assert.equal(await echoed(ws, 'fine'), 'fine');
    ws.close();
  } finally {
    await front.close();
    store.close();
  }
});

test('--ssl-only: plain connections are refused and logged, TLS ones served', async () => {
  const { store, log } = freshStore();
  const front = await startFront({ store, log, sslOnly: true });
  try {
    assert.equal(await plainGet(front.port), '');
    const refused = await log.waitFor((e) => e.event === 'refused');
    assert.match(String(refused.reason), /--ssl-only/);
    const https = await tlsExchange(front.port, { ca }, getRequest('/only'));
    assert.match(https.data, /tls \/only$/);
  } finally {
    await front.close();
    store.close();
  }
});

test('--ssl-version tlsv1_3 refuses a TLS 1.2 client', async () => {
  const { store, log } = freshStore({ minVersion: 'tlsv1_3' });
  const front = await startFront({ store, log });
  try {
    const old = await tlsExchange(front.port, { ca, maxVersion: 'TLSv1.2' }, getRequest());
    assert.equal(old.data, '');
    assert.notEqual(old.error, undefined);
    const failed = await log.waitFor((e) => e.event === 'tls-failed');
    assert.equal(failed.reason, 'unsupported protocol (ERR_SSL_UNSUPPORTED_PROTOCOL)');
    const current = await tlsExchange(front.port, { ca }, getRequest('/v13'));
    assert.match(current.data, /tls \/v13$/);
  } finally {
    await front.close();
    store.close();
  }
});
