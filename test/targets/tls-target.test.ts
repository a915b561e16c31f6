import assert from 'node:assert/strict';
import { once } from 'node:events';
import fs from 'node:fs';
import type net from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import tls from 'node:tls';
import { connectTarget, targetTlsContext } from '../../src/targets/connect.js';
import type { Target, TargetTls } from '../../src/targets/target.js';
import { createPki, type Issued, type Pki } from '../helpers/pki.js';
import { readAll, startServer, type TestServer } from '../helpers/targets.js';

/** A TLS echo server that records the SNI names it receives. */
interface TlsEcho {
  port: number;
  /** Every SNI name received, in order (connections without SNI add nothing). */
  snis: string[];
  /** Connections that completed the handshake. */
  secured: number;
  close(): Promise<void>;
}

let pki: Pki;
let leaf: Issued;
let echo: TlsEcho;
before(async () => {
  pki = createPki();
  leaf = pki.issue('target', pki.ca);
  const snis: string[] = [];
  const sockets = new Set<net.Socket>();
  const options: tls.TlsOptions = {
    cert: fs.readFileSync(leaf.cert),
    key: fs.readFileSync(leaf.key),
    allowHalfOpen: true,
    // Called while the hello is read, so even a client that then refuses the certificate is recorded.
    SNICallback: (name, done) => {
      snis.push(name);
      done(null, undefined);
    },
  };
  const server = tls.createServer(options, (socket) => {
    socket.on('error', () => undefined);
    echo.secured++;
    socket.on('data', (chunk: Buffer) => socket.write(chunk));
    // After the client's FIN this side can still send: half-open across TLS.
    socket.on('end', () => socket.end('after your FIN'));
  });
  server.on('tlsClientError', () => undefined);
  // Every accepted connection, handshake finished or not, so that close() is prompt.
  server.on('connection', (raw: net.Socket) => {
    sockets.add(raw);
    raw.on('close', () => sockets.delete(raw));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  echo = {
    port: (server.address() as net.AddressInfo).port,
    snis,
    secured: 0,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
});
after(async () => {
  pki.remove();
  await echo.close();
});

function target(host: string, port: number, options: Partial<TargetTls>): Target {
  return { kind: 'tcp', host, port, tls: { insecure: false, ...options } };
}

/** Connects, sends `text`, half-closes, and resolves with everything received until the target's end. */
async function roundTrip(t: Target): Promise<{ socket: net.Socket; received: string }> {
  const socket = await connectTarget(t, { timeoutMs: 5000 });
  const all = readAll(socket);
  socket.write('ping');
  const [first] = (await once(socket, 'data')) as [Buffer];
  assert.equal(first.toString(), 'ping');
  socket.end();
  const rest = await all;
  return { socket, received: rest.toString() };
}

test('verified against --ssl-target-ca, with SNI; half-open works across TLS', async () => {
  const before = echo.snis.length;
  const { socket, received } = await roundTrip(target('localhost', echo.port, { ca: pki.ca.cert }));
  assert.ok(socket instanceof tls.TLSSocket);
  assert.equal((socket as tls.TLSSocket).authorized, true);
  assert.equal(received, 'pingafter your FIN', 'the target could still send after our FIN');
  assert.deepEqual(echo.snis.slice(before), ['localhost']);
});

test('an IP literal target sends no SNI and is checked against the IP in the certificate', async () => {
  const [snisBefore, securedBefore] = [echo.snis.length, echo.secured];
  const { socket } = await roundTrip(target('127.0.0.1', echo.port, { ca: pki.ca.cert }));
  assert.equal((socket as tls.TLSSocket).authorized, true);
  assert.equal(echo.secured, securedBefore + 1);
  assert.deepEqual(echo.snis.slice(snisBefore), []);
});

test('a certificate from another CA, or one the default trust store does not know, is refused with the reason', async () => {
  for (const options of [{ ca: pki.otherCa.cert }, {}]) {
    await assert.rejects(connectTarget(target('localhost', echo.port, options), { timeoutMs: 5000 }), (err: NodeJS.ErrnoException) => {
      assert.equal(err.code, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
      return true;
    });
  }
});

test('--ssl-target-insecure accepts any certificate', async () => {
  const { socket } = await roundTrip(target('localhost', echo.port, { insecure: true }));
  assert.equal((socket as tls.TLSSocket).authorized, false, 'connected although unverified');
});

test('an explicit server name is sent and checked', async () => {
  const before = echo.snis.length;
  await assert.rejects(connectTarget(target('127.0.0.1', echo.port, { ca: pki.ca.cert, servername: 'vnc.example' }), { timeoutMs: 5000 }), {
    code: 'ERR_TLS_CERT_ALTNAME_INVALID',
  });
  await roundTrip(target('127.0.0.1', echo.port, { insecure: true, servername: 'vnc.example' }));
  assert.deepEqual(echo.snis.slice(before), ['vnc.example', 'vnc.example']);
});

test('a target that never answers the TLS hello times out; a refused port is still ECONNREFUSED', async () => {
  let silent: TestServer | undefined;
  try {
    silent = await startServer(() => undefined);
    await assert.rejects(connectTarget(target('127.0.0.1', silent.port, { insecure: true }), { timeoutMs: 300 }), {
      code: 'ETIMEDOUT',
      message: 'TLS handshake timed out after 300 ms',
    });
  } finally {
    await silent?.close();
  }
  const closed = await startServer();
  const port = closed.port;
  await closed.close();
  await assert.rejects(connectTarget(target('127.0.0.1', port, { insecure: true }), { timeoutMs: 2000 }), { code: 'ECONNREFUSED' });
});

test('the CA file is checked: missing or without a certificate is a StartupError naming it', async () => {
  const missing = path.join(pki.dir, 'missing-ca.pem');
  assert.throws(() => targetTlsContext(missing), { name: 'StartupError', message: `cannot read --ssl-target-ca file ${missing}: ENOENT` });
  assert.throws(() => targetTlsContext(leaf.key), {
    name: 'StartupError',
    message: `--ssl-target-ca file ${leaf.key}: no PEM certificate in it`,
  });
  await assert.rejects(connectTarget(target('localhost', echo.port, { ca: missing }), { timeoutMs: 2000 }), { name: 'StartupError' });
  assert.equal(targetTlsContext(pki.ca.cert), targetTlsContext(pki.ca.cert), 'read and parsed once');
});
