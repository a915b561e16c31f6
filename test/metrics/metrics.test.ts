// `--metrics-listen`: the counts the proxy's sessions and refusals produce, as Prometheus's text format
// checked by promtool; /healthz and /readyz; the option's errors; the library's metricsListen.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, test } from 'node:test';
import { createProxy } from '../../src/index.js';
import { cliFixture } from '../helpers/cli-fixture.js';
import { captureLog } from '../helpers/log-capture.js';
import { type RunningProxy, runCli, startProxy } from '../helpers/proxy.js';
import { unusedPort } from '../helpers/targets.js';
import { assertTools, skipWithout } from '../helpers/tools.js';
import { waitUntil } from '../helpers/wait.js';
import { echoed, openClient } from '../helpers/ws-client.js';
import { metricReaches, metricsPort, PROMTOOL, promtoolCheck, request, sampleValue, scrape } from './support.js';

const cli = cliFixture('metrics');

/** Sends a raw request head on a new connection and resolves with the status line's code. */
function rawStatus(port: number, head: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(head));
    let text = '';
    socket.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
    socket.once('close', () => resolve(Number(/^HTTP\/1\.1 (\d+)/.exec(text)?.[1])));
    socket.once('error', reject);
  });
}

const BAD_VERSION_HANDSHAKE = [
  'GET / HTTP/1.1',
  'Host: x',
  'Connection: Upgrade',
  'Upgrade: websocket',
  'Sec-WebSocket-Version: 99',
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
  '',
  '',
].join('\r\n');

/**
 * Starts a proxy with `args` and `--metrics-listen`, has `refuse` be refused by it, and waits for the
 * refusal counted under `labels`.
 */
async function countsOf(args: string[], refuse: (p: RunningProxy) => Promise<void>, labels: Record<string, string>): Promise<void> {
  const p = args.includes('--token-plugin')
    ? await startProxy([...args, '--metrics-listen', '0', '127.0.0.1:0'])
    : await cli.proxy([...args, '--metrics-listen', '0']);
  try {
    const port = await metricsPort(p);
    await refuse(p);
    await metricReaches(port, 'websockify_handshakes_refused_total', labels, 1);
  } finally {
    await p.stop();
  }
}

