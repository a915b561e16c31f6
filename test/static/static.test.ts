import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { StartupError } from '../../src/errors.js';
import { createWebHandler } from '../../src/static/handler.js';
import { type CapturedLog, captureLog } from '../helpers/log-capture.js';

const SECRET = `TOP-SECRET-${randomBytes(8).toString('hex')}`;
const HELLO = 'hello world\n';
const BIG_SIZE = 32 * 1024 * 1024;

/**
 * Builds the tree served in these tests: `base/secret` lies outside the root `base/root`, which holds
 * plain files, a directory with an index, one without, and symbolic links that stay inside or lead out.
 */
function buildTree(): { base: string; root: string } {
  const base = mkdtempSync(join(tmpdir(), 'websockify-web-'));
  const root = join(base, 'root');
  writeFileSync(join(base, 'secret'), SECRET);
  mkdirSync(join(root, 'sub'), { recursive: true });
  mkdirSync(join(root, 'list', 'nested'), { recursive: true });
  mkdirSync(join(root, 'a', 'b'), { recursive: true });
  writeFileSync(join(root, 'hello.txt'), HELLO);
  writeFileSync(join(root, 'page.html'), '<p>page</p>');
  writeFileSync(join(root, 'style.css'), 'p {}');
  writeFileSync(join(root, 'blob.weird-extension'), 'x');
  writeFileSync(join(root, 'a', 'inner.txt'), 'inner');
  writeFileSync(join(root, 'sub', 'index.html'), '<h1>sub index</h1>');
  writeFileSync(join(root, 'list', 'a b.txt'), '1');
  writeFileSync(join(root, 'list', '<x>&.txt'), '2');
  writeFileSync(join(root, 'list', 'javascript:alert(1)'), '3');
  symlinkSync('hello.txt', join(root, 'link-in'));
  symlinkSync('sub', join(root, 'link-in-dir'));
  symlinkSync('..', join(root, 'link-out'));
  symlinkSync(join(base, 'secret'), join(root, 'secret-link'));
  execFileSync('mkfifo', [join(root, 'fifo')]);
  return { base, root };
}

interface Served {
  server: http.Server;
  port: number;
  log: CapturedLog;
}

async function serve(root: string, fileOnly: boolean): Promise<Served> {
  const log = captureLog();
  const server = http.createServer(createWebHandler({ root, fileOnly, logger: log.logger }));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as net.AddressInfo).port, log };
}

async function close(served: Served | undefined): Promise<void> {
  if (!served) return;
  served.server.closeAllConnections();
  await new Promise<void>((resolve) => served.server.close(() => resolve()));
}

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request through node:http (which sends the path as given). */
function request(port: number, method: string, path: string, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.setTimeout(5000, () => req.destroy(new Error(`${method} ${path}: no answer within 5 s`)));
    req.on('error', reject);
    req.end();
  });
}

/** Sends `requestLine` byte for byte over a plain socket, so no client library normalises the path. */
function rawRequest(port: number, requestLine: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.setTimeout(5000, () => socket.destroy(new Error(`${requestLine}: no answer within 5 s`)));
    socket.on('connect', () => socket.write(`${requestLine}\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`, 'latin1'));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('end', () => resolve(Buffer.concat(chunks).toString('latin1')));
    socket.on('error', reject);
  });
}

let tree: { base: string; root: string };
let web: Served;
let fileOnlyWeb: Served;
before(async () => {
  tree = buildTree();
  web = await serve(tree.root, false);
  fileOnlyWeb = await serve(tree.root, true);
});
after(async () => {
  await close(web);
  await close(fileOnlyWeb);
  rmSync(tree.base, { recursive: true, force: true });
});

