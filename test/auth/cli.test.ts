import assert from 'node:assert/strict';
import { once } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { test } from 'node:test';
import { type ClientOptions, WebSocket } from 'ws';
import { cliFixture } from '../helpers/cli-fixture.js';
import { runCli } from '../helpers/proxy.js';

const cli = cliFixture('auth-cli');
const { proxy, stop } = cli;

/** How a handshake ended: 101 with a message echoed through, or the refusal's status and headers. */
interface Outcome {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** What came back for the message sent after a 101. */
  echoed?: string;
}

/** Opens a WebSocket with `options`; after a 101 sends a message and waits for the echo, then closes. */
async function handshake(url: string, options: ClientOptions = {}): Promise<Outcome> {
  const ws = new WebSocket(url, { perMessageDeflate: false, ...options });
  ws.on('error', () => undefined);
  const outcome = await new Promise<Outcome>((resolve, reject) => {
    // 'open' follows 'upgrade' in the same tick: waiting for it after 'upgrade' would wait forever.
    let upgraded: http.IncomingMessage | undefined;
    ws.once('upgrade', (res) => (upgraded = res));
    ws.once('open', () => resolve({ status: upgraded!.statusCode!, headers: upgraded!.headers }));
    ws.once('unexpected-response', (_req, res) => {
      resolve({ status: res.statusCode!, headers: res.headers });
      res.resume();
    });
    ws.once('error', reject);
  });
  if (outcome.status === 101) {
    const reply = once(ws, 'message');
    ws.send(Buffer.from('through'));
    outcome.echoed = String(((await reply) as [Buffer])[0]);
    ws.close();
  } else {
    ws.terminate();
  }
  return outcome;
}

function basic(credentials: string): Record<string, string> {
  return { Authorization: `Basic ${Buffer.from(credentials).toString('base64')}` };
}

test('BasicHTTPAuth: 401 with the challenge without or with wrong credentials, 101 with the right ones', async () => {
  const p = await proxy(['--auth-plugin', 'BasicHTTPAuth', '--auth-source', 'alice:s3cret']);
  try {
    const none = await handshake(p.url);
    assert.equal(none.status, 401);
    assert.equal(none.headers['www-authenticate'], 'Basic realm="Websockify", charset="UTF-8"');
    const wrong = await handshake(p.url, { headers: basic('alice:guess') });
    assert.equal(wrong.status, 401);
    assert.match(String(wrong.headers['www-authenticate']), /^Basic realm=/);
    const right = await handshake(p.url, { headers: basic('alice:s3cret') });
    assert.equal(right.status, 101);
    assert.equal(right.echoed, 'through');
    // Each refusal is logged, and the password is not.
    await p.waitForEvent((e) => e.event === 'refused' && e.status === 401 && /wrong user name or password/.test(String(e.reason)));
    assert.equal(p.stderr().includes('guess'), false);
  } finally {
    await stop(p);
  }
});

test('ExpectOrigin: 403 without an Origin or with another, 101 from a listed one', async () => {
  const p = await proxy(['--auth-plugin', 'ExpectOrigin', '--auth-source', 'https://desk.example.com https://other.example.com']);
  try {
    assert.equal((await handshake(p.url)).status, 403);
    assert.equal((await handshake(p.url, { origin: 'https://evil.example.com' })).status, 403);
    const listed = await handshake(p.url, { origin: 'https://desk.example.com' });
    assert.equal(listed.status, 101);
    assert.equal(listed.echoed, 'through');
    await p.waitForEvent((e) => e.event === 'refused' && e.status === 403 && String(e.reason).includes('https://evil.example.com'));
  } finally {
    await stop(p);
  }
});

test("ClientCertCNAuth: the TLS-verified certificate's CN decides; an SSL_CLIENT_S_DN_CN header does not impersonate one", async () => {
  const allowed = cli.pki.issue('desk-allowed', cli.pki.ca, { usage: 'clientAuth' });
  const other = cli.pki.issue('desk-other', cli.pki.ca, { usage: 'clientAuth' });
  const p = await proxy([...cli.verifyClientArgs, '--auth-plugin', 'ClientCertCNAuth', '--auth-source', 'desk-allowed admin']);
  const wss = `wss://127.0.0.1:${p.port}/`;
  try {
    const good = await handshake(wss, cli.clientTls(allowed));
    assert.equal(good.status, 101);
    assert.equal(good.echoed, 'through');
    assert.equal((await handshake(wss, cli.clientTls(other))).status, 403);
    await p.waitForEvent((e) => e.event === 'refused' && e.status === 403 && String(e.reason).includes("'desk-other'"));
    // Python websockify trusts this header when no certificate came with the connection; here it is ignored.
    const forged = { headers: { SSL_CLIENT_S_DN_CN: 'desk-allowed' } };
    assert.equal((await handshake(p.url, forged)).status, 403);
    assert.equal((await handshake(wss, { ...cli.clientTls(other), ...forged })).status, 403);
  } finally {
    await stop(p);
  }
});

