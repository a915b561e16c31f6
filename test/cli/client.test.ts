import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { payload, readAll, readBytes, writeAll } from '../client/support.js';
import { ProxyPool } from '../helpers/proxy.js';
import { startEchoServer, startServer, unusedPort } from '../helpers/targets.js';
import { assertTools, skipWithout } from '../helpers/tools.js';
import { waitUntil } from '../helpers/wait.js';

/** The built `websockify-client` command. */
const CLIENT = fileURLToPath(new URL('../../src/cli/client.js', import.meta.url));
const pool = new ProxyPool();
after(() => pool.stopAll());

/** Runs the client CLI to its exit; its stdin gets `input` and ends, or stays open with `keepStdin`. */
async function runClient(
  args: string[],
  input?: string,
  keepStdin = false,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const proc = spawn(process.execPath, [CLIENT, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout.setEncoding('latin1').on('data', (t: string) => (stdout += t));
  proc.stderr.setEncoding('utf8').on('data', (t: string) => (stderr += t));
  if (!keepStdin) proc.stdin.end(input);
  const timer = setTimeout(() => proc.kill('SIGKILL'), 30_000);
  const [code] = (await once(proc, 'exit')) as [number | null];
  clearTimeout(timer);
  return { code, stdout, stderr };
}

describe('websockify-client usage', () => {
  test('bad command lines exit 2 with the problem and the usage line', async () => {
    for (const [args, problem] of [
      [[], /missing the URL/],
      [['6000'], /missing the listen port or the URL/],
      [['6000', 'http://example.com/'], /unsupported URL scheme 'http:'/],
      [['6000', 'ws://example.com/', 'extra'], /too many arguments/],
      [['70000', 'ws://example.com/'], /invalid port '70000'/],
      [['--stdio', '--unix-listen', '/tmp/x', 'ws://example.com/'], /--stdio and --unix-listen cannot be used together/],
      [['--key', 'k.pem', '6000', 'wss://example.com/'], /--key needs --cert/],
      [['--insecure', '6000', 'ws://example.com/'], /--insecure need a wss:\/\/ URL/],
      [['--header', 'nocolon', '6000', 'ws://example.com/'], /expected 'Name: value'/],
      [['--protocol', 'text', '6000', 'ws://example.com/'], /--protocol.*binary, base64/],
      [['--heartbeat', 'soon', '6000', 'ws://example.com/'], /expected a number of seconds/],
    ] as const) {
      const { code, stderr } = await runClient([...args]);
      assert.equal(code, 2, `${args.join(' ')}: ${stderr}`);
      assert.match(stderr, problem);
      assert.match(stderr, /usage: websockify-client/);
    }
  });

  test('--help lists the options; an unreadable --cafile is a start-up failure (exit 1)', async () => {
    const help = await runClient(['--help']);
    assert.equal(help.code, 0);
    for (const flag of [
      '--stdio',
      '--protocol',
      '--header',
      '--origin',
      '--cafile',
      '--insecure',
      '--cert',
      '--key',
      '--connect-timeout',
      '--heartbeat',
      '--run-once',
      '--unix-listen',
      '--log-format',
    ]) {
      assert.match(help.stdout, new RegExp(flag));
    }
    const missing = await runClient(['--cafile', '/nonexistent/ca.pem', '--stdio', 'wss://127.0.0.1:1/']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /cannot read CA file \/nonexistent\/ca.pem/);
  });
});

describe('websockify-client listening', { timeout: 60_000 }, () => {
  test('--run-once: one connection carried byte-exact both ways, then the command exits 0', async () => {
    const echo = await startEchoServer();
    try {
      const proxy = await pool.start(['127.0.0.1:0', `127.0.0.1:${echo.port}`]);
      const client = await pool.start(['--run-once', '127.0.0.1:0', `${proxy.url}/`], { script: CLIENT });
      const app = net.connect({ port: client.port!, host: '127.0.0.1', allowHalfOpen: true });
      const data = payload(4 * 1024 * 1024);
      const [back] = await Promise.all([readBytes(app, data.length), writeAll(app, data)]);
      assert.ok(back.equals(data));
      app.end();
      await readAll(app);
      assert.equal((await client.exited).code, 0);
      const closed = client.events().find((e) => e.event === 'closed');
      assert.equal(closed?.bytesToServer, data.length);
    } finally {
      await echo.close();
    }
  });

  test('--protocol base64 and --header reach the server: it speaks base64 to this client', async () => {
    const echo = await startEchoServer();
    try {
      const proxy = await pool.start(['127.0.0.1:0', `127.0.0.1:${echo.port}`]);
      const client = await pool.start(
        ['--protocol', 'base64', '--header', 'Cookie: session=1', '--heartbeat', '1', '127.0.0.1:0', `${proxy.url}/`],
        {
          script: CLIENT,
        },
      );
      const app = net.connect(client.port!, '127.0.0.1');
      app.write('text frames underneath');
      assert.equal((await readBytes(app, 22)).toString(), 'text frames underneath');
      const opened = await proxy.waitForEvent((e) => e.event === 'open');
      assert.equal(opened.protocol, 'base64');
      app.destroy();
      await pool.stop(client);
    } finally {
      await echo.close();
    }
  });

  test('--unix-listen: local programs connect through a Unix socket file (mode 0600)', async () => {
    const echo = await startEchoServer();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wsfy-client-unix-'));
    const socketPath = path.join(dir, 'client.sock');
    try {
      const proxy = await pool.start(['127.0.0.1:0', `127.0.0.1:${echo.port}`]);
      const client = await pool.start(['--unix-listen', socketPath, `${proxy.url}/`], { script: CLIENT });
      assert.equal(fs.statSync(socketPath).mode & 0o777, 0o600);
      const app = net.connect(socketPath);
      app.write('over a unix socket');
      assert.equal((await readBytes(app, 18)).toString(), 'over a unix socket');
      app.destroy();
      await pool.stop(client);
    } finally {
      await echo.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('websockify-client --stdio', { timeout: 120_000 }, () => {
  test('one session on stdin/stdout: the server side ends, stdout gets every byte and the command exits 0; exit 1 when the WebSocket cannot be opened', async () => {
    const greeting = payload(2 * 1024 * 1024).toString('latin1');
    const sender = await startServer((socket) => socket.end(Buffer.from(greeting, 'latin1')));
    try {
      const proxy = await pool.start(['127.0.0.1:0', `127.0.0.1:${sender.port}`]);
      // stdin stays open: the WebSocket's close alone ends the session.
      const served = await runClient(['--stdio', `${proxy.url}/`], undefined, true);
      assert.equal(served.code, 0, served.stderr);
      assert.ok(served.stdout === greeting, `stdout got ${served.stdout.length} of ${greeting.length} bytes`);

      const refused = await runClient(['--stdio', `ws://127.0.0.1:${await unusedPort()}/`], 'lost\n');
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /cannot open WebSocket to ws:\/\/127\.0\.0\.1:\d+\/: connect ECONNREFUSED/);
      assert.equal(refused.stdout, '');
    } finally {
      await sender.close();
    }
  });

  const SSHD = '/usr/sbin/sshd';
  const SSH = '/usr/bin/ssh';
  const KEYGEN = '/usr/bin/ssh-keygen';
  test("ssh -o ProxyCommand='websockify-client --stdio ws://...' logs in to a real sshd through websockify-ts and runs a command", {
    skip: skipWithout(SSHD, SSH, KEYGEN),
  }, async () => {
    assertTools(SSHD, SSH, KEYGEN);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wsfy-client-ssh-'));
    let sshd: ChildProcess | undefined;
    try {
      execFileSync(KEYGEN, ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, 'host_key')]);
      execFileSync(KEYGEN, ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, 'user_key')]);
      fs.copyFileSync(path.join(dir, 'user_key.pub'), path.join(dir, 'authorized_keys'));
      const port = await unusedPort();
      const config = path.join(dir, 'sshd_config');
      fs.writeFileSync(
        config,
        [
          'ListenAddress 127.0.0.1',
          `HostKey ${path.join(dir, 'host_key')}`,
          `PidFile ${path.join(dir, 'sshd.pid')}`,
          `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
          'PermitRootLogin yes',
          'PubkeyAuthentication yes',
          'PasswordAuthentication no',
          'KbdInteractiveAuthentication no',
          'UsePAM no',
          // The test's temporary directory is not the user's home, which StrictModes would insist on.
          'StrictModes no',
          '',
        ].join('\n'),
      );
      // sshd's privilege separation directory, made by its service unit on a booted system.
      fs.mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
      let sshdLog = '';
      sshd = spawn(SSHD, ['-D', '-e', '-f', config, '-p', String(port)], { stdio: ['ignore', 'ignore', 'pipe'] });
      sshd.stderr!.setEncoding('utf8').on('data', (text: string) => (sshdLog += text));
      const running = sshd;
      await waitUntil(`sshd to listen on ${port} (${sshdLog})`, async () => {
        if (running.exitCode !== null) throw new Error(`sshd exited: ${sshdLog}`);
        const probe = net.connect(port, '127.0.0.1');
        // sshd's version line; the probe is closed at once, or sshd would keep it for its login grace time.
        return new Promise<boolean>((resolve) => {
          probe.once('data', () => resolve(true));
          probe.once('error', () => resolve(false));
          probe.setTimeout(1000, () => resolve(false));
        }).finally(() => probe.destroy());
      });
      const proxy = await pool.start(['127.0.0.1:0', `127.0.0.1:${port}`]);
      const proxyCommand = `${process.execPath} ${CLIENT} --stdio ws://127.0.0.1:${proxy.port}/`;
      const ssh = spawn(
        SSH,
        [
          '-F',
          '/dev/null',
          '-i',
          path.join(dir, 'user_key'),
          '-o',
          'IdentitiesOnly=yes',
          '-o',
          'BatchMode=yes',
          '-o',
          'StrictHostKeyChecking=no',
          '-o',
          'UserKnownHostsFile=/dev/null',
          '-o',
          `ProxyCommand=${proxyCommand}`,
          'root@sshd-behind-websockify',
          'echo ok',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let out = '';
      let err = '';
      ssh.stdout.setEncoding('utf8').on('data', (t: string) => (out += t));
      ssh.stderr.setEncoding('utf8').on('data', (t: string) => (err += t));
      const timer = setTimeout(() => ssh.kill('SIGKILL'), 60_000);
      const [code] = (await once(ssh, 'exit')) as [number | null];
      clearTimeout(timer);
      assert.equal(code, 0, `ssh: ${err}\nsshd: ${sshdLog}`);
      assert.equal(out, 'ok\n');
      // The session went through the proxy.
      await proxy.waitForEvent((e) => e.event === 'open' && e.target === `127.0.0.1:${port}`);
    } finally {
      if (sshd && sshd.exitCode === null) {
        sshd.kill('SIGTERM');
        await once(sshd, 'exit');
      }
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