describe('files', () => {
  test('a file is served with its Content-Type and length', async () => {
    const reply = await request(web.port, 'GET', '/hello.txt');
    assert.equal(reply.status, 200);
    assert.equal(reply.body, HELLO);
    assert.equal(reply.headers['content-type'], 'text/plain; charset=utf-8');
    assert.equal(reply.headers['content-length'], String(HELLO.length));
    const types: Array<[string, RegExp]> = [
      ['/page.html', /^text\/html/],
      ['/style.css', /^text\/css/],
      ['/blob.weird-extension', /^application\/octet-stream$/],
    ];
    for (const [path, type] of types) assert.match((await request(web.port, 'GET', path)).headers['content-type'] ?? '', type, path);
  });

  test('a name with spaces and a query string are handled', async () => {
    const reply = await request(web.port, 'GET', '/list/a%20b.txt?v=1');
    assert.equal(reply.status, 200);
    assert.equal(reply.body, '1');
  });

  test('a missing file is 404, and a file asked for as a directory is 404', async () => {
    assert.equal((await request(web.port, 'GET', '/nope.txt')).status, 404);
    assert.equal((await request(web.port, 'GET', '/hello.txt/')).status, 404);
  });

  test('HEAD answers the headers of GET without a body', async () => {
    const reply = await request(web.port, 'HEAD', '/hello.txt');
    assert.equal(reply.status, 200);
    assert.equal(reply.headers['content-length'], String(HELLO.length));
    assert.equal(reply.headers['content-type'], 'text/plain; charset=utf-8');
    assert.equal(reply.body, '');
    const listing = await request(web.port, 'HEAD', '/list/');
    assert.equal(listing.status, 200);
    assert.ok(Number(listing.headers['content-length']) > 0);
    assert.equal(listing.body, '');
  });

  test('symbolic links that stay inside the root are served', async () => {
    assert.equal((await request(web.port, 'GET', '/link-in')).body, HELLO);
    assert.equal((await request(web.port, 'GET', '/link-in-dir/')).body, '<h1>sub index</h1>');
  });

  test('a FIFO is refused without being opened', async () => {
    assert.equal((await request(web.port, 'GET', '/fifo')).status, 404);
  });

  test('each request is logged once with method, path and status', async () => {
    await request(web.port, 'GET', '/page.html?log-test');
    const line = await web.log.waitFor((l) => l.path === '/page.html?log-test');
    assert.equal(line.event, 'web');
    assert.equal(line.method, 'GET');
    assert.equal(line.status, 200);
    assert.equal(line.level, 30);
    assert.equal(web.log.events.filter((l) => l.path === '/page.html?log-test').length, 1);
  });
});

describe('directories', () => {
  test('a directory with index.html serves it; without the slash it redirects first', async () => {
    const index = await request(web.port, 'GET', '/sub/');
    assert.equal(index.status, 200);
    assert.equal(index.body, '<h1>sub index</h1>');
    assert.match(index.headers['content-type'] ?? '', /^text\/html/);
    const redirect = await request(web.port, 'GET', '/sub?x=1');
    assert.equal(redirect.status, 301);
    assert.equal(redirect.headers.location, '/sub/?x=1');
  });

  test('a redirect never points at another host (//host)', async () => {
    const reply = await rawRequest(web.port, 'GET //sub HTTP/1.1');
    assert.match(reply, /^HTTP\/1\.1 301/);
    assert.match(reply, /\r\nLocation: \/sub\/\r\n/);
  });

  test('a directory without index.html is listed, names escaped, links relative and percent-encoded', async () => {
    const reply = await request(web.port, 'GET', '/list/');
    assert.equal(reply.status, 200);
    assert.match(reply.headers['content-type'] ?? '', /^text\/html; charset=utf-8/);
    assert.ok(reply.body.includes('<a href="a%20b.txt">a b.txt</a>'), reply.body);
    assert.ok(reply.body.includes('<a href="%3Cx%3E%26.txt">&lt;x&gt;&amp;.txt</a>'), reply.body);
    assert.ok(reply.body.includes('<a href="javascript%3Aalert(1)">javascript:alert(1)</a>'), reply.body);
    assert.ok(reply.body.includes('<a href="nested/">nested/</a>'), reply.body);
    assert.ok(reply.body.includes('<a href="../">../</a>'), reply.body);
    assert.ok(!reply.body.includes('<x>'), 'an unescaped name would be markup');
  });

  test('the root is listed (it has no index.html), including links', async () => {
    const reply = await request(web.port, 'GET', '/');
    assert.equal(reply.status, 200);
    assert.ok(reply.body.includes('<a href="sub/">sub/</a>'), reply.body);
    assert.ok(reply.body.includes('<a href="link-in-dir/">link-in-dir/</a>'), reply.body);
    assert.ok(!reply.body.includes('href="../"'), 'no parent link at the root');
  });

  test('fileOnly: no listing (404), but index.html and files are still served', async () => {
    const listing = await request(fileOnlyWeb.port, 'GET', '/list/');
    assert.equal(listing.status, 404);
    assert.ok(!listing.body.includes('a b.txt'));
    assert.equal((await request(fileOnlyWeb.port, 'GET', '/')).status, 404);
    assert.equal((await request(fileOnlyWeb.port, 'GET', '/sub/')).body, '<h1>sub index</h1>');
    assert.equal((await request(fileOnlyWeb.port, 'GET', '/hello.txt')).body, HELLO);
  });
});

