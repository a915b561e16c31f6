// The package as a user gets it: `npm pack` of the built tree, installed with its dependencies from the
// registry into an empty directory; then its command and its library are used from there, and the
// tarball's contents are checked.
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import WebSocket from 'ws';
import { startEchoServer, type TestServer } from '../helpers/targets.js';

const execFileAsync = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** What `npm pack --json` says of one tarball. */
interface Packed {
  filename: string;
  size: number;
  unpackedSize: number;
  entryCount: number;
  files: Array<{ path: string; size: number }>;
}

// The variables of the `npm test` around us (npm_config_*, npm_package_*) would carry this project's
// settings into the npm we start: it runs as a user's would.
const npmEnv = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name)));

async function npm(args: string[], cwd: string): Promise<{ stdout: string; stderr: string }> {
  try {
    return await execFileAsync('npm', args, { cwd, env: npmEnv, maxBuffer: 64 * 1024 * 1024 });
  } catch (err) {
    const { stdout, stderr } = err as { stdout?: string; stderr?: string };
    throw new Error(`npm ${args.join(' ')} failed in ${cwd}:\n${stderr ?? ''}${stdout ?? ''}`, { cause: err });
  }
}

let tmp = '';
let app = '';
let packed: Packed;
let echo: TestServer;

before(
  async () => {
    assert.ok(fs.existsSync(path.join(ROOT, 'dist/src/cli/main.js')), 'dist/ is not built: npm run build');
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'websockify-ts-package-'));
    const packDir = path.join(tmp, 'pack');
    fs.mkdirSync(packDir);
    // --ignore-scripts: `prepare` would rebuild dist/ (deleting it first) under the tests running beside
    // this one; the tree is built already.
    const pack = await npm(['pack', '--ignore-scripts', '--json', '--pack-destination', packDir], ROOT);
    [packed] = JSON.parse(pack.stdout) as [Packed];
    const tarball = path.join(packDir, packed.filename);

    app = path.join(tmp, 'app');
    fs.mkdirSync(app);
    // As a user's project declares it: bufferutil's install script may run (it finds its prebuilt addon);
    // the tarball's own `prepare` (the build, which needs the devDependencies) may not. npm names a
    // tarball by its file: URL.
    const allowScripts = { bufferutil: true, [`file:${tarball}`]: false };
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module', allowScripts }));
    await npm(['install', '--no-audit', '--no-fund', tarball], app);
    echo = await startEchoServer();
  },
  { timeout: 300_000 },
);

after(async () => {
  await echo?.close();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

/** Sends 100 KB of random bytes through the proxy at `url` and checks the echo brings back the same. */
async function roundTrip(url: string): Promise<void> {
  const ws = new WebSocket(url, 'binary');
  await once(ws, 'open');
  const sent = randomBytes(100_000);
  const received: Buffer[] = [];
  let length = 0;
  const echoed = new Promise<void>((resolve, reject) => {
    ws.on('message', (data: Buffer) => {
      received.push(data);
      length += data.length;
      if (length >= sent.length) resolve();
    });
    ws.on('error', reject);
    ws.on('close', (code, reason) => reject(new Error(`closed (${code} ${reason}) after ${length} of ${sent.length} bytes`)));
  });
  for (let offset = 0; offset < sent.length; offset += 16384) ws.send(sent.subarray(offset, offset + 16384));
  await echoed;
  assert.ok(Buffer.concat(received).equals(sent), 'the bytes that came back differ from those sent');
  ws.close(1000);
  await once(ws, 'close');
}

/** Collects a child's output as text. */
function capture(stream: NodeJS.ReadableStream | null): () => string {
  let text = '';
  stream?.setEncoding('utf8');
  stream?.on('data', (chunk: string) => (text += chunk));
  return () => text;
}

/** Resolves with the first output line that `match` accepts; rejects when the child exits first. */
function waitForLine(child: ChildProcess, output: () => string, match: (line: string) => boolean, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const check = (): void => {
      const line = output()
        .split('\n')
        .find((candidate) => match(candidate));
      if (line === undefined) return;
      cleanup();
      resolve(line);
    };
    const exited = (code: number | null): void => {
      cleanup();
      reject(new Error(`exited (${code}) before ${what}; output:\n${output()}`));
    };
    const cleanup = (): void => {
      child.stdout?.off('data', check);
      child.stderr?.off('data', check);
      child.off('exit', exited);
    };
    child.stdout?.on('data', check);
    child.stderr?.on('data', check);
    child.on('exit', exited);
    check();
  });
}

