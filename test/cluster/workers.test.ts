// `--workers N`: worker processes serve one port; every feature works as with one process, and the
// primary keeps the clocks, replaces dead workers, and takes every worker with it when it goes.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { describe, test } from 'node:test';
import type tls from 'node:tls';
import { cliFixture } from '../helpers/cli-fixture.js';
import { replaceAtomically } from '../helpers/pki.js';
import { runCli, startProxy, startTokenFileProxy, tokenFileText } from '../helpers/proxy.js';
import { startEchoServer, unusedPort } from '../helpers/targets.js';
import { waitUntil } from '../helpers/wait.js';
import { collect, echoed, openClient } from '../helpers/ws-client.js';
import { descendants } from '../wrap/support.js';
import { gone, servingWorker, sessionsOnEveryWorker, workerPids } from './support.js';

const cli = cliFixture('workers');

/** Whether a TCP connection to the port is refused (nobody listens). */
function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

describe('--workers', () => {
  test('sessions spread over the workers; each line names its worker; session numbers are unique over all', async () => {
    const p = await cli.proxy(['--workers', '2']);
    try {
      const listening = p.events().find((e) => e.event === 'listening' && e.worker === undefined)!;
      assert.equal(listening.workers, 2);
      assert.equal(workerPids(p).length, 2);
      assert.deepEqual(descendants(p.proc.pid!).sort(), workerPids(p).sort(), "the workers are the primary's children");
      const sessions = await sessionsOnEveryWorker(p, p.url, 2, 6);
      for (const [i, { ws }] of sessions.entries()) assert.equal(await echoed(ws, `hello ${i}`), `hello ${i}`);
      const conns = sessions.map((s) => s.conn);
      assert.equal(new Set(conns).size, conns.length, `session numbers repeat: ${conns}`);
      // Worker N of 2 counts N, N+2, ...
      for (const { worker, conn } of sessions) assert.equal(conn % 2, worker % 2, `conn ${conn} from worker ${worker}`);
      for (const { ws } of sessions) ws.close();
      const lines = p.events().filter((e) => e.event === 'open' || e.event === 'close');
      assert.ok(lines.every((e) => e.worker === 1 || e.worker === 2));
    } finally {
      await cli.stop(p);
    }
  });

  test('usage errors: --run-once or --inetd with more than one worker, a count that is not one', async () => {
    const cases: Array<[string[], RegExp]> = [
      [
        ['--workers', '2', '--run-once', '127.0.0.1:0', '127.0.0.1:9'],
        /--run-once serves a single session: it cannot be used with --workers above 1/,
      ],
      [['--workers', '2', '--inetd', '127.0.0.1:9'], /--inetd hands one socket to one process: it cannot be used with --workers above 1/],
      [['--workers', '0', '127.0.0.1:0', '127.0.0.1:9'], /--workers: expected a number of processes from 1 to 1024, or auto; got 0/],
      [['--workers', 'many', '127.0.0.1:0', '127.0.0.1:9'], /--workers.*expected a number of processes, or auto/],
    ];
    for (const [args, message] of cases) {
      const run = await runCli(args);
      assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, message);
    }
    // One worker with --run-once is today's single process.
    const one = await runCli(['--workers', '1', '--run-once', '--timeout', '0.2', '127.0.0.1:0', '127.0.0.1:9']);
    assert.equal(one.code, 0, one.stderr);
  });

  test("a start that fails in a worker (port in use, certificate missing) is exit 1 with the worker's reason", async () => {
    const busy = net.createServer().listen(0, '127.0.0.1');
    await once(busy, 'listening');
    const port = (busy.address() as net.AddressInfo).port;
    try {
      const inUse = await runCli(['--workers', '2', `127.0.0.1:${port}`, '127.0.0.1:9']);
      assert.equal(inUse.code, 1, inUse.stderr);
      assert.match(inUse.stderr, new RegExp(`websockify: cannot listen on 127\\.0\\.0\\.1:${port}: address already in use`));
    } finally {
      busy.close();
    }
    const noCert = await runCli([
      '--workers',
      '2',
      '--ssl-only',
      '--cert',
      path.join(cli.scratch, 'missing.pem'),
      '127.0.0.1:0',
      '127.0.0.1:9',
    ]);
    assert.equal(noCert.code, 1, noCert.stderr);
    assert.match(noCert.stderr, /websockify: .*missing\.pem/);
  });

  test('SIGTERM drains every worker: bytes in flight delivered, then 1001, exit 0', async () => {
    // A target that answers each message with 200 KB, so that bytes are in flight when the stop comes.
    const target = net.createServer((socket) => socket.on('data', () => socket.write(Buffer.alloc(200_000, 0x61))));
    target.listen(0, '127.0.0.1');
    await once(target, 'listening');
    const p = await cli.proxy(['--workers', '2'], (target.address() as net.AddressInfo).port);
    try {
      const sessions = await sessionsOnEveryWorker(p, p.url, 2);
      const received = sessions.map(({ ws }) => collect(ws));
      for (const { ws } of sessions) ws.send(Buffer.from('go'));
      await waitUntil('every target connection to have answered', () =>
        p.events().filter((e) => e.event === 'open').length >= sessions.length ? true : undefined,
      );
      await new Promise((resolve) => setTimeout(resolve, 100));
      p.proc.kill('SIGTERM');
      const status = await p.exited;
      assert.equal(status.code, 0, p.stderr());
      for (const got of await Promise.all(received)) {
        assert.equal(got.code, 1001);
        assert.equal(got.data.length, 200_000);
      }
      for (const pid of workerPids(p)) await gone(pid);
    } finally {
      await cli.stop(p);
      target.close();
    }
  });

  test("a worker that dies is logged and replaced, backing off when it keeps dying; the other worker's sessions do not notice", async () => {
    const p = await cli.proxy(['--workers', '2']);
    try {
      const sessions = await sessionsOnEveryWorker(p, p.url, 2);
      const victim = sessions.find((s) => s.worker === 1)!;
      const survivor = sessions.find((s) => s.worker === 2)!;
      const victimPid = workerPids(p)[0]!;
      const victimClosed = collect(victim.ws);
      process.kill(victimPid, 'SIGKILL');
      const exit = await p.waitForEvent((e) => e.event === 'worker-exit');
      assert.equal(exit.worker, 1);
      assert.equal(exit.pid, victimPid);
      assert.equal(exit.status, 137);
      assert.equal((await victimClosed).code, 1006);
      assert.equal(await echoed(survivor.ws, 'still here'), 'still here');
      const first = await p.waitForEvent((e) => e.event === 'worker-listening' && e.worker === 1);
      assert.notEqual(first.pid, victimPid);
      // Dying again at once: the next replacement waits twice as long.
      process.kill(Number(first.pid), 'SIGKILL');
      await waitUntil('the second exit', () => p.events().filter((e) => e.event === 'worker-exit').length === 2);
      const [once1, once2] = p.events().filter((e) => e.event === 'worker-exit');
      assert.equal(Number(once2!.delay), 2 * Number(once1!.delay));
      await waitUntil(
        'the second replacement',
        () => p.events().filter((e) => e.event === 'worker-listening' && e.worker === 1).length === 2,
      );
      // The replacement serves, and goes on numbering after its predecessor.
      const fresh = await sessionsOnEveryWorker(p, p.url, 2);
      const mine = fresh.filter((s) => s.worker === 1);
      assert.ok(
        mine.every((s) => s.conn > victim.conn && s.conn % 2 === 1),
        JSON.stringify(fresh.map((s) => [s.worker, s.conn])),
      );
      for (const s of fresh) assert.equal(await echoed(s.ws, 'fresh'), 'fresh');
      for (const s of [...fresh, survivor]) s.ws.close();
    } finally {
      await cli.stop(p);
    }
  });

  test('no worker outlives the primary, even when it is killed with SIGKILL', async () => {
    const p = await cli.proxy(['--workers', '2']);
    const pids = workerPids(p);
    assert.equal(pids.length, 2);
    const sessions = await sessionsOnEveryWorker(p, p.url, 2);
    p.proc.kill('SIGKILL');
    await p.exited;
    for (const pid of pids) await gone(pid);
    for (const { ws } of sessions) ws.terminate();
  });

  test('TLS on the same port; SIGHUP to the primary reloads the certificate in every worker', async () => {
    const dir = fs.mkdtempSync(path.join(cli.scratch, 'tls-'));
    const cert = path.join(dir, 'cert.pem');
    const key = path.join(dir, 'key.pem');
    const real = fs.mkdtempSync(path.join(cli.scratch, 'real-'));
    // Behind symbolic links to another directory, so that only SIGHUP (not the watcher) reloads.
    fs.copyFileSync(cli.server.cert, path.join(real, 'cert.pem'));
    fs.copyFileSync(cli.server.key, path.join(real, 'key.pem'));
    fs.symlinkSync(path.join(real, 'cert.pem'), cert);
    fs.symlinkSync(path.join(real, 'key.pem'), key);
    const p = await cli.proxy(['--workers', '2', '--cert', cert, '--key', key]);
    try {
      const wss = `wss://127.0.0.1:${p.port}/`;
      const before = await sessionsOnEveryWorker(p, wss, 2, 2, { ca: cli.ca });
      for (const { ws } of before) assert.equal(await echoed(ws, 'tls'), 'tls');
      const plain = await sessionsOnEveryWorker(p, p.url, 2);
      for (const { ws } of [...before, ...plain]) ws.close();

      const renewed = cli.pki.issue('server-workers', cli.pki.ca);
      fs.writeFileSync(path.join(real, 'key.pem'), fs.readFileSync(renewed.key));
      fs.writeFileSync(path.join(real, 'cert.pem'), fs.readFileSync(renewed.cert));
      p.proc.kill('SIGHUP');
      await waitUntil('both workers to reload', () => {
        const reloaded = p.events().filter((e) => e.event === 'tls-reloaded' && e.cause === 'SIGHUP');
        return new Set(reloaded.map((e) => e.worker)).size === 2;
      });
      // Enough new connections to reach both workers: each gets the new certificate.
      const seen = new Set<number>();
      for (let i = 0; i < 64 && seen.size < 2; i++) {
        const ws = await openClient(wss, 'binary', { ca: cli.ca });
        const socket = (ws as unknown as { _socket: tls.TLSSocket })._socket;
        assert.equal(socket.getPeerX509Certificate()?.fingerprint256, renewed.fingerprint);
        seen.add((await servingWorker(p, ws)).worker);
        ws.close();
      }
      assert.equal(seen.size, 2);
      assert.equal(p.proc.exitCode, null);
    } finally {
      await cli.stop(p);
    }
  });

  test('TokenFile: a token added to the file works through every worker', async () => {
    const tokens = path.join(cli.scratch, 'tokens.cfg');
    const p = await startTokenFileProxy(tokens, { old: cli.echoTarget.port }, ['--log-format', 'json', '--workers', '2']);
    try {
      const before = await sessionsOnEveryWorker(p, `${p.url}/?token=old`, 2);
      for (const { ws } of before) ws.close();
      replaceAtomically(tokens, tokenFileText({ old: cli.echoTarget.port, new: cli.echoTarget.port }));
      const after = await sessionsOnEveryWorker(p, `${p.url}/?token=new`, 2, 4);
      for (const { ws } of after) {
        assert.equal(await echoed(ws, 'new token'), 'new token');
        ws.close();
      }
    } finally {
      await p.stop();
    }
  });

  test('auth plugin, --web and --allow-target work in every worker', async () => {
    const web = fs.mkdtempSync(path.join(cli.scratch, 'web-'));
    fs.writeFileSync(path.join(web, 'page.html'), '<p>served by a worker</p>');
    const p = await cli.proxy([
      '--workers',
      '2',
      '--auth-plugin',
      'BasicHTTPAuth',
      '--auth-source',
      'user:secret',
      '--web',
      web,
      '--allow-target',
      '127.0.0.1',
    ]);
    const authorization = `Basic ${Buffer.from('user:secret').toString('base64')}`;
    try {
      const sessions = await sessionsOnEveryWorker(p, p.url, 2, 2, { headers: { authorization } });
      for (const { ws } of sessions) ws.close();
      // Until both workers have refused (SO_REUSEPORT spreads by connection hash, so it may take a few).
      const refusedBy = (status: number, events: () => Array<Record<string, unknown>>): number =>
        new Set(
          events()
            .filter((e) => e.event === 'refused' && e.status === status)
            .map((e) => e.worker),
        ).size;
      for (let i = 0; i < 64 && refusedBy(401, p.events) < 2; i++) {
        await assert.rejects(openClient(p.url, 'binary'), /HTTP 401/);
        await p.waitForEvent(() => p.events().filter((e) => e.event === 'refused').length > i);
      }
      assert.equal(refusedBy(401, p.events), 2, 'both workers refused');
      for (let i = 0; i < 8; i++) {
        const body = await new Promise<string>((resolve, reject) => {
          http
            .get(`http://127.0.0.1:${p.port}/page.html`, (res) => {
              let text = '';
              res.setEncoding('utf8').on('data', (t: string) => (text += t));
              res.on('end', () => resolve(`${res.statusCode} ${text}`));
            })
            .on('error', reject);
        });
        assert.equal(body, '200 <p>served by a worker</p>');
      }
    } finally {
      await cli.stop(p);
    }
    // A target outside --allow-target is refused, whichever worker is asked.
    const tokens = path.join(cli.scratch, 'far.cfg');
    fs.writeFileSync(tokens, `far: 127.0.0.2:${cli.echoTarget.port}\n`);
    const q = await startProxy([
      '--log-format',
      'json',
      '--workers',
      '2',
      '--token-plugin',
      'TokenFile',
      '--token-source',
      tokens,
      '--allow-target',
      '127.0.0.1',
      '127.0.0.1:0',
    ]);
    try {
      const forbidden = (): number =>
        new Set(
          q
            .events()
            .filter((e) => e.event === 'refused' && e.status === 403)
            .map((e) => e.worker),
        ).size;
      for (let i = 0; i < 64 && forbidden() < 2; i++) {
        await assert.rejects(openClient(`${q.url}/?token=far`, 'binary'), /HTTP 403/);
        await q.waitForEvent(() => q.events().filter((e) => e.event === 'refused').length > i);
      }
      assert.equal(forbidden(), 2, 'both workers refused');
    } finally {
      await q.stop();
    }
  });

  test('--record: the files of sessions on different workers have different numbers and their own bytes', async () => {
    const base = path.join(cli.scratch, 'rec', 'session');
    fs.mkdirSync(path.dirname(base));
    const p = await cli.proxy(['--workers', '2', '--record', base]);
    try {
      const sessions = await sessionsOnEveryWorker(p, p.url, 2, 4);
      for (const { ws, conn } of sessions) {
        assert.equal(await echoed(ws, `recorded by conn ${conn}`), `recorded by conn ${conn}`);
        const closed = once(ws, 'close');
        ws.close();
        await closed;
      }
      await waitUntil('every recording to be written', () =>
        sessions.every(({ conn }) => fs.existsSync(`${base}.${conn}`) && fs.readFileSync(`${base}.${conn}`, 'utf8').includes('EOF')),
      );
      for (const { conn } of sessions) {
        const text = fs.readFileSync(`${base}.${conn}`, 'utf8');
        assert.ok(
          text.includes(Buffer.from(`recorded by conn ${conn}`).toString('base64')) || text.includes(`recorded by conn ${conn}`),
          text,
        );
      }
      assert.equal(fs.readdirSync(path.dirname(base)).length, sessions.length);
    } finally {
      await cli.stop(p);
    }
  });

  test('--heartbeat: every worker pings its clients', async () => {
    const p = await cli.proxy(['--workers', '2', '--heartbeat', '0.2']);
    try {
      const sessions = await sessionsOnEveryWorker(p, p.url, 2);
      await Promise.all(sessions.map(({ ws }) => once(ws, 'ping')));
      for (const { ws } of sessions) ws.close();
    } finally {
      await cli.stop(p);
    }
  });

  test('--idle-timeout counts the sessions of all workers: one open session on one worker keeps every worker up', async () => {
    const p = await cli.proxy(['--workers', '2', '--idle-timeout', '1']);
    const ws = await openClient(p.url, 'binary');
    await servingWorker(p, ws);
    // Well past the idle timeout: the other worker has had no session all along.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    assert.equal(p.proc.exitCode, null, p.stderr());
    assert.equal(await echoed(ws, 'kept'), 'kept');
    const closedAt = Date.now();
    ws.close();
    const status = await p.exited;
    assert.equal(status.code, 0, p.stderr());
    assert.ok(Date.now() - closedAt >= 900, 'it waited for the idle timeout after the last session');
    assert.match(p.stderr(), /--idle-timeout: no session for 1 s/);
    for (const pid of workerPids(p)) await gone(pid);
  });

  test('--timeout: every worker stops accepting; the proxy exits once the last session on any worker ends', async () => {
    const p = await cli.proxy(['--workers', '2', '--timeout', '1.5']);
    const sessions = await sessionsOnEveryWorker(p, p.url, 2);
    await p.waitForEvent((e) => e.event === 'timeout');
    await waitUntil('the port to be closed', async () => refused(p.port!));
    sessions[0]!.ws.close();
    for (const s of sessions.slice(1)) assert.equal(await echoed(s.ws, 'after the timeout'), 'after the timeout');
    assert.equal(p.proc.exitCode, null);
    for (const s of sessions.slice(1)) s.ws.close();
    assert.equal((await p.exited).code, 0, p.stderr());
  });

  test('--unix-listen: the socket has its mode, and every worker serves it', async () => {
    const socketPath = path.join(cli.scratch, 'workers.sock');
    const p = await startProxy(['--log-format', 'json', '--workers', '2', '--unix-listen', socketPath, `127.0.0.1:${cli.echoTarget.port}`]);
    try {
      assert.equal(fs.statSync(socketPath).mode & 0o777, 0o600);
      const workers = new Set<number>();
      for (let i = 0; i < 64 && workers.size < 2; i++) {
        const ws = await openClient(`ws+unix://${socketPath}:/`, 'binary');
        assert.equal(await echoed(ws, 'over unix'), 'over unix');
        const opened = p.events().filter((e) => e.event === 'open');
        workers.add(Number(opened[opened.length - 1]!.worker));
        ws.close();
      }
      assert.equal(workers.size, 2);
    } finally {
      await p.stop();
    }
  });

  test('-D --pid-file: the pid file names the primary, whose workers serve; SIGTERM to it stops them all', async () => {
    const pidFile = path.join(cli.scratch, 'daemon.pid');
    const port = await unusedPort();
    const run = await runCli(['-D', '--pid-file', pidFile, '--workers', '2', `127.0.0.1:${port}`, `127.0.0.1:${cli.echoTarget.port}`]);
    assert.equal(run.code, 0, run.stderr);
    const pid = Number(fs.readFileSync(pidFile, 'utf8'));
    const workers = descendants(pid);
    try {
      assert.equal(workers.length, 2, `the daemon's children: ${workers}`);
      for (let i = 0; i < 4; i++) {
        const ws = await openClient(`ws://127.0.0.1:${port}/`, 'binary');
        assert.equal(await echoed(ws, 'daemon'), 'daemon');
        ws.close();
      }
    } finally {
      process.kill(pid, 'SIGTERM');
    }
    for (const worker of [pid, ...workers]) await gone(worker);
    await waitUntil('the pid file to be removed', () => !fs.existsSync(pidFile));
  });

  test('a wrapped program is started once and served by every worker', async () => {
    const port = await unusedPort();
    const echoScript = path.join(cli.scratch, 'echo-server.mjs');
    fs.writeFileSync(echoScript, `import net from 'node:net'; net.createServer((s) => s.pipe(s)).listen(${port}, '127.0.0.1');\n`);
    const p = await startProxy(['--log-format', 'json', '--workers', '2', `127.0.0.1:${port}`, '--', process.execPath, echoScript]);
    try {
      await p.waitForEvent((e) => e.event === 'program-listening');
      const sessions = await sessionsOnEveryWorker(p, `ws://127.0.0.1:${port}/`, 2, 4);
      for (const { ws } of sessions) {
        assert.equal(await echoed(ws, 'wrapped'), 'wrapped');
        ws.close();
      }
      assert.equal(p.events().filter((e) => e.event === 'program-start').length, 1);
    } finally {
      await p.stop();
    }
  });
});