describe('ranges and conditional requests', () => {
  test('a satisfiable range is 206 with Content-Range', async () => {
    const reply = await request(web.port, 'GET', '/hello.txt', { Range: 'bytes=0-4' });
    assert.equal(reply.status, 206);
    assert.equal(reply.body, 'hello');
    assert.equal(reply.headers['content-range'], `bytes 0-4/${HELLO.length}`);
    assert.equal(reply.headers['accept-ranges'], 'bytes');
    const suffix = await request(web.port, 'GET', '/hello.txt', { Range: 'bytes=-6' });
    assert.equal(suffix.status, 206);
    assert.equal(suffix.body, 'world\n');
  });

  test('an unsatisfiable range is 416 with Content-Range bytes */size', async () => {
    const reply = await request(web.port, 'GET', '/hello.txt', { Range: 'bytes=100-200' });
    assert.equal(reply.status, 416);
    assert.equal(reply.headers['content-range'], `bytes */${HELLO.length}`);
    assert.ok(!reply.body.includes(HELLO));
  });

  test('If-None-Match with the ETag is 304', async () => {
    const first = await request(web.port, 'GET', '/hello.txt');
    const etag = first.headers.etag;
    assert.ok(etag, 'an ETag is sent');
    const again = await request(web.port, 'GET', '/hello.txt', { 'If-None-Match': etag });
    assert.equal(again.status, 304);
    assert.equal(again.body, '');
    assert.equal((await request(web.port, 'GET', '/hello.txt', { 'If-None-Match': '"other"' })).status, 200);
  });

  test('If-Modified-Since with Last-Modified is 304; an older date is 200', async () => {
    const first = await request(web.port, 'GET', '/hello.txt');
    const modified = first.headers['last-modified'];
    assert.ok(modified, 'Last-Modified is sent');
    assert.equal((await request(web.port, 'GET', '/hello.txt', { 'If-Modified-Since': modified })).status, 304);
    const older = new Date(Date.parse(modified) - 3600_000).toUTCString();
    const changed = await request(web.port, 'GET', '/hello.txt', { 'If-Modified-Since': older });
    assert.equal(changed.status, 200);
    assert.equal(changed.body, HELLO);
  });
});

describe('methods', () => {
  for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS']) {
    test(`${method} is 405 with Allow: GET, HEAD`, async () => {
      const reply = await request(web.port, method, '/hello.txt');
      assert.equal(reply.status, 405);
      assert.equal(reply.headers.allow, 'GET, HEAD');
      assert.ok(!reply.body.includes(HELLO));
    });
  }
});

describe('never a file outside the root', () => {
  const attempts = [
    'GET /../secret HTTP/1.1',
    'GET /%2e%2e/secret HTTP/1.1',
    'GET /%2E%2E/secret HTTP/1.1',
    'GET /..%2fsecret HTTP/1.1',
    'GET /..%2Fsecret HTTP/1.1',
    'GET /..%5csecret HTTP/1.1',
    'GET /a/..%2f..%2fsecret HTTP/1.1',
    'GET /a/b/../../../secret HTTP/1.1',
    'GET /a/%2e%2e/%2e%2e/secret HTTP/1.1',
    'GET //etc/passwd HTTP/1.1',
    'GET /%2fetc/passwd HTTP/1.1',
    `GET /%2f${'secret'} HTTP/1.1`,
    'GET /%00 HTTP/1.1',
    'GET /hello.txt%00.html HTTP/1.1',
    'GET /link-out/secret HTTP/1.1',
    'GET /link-out/root/../secret HTTP/1.1',
    'GET /secret-link HTTP/1.1',
    'GET /..\\secret HTTP/1.1',
    'GET /%c0%ae%c0%ae/secret HTTP/1.1',
    'GET ../secret HTTP/1.1',
    'GET http://127.0.0.1/../secret HTTP/1.1',
  ];
  for (const attempt of attempts) {
    test(`refused: ${attempt}`, async () => {
      const reply = await rawRequest(web.port, attempt);
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(reply)?.[1]);
      assert.ok([400, 403, 404].includes(status), `status ${status}:\n${reply}`);
      assert.ok(!reply.includes(SECRET), 'the secret leaked');
      assert.ok(!reply.includes('root:x:0'), '/etc/passwd leaked');
    });
  }

  test('a directory reached through a link leading out is refused, not listed', async () => {
    const reply = await request(web.port, 'GET', '/link-out/');
    assert.equal(reply.status, 403);
    assert.ok(!reply.body.includes('secret'));
  });
});

