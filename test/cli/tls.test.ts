import assert from 'node:assert/strict';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import tls from 'node:tls';
import { cliFixture } from '../helpers/cli-fixture.js';
import { type Issued, replaceAtomically } from '../helpers/pki.js';
import { runCli } from '../helpers/proxy.js';
import { readAll } from '../helpers/targets.js';
import { echoed, openClient } from '../helpers/ws-client.js';

const cli = cliFixture('tls-cli');
const { proxy, stop } = cli;

/** Flash's socket policy request, and the proxy's answer (NUL-terminated). */
const FLASH_POLICY_REQUEST = Buffer.from('<policy-file-request/>', 'latin1');
const FLASH_POLICY_RESPONSE = Buffer.from(
  '<cross-domain-policy><allow-access-from domain="*" to-ports="*" /></cross-domain-policy>\0',
  'latin1',
);

/** A directory of its own holding copies of a certificate and key, so a test may replace them. */
function certDir(issued: Issued): { dir: string; cert: string; key: string } {
  const dir = fs.mkdtempSync(path.join(cli.pki.dir, 'cli-'));
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  fs.copyFileSync(issued.cert, cert);
  fs.copyFileSync(issued.key, key);
  return { dir, cert, key };
}

/** The SHA-256 fingerprint of the certificate a new TLS connection to the port is given. */
async function servedFingerprint(port: number): Promise<string> {
  const socket = tls.connect({ host: '127.0.0.1', port, ca: cli.ca });
  try {
    await once(socket, 'secureConnect');
    const cert = socket.getPeerX509Certificate();
    assert.ok(cert, 'the server sent no certificate');
    return cert.fingerprint256;
  } finally {
    socket.destroy();
  }
}

/** Sends raw bytes on a fresh plain connection and resolves with everything received before the close. */
async function rawExchange(port: number, request: Buffer | string): Promise<Buffer> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  // Not end(): the proxy's sockets are not half-open, so our FIN would end its side before it answers.
  socket.write(request);
  return readAll(socket).catch(() => Buffer.alloc(0));
}

/** A GET over TLS (trusting the test CA); resolves with the whole response. */
async function httpsGet(port: number, pathname: string): Promise<string> {
  const socket = tls.connect({ host: '127.0.0.1', port, ca: cli.ca });
  await once(socket, 'secureConnect');
  socket.write(`GET ${pathname} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
  return (await readAll(socket)).toString();
}

test('wss and ws, https and http, and the Flash policy answer, all on one port', async () => {
  const web = fs.mkdtempSync(path.join(cli.pki.dir, 'web-'));
  fs.writeFileSync(path.join(web, 'hello.txt'), 'hello from the web dir\n');
  const p = await proxy(['--cert', cli.server.cert, '--key', cli.server.key, '--web', web]);
  try {
    assert.equal(p.events().find((e) => e.event === 'listening')?.tls, 'on');

    const secure = await openClient(`wss://127.0.0.1:${p.port}/`, undefined, { ca: cli.ca });
    const plain = await openClient(`ws://127.0.0.1:${p.port}/`);
    // Both at once: neither connection is the other's stage.
    assert.equal(await echoed(secure, 'over TLS'), 'over TLS');
    assert.equal(await echoed(plain, 'in the clear'), 'in the clear');
    secure.close();
    plain.close();
    // A client that does not check the certificate gets through too (as browsers after an exception).
    const lax = await openClient(`wss://127.0.0.1:${p.port}/`, undefined, { rejectUnauthorized: false });
    assert.equal(await echoed(lax, 'unchecked'), 'unchecked');
    lax.close();

    const https = await httpsGet(p.port!, '/hello.txt');
    assert.match(https, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(https, /\r\n\r\nhello from the web dir\n$/);
    const http = (await rawExchange(p.port!, 'GET /hello.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n')).toString();
    assert.match(http, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(http, /\r\n\r\nhello from the web dir\n$/);

    const policy = await rawExchange(p.port!, Buffer.concat([FLASH_POLICY_REQUEST, Buffer.from([0])]));
    assert.deepEqual(policy, FLASH_POLICY_RESPONSE);
    await p.waitForEvent((e) => e.event === 'flash-policy');
    await p.waitForEvent((e) => e.event === 'web' && e.status === 200);
  } finally {
    await stop(p);
  }
});

test('without --cert and no self.pem in the working directory, TLS is off and the listening line says so; a self.pem there turns it on', async () => {
  const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'wsfy-cwd-'));
  const previous = process.cwd();
  // The CLI resolves self.pem against its working directory, which it inherits from this process.
  process.chdir(cwd);
  try {
    const off = await proxy([]);
    const listening = off.events().find((e) => e.event === 'listening')!;
    assert.equal(listening.tls, 'off');
    assert.match(String(listening.msg), /no TLS certificate at .*self\.pem/);
    // A TLS hello is not claimed by anything: the HTTP stage sees garbage and the handshake fails.
    const failed = tls.connect({ host: '127.0.0.1', port: off.port!, ca: cli.ca });
    const [err] = (await once(failed, 'error')) as [Error];
    assert.ok(err);
    failed.destroy();
    const plain = await openClient(off.url);
    assert.equal(await echoed(plain, 'plain still works'), 'plain still works');
    plain.close();
    await stop(off);

    const selfSigned = cli.pki.selfSigned('self');
    fs.copyFileSync(selfSigned.file, path.join(cwd, 'self.pem'));
    const on = await proxy([]);
    assert.equal(on.events().find((e) => e.event === 'listening')?.tls, 'on');
    const secure = await openClient(`wss://127.0.0.1:${on.port}/`, undefined, { rejectUnauthorized: false });
    assert.equal(await echoed(secure, 'self.pem'), 'self.pem');
    secure.close();
    await stop(on);
  } finally {
    process.chdir(previous);
    fs.rmSync(cwd, { recursive: true, force: true });
  }
});