test('the tarball holds the built program, and no tests, bench, sources or source maps', (t) => {
  const kib = (bytes: number): string => `${(bytes / 1024).toFixed(1)} KiB`;
  const summary = `${packed.filename}: ${kib(packed.size)} packed, ${kib(packed.unpackedSize)} unpacked, ${packed.entryCount} files`;
  t.diagnostic(summary);
  console.log(`package size: ${summary}`);
  const paths = packed.files.map((file) => file.path);
  const unwanted = paths.filter(
    (file) =>
      file.endsWith('.map') ||
      /(^|\/)(test|bench)\//.test(file) ||
      /\.test\.[cm]?js$/.test(file) ||
      (file.endsWith('.ts') && !file.endsWith('.d.ts')),
  );
  assert.deepEqual(unwanted, []);
  for (const wanted of [
    'package.json',
    'README.md',
    'dist/src/cli/main.js',
    'dist/src/cli/replay.js',
    'dist/web/websock.js',
    'native/notify.c',
    'systemd/websockify@.service',
    'systemd/websockify@.socket',
    'dist/src/cli/client.js',
    'dist/web/player.html',
    'dist/web/player.js',
  ]) {
    assert.ok(paths.includes(wanted), `${wanted} is not in the tarball`);
  }
});

test('the installed websockify-client command runs', { timeout: 60_000 }, async () => {
  const bin = path.join(app, 'node_modules', '.bin', 'websockify-client');
  const child = spawn(bin, ['--help'], { cwd: app, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = once(child, 'exit');
  const stdout = capture(child.stdout);
  const [code] = await exited;
  assert.equal(code, 0);
  assert.match(stdout(), /usage: websockify-client/i);
});

test('the installed websockify command proxies a WebSocket client to a TCP target', { timeout: 60_000 }, async () => {
  const bin = path.join(app, 'node_modules', '.bin', 'websockify');
  const child = spawn(bin, ['--log-format', 'json', '127.0.0.1:0', `127.0.0.1:${echo.port}`], {
    cwd: app,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const exited = once(child, 'exit');
  const stderr = capture(child.stderr);
  try {
    const line = await waitForLine(child, stderr, (text) => text.includes('"event":"listening"'), 'listening');
    const listen = String((JSON.parse(line) as { listen?: unknown }).listen);
    const port = /:(\d+)$/.exec(listen)?.[1];
    assert.ok(port, `no port in the listening event: ${line}`);
    await roundTrip(`ws://127.0.0.1:${port}/`);
  } finally {
    child.kill('SIGTERM');
  }
  const [code] = await exited;
  assert.equal(code, 0, stderr());
});

test('the installed library: createProxy from "websockify-ts" listens, proxies and closes; its types resolve', {
  timeout: 60_000,
}, async () => {
  const paths = packed.files.map((file) => file.path);
  for (const wanted of ['dist/src/index.js', 'dist/src/index.d.ts']) assert.ok(paths.includes(wanted), `${wanted} is not in the tarball`);
  // A user's module in the user's directory, so that 'websockify-ts' resolves through the package's exports.
  fs.writeFileSync(
    path.join(app, 'library.mjs'),
    `import { createProxy } from 'websockify-ts';
const proxy = createProxy({ listen: '127.0.0.1:0', target: process.argv[2] });
process.stdout.write(\`listening on \${await proxy.listen()}\\n\`);
// Closed when the test ends our stdin.
process.stdin.resume();
await new Promise((resolve) => process.stdin.on('end', resolve));
await proxy.close();
process.stdout.write('closed\\n');
`,
  );
  const child = spawn(process.execPath, ['library.mjs', `127.0.0.1:${echo.port}`], { cwd: app, stdio: ['pipe', 'pipe', 'pipe'] });
  const exited = once(child, 'exit');
  const stdout = capture(child.stdout);
  const stderr = capture(child.stderr);
  const output = (): string => stdout() + stderr();
  let address = '';
  try {
    const line = await waitForLine(child, output, (text) => text.startsWith('listening on '), 'listen() resolved');
    address = line.slice('listening on '.length);
    assert.match(address, /^127\.0\.0\.1:\d+$/);
    await roundTrip(`ws://${address}/`);
  } finally {
    child.stdin.end();
  }
  const [code] = await exited;
  assert.equal(code, 0, output());
  assert.match(stdout(), /^closed$/m);
  // close() resolved, so nothing listens there any more.
  const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
  const refused = await new Promise<string>((resolve) => {
    const socket = net.connect(port, host);
    socket.on('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
  assert.equal(refused, 'ECONNREFUSED');

  // The shipped .d.ts files type a user's TypeScript against the same contract.
  fs.writeFileSync(
    path.join(app, 'consumer.ts'),
    `import { createProxy } from 'websockify-ts';
const proxy = createProxy({ listen: '127.0.0.1:0', target: '127.0.0.1:5900' });
export const address: string = await proxy.listen();
export const closed: Promise<void> = proxy.close();
`,
  );
  fs.writeFileSync(
    path.join(app, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        strict: true,
        noEmit: true,
        skipLibCheck: true,
        types: ['node'],
        // Node's types from this project: the user's directory has only what the package depends on.
        typeRoots: [path.join(ROOT, 'node_modules', '@types')],
      },
      files: ['consumer.ts'],
    }),
  );
  const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const typecheck = await new Promise<{ code: number | null; output: string }>((resolve) => {
    execFile(process.execPath, [tsc, '-p', app], { cwd: app }, (err, out, errOut) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, output: out + errOut }),
    );
  });
  assert.equal(typecheck.code, 0, `tsc on a user's module failed:\n${typecheck.output}`);
});
