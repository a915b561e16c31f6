import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { promisify } from 'node:util';
import { unusedPort } from '../helpers/targets.js';

const run = promisify(execFile);

/** The programs the VNC tests run, with the Debian package that provides each. */
const VNC_PROGRAMS: Record<string, string> = {
  Xvnc: 'tigervnc-standalone-server',
  xsetroot: 'x11-xserver-utils',
  xclock: 'x11-apps',
  xlogo: 'x11-apps',
};

/** The programs of {@link VNC_PROGRAMS} that are not on PATH, each with its package. */
export function missingVncPrograms(): string[] {
  const dirs = (process.env.PATH ?? '').split(':').filter(Boolean);
  return Object.entries(VNC_PROGRAMS)
    .filter(([program]) => !dirs.some((dir) => existsSync(`${dir}/${program}`)))
    .map(([program, pkg]) => `${program} (apt-get install ${pkg})`);
}

/** A TigerVNC server started by {@link startXvnc}; every test that starts one must stop it. */
export interface VncServer {
  /** The X display, such as `:3`, for X clients. */
  display: string;
  /** The loopback TCP port of its RFB (VNC) listener. */
  rfbPort: number;
  /** Paints the root window one solid colour (`#rrggbb`) with xsetroot. */
  setRoot(colour: string): Promise<void>;
  /** Starts an X client on this display; it is stopped with the server. */
  launch(program: string, args: string[]): ChildProcess;
  /** Stops the X clients, then the server (SIGTERM, SIGKILL after 5 s), and removes what a killed server left. */
  stop(): Promise<void>;
}

/** Options for {@link startXvnc}. */
export interface XvncOptions {
  width?: number;
  height?: number;
  /** The desktop name sent to VNC clients (Xvnc's default is user@host). */
  desktop?: string;
}

/**
 * Starts Xvnc without authentication, its RFB listener on 127.0.0.1 only and its X display chosen by the
 * server itself (`-displayfd`, so two test runs never race for a number); resolves once the RFB port
 * answers with its protocol version. A port taken between choosing it and Xvnc binding it is retried.
 */
export async function startXvnc(options: XvncOptions = {}): Promise<VncServer> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await tryStart(await unusedPort(), options);
    } catch (err) {
      lastError = err;
    }
  }
  throw lastError;
}

async function tryStart(rfbPort: number, options: XvncOptions): Promise<VncServer> {
  const geometry = `${options.width ?? 800}x${options.height ?? 600}`;
  const args = [
    '-displayfd',
    '3',
    '-rfbport',
    String(rfbPort),
    '-interface',
    '127.0.0.1',
    '-SecurityTypes',
    'None',
    '-geometry',
    geometry,
    '-depth',
    '24',
    '-nolisten',
    'tcp',
    ...(options.desktop ? ['-desktop', options.desktop] : []),
  ];
  const proc = spawn('Xvnc', args, { stdio: ['ignore', 'ignore', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr!.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  const exited = once(proc, 'exit');
  const spawnFailed = once(proc, 'error').then(([err]) => {
    throw new Error(`cannot run Xvnc (apt-get install tigervnc-standalone-server): ${(err as Error).message}`);
  });
  const clients = new Set<ChildProcess>();
  let display = '';
  const stop = async (): Promise<void> => {
    for (const client of clients) if (client.exitCode === null && client.signalCode === null) client.kill();
    await Promise.all(
      [...clients].map((client) => (client.exitCode === null && client.signalCode === null ? once(client, 'exit') : undefined)),
    );
    if (proc.pid === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
    // A killed server cannot remove its socket and lock; a clean exit has already done so.
    if (proc.signalCode === 'SIGKILL' && display) removeLeftovers(display.slice(1), proc.pid);
  };
  try {
    display = await Promise.race([
      readDisplay(proc),
      spawnFailed,
      exited.then(() => {
        throw new Error(`Xvnc exited before it was ready:\n${stderr}`);
      }),
    ]);
    await Promise.race([
      waitForRfb(rfbPort),
      exited.then(() => {
        throw new Error(`Xvnc exited before its RFB port answered:\n${stderr}`);
      }),
    ]);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    display,
    rfbPort,
    setRoot: async (colour) => {
      await run('xsetroot', ['-display', display, '-solid', colour], { timeout: 10000 });
    },
    launch: (program, programArgs) => {
      const client = spawn(program, ['-display', display, ...programArgs], { stdio: 'ignore' });
      client.on('error', () => undefined); // a missing program shows in the test's own checks
      clients.add(client);
      return client;
    },
    stop,
  };
}

/** Reads the display number Xvnc writes to fd 3 once it accepts X connections. */
function readDisplay(proc: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const pipe = proc.stdio[3] as NodeJS.ReadableStream;
    pipe.setEncoding('utf8');
    pipe.on('data', (chunk: string) => {
      text += chunk;
      if (text.includes('\n')) resolve(`:${text.trim()}`);
    });
    pipe.on('error', reject);
  });
}

/** Connects until the RFB listener sends its version line (`RFB 003.008\n`), for up to 20 s. */
async function waitForRfb(port: number): Promise<void> {
  const deadline = Date.now() + 20000;
  for (;;) {
    const banner = await new Promise<string>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      let received = '';
      socket.setTimeout(2000, () => socket.destroy());
      socket.setEncoding('latin1');
      socket.on('data', (chunk: string) => {
        received += chunk;
        if (received.length >= 12) socket.destroy();
      });
      socket.on('error', () => undefined);
      socket.on('close', () => resolve(received));
    });
    if (/^RFB \d{3}\.\d{3}\n/.test(banner)) return;
    if (Date.now() > deadline) throw new Error(`port ${port}: no RFB version line within 20 s (got ${JSON.stringify(banner)})`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Removes the X socket and lock of display `number` when the lock (if any) names `pid`. */
function removeLeftovers(number: string, pid: number): void {
  const lock = `/tmp/.X${number}-lock`;
  if (existsSync(lock) && Number(readFileSync(lock, 'latin1').trim()) !== pid) return;
  rmSync(lock, { force: true });
  rmSync(`/tmp/.X11-unix/X${number}`, { force: true });
}
