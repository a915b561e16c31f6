// The token in a request's query: its reader against WHATWG URL's on any request target, and a target
// that URL refuses to parse, through the real CLI.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { handshakeRequest } from '../../bench/wire.js';
import { queryToken } from '../../src/admission/request-token.js';
import { propertyRuns } from '../helpers/fast-check.js';
import { type RunningProxy, startProxy } from '../helpers/proxy.js';
import { RawConnection } from '../helpers/raw-connection.js';
import type { TestServer } from '../helpers/targets.js';
import { startNamedServer, tempDir } from '../tokens/support.js';

/** Request targets as clients send them, and as an attacker may: paths, queries, stray '#', '//', ports, escapes. */
const requestTarget = fc
  .array(
    fc.oneof(
      fc.constantFrom('/', '//', '?', '&', '=', '#', 'token', 'token=', '%', '%zz', '%41', '+', ':', '99999', '[', ']', '\\', '@', ';'),
      fc.integer({ min: 0x21, max: 0xff }).map((code) => String.fromCharCode(code)),
    ),
    { maxLength: 30 },
  )
  .map((parts) => parts.join(''));

describe('queryToken', () => {
  test("the property's counterexamples: a '?' after '#', a second '?', a fragment after the token", () => {
    assert.equal(queryToken('#?token=a'), undefined);
    assert.equal(queryToken('??token=a'), undefined);
    assert.equal(queryToken('/x?token=a#b'), 'a');
    assert.equal(queryToken('/x?a=1&token=%41+b'), 'A b');
  });

  test('never throws, and reads what WHATWG URL reads wherever URL can parse the target', () => {
    fc.assert(
      fc.property(requestTarget, (target) => {
        const token = queryToken(target);
        let url: URL;
        try {
          url = new URL(target, 'http://x');
        } catch {
          return;
        }
        assert.equal(token, url.searchParams.get('token') ?? undefined);
      }),
      propertyRuns(),
    );
  });

  test('a token written with URLSearchParams is read back, whatever the path and other parameters', () => {
    const text = fc.string({ maxLength: 20, unit: 'binary' });
    fc.assert(
      fc.property(requestTarget, fc.array(fc.tuple(text, text), { maxLength: 4 }), text, (pathPart, others, token) => {
        const pathOnly = `/${pathPart.replace(/[?#]/g, '')}`;
        const params = new URLSearchParams([...others.filter(([name]) => name !== 'token'), ['token', token]]);
        assert.equal(queryToken(`${pathOnly}?${params}`), token);
      }),
      propertyRuns(),
    );
  });
});

describe('a request target that is no URL path', () => {
  let server: TestServer;
  let proxy: RunningProxy;
  const temp = tempDir();

  before(async () => {
    server = await startNamedServer('server A');
    const file = path.join(temp.dir, 'tokens.cfg');
    fs.writeFileSync(file, `alpha: 127.0.0.1:${server.port}\n`);
    proxy = await startProxy(['--token-plugin', 'TokenFile', '--token-source', file, '127.0.0.1:0']);
  });
  after(async () => {
    await proxy.stop();
    await server.close();
    temp.remove();
  });

  // Found by the property above: new URL() threw on these, and the client got 500 "internal error".
  for (const target of ['//x:99999/?token=alpha', '//[?token=alpha', '/\\?token=alpha']) {
    test(`${target} still reaches the token's target`, async () => {
      const client = await RawConnection.open(proxy.port!);
      client.write(handshakeRequest({ path: target }));
      assert.equal((await client.head())?.status, 101);
      assert.equal((await client.frames()).data.toString(), 'server A');
      client.socket.destroy();
    });
  }
});