describe('--drain-timeout', () => {
  for (const workers of ['1', '2']) {
    test(`with ${workers} worker(s): SIGTERM closes the port at once, open sessions go on, and the proxy exits when the last ends`, async () => {
      const p = await cli.proxy(['--workers', workers, '--drain-timeout', '30']);
      const sessions = await sessionsOnEveryWorker(p, p.url, Number(workers));
      p.proc.kill('SIGTERM');
      await p.waitForEvent((e) => e.event === 'draining');
      await waitUntil('the port to be closed', async () => refused(p.port!));
      for (const { ws } of sessions) assert.equal(await echoed(ws, 'draining'), 'draining');
      assert.equal(p.proc.exitCode, null);
      const closedAt = Date.now();
      for (const { ws } of sessions) ws.close();
      assert.equal((await p.exited).code, 0, p.stderr());
      assert.ok(Date.now() - closedAt < 10_000, 'it exited once the last session ended, not at the drain timeout');
      assert.match(p.stderr(), /the last session ended/);
    });
  }

  test('the drain timeout reached: the open sessions are closed with 1001', async () => {
    const p = await cli.proxy(['--workers', '2', '--drain-timeout', '1']);
    const sessions = await sessionsOnEveryWorker(p, p.url, 2);
    const closes = sessions.map(({ ws }) => collect(ws));
    p.proc.kill('SIGTERM');
    for (const got of await Promise.all(closes)) assert.equal(got.code, 1001);
    assert.equal((await p.exited).code, 0, p.stderr());
    assert.match(p.stderr(), /--drain-timeout 1 s reached/);
  });

  test('SIGINT, or a second SIGTERM, while draining closes at once (1001)', async () => {
    for (const second of ['SIGINT', 'SIGTERM'] as const) {
      const p = await cli.proxy(['--drain-timeout', '60']);
      const ws = await openClient(p.url, 'binary');
      const closed = collect(ws);
      p.proc.kill('SIGTERM');
      await p.waitForEvent((e) => e.event === 'draining');
      p.proc.kill(second);
      assert.equal((await closed).code, 1001);
      assert.equal((await p.exited).code, 0, p.stderr());
    }
  });

  test('with no session open, SIGTERM stops at once', async () => {
    const p = await cli.proxy(['--drain-timeout', '60']);
    const startedAt = Date.now();
    p.proc.kill('SIGTERM');
    assert.equal((await p.exited).code, 0);
    assert.ok(Date.now() - startedAt < 10_000);
  });
});