test('a certificate or key named on the command line must exist: exit 1 with one line', async () => {
  const missing = path.join(cli.pki.dir, 'missing.pem');
  const cert = await runCli(['--cert', missing, '127.0.0.1:0', '127.0.0.1:5900']);
  assert.equal(cert.code, 1, cert.stderr);
  assert.match(cert.stderr, /^websockify: [^\n]+\n$/);
  assert.match(cert.stderr, /certificate file .*missing\.pem: no such file/);

  const key = await runCli(['--cert', cli.server.cert, '--key', missing, '127.0.0.1:0', '127.0.0.1:5900']);
  assert.equal(key.code, 1, key.stderr);
  assert.match(key.stderr, /^websockify: [^\n]+\n$/);
  assert.match(key.stderr, /key file .*missing\.pem: no such file/);

  // A key that is not the certificate's.
  const other = cli.pki.issue('other', cli.pki.ca);
  const mismatch = await runCli(['--cert', cli.server.cert, '--key', other.key, '127.0.0.1:0', '127.0.0.1:5900']);
  assert.equal(mismatch.code, 1, mismatch.stderr);
  assert.match(mismatch.stderr, /^websockify: [^\n]+does not belong to the certificate\n$/);
});

test('--ssl-only without a certificate: exit 1 with one line', async () => {
  const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'wsfy-cwd-'));
  const previous = process.cwd();
  process.chdir(cwd);
  try {
    const result = await runCli(['--ssl-only', '127.0.0.1:0', '127.0.0.1:5900']);
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr, /^websockify: --ssl-only: [^\n]*self\.pem not found\n$/);
  } finally {
    process.chdir(previous);
    fs.rmSync(cwd, { recursive: true, force: true });
  }
});

