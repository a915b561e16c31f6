// The subjects under test (this proxy with one worker process or two, Python websockify, direct TCP, a
// Node relay), started pinned to the subject core (or on every core, for the scaling workloads) and
// stopped by PID, and the in-process target servers of the load.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { processTree, treeListensOn } from './proc.js';

/** The repository root (this file runs from dist/bench/). */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The proxy's CLI, as built by `tsc -p .`. */
export const PROXY_CLI = join(ROOT, 'dist/src/cli/main.js');
const RELAY = join(ROOT, 'dist/bench/relay.js');
const PYTHON_WEBSOCKIFY = '/usr/bin/websockify';

/**
 * Every subject, in table order; `proxy` is the one the others are compared with. `proxy-2w` is the
 * same proxy started with `--workers 2` (two processes serving one port), for the scaling workloads.
 */
export const SUBJECTS = ['proxy', 'proxy-2w', 'python', 'direct', 'relay'] as const;
/** A subject's name. */
export type SubjectName = (typeof SUBJECTS)[number];

/**
 * Where processes run: the subject on one core, the load (this process and its helpers) on another;
 * `every` is the list of all cores, for a subject that must be free to use them (a child inherits the
 * load's pinning otherwise).
 */
export interface Pinning {
  subject: string | undefined;
  load: string | undefined;
  every: string | undefined;
}

/** A started subject. `pid` is undefined for direct TCP, which has no process in the path. */
export interface RunningSubject {
  name: SubjectName;
  port: number;
  pid: number | undefined;
  framed: boolean;
  tls: boolean;
  stop(): Promise<void>;
}

/** The subject cannot run this workload (TLS not supported, Python missing): shown as 'n/a', not a failure. */
export class NotAvailable extends Error {}

/** Options for {@link startSubject}. */
export interface SubjectOptions {
  targetPort: number;
  pinning: Pinning;
  /** Directory for the subject's log. */
  logDir: string;
  tls?: { cert: string; key: string } | undefined;
  /** Run on every core rather than pinned to the subject core (the scaling workloads). */
  spread?: boolean;
  /** Extra arguments for node before the proxy's script (for example --cpu-prof); other subjects take none. */
  nodeArgs?: string[];
  /** The proxy's CLI script (default: this tree's build), to measure a candidate build against Python and the limits. */
  proxyCli?: string | undefined;
}

/** A port that was free a moment ago (bound to 0 and released), for a child that needs one up front. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function pinned(core: string | undefined, argv: string[]): [string, string[]] {
  return core === undefined ? [argv[0]!, argv.slice(1)] : ['taskset', ['-c', core, ...argv]];
}

let logCounter = 0;

/**
 * Spawns a helper process pinned to `core` (taskset execs it, so the child's PID is the subject's),
 * waits until it listens on `port` (seen in /proc, not probed: another program that took the port in
 * the meantime must not pass for it, and a probe through a relay would reach the target and be taken
 * for the workload's connection), and returns a stop function that ends it and every process it
 * forked, by PID.
 * @throws NotAvailable when it exits with status 2 before listening (a usage error: an option it lacks).
 */
