import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { CLI, runCli } from '../helpers/proxy.js';

/** Unprivileged account used to make the kernel refuse what root may do. */
const NOBODY = 65534;
const isRoot = process.getuid?.() === 0;

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'wsfy-startup-'));
after(() => fs.rmSync(scratch, { recursive: true, force: true }));

/** Runs the CLI to completion, as another user when `uid` is given (root only). */
async function runCliAs(args: string[], uid?: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const proc = spawn(process.execPath, [CLI, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(uid === undefined ? {} : { uid, gid: uid }),
  });
  let stdout = '';
  let stderr = '';
  proc.stdout.setEncoding('utf8').on('data', (t: string) => (stdout += t));
  proc.stderr.setEncoding('utf8').on('data', (t: string) => (stderr += t));
  const timer = setTimeout(() => proc.kill('SIGKILL'), 10000);
  const [code] = (await once(proc, 'exit')) as [number | null];
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** A start-up failure: exit 1 and exactly one line on stderr, matching `line`. */
function assertOneLineFailure(result: { code: number | null; stdout: string; stderr: string }, line: RegExp): void {
  assert.equal(result.code, 1, `stderr: ${result.stderr}`);
  assert.match(result.stderr, /^websockify: [^\n]+\n$/, `not one line: ${JSON.stringify(result.stderr)}`);
  assert.match(result.stderr, line);
  assert.equal(result.stdout, '');
}

test('port already in use: one line, exit 1', async () => {
  const holder = net.createServer();
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
  try {
    const { port } = holder.address() as net.AddressInfo;
    const result = await runCli([`127.0.0.1:${port}`, '127.0.0.1:5900']);
    assertOneLineFailure(result, new RegExp(`^websockify: cannot listen on 127\\.0\\.0\\.1:${port}: address already in use\\n$`));
  } finally {
    await new Promise((resolve) => holder.close(resolve));
  }
});

const unprivilegedPortStart = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8').trim());
test('privileged port without the privilege: permission denied, exit 1', {
  skip: unprivilegedPortStart <= 80 ? 'this kernel lets anyone bind port 80' : false,
}, async () => {
  // Root may bind port 80, so root runs the proxy as nobody: the kernel then refuses as it would for any user.
  const result = await runCliAs(['127.0.0.1:80', '127.0.0.1:5900'], isRoot ? NOBODY : undefined);
  assertOneLineFailure(result, /^websockify: cannot listen on 127\.0\.0\.1:80: permission denied\n$/);
});

test('Unix socket in a directory the user may not write: permission denied, exit 1', async () => {
  const closed = fs.mkdtempSync(path.join(scratch, 'closed-'));
  // Root ignores directory modes, so root runs the proxy as nobody; the directory stays root's, mode 0500.
  fs.chmodSync(closed, 0o500);
  fs.chmodSync(scratch, 0o755);
  const socketPath = path.join(closed, 'ws.sock');
  const result = await runCliAs(['--unix-listen', socketPath, '127.0.0.1:5900'], isRoot ? NOBODY : undefined);
  assertOneLineFailure(result, new RegExp(`^websockify: cannot listen on ${socketPath}: permission denied\\n$`));
  assert.equal(fs.existsSync(socketPath), false);
});

test('listen address not on this machine: address not available, exit 1', async () => {
  // 192.0.2.0/24 is TEST-NET-1 (RFC 5737): never assigned to a real interface.
  const result = await runCli(['192.0.2.1:6080', '127.0.0.1:5900']);
  assertOneLineFailure(result, /^websockify: cannot listen on 192\.0\.2\.1:6080: address not available on this machine\n$/);
});

test('listen host name that does not resolve: one line, exit 1', async () => {
  // .invalid never resolves (RFC 2606).
  for (const args of [['nonexistent.invalid:0'], ['-6', 'nonexistent.invalid:0']]) {
    const result = await runCli([...args, '127.0.0.1:5900']);
    assertOneLineFailure(result, /^websockify: cannot listen on nonexistent\.invalid:0: (no such host name|host name lookup failed)/);
  }
});

test('--log-file in a directory that does not exist: one line, exit 1, nothing listens', async () => {
  const file = path.join(scratch, 'no-such-dir', 'websockify.log');
  const result = await runCli(['--log-file', file, '127.0.0.1:0', '127.0.0.1:5900']);
  assertOneLineFailure(result, new RegExp(`^websockify: cannot open log file ${file}: no such directory\\n$`));
});

test('--log-file naming a directory: one line, exit 1', async () => {
  const result = await runCli(['--log-file', scratch, '127.0.0.1:0', '127.0.0.1:5900']);
  assertOneLineFailure(result, new RegExp(`^websockify: cannot open log file ${scratch}: it is a directory\\n$`));
});

test('--unix-listen on a live socket: refused, exit 1, the other server keeps its socket', async () => {
  const socketPath = path.join(scratch, 'live.sock');
  const live = net.createServer((socket) => {
    socket.on('error', () => undefined); // the proxy's probe hangs up at once
    socket.end('still here');
  });
  await new Promise<void>((resolve) => live.listen(socketPath, resolve));
  try {
    const result = await runCli(['--unix-listen', socketPath, '127.0.0.1:5900']);
    assertOneLineFailure(result, new RegExp(`^websockify: cannot listen on ${socketPath}: another process is listening there\\n$`));
    // The live server still answers on its path.
    const client = net.connect(socketPath);
    const chunks: Buffer[] = [];
    client.on('data', (chunk: Buffer) => chunks.push(chunk));
    await once(client, 'end');
    assert.equal(Buffer.concat(chunks).toString(), 'still here');
  } finally {
    await new Promise((resolve) => live.close(resolve));
  }
});

test('--unix-listen on a file that is not a socket: refused, exit 1, the file is kept', async () => {
  const file = path.join(scratch, 'regular-file');
  fs.writeFileSync(file, 'precious');
  const result = await runCli(['--unix-listen', file, '127.0.0.1:5900']);
  assertOneLineFailure(result, new RegExp(`^websockify: cannot listen on ${file}: the file exists and is not a socket\\n$`));
  assert.equal(fs.readFileSync(file, 'utf8'), 'precious');
});

test('--inetd when stdin is not a listening socket: one line, exit 1', async () => {
  // runCli's stdin is /dev/null.
  const result = await runCli(['--inetd', '127.0.0.1:5900']);
  assertOneLineFailure(result, /^websockify: cannot listen on inetd socket \(fd 0\): not a listening socket\n$/);
});
