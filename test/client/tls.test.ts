import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe, test } from 'node:test';
import { cliFixture } from '../helpers/cli-fixture.js';
import { captureLog } from '../helpers/log-capture.js';
import { closedByClient, connectLocal, listenLocal, payload, readBytes, writeAll } from './support.js';

const cli = cliFixture('client-tls');

/** Sends `size` random bytes through a new local connection and checks the echo. */
async function echoThrough(listener: Awaited<ReturnType<typeof listenLocal>>, size: number): Promise<void> {
  const app = await connectLocal(listener);
  const data = payload(size);
  const [echoed] = await Promise.all([readBytes(app, size), writeAll(app, data)]);
  assert.ok(echoed.equals(data));
  app.destroy();
}

describe('wss://', { timeout: 60_000 }, () => {
  test('a server certificate from the CA given (--cafile) is trusted; without it, it is refused and the TLS error logged', async () => {
    const p = await cli.proxy(['--cert', cli.server.cert, '--key', cli.server.key]);
    const url = `wss://127.0.0.1:${p.port}/`;
    const log = captureLog();
    const trusting = await listenLocal(url, { ca: cli.ca, logger: log.logger });
    const untrusting = await listenLocal(url, { logger: log.logger });
    try {
      await echoThrough(trusting, 4 * 1024 * 1024);
      await closedByClient(await connectLocal(untrusting));
      const refused = await log.waitFor((e) => e.event === 'ws-refused');
      assert.match(String(refused.error), /certificate/);
    } finally {
      trusting.destroy();
      untrusting.destroy();
      await cli.stop(p);
    }
  });

  test('a certificate from another CA is refused; --insecure accepts it', async () => {
    const p = await cli.proxy(['--cert', cli.server.cert, '--key', cli.server.key]);
    const url = `wss://127.0.0.1:${p.port}/`;
    const log = captureLog();
    const wrongCa = await listenLocal(url, { ca: fs.readFileSync(cli.pki.otherCa.cert), logger: log.logger });
    const insecure = await listenLocal(url, { insecure: true });
    try {
      await closedByClient(await connectLocal(wrongCa));
      assert.match(String((await log.waitFor((e) => e.event === 'ws-refused')).error), /certificate/);
      await echoThrough(insecure, 1000);
    } finally {
      wrongCa.destroy();
      insecure.destroy();
      await cli.stop(p);
    }
  });

  test('a client certificate (--cert/--key) gets through --verify-client; none is refused', async () => {
    const good = cli.pki.issue('client-good', cli.pki.ca, { usage: 'clientAuth' });
    const p = await cli.proxy([...cli.verifyClientArgs, '--ssl-only']);
    const url = `wss://127.0.0.1:${p.port}/`;
    const log = captureLog();
    const withCert = await listenLocal(url, cli.clientTls(good));
    const without = await listenLocal(url, { ca: cli.ca, logger: log.logger });
    try {
      await echoThrough(withCert, 2 * 1024 * 1024);
      await closedByClient(await connectLocal(without));
      await log.waitFor((e) => e.event === 'ws-refused');
      await p.waitForEvent((e) => e.event === 'tls-failed' && e.reason === 'no client certificate');
    } finally {
      withCert.destroy();
      without.destroy();
      await cli.stop(p);
    }
  });
});
