import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { cliFixture } from '../helpers/cli-fixture.js';
import { runCli } from '../helpers/proxy.js';
import { readAll } from '../helpers/targets.js';
import { openClient } from '../helpers/ws-client.js';

/** Large enough to outlast the loopback socket buffers, so the server is still sending while the client dawdles. */
const BIG = 16 * 1024 * 1024;

let root: string;
let bigHash: string;
const cli = cliFixture('web-cli', { before: makeWebRoot });
const { proxy, stop } = cli;

/** The web root and a secret beside it, in the scratch directory. */
function makeWebRoot(): void {
  root = path.join(cli.scratch, 'www');
  fs.mkdirSync(path.join(root, 'app'), { recursive: true });
  fs.mkdirSync(path.join(root, 'files'));
  fs.writeFileSync(path.join(root, 'hello.txt'), 'hello from the web dir\n');
  fs.writeFileSync(path.join(root, 'app', 'index.html'), '<title>the app</title>\n');
  fs.writeFileSync(path.join(root, 'files', 'first.txt'), '1\n');
  fs.writeFileSync(path.join(root, 'files', 'second.txt'), '2\n');
  // Beside the web root, not in it: no request may reach it.
  fs.writeFileSync(path.join(cli.scratch, 'secret.txt'), 'TOP SECRET\n');
  const big = randomBytes(BIG);
  fs.writeFileSync(path.join(root, 'big.bin'), big);
  bigHash = createHash('sha256').update(big).digest('hex');
}