export async function spawnListening(
  name: string,
  argv: string[],
  port: number,
  core: string | undefined,
  logDir: string,
): Promise<{ pid: number; stop: () => Promise<void> }> {
  const logFile = join(logDir, `${++logCounter}-${name}.log`);
  const log = openSync(logFile, 'w');
  const [command, args] = pinned(core, argv);
  const child = spawn(command, args, { stdio: ['ignore', log, log] });
  closeSync(log);
  let exit: { code: number | null; signal: string | null } | undefined;
  const exited = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      resolve();
    }),
  );
  // Only for a child that hangs: a start on a busy machine can take seconds.
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exit) {
      const text = readFileSync(logFile, 'utf8').trim();
      const message = `${name} exited with ${exit.code ?? exit.signal} before listening: ${text.split('\n').slice(-3).join(' | ')}`;
      throw exit.code === 2 ? new NotAvailable(message) : new Error(message);
    }
    if (treeListensOn(child.pid!, port)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${name} did not listen on ${port} within 60 s (log: ${logFile})`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const pid = child.pid!;
  const stop = async (): Promise<void> => {
    if (exit) return;
    const tree = processTree(pid);
    // Python websockify raises from its SIGTERM handler, once: when the signal lands inside a finalizer
    // (reaping a worker) the exception is ignored and the process stays. Nothing is measured after a stop,
    // so a subject gets a second, not five, to exit before SIGKILL.
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 1000);
    await exited;
    clearTimeout(timer);
    // Forked workers (Python's) that outlived their parent.
    for (const worker of tree.slice(1)) {
      try {
        process.kill(worker, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  };
  return { pid, stop };
}

/** Why Python websockify cannot be a subject here, or undefined when it can. */
export function pythonUnavailable(): string | undefined {
  if (!existsSync(PYTHON_WEBSOCKIFY)) return `${PYTHON_WEBSOCKIFY} is not installed (apt-get install websockify)`;
  if (!existsSync('/usr/lib/python3/dist-packages/numpy')) return 'python3-numpy is not installed';
  return undefined;
}

/**
 * Starts a subject in front of the target at `options.targetPort`.
 * @throws NotAvailable when the subject cannot run in this configuration.
 */
export async function startSubject(name: SubjectName, options: SubjectOptions): Promise<RunningSubject> {
  const tls = options.tls !== undefined;
  if (name === 'direct') {
    if (tls) throw new NotAvailable('direct TCP has no TLS end');
    return { name, port: options.targetPort, pid: undefined, framed: false, tls, stop: async () => undefined };
  }
  const port = await freePort();
  const listen = `127.0.0.1:${port}`;
  const target = `127.0.0.1:${options.targetPort}`;
  const tlsArgs = options.tls ? ['--cert', options.tls.cert, '--key', options.tls.key] : [];
  let argv: string[];
  // `proxy` keeps the proxy's default, one process; a proxy without --workers exits with a usage
  // error (status 2) at `proxy-2w`, which then shows as not available.
  if (name === 'proxy' || name === 'proxy-2w')
    argv = [
      process.execPath,
      ...(options.nodeArgs ?? []),
      options.proxyCli ?? PROXY_CLI,
      ...(name === 'proxy-2w' ? ['--workers', '2'] : []),
      ...tlsArgs,
      listen,
      target,
    ];
  else if (name === 'relay')
    argv = [
      process.execPath,
      RELAY,
      'relay',
      String(port),
      String(options.targetPort),
      ...(options.tls ? [options.tls.cert, options.tls.key] : []),
    ];
  else {
    const why = pythonUnavailable();
    if (why) throw new NotAvailable(why);
    argv = [PYTHON_WEBSOCKIFY, ...tlsArgs, listen, target];
  }
  const core = options.spread ? options.pinning.every : options.pinning.subject;
  const started = await spawnListening(name, argv, port, core, options.logDir);
  return { name, port, pid: started.pid, framed: name !== 'relay', tls, stop: started.stop };
}

/** An echo server in its own process on the load core (see relay.ts). */
export async function startEchoProcess(
  pinning: Pinning,
  logDir: string,
): Promise<{ port: number; pid: number; stop: () => Promise<void> }> {
  const port = await freePort();
  const started = await spawnListening('echo', [process.execPath, RELAY, 'echo', String(port)], port, pinning.load, logDir);
  return { port, ...started };
}

/** A target server inside the load process. */
export interface Target {
  port: number;
  /** Resolves with the next accepted connection. */
  next(): Promise<net.Socket>;
  close(): Promise<void>;
}

/**
 * Starts a target on 127.0.0.1:0; `onConnection` sets each socket up (echo, sink, source...). With
 * `queue` false, accepted sockets are not kept for {@link Target.next} (workloads of many connections).
 */
export async function startTarget(onConnection: (socket: net.Socket) => void = () => undefined, queue = true): Promise<Target> {
  const sockets = new Set<net.Socket>();
  const backlog: net.Socket[] = [];
  const waiting: Array<(socket: net.Socket) => void> = [];
  const server = net.createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    onConnection(socket);
    const waiter = waiting.shift();
    if (waiter) waiter(socket);
    else if (queue) backlog.push(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', 1024, resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    next: () => {
      const ready = backlog.shift();
      return ready ? Promise.resolve(ready) : new Promise((resolve) => waiting.push(resolve));
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
