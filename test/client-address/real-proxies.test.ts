// The real client address behind real proxies: HAProxy (send-proxy, send-proxy-v2) and nginx (stream
// with proxy_protocol, http with X-Forwarded-For) in front of the CLI, and nginx as a target reading the
// PROXY header the CLI sends. Each client connects from 127.0.0.2, so a log line naming 127.0.0.1 (the
// proxy in front) instead is a failure.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { treeListensOn } from '../../bench/proc.js';
import { ProxyPool, type RunningProxy } from '../helpers/proxy.js';
import { startEchoServer, type TestServer, unusedPort } from '../helpers/targets.js';
import { assertTools, skipWithout } from '../helpers/tools.js';
import { waitUntil } from '../helpers/wait.js';
import { collect, echoed } from '../helpers/ws-client.js';
import { OTHER_PEER, openVia } from './support.js';

const HAPROXY = '/usr/sbin/haproxy';
const NGINX = '/usr/sbin/nginx';
const NGINX_STREAM = '/usr/lib/nginx/modules/ngx_stream_module.so';

/** A server program started by a test, with its output kept for failure messages. */
interface Started {
  proc: ChildProcess;
  output(): string;
}

/** Starts `command` and waits until its process tree listens on each of `ports` (127.0.0.1). */
async function startListening(command: string, args: string[], ports: readonly number[]): Promise<Started> {
  const proc = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  proc.stdout?.setEncoding('utf8').on('data', (text: string) => (output += text));
  proc.stderr?.setEncoding('utf8').on('data', (text: string) => (output += text));
  const exited = once(proc, 'exit');
  await Promise.race([
    waitUntil(`${path.basename(command)} listening on ${ports.join(', ')}`, () => ports.every((port) => treeListensOn(proc.pid!, port))),
    exited.then(([code]) => {
      throw new Error(`${command} exited (${code}) before listening:\n${output}`);
    }),
  ]);
  return { proc, output: () => output };
}

/** Stops a program started by {@link startListening} (by its PID) and waits for its exit. */
async function stop(started: Started | undefined): Promise<void> {
  if (!started || started.proc.exitCode !== null || started.proc.signalCode !== null) return;
  const exited = once(started.proc, 'exit');
  started.proc.kill('SIGTERM');
  await exited;
}

const needed = [HAPROXY, NGINX, NGINX_STREAM];
const pool = new ProxyPool();
let scratch: string;
let echo: TestServer;
/** The CLI behind PROXY-protocol senders, and the one behind nginx's X-Forwarded-For. */
let behindProxyProtocol: RunningProxy;
let behindForwardedFor: RunningProxy;
let haproxy: Started | undefined;
let nginx: Started | undefined;
const ports = { haproxyV1: 0, haproxyV2: 0, nginxStream: 0, nginxHttp: 0, nginxTarget: 0 };

/** Waits for the session-open line of a client from 127.0.0.2 after session number `since`, and returns it. */
function openedFromOtherPeer(proxy: RunningProxy, since: number): Promise<Record<string, unknown>> {
  return proxy.waitForEvent((e) => e.event === 'open' && String(e.client).startsWith(OTHER_PEER) && Number(e.conn) > since);
}

/** The number of the last session a proxy opened so far (0 for none). */
function lastConn(proxy: RunningProxy): number {
  return Math.max(
    0,
    ...proxy
      .events()
      .filter((e) => e.event === 'open')
      .map((e) => Number(e.conn)),
  );
}

