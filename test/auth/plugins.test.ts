import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { createBasicHttpAuth } from '../../src/auth/basic.js';
import { createClientCertCnAuth } from '../../src/auth/client-cert.js';
import { loadAuthPlugin } from '../../src/auth/load.js';
import { createExpectOrigin } from '../../src/auth/origin.js';
import type { AuthPlugin, AuthRequest } from '../../src/auth/plugin.js';
import { HttpError, StartupError } from '../../src/errors.js';
import { createPki, type Pki } from '../helpers/pki.js';

const logger = pino({ level: 'silent' });
let pki: Pki;
let scratch: string;

before(() => {
  pki = createPki();
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'wsfy-auth-'));
});
after(() => {
  pki.remove();
  fs.rmSync(scratch, { recursive: true, force: true });
});

function request(headers: Record<string, string> = {}, peerCertificate?: X509Certificate): AuthRequest {
  return { method: 'GET', url: '/', headers, remoteAddress: '127.0.0.1', peerAddress: '127.0.0.1', peerCertificate };
}

/** The HttpError `plugin` refuses `req` with (fails when it lets the request pass). */
async function refusal(plugin: AuthPlugin, req: AuthRequest): Promise<HttpError> {
  try {
    await plugin.authenticate(req);
  } catch (err) {
    assert.ok(err instanceof HttpError, `expected an HttpError, got ${String(err)}`);
    return err;
  }
  assert.fail('the request was let through');
}

function basic(credentials: string): Record<string, string> {
  return { authorization: `Basic ${Buffer.from(credentials, 'utf8').toString('base64')}` };
}

test('BasicHTTPAuth: 401 with the challenge when missing, malformed or wrong; the right pair passes', async () => {
  const plugin = createBasicHttpAuth('alice:pa:ss wörd');
  for (const headers of [
    {},
    basic('alice:wrong'),
    basic('bob:pa:ss wörd'),
    basic('alice'),
    { authorization: 'Bearer abc' },
    { authorization: 'Basic %%%' },
  ]) {
    const err = await refusal(plugin, request(headers));
    assert.equal(err.status, 401);
    assert.match(err.headers['WWW-Authenticate'] ?? '', /^Basic realm="Websockify"/);
  }
  await plugin.authenticate(request(basic('alice:pa:ss wörd')));
  // The scheme is case-insensitive; Latin-1 clients (as Python decodes) pass too.
  await plugin.authenticate(request({ authorization: `basic ${Buffer.from('alice:pa:ss wörd', 'latin1').toString('base64')}` }));
  assert.throws(() => createBasicHttpAuth('no-colon'), StartupError);
  assert.throws(() => createBasicHttpAuth(undefined), StartupError);
});

test('ExpectOrigin: 403 without Origin or with another; origins compared as browsers write them', async () => {
  const plugin = createExpectOrigin('https://app.example.com http://localhost:8080/');
  assert.equal((await refusal(plugin, request())).status, 403);
  assert.equal((await refusal(plugin, request({ origin: 'https://evil.example.com' }))).status, 403);
  assert.equal((await refusal(plugin, request({ origin: 'http://app.example.com' }))).status, 403);
  assert.equal((await refusal(plugin, request({ origin: 'null' }))).status, 403);
  await plugin.authenticate(request({ origin: 'https://app.example.com' }));
  await plugin.authenticate(request({ origin: 'HTTPS://App.Example.com:443' }));
  await plugin.authenticate(request({ origin: 'http://localhost:8080' }));
  assert.throws(() => createExpectOrigin(undefined), StartupError);
  assert.throws(() => createExpectOrigin('app.example.com'), /not an origin/);
  assert.throws(() => createExpectOrigin('https://app.example.com/path'), /not an origin/);
});

