// --user/--group as root: the proxy binds a port below 1024 and reads a root-only key, then runs as a
// throw-away system user (created here, removed at the end), as /proc shows; the wrapped program runs as
// that user too; with --workers the workers do and the primary keeps root (to start replacements that
// bind and read the key); a reload the user cannot read is logged and the old certificate keeps serving.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, test } from 'node:test';
import tls from 'node:tls';
import { StartupError } from '../../src/errors.js';
import { lookupIdentity } from '../../src/service/privileges.js';
import { cliFixture } from '../helpers/cli-fixture.js';
import { CLI, ProxyPool, type RunningProxy, runCli } from '../helpers/proxy.js';
import { assertTools, skipWithout } from '../helpers/tools.js';
import { echoed, openClient } from '../helpers/ws-client.js';
import { echoSession } from '../wrap/support.js';

const SOCAT = '/usr/bin/socat';
/** The throw-away user (system user, own group of the same name). */
const USER = `wsfy-test-${process.pid}`;
// CI runs as root: there a non-root run fails rather than skips.
const notRoot = process.getuid?.() !== 0 && process.env.CI !== 'true' ? 'needs root (as in CI)' : false;

const pool = new ProxyPool();
let ids: { uid: number; gid: number } | undefined;
const cli = cliFixture('privileges', {
  before() {
    if (notRoot) return;
    execFileSync('useradd', ['--system', '--no-create-home', '--user-group', '--shell', '/usr/sbin/nologin', USER]);
    ids = {
      uid: Number(execFileSync('id', ['-u', USER], { encoding: 'utf8' })),
      gid: Number(execFileSync('id', ['-g', USER], { encoding: 'utf8' })),
    };
  },
  async after() {
    await pool.stopAll();
    if (ids) execFileSync('userdel', [USER]);
  },
});

/** The Uid and Gid lines of a process (real, effective, saved, filesystem) and its supplementary groups. */
function credentials(pid: number): { uid: number[]; gid: number[]; groups: string } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const line = (name: string): string => new RegExp(`^${name}:[ \\t]*(.*)$`, 'm').exec(status)?.[1]?.trim() ?? '';
  return { uid: line('Uid').split(/\s+/).map(Number), gid: line('Gid').split(/\s+/).map(Number), groups: line('Groups') };
}

/** Asserts that `pid` runs as the test user in every id, with no supplementary group. */
function runsAsUser(pid: number, what: string): void {
  const { uid, gid, groups } = credentials(pid);
  assert.deepEqual(uid, Array(4).fill(ids!.uid), `${what}: uids`);
  assert.deepEqual(gid, Array(4).fill(ids!.gid), `${what}: gids`);
  assert.equal(groups, '', `${what}: supplementary groups`);
}

/** A free port below 1024 on 127.0.0.1 (tried from 900 up). */
async function privilegedPort(): Promise<number> {
  for (let port = 900; port < 1024; port++) {
    const server = net.createServer();
    const free = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (free) {
      await new Promise((resolve) => server.close(resolve));
      return port;
    }
  }
  throw new Error('no free port from 900 to 1023 on 127.0.0.1');
}

/** Copies of the server certificate and key in a directory of their own, the key root-only (0600). */
function rootOnlyKey(): { dir: string; cert: string; key: string } {
  // The user may reach the directory (a reload is to fail on the key's own mode, nothing else).
  fs.chmodSync(cli.scratch, 0o755);
  const dir = fs.mkdtempSync(path.join(cli.scratch, 'tls-'));
  fs.chmodSync(dir, 0o755);
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  fs.copyFileSync(cli.server.cert, cert);
  fs.copyFileSync(cli.server.key, key);
  fs.chmodSync(cert, 0o644);
  fs.chmodSync(key, 0o600);
  return { dir, cert, key };
}

/**
 * Starts the proxy (kept in `pool`) with `--user` the test user and a root-only copy of the server's key
 * (see {@link rootOnlyKey}), and `args` (the rest: other options, listen address, target); returns it
 * with the copies' paths.
 */
async function startAsUser(args: string[]): Promise<{ p: RunningProxy; cert: string; key: string }> {
  const { cert, key } = rootOnlyKey();
  const p = await pool.start(['--user', USER, '--cert', cert, '--key', key, ...args]);
  return { p, cert, key };
}

/** The SHA-256 fingerprint of the certificate a new TLS connection gets. */
async function servedFingerprint(port: number): Promise<string> {
  const socket = tls.connect({ host: '127.0.0.1', port, ca: cli.ca });
  try {
    await once(socket, 'secureConnect');
    return socket.getPeerX509Certificate()!.fingerprint256;
  } finally {
    socket.destroy();
  }
}