describe('behind real proxies, the log names the client, not the proxy', { skip: skipWithout(...needed) }, () => {
  before(async () => {
    assertTools(...needed);
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'wsfy-real-proxies-'));
    // nginx's workers (not root) create their temporary directories in it.
    fs.chmodSync(scratch, 0o755);
    echo = await startEchoServer();
    behindProxyProtocol = await pool.start(['--trusted-proxy', '127.0.0.1', '--proxy-protocol', '127.0.0.1:0', `127.0.0.1:${echo.port}`]);
    behindForwardedFor = await pool.start(['--trusted-proxy', '127.0.0.1/32', '127.0.0.1:0', `127.0.0.1:${echo.port}`]);
    for (const name of Object.keys(ports) as Array<keyof typeof ports>) ports[name] = await unusedPort();

    const haproxyConfig = path.join(scratch, 'haproxy.cfg');
    fs.writeFileSync(
      haproxyConfig,
      [
        'global',
        '  maxconn 64',
        'defaults',
        '  mode tcp',
        '  timeout connect 5s',
        '  timeout client 60s',
        '  timeout server 60s',
        'listen v1',
        `  bind 127.0.0.1:${ports.haproxyV1}`,
        `  server proxy 127.0.0.1:${behindProxyProtocol.port} send-proxy`,
        'listen v2',
        `  bind 127.0.0.1:${ports.haproxyV2}`,
        `  server proxy 127.0.0.1:${behindProxyProtocol.port} send-proxy-v2`,
        '',
      ].join('\n'),
    );
    haproxy = await startListening(HAPROXY, ['-f', haproxyConfig, '-db'], [ports.haproxyV1, ports.haproxyV2]);

    const nginxConfig = path.join(scratch, 'nginx.conf');
    fs.writeFileSync(
      nginxConfig,
      `load_module ${NGINX_STREAM};
worker_processes 1;
pid ${scratch}/nginx.pid;
error_log ${scratch}/error.log info;
events { worker_connections 64; }
stream {
  log_format client '$proxy_protocol_addr:$proxy_protocol_port';
  server {
    listen 127.0.0.1:${ports.nginxStream};
    proxy_pass 127.0.0.1:${behindProxyProtocol.port};
    proxy_protocol on;
  }
  server {
    listen 127.0.0.1:${ports.nginxTarget} proxy_protocol;
    access_log ${scratch}/target.log client;
    return "$proxy_protocol_addr:$proxy_protocol_port\\n";
  }
}
http {
  access_log off;
  client_body_temp_path ${scratch}/client-body;
  proxy_temp_path ${scratch}/proxy;
  fastcgi_temp_path ${scratch}/fastcgi;
  uwsgi_temp_path ${scratch}/uwsgi;
  scgi_temp_path ${scratch}/scgi;
  server {
    listen 127.0.0.1:${ports.nginxHttp};
    location / {
      proxy_pass http://127.0.0.1:${behindForwardedFor.port};
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }
  }
}
`,
    );
    nginx = await startListening(
      NGINX,
      ['-p', `${scratch}/`, '-e', `${scratch}/error.log`, '-c', nginxConfig, '-g', 'daemon off;'],
      [ports.nginxStream, ports.nginxHttp, ports.nginxTarget],
    );
  });

  after(async () => {
    await stop(haproxy);
    await stop(nginx);
    await pool.stopAll();
    await echo?.close();
    if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
  });

  for (const [name, port] of [
    ['HAProxy send-proxy (v1)', () => ports.haproxyV1],
    ['HAProxy send-proxy-v2', () => ports.haproxyV2],
    ['nginx stream with proxy_protocol on', () => ports.nginxStream],
  ] as const) {
    test(`${name}: the PROXY header names 127.0.0.2`, async () => {
      const before = lastConn(behindProxyProtocol);
      const ws = await openVia(port(), '/', { from: OTHER_PEER });
      assert.equal(await echoed(ws, name), name);
      ws.close();
      const opened = await openedFromOtherPeer(behindProxyProtocol, before);
      assert.match(String(opened.client), /^127\.0\.0\.2:\d+$/);
      assert.match(String(opened.peer), /^127\.0\.0\.1:\d+$/, 'the peer is the proxy in front');
    });
  }

  test('nginx as an HTTP reverse proxy with X-Forwarded-For: the client is 127.0.0.2', async () => {
    const before = lastConn(behindForwardedFor);
    const ws = await openVia(ports.nginxHttp, '/websockify', { from: OTHER_PEER });
    assert.equal(await echoed(ws, 'via nginx'), 'via nginx');
    ws.close();
    const opened = await openedFromOtherPeer(behindForwardedFor, before);
    // X-Forwarded-For has no port.
    assert.equal(opened.client, OTHER_PEER);
  });

  test('nginx as the target with listen ... proxy_protocol: --target-proxy-protocol tells it the client', async () => {
    const proxy = await pool.start(['--target-proxy-protocol', '127.0.0.1:0', `127.0.0.1:${ports.nginxTarget}`]);
    try {
      const ws = await openVia(proxy.port!, '/', { from: OTHER_PEER });
      const received = await collect(ws);
      // nginx answers with $proxy_protocol_addr:$proxy_protocol_port and closes.
      assert.match(received.data.toString(), /^127\.0\.0\.2:\d+\n$/);
      assert.equal(received.code, 1000);
      const log = path.join(scratch, 'target.log');
      const logged = await waitUntil('nginx access log line', () => fs.existsSync(log) && fs.readFileSync(log, 'utf8').trim());
      assert.equal(logged, received.data.toString().trim());
    } finally {
      await pool.stop(proxy);
    }
  });
});