describe('failures never crash the server', () => {
  test('a client that disconnects mid-transfer is logged as aborted, and the server goes on', async () => {
    const big = join(tree.root, 'big.bin');
    writeFileSync(big, Buffer.alloc(BIG_SIZE, 0x61));
    try {
      await new Promise<void>((resolve, reject) => {
        const req = http.get({ host: '127.0.0.1', port: web.port, path: '/big.bin', agent: false }, (res) => {
          res.once('data', () => {
            req.destroy();
            resolve();
          });
        });
        req.on('error', (err) => (req.destroyed ? undefined : reject(err)));
      });
      const line = await web.log.waitFor((l) => l.path === '/big.bin');
      assert.equal(line.aborted, true);
      assert.equal((await request(web.port, 'GET', '/hello.txt')).body, HELLO);
    } finally {
      rmSync(big, { force: true });
    }
  });

  test('a client that goes away before the answer does not crash the server', async () => {
    await new Promise<void>((resolve, reject) => {
      const socket = net.connect(web.port, '127.0.0.1', () => {
        socket.end('GET /list/ HTTP/1.1\r\nHost: x\r\n\r\n');
        socket.destroy();
        resolve();
      });
      socket.on('error', reject);
    });
    await web.log.waitFor((l) => l.path === '/list/' && l.aborted === true);
    assert.equal((await request(web.port, 'GET', '/hello.txt')).body, HELLO);
  });

  test('a file truncated mid-transfer ends the response short (never a complete-looking one)', async () => {
    const big = join(tree.root, 'shrinking.bin');
    writeFileSync(big, Buffer.alloc(BIG_SIZE, 0x62));
    try {
      const { declared, received } = await new Promise<{ declared: number; received: number }>((resolve, reject) => {
        const req = http.get({ host: '127.0.0.1', port: web.port, path: '/shrinking.bin', agent: false }, (res) => {
          let received = 0;
          const done = (): void => resolve({ declared: Number(res.headers['content-length']), received });
          res.once('data', (chunk: Buffer) => {
            received += chunk.length;
            res.pause();
            truncateSync(big, 0);
            res.on('data', (more: Buffer) => (received += more.length));
            res.on('end', done);
            res.on('error', done);
            res.on('aborted', done);
            res.resume();
          });
        });
        req.setTimeout(10_000, () => req.destroy(new Error('no end within 10 s')));
        req.on('error', (err) =>
          err.message === 'aborted' || (err as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(err),
        );
      });
      assert.equal(declared, BIG_SIZE);
      assert.ok(received < declared, `received ${received} of ${declared}`);
      assert.equal((await request(web.port, 'GET', '/hello.txt')).body, HELLO);
    } finally {
      rmSync(big, { force: true });
    }
  });
});

describe('start-up', () => {
  test('a root that is missing or not a directory is a StartupError', () => {
    const { logger } = captureLog();
    assert.throws(
      () => createWebHandler({ root: join(tree.base, 'missing'), fileOnly: false, logger }),
      (err: unknown) => err instanceof StartupError && /missing/.test(err.message),
    );
    assert.throws(
      () => createWebHandler({ root: join(tree.base, 'secret'), fileOnly: false, logger }),
      (err: unknown) => err instanceof StartupError && /not a directory/.test(err.message),
    );
  });

  test('a root reached through a symbolic link is served (its real path is the root)', async () => {
    const alias = join(tree.base, 'alias');
    symlinkSync('root', alias);
    let served: Served | undefined;
    try {
      served = await serve(alias, false);
      assert.equal((await request(served.port, 'GET', '/hello.txt')).body, HELLO);
      assert.equal((await request(served.port, 'GET', '/link-in')).body, HELLO);
      assert.equal((await rawRequest(served.port, 'GET /link-out/secret HTTP/1.1')).includes(SECRET), false);
    } finally {
      await close(served);
      rmSync(alias, { force: true });
    }
  });
});