describe('--user and --group', { skip: notRoot }, () => {
  test('a port below 1024 and a root-only key, then the proxy and the wrapped program run as the user', {
    skip: skipWithout(SOCAT),
  }, async () => {
    assertTools(SOCAT);
    const port = await privilegedPort();
    const { p } = await startAsUser([
      '--group',
      USER,
      `127.0.0.1:${port}`,
      '--',
      SOCAT,
      `TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr,fork`,
      'EXEC:cat',
    ]);
    const dropped = p.events().find((e) => e.event === 'privileges-dropped');
    assert.deepEqual(
      { user: dropped?.user, uid: dropped?.uid, group: dropped?.group, gid: dropped?.gid },
      { user: USER, uid: ids!.uid, group: USER, gid: ids!.gid },
    );
    runsAsUser(p.proc.pid!, 'the proxy');
    const started = await p.waitForEvent((e) => e.event === 'program-listening');
    runsAsUser(Number(started.pid), 'the wrapped program');
    // Sessions go through, plain and over TLS with the key read before root was given up.
    assert.equal(await echoSession(`ws://127.0.0.1:${port}/`, 'plain, below 1024'), 'plain, below 1024');
    const secure = await openClient(`wss://127.0.0.1:${port}/`, 'binary', { ca: cli.ca });
    secure.close();
    await pool.stop(p);
  });

  test('SIGHUP with a new key the user cannot read: a clear error is logged and the old certificate keeps serving', async () => {
    const { p, cert, key } = await startAsUser(['127.0.0.1:0', `127.0.0.1:${cli.echoTarget.port}`]);
    runsAsUser(p.proc.pid!, 'the proxy');
    const before = await servedFingerprint(p.port!);
    assert.equal(before, cli.server.fingerprint);
    // A renewed pair, the key root-only as before (written beside and renamed over, as deployment tools do).
    const renewed = cli.pki.issue('renewed', cli.pki.ca);
    for (const [from, to, mode] of [
      [renewed.cert, cert, 0o644],
      [renewed.key, key, 0o600],
    ] as const) {
      fs.copyFileSync(from, `${to}.new`);
      fs.chmodSync(`${to}.new`, mode);
      fs.renameSync(`${to}.new`, to);
    }
    p.proc.kill('SIGHUP');
    const failed = await p.waitForEvent((e) => e.event === 'tls-reload-failed');
    assert.match(
      String(failed.reason),
      new RegExp(`cannot read TLS key file ${key}: permission denied \\(this process runs as uid ${ids!.uid} `),
    );
    assert.match(String(failed.msg), /keeping the previous one/);
    assert.equal(await servedFingerprint(p.port!), before);
    const ws = await openClient(`wss://127.0.0.1:${p.port}/`, undefined, { ca: cli.ca });
    assert.equal(await echoed(ws, 'still served'), 'still served');
    ws.close();
    await pool.stop(p);
  });

  test('with --workers the workers run as the user (the group defaults to its login group); the primary keeps root', async () => {
    const port = await privilegedPort();
    const { p } = await startAsUser(['--workers', '2', `127.0.0.1:${port}`, `127.0.0.1:${cli.echoTarget.port}`]);
    const listening = p.events().find((e) => e.event === 'listening' && e.worker === undefined);
    const pids = listening?.pids as number[];
    assert.equal(pids.length, 2);
    for (const pid of pids) runsAsUser(pid, `worker pid ${pid}`);
    assert.equal(credentials(p.proc.pid!).uid[1], 0, 'the primary keeps root');
    for (let i = 0; i < 4; i++) {
      const ws = await openClient(`wss://127.0.0.1:${port}/`, undefined, { ca: cli.ca });
      assert.equal(await echoed(ws, `session ${i}`), `session ${i}`);
      ws.close();
    }
    // A replacement worker binds and reads the root-only key as the first ones did.
    process.kill(pids[0]!, 'SIGKILL');
    const replaced = await p.waitForEvent((e) => e.event === 'worker-listening' && e.worker === 1 && e.pid !== pids[0]);
    runsAsUser(Number(replaced.pid), 'the replacement worker');
    await pool.stop(p);
  });

  test('an unknown user or group stops the start (exit 1); --group alone is a usage error (exit 2)', async () => {
    const user = await runCli(['--user', 'no-such-user-wsfy', '127.0.0.1:0', '127.0.0.1:1']);
    assert.equal(user.code, 1, user.stderr);
    assert.equal(user.stderr, "websockify: --user: no such user 'no-such-user-wsfy'\n");
    const group = await runCli(['--user', USER, '--group', 'no-such-group-wsfy', '127.0.0.1:0', '127.0.0.1:1']);
    assert.equal(group.code, 1, group.stderr);
    assert.equal(group.stderr, "websockify: --group: no such group 'no-such-group-wsfy'\n");
    const alone = await runCli(['--group', USER, '127.0.0.1:0', '127.0.0.1:1']);
    assert.equal(alone.code, 2, alone.stderr);
    assert.match(alone.stderr, /^websockify: error: --group needs --user/);
  });

  test('not root: --user for another user stops the start (exit 1) saying root is needed', async () => {
    const proc = spawn(process.execPath, [CLI, '--user', 'root', '127.0.0.1:0', '127.0.0.1:1'], {
      uid: ids!.uid,
      gid: ids!.gid,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    proc.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    const [code] = await once(proc, 'exit');
    assert.equal(code, 1, stderr);
    assert.equal(
      stderr,
      `websockify: --user root: changing user needs root, and this process runs as uid ${ids!.uid} (drop --user, or start as root)\n`,
    );
  });
});

test('a user or group that is not a name or number is a usage error (exit 2)', async () => {
  for (const args of [
    ['--user', 'two words'],
    ['--user', 'nobody', '--group', 'a:b'],
  ]) {
    const result = await runCli([...args, '127.0.0.1:0', '127.0.0.1:1']);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /^websockify: error: --(user|group): expected a name or number, got '(two words|a:b)'/);
  }
});

test('users and groups are looked up by name or number; the group defaults to the login group', () => {
  const root = { user: 'root', uid: 0, group: 'root', gid: 0 };
  assert.deepEqual(lookupIdentity({ user: 'root' }), root);
  assert.deepEqual(lookupIdentity({ user: '0', group: '0' }), root);
  const nobody = lookupIdentity({ user: 'nobody', group: 'nogroup' });
  assert.deepEqual(nobody, { user: 'nobody', uid: 65534, group: 'nogroup', gid: 65534 });
  assert.throws(
    () => lookupIdentity({ user: '4123456789' }),
    (err) => err instanceof StartupError && /no such user '4123456789'/.test(err.message),
  );
});