describe('--metrics-listen', () => {
  test('counts sessions, their bytes, close codes and refusals, in output promtool accepts', { skip: skipWithout(PROMTOOL) }, async () => {
    assertTools(PROMTOOL);
    const p = await cli.proxy(['--metrics-listen', '127.0.0.1:0']);
    try {
      const port = await metricsPort(p);
      const first = await openClient(p.url, 'binary');
      assert.equal(await echoed(first, 'hello'), 'hello');
      // An open session's bytes are read when collected, before it ends.
      let text = await scrape(port);
      assert.equal(sampleValue(text, 'websockify_sessions_open'), 1);
      assert.equal(sampleValue(text, 'websockify_bytes_total', { direction: 'client_to_target' }), 5);
      assert.equal(sampleValue(text, 'websockify_bytes_total', { direction: 'target_to_client' }), 5);
      first.close(1000);
      await metricReaches(port, 'websockify_sessions_ended_total', { code: '1000', initiator: 'client' }, 1);

      const second = await openClient(p.url, 'binary');
      assert.equal(await echoed(second, 'abc'), 'abc');
      second.close(4001, 'an application code');
      text = await metricReaches(port, 'websockify_sessions_ended_total', { code: '4xxx', initiator: 'client' }, 1);
      assert.equal(sampleValue(text, 'websockify_sessions_open'), 0);
      assert.equal(sampleValue(text, 'websockify_sessions_total'), 2);
      // Moved from the open sessions' count to the ended ones': the counter never goes back.
      assert.equal(sampleValue(text, 'websockify_bytes_total', { direction: 'client_to_target' }), 8);
      assert.equal(sampleValue(text, 'websockify_bytes_total', { direction: 'target_to_client' }), 8);
      assert.equal(sampleValue(text, 'websockify_session_duration_seconds_count'), 2);
      assert.equal(sampleValue(text, 'websockify_target_connect_seconds_count', { result: 'ok' }), 2);

      assert.equal((await request(p.port!, '/')).status, 405);
      assert.equal(await rawStatus(p.port!, BAD_VERSION_HANDSHAKE), 426);
      text = await metricReaches(port, 'websockify_handshakes_refused_total', { status: '426', reason: 'bad_request' }, 1);
      assert.equal(sampleValue(text, 'websockify_handshakes_refused_total', { status: '405', reason: 'not_websocket' }), 1);
      // Bounded labels only: no client address reaches a websockify_ metric.
      const ours = text.split('\n').filter((line) => line.startsWith('websockify_'));
      assert.ok(!ours.some((line) => line.includes('127.0.0.1')), ours.join('\n'));
      assert.ok(sampleValue(text, 'process_cpu_seconds_total')! > 0, 'the process metrics are there');

      const check = await promtoolCheck(text);
      assert.equal(check.code, 0, check.output);
    } finally {
      await cli.stop(p);
    }
  });

  test('a token plugin: lookups timed by plugin; unknown tokens and refused targets counted by reason', async () => {
    const tokens = path.join(cli.scratch, 'tokens');
    fs.writeFileSync(tokens, `good: 127.0.0.1:${cli.echoTarget.port}\nelsewhere: 127.0.0.1:1\n`);
    // The host defaults to 127.0.0.1.
    const p = await startProxy([
      '--token-plugin',
      'TokenFile',
      '--token-source',
      tokens,
      '--allow-target',
      `127.0.0.1:${cli.echoTarget.port}`,
      '--metrics-listen',
      '0',
      '127.0.0.1:0',
    ]);
    try {
      const port = await metricsPort(p);
      assert.match(String(p.events().find((e) => e.event === 'metrics-listening')?.listen), /^127\.0\.0\.1:\d+$/);
      const ws = await openClient(`${p.url}/?token=good`, 'binary');
      assert.equal(await echoed(ws, 'x'), 'x');
      ws.close();
      await assert.rejects(openClient(`${p.url}/?token=unknown`, 'binary'), /HTTP 404/);
      await assert.rejects(openClient(`${p.url}/?token=elsewhere`, 'binary'), /HTTP 403/);
      await assert.rejects(openClient(`${p.url}/`, 'binary'), /HTTP 404/);
      const text = await metricReaches(port, 'websockify_handshakes_refused_total', { status: '404', reason: 'unknown_token' }, 2);
      assert.equal(sampleValue(text, 'websockify_handshakes_refused_total', { status: '403', reason: 'target_not_allowed' }), 1);
      // Three lookups: the request without a token asks nobody.
      assert.equal(sampleValue(text, 'websockify_token_lookup_seconds_count', { plugin: 'TokenFile' }), 3);
    } finally {
      await p.stop();
    }
  });

  test('refusals by reason: auth, origin, token source down, --ssl-only, handshake timeouts', async () => {
    await countsOf(
      ['--auth-plugin', 'BasicHTTPAuth', '--auth-source', 'user:secret'],
      (p) => assert.rejects(openClient(p.url, 'binary'), /HTTP 401/),
      { status: '401', reason: 'auth' },
    );
    await countsOf(
      ['--auth-plugin', 'ExpectOrigin', '--auth-source', 'https://good.example'],
      (p) => assert.rejects(openClient(p.url, 'binary', { origin: 'https://evil.example' }), /HTTP 403/),
      { status: '403', reason: 'origin' },
    );
    // Nothing listens at the token API's address.
    await countsOf(
      ['--token-plugin', 'BaseTokenAPI', '--token-source', `http://127.0.0.1:${await unusedPort()}/%s`],
      (p) => assert.rejects(openClient(`${p.url}/?token=t`, 'binary'), /HTTP 503/),
      { status: '503', reason: 'token_source_down' },
    );
    await countsOf(
      ['--ssl-only', '--cert', cli.server.cert, '--key', cli.server.key],
      async (p) => assert.ok(Number.isNaN(await rawStatus(p.port!, 'GET / HTTP/1.1\r\n\r\n')), 'closed unanswered'),
      { status: 'none', reason: 'tls_required' },
    );
    await countsOf(
      ['--handshake-timeout', '0.3'],
      async (p) => {
        assert.ok(Number.isNaN(await rawStatus(p.port!, '')), 'a silent connection is closed unanswered');
        assert.equal(await rawStatus(p.port!, 'GET / HTTP/1.1\r\n'), 408);
      },
      { status: '408', reason: 'timeout' },
    );
  });

  test('refusals of the limits by reason: limit, rate, ban', async () => {
    await countsOf(
      ['--max-connections', '1'],
      async (p) => {
        const held = await openClient(p.url, 'binary');
        try {
          assert.equal(await rawStatus(p.port!, BAD_VERSION_HANDSHAKE), 503);
        } finally {
          held.close();
        }
      },
      { status: '503', reason: 'limit' },
    );
    await countsOf(
      ['--max-handshake-rate', '1'],
      async (p) => {
        (await openClient(p.url, 'binary')).close();
        await assert.rejects(openClient(p.url, 'binary'), /HTTP 429/);
      },
      { status: '429', reason: 'rate' },
    );
    await countsOf(
      ['--ban-after', '1', '--ban-time', '60', '--auth-plugin', 'BasicHTTPAuth', '--auth-source', 'user:secret'],
      async (p) => {
        await assert.rejects(openClient(p.url, 'binary'), /HTTP 401/);
        await assert.rejects(openClient(p.url, 'binary'), /HTTP 403/);
      },
      { status: '403', reason: 'ban' },
    );
  });

  test('TLS handshakes by result, and certificate reloads', { skip: skipWithout(PROMTOOL) }, async () => {
    assertTools(PROMTOOL);
    const p = await cli.proxy(['--cert', cli.server.cert, '--key', cli.server.key, '--metrics-listen', '0']);
    try {
      const port = await metricsPort(p);
      const ws = await openClient(`wss://127.0.0.1:${p.port}`, 'binary', { ca: cli.ca });
      assert.equal(await echoed(ws, 'tls'), 'tls');
      ws.close();
      // A TLS record header, then bytes that are no hello.
      const garbage = net.connect(p.port!, '127.0.0.1', () => garbage.write(Buffer.from('16030100050000000000', 'hex')));
      garbage.on('error', () => undefined);
      await metricReaches(port, 'websockify_tls_handshakes_total', { result: 'failed' }, 1);
      p.proc.kill('SIGHUP');
      const text = await metricReaches(port, 'websockify_tls_certificate_reloads_total', { result: 'unchanged' }, 1);
      assert.equal(sampleValue(text, 'websockify_tls_handshakes_total', { result: 'ok' }), 1);
      const check = await promtoolCheck(text);
      assert.equal(check.code, 0, check.output);
    } finally {
      await cli.stop(p);
    }
  });

  test('/healthz, /readyz; other paths 404, other methods 405', async () => {
    const p = await cli.proxy(['--metrics-listen', '0']);
    try {
      const port = await metricsPort(p);
      assert.deepEqual(await request(port, '/healthz').then((a) => [a.status, a.body]), [200, 'ok\n']);
      assert.equal((await request(port, '/readyz')).status, 200);
      assert.equal((await request(port, '/metrics?x=1')).status, 200);
      assert.match(String((await request(port, '/metrics')).headers['content-type']), /^text\/plain; version=0\.0\.4/);
      const head = await request(port, '/metrics', 'HEAD');
      assert.deepEqual([head.status, head.body], [200, '']);
      assert.equal((await request(port, '/')).status, 404);
      assert.equal((await request(port, '/metrics/x')).status, 404);
      const post = await request(port, '/metrics', 'POST');
      assert.deepEqual([post.status, post.headers.allow], [405, 'GET, HEAD']);
    } finally {
      await cli.stop(p);
    }
  });

  test('SIGTERM with --drain-timeout: /readyz 503 while the open session goes on, /healthz still 200', async () => {
    const p = await cli.proxy(['--metrics-listen', '0', '--drain-timeout', '30']);
    try {
      const port = await metricsPort(p);
      const ws = await openClient(p.url, 'binary');
      assert.equal((await request(port, '/readyz')).status, 200);
      p.proc.kill('SIGTERM');
      await waitUntil('/readyz to say 503', async () => (await request(port, '/readyz')).status === 503);
      assert.equal((await request(port, '/healthz')).status, 200);
      assert.equal(await echoed(ws, 'still here'), 'still here');
      assert.equal(sampleValue(await scrape(port), 'websockify_sessions_open'), 1);
      ws.close();
      assert.equal((await p.exited).code, 0);
    } finally {
      await cli.stop(p);
    }
  });

  test("usage errors: the proxy's own port, a malformed address; a port in use stops the start", async () => {
    const own = await runCli(['--metrics-listen', '127.0.0.1:6080', '6080', '127.0.0.1:1']);
    assert.equal(own.code, 2);
    assert.match(own.stderr, /--metrics-listen: port 6080 is the proxy's own port/);
    const malformed = await runCli(['--metrics-listen', 'localhost:http', '6080', '127.0.0.1:1']);
    assert.equal(malformed.code, 2);
    assert.match(malformed.stderr, /--metrics-listen/);
    const taken = await cli.proxy(['--metrics-listen', '0']);
    try {
      const busy = await metricsPort(taken);
      const failed = await runCli(['--metrics-listen', String(busy), '127.0.0.1:0', '127.0.0.1:1']);
      assert.equal(failed.code, 1);
      assert.match(failed.stderr, new RegExp(`--metrics-listen: cannot listen on 127\\.0\\.0\\.1:${busy}: address already in use`));
    } finally {
      await cli.stop(taken);
    }
  });

  test('the library: metricsListen, metricsAddress, and the listener closed with the proxy', async () => {
    const { logger } = captureLog();
    const proxy = createProxy({ listen: '127.0.0.1:0', target: `127.0.0.1:${cli.echoTarget.port}`, metricsListen: '127.0.0.1:0', logger });
    await proxy.listen();
    const port = Number(/:(\d+)$/.exec(proxy.metricsAddress ?? '')?.[1]);
    const ws = await openClient(`ws://${proxy.address}`, 'binary');
    assert.equal(await echoed(ws, 'lib'), 'lib');
    ws.close();
    await metricReaches(port, 'websockify_sessions_ended_total', { initiator: 'client' }, 1);
    await proxy.close();
    await assert.rejects(request(port, '/healthz'), /ECONNREFUSED/);
    const plain = createProxy({ listen: '127.0.0.1:0', target: `127.0.0.1:${cli.echoTarget.port}`, logger });
    await plain.listen();
    assert.equal(plain.metricsAddress, undefined);
    await plain.close();
  });
});