describe('createProxy({ workers })', () => {
  test('the library runs workers too: session events from every worker reach the caller', async () => {
    const { createProxy } = await import('../../src/index.js');
    const echo = await startEchoServer();
    const proxy = createProxy({
      listen: '127.0.0.1:0',
      target: `127.0.0.1:${echo.port}`,
      workers: 2,
      logFile: path.join(cli.scratch, 'lib.log'),
    });
    const opened: number[] = [];
    const ended: number[] = [];
    proxy.on('session-open', (info) => opened.push(info.id));
    proxy.on('session-close', (info) => ended.push(info.id));
    try {
      const address = await proxy.listen();
      assert.equal(proxy.address, address);
      // Worker 1 gives odd session numbers and worker 2 even ones. With SO_REUSEPORT the kernel hashes
      // each connection to a worker, so a few may all land on one: open sessions until both have served.
      const servedByBoth = () => opened.some((id) => id % 2 === 0) && opened.some((id) => id % 2 === 1);
      let sessions = 0;
      while (sessions < 4 || (!servedByBoth() && sessions < 40)) {
        const ws = await openClient(`ws://${address}/`, 'binary');
        assert.equal(await echoed(ws, 'lib'), 'lib');
        const closed = once(ws, 'close');
        ws.close();
        await closed;
        sessions++;
        await waitUntil('the session-open event', () => opened.length === sessions);
      }
      await waitUntil('a session-close event per session', () => ended.length === sessions);
      assert.deepEqual([...opened].sort(), [...ended].sort());
      assert.ok(servedByBoth(), `ids ${opened}`);
      assert.match(fs.readFileSync(path.join(cli.scratch, 'lib.log'), 'utf8'), /worker 2: /);
    } finally {
      await proxy.close('test over');
      await echo.close();
    }
    assert.throws(
      () => createProxy({ listen: 0, workers: 2, tokenPlugin: { lookup: async () => undefined } }),
      /cannot share the tokenPlugin object/,
    );
  });
});