test("ClientCertCNAuth: the verified certificate's CN decides; an SSL_CLIENT_S_DN_CN header counts for nothing", async () => {
  const allowed = new X509Certificate(fs.readFileSync(pki.issue('desk-allowed', pki.ca, { usage: 'clientAuth' }).cert));
  const other = new X509Certificate(fs.readFileSync(pki.issue('desk-other', pki.ca, { usage: 'clientAuth' }).cert));
  const plugin = createClientCertCnAuth('someone desk-allowed');
  await plugin.authenticate(request({}, allowed));
  assert.equal((await refusal(plugin, request({}, other))).status, 403);
  assert.equal((await refusal(plugin, request({ SSL_CLIENT_S_DN_CN: 'desk-allowed', ssl_client_s_dn_cn: 'desk-allowed' }))).status, 403);
  assert.equal((await refusal(plugin, request({ ssl_client_s_dn_cn: 'desk-allowed' }, other))).status, 403);
  assert.throws(() => createClientCertCnAuth(' '), StartupError);
});

/** Writes a module for --auth-plugin into the scratch directory. */
function moduleFile(name: string, source: string): string {
  const file = path.join(scratch, name);
  fs.writeFileSync(file, source);
  return file;
}

test("loader: built-in names, with or without Python's module path; unknown names are start-up errors", async () => {
  const plugin = await loadAuthPlugin('websockify.auth_plugins.BasicHTTPAuth', 'u:p', logger);
  assert.equal((await refusal(plugin, request())).status, 401);
  await assert.rejects(
    loadAuthPlugin('NoSuchAuth', undefined, logger),
    (err) => err instanceof StartupError && /unknown plugin 'NoSuchAuth'/.test(err.message),
  );
  await assert.rejects(loadAuthPlugin('BasicHTTPAuth', 'nocolon', logger), StartupError);
});

test('loader: a user module gets its source; a thrown {status, headers} is the answer, another error stays an error', async () => {
  const file = moduleFile(
    'ticket-auth.mjs',
    `export default function (source, context) {
      if (typeof context.logger.info !== 'function') throw new Error('no logger in the context');
      return {
        async authenticate(request) {
          if (request.headers['x-ticket'] === source) return;
          if (request.headers['x-ticket'] === 'crash') throw new Error('plugin bug');
          throw Object.assign(new Error('bad ticket'), { status: 401, headers: { 'WWW-Authenticate': 'Ticket' } });
        },
      };
    }\n`,
  );
  const plugin = await loadAuthPlugin(file, 'T-1', logger);
  await plugin.authenticate(request({ 'x-ticket': 'T-1' }));
  const err = await refusal(plugin, request({ 'x-ticket': 'T-2' }));
  assert.equal(err.status, 401);
  assert.equal(err.message, 'bad ticket');
  assert.deepEqual(err.headers, { 'WWW-Authenticate': 'Ticket' });
  await assert.rejects(
    Promise.resolve(plugin.authenticate(request({ 'x-ticket': 'crash' }))),
    (e) => !(e instanceof HttpError) && (e as Error).message === 'plugin bug',
  );
});

test('loader: a module that does not load or keep the interface is a start-up error naming it', async () => {
  const cases: Array<[string, string, RegExp]> = [
    ['no-default.mjs', 'export const x = 1;\n', /default export must be a function/],
    ['no-method.mjs', 'export default () => ({});\n', /authenticate\(request\) method/],
    ['throws.mjs', "export default (source) => { throw new Error('need a source, got ' + source); };\n", /need a source, got undefined/],
    ['syntax.mjs', 'export default (;\n', /cannot load/],
  ];
  for (const [name, source, message] of cases) {
    const file = moduleFile(name, source);
    await assert.rejects(
      loadAuthPlugin(file, undefined, logger),
      (err) => err instanceof StartupError && message.test(err.message) && err.message.includes(file),
    );
  }
  await assert.rejects(loadAuthPlugin(path.join(scratch, 'missing.mjs'), undefined, logger), /cannot load/);
});
