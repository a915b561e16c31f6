import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import tls from 'node:tls';
import { StartupError } from '../../src/errors.js';
import { cipherList, TlsContextStore } from '../../src/tls/context.js';
import { captureLog } from '../helpers/log-capture.js';
import { createPki, type Issued, type Pki, replaceAtomically } from '../helpers/pki.js';

let pki: Pki;
let server: Issued;
before(() => {
  pki = createPki();
  server = pki.issue('server', pki.ca);
});
after(() => pki.remove());

/** The fingerprint of the certificate the store would give new connections. */
function servedFingerprint(store: TlsContextStore): string {
  return new X509Certificate(store.secureContextOptions.cert as Buffer).fingerprint256;
}

test('a combined self.pem (key and certificate in one file) is enough', () => {
  const self = pki.selfSigned('combined');
  const store = TlsContextStore.open({ cert: self.file }, captureLog().logger, { watch: false });
  assert.equal(servedFingerprint(store), self.fingerprint);
  assert.equal(store.generation, 1);
});

test('a separate key file, and an encrypted key with its password', () => {
  const store = TlsContextStore.open({ cert: server.cert, key: server.key }, captureLog().logger, { watch: false });
  assert.equal(servedFingerprint(store), server.fingerprint);
  const locked = pki.issue('locked', pki.ca, { password: 's3cret' });
  assert.doesNotThrow(() =>
    TlsContextStore.open({ cert: locked.cert, key: locked.key, keyPassword: 's3cret' }, captureLog().logger, { watch: false }),
  );
  assert.throws(
    () => TlsContextStore.open({ cert: locked.cert, key: locked.key, keyPassword: 'wrong' }, captureLog().logger, { watch: false }),
    (err: Error) => {
      assert.ok(err instanceof StartupError);
      assert.match(err.message, /wrong or missing key password \(--key-password or --key-password-file\)/);
      return true;
    },
  );
});

test('start-up errors name the file or option at fault', () => {
  const log = captureLog().logger;
  const open = (options: Parameters<typeof TlsContextStore.open>[0]) => () => TlsContextStore.open(options, log, { watch: false });
  const missing = path.join(pki.dir, 'nope.pem');
  assert.throws(open({ cert: missing }), { name: 'StartupError', message: `cannot read TLS certificate file ${missing}: no such file` });
  assert.throws(open({ cert: server.cert }), {
    name: 'StartupError',
    message: new RegExp(`TLS key file ${server.cert}: no PEM private key in it \\(give the key file with --key\\)`),
  });
  assert.throws(open({ cert: server.key, key: server.key }), { name: 'StartupError', message: /no PEM certificate/ });
  const stranger = pki.issue('stranger', pki.ca);
  assert.throws(open({ cert: server.cert, key: stranger.key }), {
    name: 'StartupError',
    message: /the private key does not belong to the certificate/,
  });
  assert.throws(open({ cert: server.cert, key: server.key, ciphers: 'NO-SUCH-CIPHER' }), {
    name: 'StartupError',
    message: /no usable cipher in --ssl-ciphers/,
  });
  assert.throws(open({ cert: server.cert, key: server.key, verifyClient: true, cafile: missing }), {
    name: 'StartupError',
    message: `cannot read TLS CA file ${missing}: no such file`,
  });
});

test('--ssl-version maps to the minimum protocol version', () => {
  const log = captureLog().logger;
  const min = (minVersion: 'default' | 'tlsv1_1' | 'tlsv1_2' | 'tlsv1_3') =>
    TlsContextStore.open({ cert: server.cert, key: server.key, minVersion }, log, { watch: false }).secureContextOptions.minVersion;
  assert.equal(min('default'), undefined);
  assert.equal(min('tlsv1_1'), 'TLSv1.1');
  assert.equal(min('tlsv1_2'), 'TLSv1.2');
  assert.equal(min('tlsv1_3'), 'TLSv1.3');
});