/** A response as the client saw it. */
interface Response {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request through node:http (no keep-alive), body read whole. */
async function request(port: number, urlPath: string, method = 'GET'): Promise<Response> {
  const req = http.request({ host: '127.0.0.1', port, path: urlPath, method, agent: false });
  req.end();
  const [res] = (await once(req, 'response')) as [http.IncomingMessage];
  let body = '';
  res.setEncoding('utf8').on('data', (text: string) => (body += text));
  await once(res, 'end');
  return { status: res.statusCode!, headers: res.headers, body };
}

/** A request line sent byte for byte (clients normalise `..` away); resolves with the raw response. */
async function rawGet(port: number, target: string): Promise<string> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  socket.write(`GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
  return (await readAll(socket).catch(() => Buffer.alloc(0))).toString();
}

/**
 * Downloads a response body while reading slowly: nothing at all for `stallMs`, then a pause after every
 * MiB. Resolves with the status, the byte count and the body's SHA-256.
 */
async function slowDownload(res: http.IncomingMessage, stallMs: number): Promise<{ status: number; bytes: number; hash: string }> {
  res.pause();
  await new Promise((resolve) => setTimeout(resolve, stallMs));
  const hash = createHash('sha256');
  let bytes = 0;
  let nextPause = 1024 * 1024;
  res.on('data', (chunk: Buffer) => {
    hash.update(chunk);
    bytes += chunk.length;
    if (bytes < nextPause) return;
    nextPause += 1024 * 1024;
    res.pause();
    setTimeout(() => res.resume(), 50);
  });
  res.resume();
  await new Promise<void>((resolve, reject) => {
    res.once('end', resolve);
    res.once('error', reject);
    res.once('aborted', () => reject(new Error('the download was cut')));
  });
  return { status: res.statusCode!, bytes, hash: hash.digest('hex') };
}

test('--web: a file, a directory index, a listing, a redirect to the slash; HEAD; WebSockets still proxied', async () => {
  const p = await proxy(['--web', root]);
  try {
    const file = await request(p.port!, '/hello.txt');
    assert.equal(file.status, 200);
    assert.match(String(file.headers['content-type']), /^text\/plain/);
    assert.equal(file.body, 'hello from the web dir\n');

    const index = await request(p.port!, '/app/');
    assert.equal(index.status, 200);
    assert.match(String(index.headers['content-type']), /^text\/html/);
    assert.equal(index.body, '<title>the app</title>\n');

    const redirect = await request(p.port!, '/app');
    assert.equal(redirect.status, 301);
    assert.equal(redirect.headers.location, '/app/');

    const listing = await request(p.port!, '/files/');
    assert.equal(listing.status, 200);
    assert.match(listing.body, /first\.txt/);
    assert.match(listing.body, /second\.txt/);
    const top = await request(p.port!, '/');
    assert.equal(top.status, 200);
    assert.match(top.body, /hello\.txt/);

    const head = await request(p.port!, '/hello.txt', 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], String('hello from the web dir\n'.length));
    assert.equal(head.body, '');

    assert.equal((await request(p.port!, '/nothing-here')).status, 404);

    const ws = await openClient(`${p.url}/app/`);
    const reply = once(ws, 'message');
    ws.send(Buffer.from('beside the web server'));
    assert.equal(String(((await reply) as [Buffer])[0]), 'beside the web server');
    ws.close();

    const logged = await p.waitForEvent((e) => e.event === 'web' && e.path === '/hello.txt');
    assert.equal(logged.status, 200);
  } finally {
    await stop(p);
  }
});

test('--web: traversal out of the root is refused, POST is 405', async () => {
  const p = await proxy(['--web', root]);
  try {
    for (const target of [
      '/../secret.txt',
      '/%2e%2e/secret.txt',
      '/files/..%2f..%2fsecret.txt',
      '/files/%2e%2e/%2e%2e/secret.txt',
      '..%2fsecret.txt',
    ]) {
      const response = await rawGet(p.port!, target);
      assert.match(response, /^HTTP\/1\.1 (400|403|404) /, `${target}: ${response.split('\r\n')[0]}`);
      assert.doesNotMatch(response, /TOP SECRET/, target);
    }
    // A symbolic link inside the root that leads out of it.
    fs.symlinkSync(path.join(cli.scratch, 'secret.txt'), path.join(root, 'leak.txt'));
    const leak = await rawGet(p.port!, '/leak.txt');
    assert.match(leak, /^HTTP\/1\.1 403 /);
    assert.doesNotMatch(leak, /TOP SECRET/);
    // The root really is served, so the refusals above mean something.
    assert.match(await rawGet(p.port!, '/files/first.txt'), /^HTTP\/1\.1 200 OK[\s\S]*\r\n\r\n1\n$/);

    const post = await request(p.port!, '/hello.txt', 'POST');
    assert.equal(post.status, 405);
    assert.match(String(post.headers.allow), /GET/);
    assert.ok(p.proc.exitCode === null, 'the proxy is still running');
  } finally {
    fs.rmSync(path.join(root, 'leak.txt'), { force: true });
    await stop(p);
  }
});

test('--web --file-only: no listings, files and indexes still served', async () => {
  const p = await proxy(['--web', root, '--file-only']);
  try {
    const listing = await request(p.port!, '/files/');
    assert.equal(listing.status, 404);
    assert.doesNotMatch(listing.body, /first\.txt/);
    assert.equal((await request(p.port!, '/')).status, 404);
    assert.equal((await request(p.port!, '/files/first.txt')).body, '1\n');
    assert.equal((await request(p.port!, '/app/')).status, 200);
  } finally {
    await stop(p);
  }
});

test('a long download to a slow reader outlasts --handshake-timeout, over http and https', async () => {
  const p = await proxy(['--web', root, '--handshake-timeout', '1', '--cert', cli.server.cert, '--key', cli.server.key]);
  try {
    const plainReq = http.get({ host: '127.0.0.1', port: p.port!, path: '/big.bin', agent: false });
    const [plainRes] = (await once(plainReq, 'response')) as [http.IncomingMessage];
    const plain = await slowDownload(plainRes, 1500);
    assert.deepEqual(plain, { status: 200, bytes: BIG, hash: bigHash });

    const secureReq = https.get({ host: '127.0.0.1', port: p.port!, path: '/big.bin', ca: cli.ca, agent: false });
    const [secureRes] = (await once(secureReq, 'response')) as [http.IncomingMessage];
    const secure = await slowDownload(secureRes, 1500);
    assert.deepEqual(secure, { status: 200, bytes: BIG, hash: bigHash });

    const logged = p.events().filter((e) => e.event === 'web' && e.path === '/big.bin');
    assert.equal(logged.length, 2);
    for (const line of logged) assert.equal(line.aborted, undefined);
    assert.equal(
      p.events().some((e) => e.reason === 'handshake timeout'),
      false,
    );
  } finally {
    await stop(p);
  }
});

test('without --web, plain HTTP requests get 405', async () => {
  const p = await proxy([]);
  try {
    const get = await request(p.port!, '/hello.txt');
    assert.equal(get.status, 405);
    assert.match(get.body, /proxies WebSocket connections/);
    assert.equal((await request(p.port!, '/', 'POST')).status, 405);
    await p.waitForEvent((e) => e.event === 'refused' && e.status === 405);
  } finally {
    await stop(p);
  }
});

test('--web usage and start-up errors', async () => {
  const missing = await runCli(['--web', path.join(cli.scratch, 'no-such-dir'), '127.0.0.1:0', '127.0.0.1:5900']);
  assert.equal(missing.code, 1, missing.stderr);
  assert.match(missing.stderr, /^websockify: --web [^\n]*no-such-dir: not a readable directory[^\n]*\n$/);

  const notDir = await runCli(['--web', path.join(root, 'hello.txt'), '127.0.0.1:0', '127.0.0.1:5900']);
  assert.equal(notDir.code, 1, notDir.stderr);
  assert.match(notDir.stderr, /not a readable directory/);

  const fileOnly = await runCli(['--file-only', '127.0.0.1:0', '127.0.0.1:5900']);
  assert.equal(fileOnly.code, 2);
  assert.match(fileOnly.stderr, /--file-only needs --web/);
});

test('a client that sends its request and then its FIN still gets the answer (as with `nc -N`)', async () => {
  const p = await proxy(['--web', root]);
  try {
    const socket = net.connect(p.port!, '127.0.0.1');
    await once(socket, 'connect');
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.end('GET /hello.txt HTTP/1.0\r\n\r\n');
    await once(socket, 'close');
    const answer = Buffer.concat(chunks).toString();
    assert.match(answer, /^HTTP\/1\.1 200 OK\r\n/);
    assert.ok(answer.endsWith(fs.readFileSync(path.join(root, 'hello.txt'), 'utf8')), 'the whole file arrives');
  } finally {
    await stop(p);
  }
});