test('--web-auth: web requests need the credentials too (401 with the challenge, then 200)', async () => {
  const root = path.join(cli.scratch, 'www');
  fs.mkdirSync(root, { recursive: true });
  fs.writeFileSync(path.join(root, 'hello.txt'), 'members only\n');
  const get = async (
    port: number,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> => {
    const req = http.request({ host: '127.0.0.1', port, path: '/hello.txt', agent: false, headers });
    req.end();
    const [res] = (await once(req, 'response')) as [http.IncomingMessage];
    let body = '';
    res.setEncoding('utf8').on('data', (text: string) => (body += text));
    await once(res, 'end');
    return { status: res.statusCode!, headers: res.headers, body };
  };
  const p = await proxy(['--web', root, '--web-auth', '--auth-plugin', 'BasicHTTPAuth', '--auth-source', 'alice:s3cret']);
  try {
    const none = await get(p.port!);
    assert.equal(none.status, 401);
    assert.match(String(none.headers['www-authenticate']), /^Basic realm="Websockify"/);
    assert.equal(none.body.includes('members only'), false);
    assert.equal((await get(p.port!, basic('alice:nope'))).status, 401);
    const right = await get(p.port!, basic('alice:s3cret'));
    assert.equal(right.status, 200);
    assert.equal(right.body, 'members only\n');
    await p.waitForEvent((e) => e.event === 'refused' && e.status === 401 && e.path === '/hello.txt');
    // WebSocket handshakes are checked as before.
    assert.equal((await handshake(p.url)).status, 401);
  } finally {
    await stop(p);
  }
  // Without --web-auth the plugin guards the WebSocket only, as in Python websockify.
  const open = await proxy(['--web', root, '--auth-plugin', 'BasicHTTPAuth', '--auth-source', 'alice:s3cret']);
  try {
    assert.equal((await get(open.port!)).status, 200);
    assert.equal((await handshake(open.url)).status, 401);
  } finally {
    await stop(open);
  }
});

test('a custom auth plugin module loaded from a path, given --auth-source; its refusals are answered and logged', async () => {
  const file = path.join(cli.scratch, 'ticket-auth.mjs');
  fs.writeFileSync(
    file,
    `export default function createTicketAuth(source, { logger }) {
      logger.info({ event: 'ticket-auth-ready' }, 'ticket auth ready');
      return {
        authenticate(request) {
          if (new URL(request.url, 'http://x').searchParams.get('ticket') === source) return;
          throw Object.assign(new Error('no valid ticket'), { status: 403 });
        },
      };
    }\n`,
  );
  const p = await proxy(['--auth-plugin', file, '--auth-source', 'T-42']);
  try {
    assert.ok(p.events().some((e) => e.event === 'ticket-auth-ready'));
    assert.equal((await handshake(`${p.url}/?ticket=T-41`)).status, 403);
    await p.waitForEvent((e) => e.event === 'refused' && e.status === 403 && e.reason === 'no valid ticket');
    const good = await handshake(`${p.url}/?ticket=T-42`);
    assert.equal(good.status, 101);
    assert.equal(good.echoed, 'through');
  } finally {
    await stop(p);
  }
});

test("usage and start-up errors: each option's requirements, unknown plugins, bad sources and modules", async () => {
  const target = ['127.0.0.1:0', '127.0.0.1:5900'];
  const usage: Array<[string[], RegExp]> = [
    [['--auth-source', 'a:b'], /--auth-source needs --auth-plugin/],
    [['--web-auth', '--web', cli.scratch], /--web-auth needs --auth-plugin/],
    [['--web-auth', '--auth-plugin', 'BasicHTTPAuth', '--auth-source', 'a:b'], /--web-auth needs --web/],
    [['--auth-plugin', 'ClientCertCNAuth', '--auth-source', 'desk'], /ClientCertCNAuth needs --verify-client/],
    [['--auth-plugin', 'NoSuchPlugin'], /unknown plugin 'NoSuchPlugin'/],
  ];
  for (const [args, message] of usage) {
    const result = await runCli([...args, ...target]);
    assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
    assert.match(result.stderr, message);
  }
  const broken = path.join(cli.scratch, 'broken-auth.mjs');
  fs.writeFileSync(broken, 'export default 42;\n');
  const startup: Array<[string[], RegExp]> = [
    [
      ['--auth-plugin', 'BasicHTTPAuth', '--auth-source', 'no-colon'],
      /^websockify: BasicHTTPAuth: --auth-source must be 'user:password'\n$/,
    ],
    [['--auth-plugin', 'ExpectOrigin'], /^websockify: ExpectOrigin: --auth-source must list the allowed origins/],
    [['--auth-plugin', broken], /default export must be a function/],
    [['--auth-plugin', path.join(cli.scratch, 'absent.mjs')], /cannot load/],
  ];
  for (const [args, message] of startup) {
    const result = await runCli([...args, ...target]);
    assert.equal(result.code, 1, `${args.join(' ')}: ${result.stderr}`);
    assert.match(result.stderr, message);
  }
});