test('--ssl-only: plain ws is closed unanswered and logged, wss works', async () => {
  const p = await proxy(['--ssl-only', '--cert', cli.server.cert, '--key', cli.server.key]);
  try {
    assert.equal(p.events().find((e) => e.event === 'listening')?.tls, 'only');
    await assert.rejects(openClient(p.url), /socket hang up|ECONNRESET/);
    await p.waitForEvent((e) => e.event === 'refused' && /--ssl-only/.test(String(e.reason)));
    // Nothing at all comes back: not even an HTTP error.
    assert.equal((await rawExchange(p.port!, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n')).length, 0);
    // The Flash policy request is plain too.
    assert.equal((await rawExchange(p.port!, FLASH_POLICY_REQUEST)).length, 0);

    const secure = await openClient(`wss://127.0.0.1:${p.port}/`, undefined, { ca: cli.ca });
    assert.equal(await echoed(secure, 'TLS only'), 'TLS only');
    secure.close();
  } finally {
    await stop(p);
  }
});

test('--verify-client --cafile: no certificate or one from another CA is refused; one from the CA gets through', async () => {
  const good = cli.pki.issue('client-good', cli.pki.ca, { usage: 'clientAuth' });
  const stranger = cli.pki.issue('client-stranger', cli.pki.otherCa, { usage: 'clientAuth' });
  const p = await proxy(cli.verifyClientArgs);
  try {
    await assert.rejects(openClient(`wss://127.0.0.1:${p.port}/`, undefined, { ca: cli.ca }));
    await p.waitForEvent((e) => e.event === 'tls-failed' && e.reason === 'no client certificate');

    await assert.rejects(openClient(`wss://127.0.0.1:${p.port}/`, undefined, cli.clientTls(stranger)));
    await p.waitForEvent((e) => e.event === 'tls-failed' && /client certificate not trusted/.test(String(e.reason)));

    const ws = await openClient(`wss://127.0.0.1:${p.port}/`, undefined, cli.clientTls(good));
    assert.equal(await echoed(ws, 'trusted client'), 'trusted client');
    ws.close();

    // As in Python websockify, plain connections are not checked: the start-up warning says so.
    const warning = p.events().find((e) => e.event === 'verify-client-plain');
    assert.equal(warning?.level, 40);
    assert.match(String(warning?.msg), /--ssl-only/);
    const plain = await openClient(p.url);
    assert.equal(await echoed(plain, 'plain, unchecked'), 'plain, unchecked');
    plain.close();
  } finally {
    await stop(p);
  }
});

test('--verify-client with --ssl-only: no warning, plain refused, a certified client gets through', async () => {
  const good = cli.pki.issue('client-only', cli.pki.ca, { usage: 'clientAuth' });
  const p = await proxy(['--ssl-only', ...cli.verifyClientArgs]);
  try {
    assert.equal(
      p.events().some((e) => e.event === 'verify-client-plain'),
      false,
    );
    await assert.rejects(openClient(p.url));
    const ws = await openClient(`wss://127.0.0.1:${p.port}/`, undefined, cli.clientTls(good));
    assert.equal(await echoed(ws, 'certified'), 'certified');
    ws.close();
  } finally {
    await stop(p);
  }
});

test('--key-password opens an encrypted key; a wrong one is exit 1 with a hint', async () => {
  const locked = cli.pki.issue('server-locked', cli.pki.ca, { password: 'open sesame' });
  assert.match(fs.readFileSync(locked.key, 'utf8'), /ENCRYPTED/);
  const p = await proxy(['--cert', locked.cert, '--key', locked.key, '--key-password', 'open sesame']);
  try {
    assert.equal(await servedFingerprint(p.port!), locked.fingerprint);
  } finally {
    await stop(p);
  }
  for (const extra of [['--key-password', 'wrong'], []]) {
    const result = await runCli(['--cert', locked.cert, '--key', locked.key, ...extra, '127.0.0.1:0', '127.0.0.1:5900']);
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr, /^websockify: [^\n]*wrong or missing key password \(--key-password or --key-password-file\)\n$/);
  }
});

test('--ssl-version tlsv1_3 refuses a TLS 1.2 client; --ssl-ciphers with no usable cipher is exit 1', async () => {
  const p = await proxy(['--cert', cli.server.cert, '--key', cli.server.key, '--ssl-version', 'tlsv1_3']);
  try {
    const old = tls.connect({ host: '127.0.0.1', port: p.port!, ca: cli.ca, maxVersion: 'TLSv1.2' });
    await once(old, 'error');
    old.destroy();
    await p.waitForEvent((e) => e.event === 'tls-failed' && /unsupported protocol|version/i.test(String(e.reason)));
    const current = tls.connect({ host: '127.0.0.1', port: p.port!, ca: cli.ca });
    await once(current, 'secureConnect');
    assert.equal(current.getProtocol(), 'TLSv1.3');
    current.destroy();
  } finally {
    await stop(p);
  }
  const ciphers = await runCli([
    '--cert',
    cli.server.cert,
    '--key',
    cli.server.key,
    '--ssl-ciphers',
    'NO-SUCH-CIPHER',
    '127.0.0.1:0',
    '127.0.0.1:5900',
  ]);
  assert.equal(ciphers.code, 1, ciphers.stderr);
  assert.match(ciphers.stderr, /^websockify: [^\n]*no usable cipher in --ssl-ciphers\n$/);
});

test('replacing the certificate and key on disk (atomic renames): new connections get the new one, an open session keeps echoing', async () => {
  const files = certDir(cli.server);
  const p = await proxy(['--cert', files.cert, '--key', files.key]);
  try {
    const old = await openClient(`wss://127.0.0.1:${p.port}/`, undefined, { ca: cli.ca });
    assert.equal(await echoed(old, 'before'), 'before');
    assert.equal(await servedFingerprint(p.port!), cli.server.fingerprint);

    const renewed = cli.pki.issue('server-renewed', cli.pki.ca);
    replaceAtomically(files.key, fs.readFileSync(renewed.key));
    replaceAtomically(files.cert, fs.readFileSync(renewed.cert));
    await p.waitForEvent((e) => e.event === 'tls-reloaded');

    assert.equal(await servedFingerprint(p.port!), renewed.fingerprint);
    assert.equal(await echoed(old, 'after the reload'), 'after the reload');
    const fresh = await openClient(`wss://127.0.0.1:${p.port}/`, undefined, { ca: cli.ca });
    assert.equal(await echoed(fresh, 'new session'), 'new session');
    old.close();
    fresh.close();
  } finally {
    await stop(p);
  }
});

test('SIGHUP reloads files the watcher cannot see change (behind a symbolic link to another directory)', async () => {
  // The proxy watches the directory holding the names it was given; the content lives elsewhere.
  const real = certDir(cli.server);
  const linked = fs.mkdtempSync(path.join(cli.pki.dir, 'linked-'));
  const cert = path.join(linked, 'cert.pem');
  const key = path.join(linked, 'key.pem');
  fs.symlinkSync(real.cert, cert);
  fs.symlinkSync(real.key, key);
  const p = await proxy(['--cert', cert, '--key', key]);
  try {
    const old = await openClient(`wss://127.0.0.1:${p.port}/`, undefined, { ca: cli.ca });
    const renewed = cli.pki.issue('server-hup', cli.pki.ca);
    // Rewritten in place, key first: each write alone would leave a mismatched pair.
    fs.writeFileSync(real.key, fs.readFileSync(renewed.key));
    fs.writeFileSync(real.cert, fs.readFileSync(renewed.cert));
    // Longer than the watcher's debounce: had it seen the writes, it would have reloaded by now.
    await new Promise((resolve) => setTimeout(resolve, 600));
    assert.equal(await servedFingerprint(p.port!), cli.server.fingerprint, 'the watcher saw the change: this test no longer tests SIGHUP');
    assert.equal(
      p.events().some((e) => e.event === 'tls-reloaded'),
      false,
    );

    p.proc.kill('SIGHUP');
    const reloaded = await p.waitForEvent((e) => e.event === 'tls-reloaded');
    assert.equal(reloaded.cause, 'SIGHUP');
    assert.equal(await servedFingerprint(p.port!), renewed.fingerprint);
    assert.equal(await echoed(old, 'still here'), 'still here');
    old.close();
    // A second SIGHUP with nothing changed changes nothing and keeps the proxy running.
    p.proc.kill('SIGHUP');
    assert.equal(await servedFingerprint(p.port!), renewed.fingerprint);
    assert.equal(p.proc.exitCode, null);
  } finally {
    await stop(p);
  }
});

test('a Kubernetes-style secret rotation (..data link swapped by rename) is picked up without SIGHUP', async () => {
  // The layout kubelet writes: cert.pem -> ..data/cert.pem, ..data -> ..<timestamp>/, swapped by renaming a new link over ..data.
  const mount = fs.mkdtempSync(path.join(cli.pki.dir, 'secret-'));
  const writeVersion = (name: string, issued: Issued): void => {
    fs.mkdirSync(path.join(mount, name));
    fs.copyFileSync(issued.cert, path.join(mount, name, 'cert.pem'));
    fs.copyFileSync(issued.key, path.join(mount, name, 'key.pem'));
  };
  writeVersion('..v1', cli.server);
  fs.symlinkSync('..v1', path.join(mount, '..data'));
  fs.symlinkSync('..data/cert.pem', path.join(mount, 'cert.pem'));
  fs.symlinkSync('..data/key.pem', path.join(mount, 'key.pem'));
  const p = await proxy(['--cert', path.join(mount, 'cert.pem'), '--key', path.join(mount, 'key.pem')]);
  try {
    assert.equal(await servedFingerprint(p.port!), cli.server.fingerprint);
    const renewed = cli.pki.issue('server-rotated', cli.pki.ca);
    writeVersion('..v2', renewed);
    fs.symlinkSync('..v2', path.join(mount, '..data_tmp'));
    fs.renameSync(path.join(mount, '..data_tmp'), path.join(mount, '..data'));
    await p.waitForEvent((e) => e.event === 'tls-reloaded');
    assert.equal(await servedFingerprint(p.port!), renewed.fingerprint);
  } finally {
    await stop(p);
  }
});

test('SIGHUP without TLS is harmless', async () => {
  const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'wsfy-cwd-'));
  const previous = process.cwd();
  process.chdir(cwd);
  try {
    const p = await proxy([]);
    try {
      p.proc.kill('SIGHUP');
      await p.waitForEvent((e) => e.event === 'tls-reload-skipped' && e.cause === 'SIGHUP');
      const ws = await openClient(p.url);
      assert.equal(await echoed(ws, 'after SIGHUP'), 'after SIGHUP');
      ws.close();
      assert.equal(p.proc.exitCode, null);
    } finally {
      await stop(p);
    }
  } finally {
    process.chdir(previous);
    fs.rmSync(cwd, { recursive: true, force: true });
  }
});