test('reload(): unchanged files change nothing, new ones are taken, broken ones are logged and ignored', () => {
  const dir = fs.mkdtempSync(path.join(pki.dir, 'reload-'));
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  fs.copyFileSync(server.cert, cert);
  fs.copyFileSync(server.key, key);
  const log = captureLog();
  const store = TlsContextStore.open({ cert, key }, log.logger, { watch: false });

  assert.equal(store.reload('test'), true);
  assert.equal(store.generation, 1, 'same bytes: no new generation');

  const next = pki.issue('next', pki.ca);
  replaceAtomically(key, fs.readFileSync(next.key));
  replaceAtomically(cert, fs.readFileSync(next.cert));
  assert.equal(store.reload('SIGHUP'), true);
  assert.equal(store.generation, 2);
  assert.equal(servedFingerprint(store), next.fingerprint);
  assert.ok(log.events.some((e) => e.event === 'tls-reloaded' && e.level === 30 && e.cause === 'SIGHUP'));

  replaceAtomically(cert, 'not a certificate\n');
  assert.equal(store.reload('SIGHUP'), false);
  assert.equal(store.generation, 2);
  assert.equal(servedFingerprint(store), next.fingerprint, 'the previous certificate stays');
  const failed = log.events.find((e) => e.event === 'tls-reload-failed');
  assert.ok(failed, 'the failure is logged');
  assert.equal(failed.level, 40);
  assert.match(String(failed.reason), /no PEM certificate/);
});

test('a file renamed over the certificate is picked up by the watcher; close() stops watching', async () => {
  const dir = fs.mkdtempSync(path.join(pki.dir, 'watch-'));
  const combined = path.join(dir, 'self.pem');
  const first = pki.selfSigned('watch-first');
  const second = pki.selfSigned('watch-second');
  fs.copyFileSync(first.file, combined);
  const log = captureLog();
  const store = TlsContextStore.open({ cert: combined }, log.logger, { debounceMs: 50 });
  try {
    // An unrelated file in the same directory is not a reason to reload.
    fs.writeFileSync(path.join(dir, 'unrelated.txt'), 'x');
    replaceAtomically(combined, fs.readFileSync(second.file));
    await log.waitFor((e) => e.event === 'tls-reloaded');
    assert.equal(store.generation, 2);
    assert.equal(servedFingerprint(store), second.fingerprint);
    assert.equal(log.events.filter((e) => e.event === 'tls-reloaded' || e.event === 'tls-unchanged').length, 1);
  } finally {
    store.close();
  }
  replaceAtomically(combined, fs.readFileSync(first.file));
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(store.generation, 2, 'no reload after close()');
});

test('TLS 1.3 uses AES-128-GCM when the client offers it, even second; AES-256-GCM stays available', async () => {
  const store = TlsContextStore.open({ cert: server.cert, key: server.key }, captureLog().logger, { watch: false });
  const listener = tls.createServer(store.secureContextOptions, (socket) => socket.end());
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  const { port } = listener.address() as { port: number };
  const negotiated = async (ciphers?: string): Promise<string> => {
    const socket = tls.connect({
      port,
      host: '127.0.0.1',
      ca: fs.readFileSync(pki.ca.cert),
      servername: 'localhost',
      ...(ciphers ? { ciphers } : {}),
    });
    await once(socket, 'secureConnect');
    const name = socket.getCipher().name;
    socket.destroy();
    return name;
  };
  try {
    // Node's own client lists AES-256-GCM first.
    assert.ok(tls.DEFAULT_CIPHERS.startsWith('TLS_AES_256_GCM_SHA384'));
    assert.equal(await negotiated(), 'TLS_AES_128_GCM_SHA256');
    assert.equal(await negotiated('TLS_AES_256_GCM_SHA384'), 'TLS_AES_256_GCM_SHA384');
  } finally {
    listener.close();
  }
});

test("cipherList: the TLS 1.3 preference before the TLS 1.2 list given or Node's; a list naming TLS 1.3 suites is kept", () => {
  const tls13 = 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256';
  assert.equal(
    cipherList('ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384'),
    `${tls13}:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384`,
  );
  assert.equal(
    cipherList('TLS_CHACHA20_POLY1305_SHA256:ECDHE-RSA-AES128-GCM-SHA256'),
    'TLS_CHACHA20_POLY1305_SHA256:ECDHE-RSA-AES128-GCM-SHA256',
  );
  const fallback = cipherList(undefined).split(':');
  assert.deepEqual(fallback.slice(0, 3), tls13.split(':'));
  assert.deepEqual(
    fallback.slice(3),
    tls.DEFAULT_CIPHERS.split(':').filter((name) => !name.startsWith('TLS_')),
  );
});