test('a broken replacement is logged and the old certificate stays in use (file change and SIGHUP)', async () => {
  const files = certDir(cli.server);
  const p = await proxy(['--cert', files.cert, '--key', files.key]);
  try {
    replaceAtomically(files.cert, 'this is not a certificate\n');
    const failed = await p.waitForEvent((e) => e.event === 'tls-reload-failed');
    assert.match(String(failed.reason), /no PEM certificate/);
    assert.equal(await servedFingerprint(p.port!), cli.server.fingerprint);

    // A certificate whose key is not the one on disk.
    const other = cli.pki.issue('server-mismatch', cli.pki.ca);
    replaceAtomically(files.cert, fs.readFileSync(other.cert));
    await p.waitForEvent((e) => e.event === 'tls-reload-failed' && /does not belong/.test(String(e.reason)));
    p.proc.kill('SIGHUP');
    await p.waitForEvent((e) => e.event === 'tls-reload-failed' && e.cause === 'SIGHUP');
    assert.equal(await servedFingerprint(p.port!), cli.server.fingerprint);
    const ws = await openClient(`wss://127.0.0.1:${p.port}/`, undefined, { ca: cli.ca });
    assert.equal(await echoed(ws, 'old certificate'), 'old certificate');
    ws.close();
    assert.equal(
      p.events().some((e) => e.event === 'tls-reloaded'),
      false,
    );
  } finally {
    await stop(p);
  }
});
