import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The built CLI entry point, as `npx websockify` runs it. */
export const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

/** A proxy process started by {@link startProxy}. */
export interface RunningProxy {
  proc: ChildProcess;
  /** The TCP port it listens on (undefined for Unix and inetd listeners). */
  port: number | undefined;
  /** `ws://127.0.0.1:PORT` */
  url: string;
  /** Everything written to stderr so far. */
  stderr(): string;
  /** Log events (JSON lines) seen so far. */
  events(): Array<Record<string, unknown>>;
  /** Resolves with the exit status. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Sends a signal (SIGTERM by default) and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Waits until a log event satisfies `test`. */
  waitForEvent(test: (event: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
}

/** Options for {@link startProxy}. */
export interface StartOptions {
  /** stdin of the proxy (for --inetd: a listening socket's fd). */
  stdin?: 'ignore' | number;
  /** Do not wait for the 'listening' event (for start-up failures). */
  noWait?: boolean;
  /** A command line that runs the proxy (`ip netns exec NS`: on a host of a test network). */
  prefix?: readonly string[];
  /** The proxy's environment (default this process's). */
  env?: NodeJS.ProcessEnv;
  /** Another built command that logs the same 'listening' event (default: the proxy, {@link CLI}). */
  script?: string;
}

/**
 * Starts the real CLI with JSON logs (every refusal logged, unless `args` set `--refusal-log-interval`) and waits until it listens. Every test that starts one must stop it.
 */
export async function startProxy(args: string[], options: StartOptions = {}): Promise<RunningProxy> {
  const [command, ...prefix] = [...(options.prefix ?? []), process.execPath];
  // Every refusal of the proxy logged (tests look for their lines), unless a test sets the interval itself.
  const script = options.script ?? CLI;
  const refusals = script !== CLI || args.includes('--refusal-log-interval') ? [] : ['--refusal-log-interval', '0'];
  const proc = spawn(command!, [...prefix, script, '--log-format', 'json', ...refusals, ...args], {
    stdio: [options.stdin ?? 'ignore', 'pipe', 'pipe'],
    env: options.env ?? process.env,
  });
  let stderr = '';
  const events: Array<Record<string, unknown>> = [];
  const waiters = new Set<() => void>();
  proc.stderr!.setEncoding('utf8');
  proc.stderr!.on('data', (text: string) => {
    stderr += text;
    const lines = stderr.split('\n');
    events.length = 0;
    for (const line of lines) {
      if (!line.startsWith('{')) continue;
      try {
        events.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // a partial line: parsed again when the rest arrives
      }
    }
    for (const wake of waiters) wake();
  });
  proc.stdout!.resume();
  const exited = once(proc, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }));
  const waitForEvent = (test: (event: Record<string, unknown>) => boolean, timeoutMs = 30_000): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      const check = (): boolean => {
        const found = events.find(test);
        if (!found) return false;
        waiters.delete(wake);
        clearTimeout(timer);
        resolve(found);
        return true;
      };
      const wake = (): void => void check();
      const timer = setTimeout(() => {
        waiters.delete(wake);
        reject(new Error(`no matching log event within ${timeoutMs} ms; stderr:\n${stderr}`));
      }, timeoutMs);
      waiters.add(wake);
      if (!check()) void exited.then(() => setTimeout(wake, 50));
    });
  let port: number | undefined;
  if (!options.noWait) {
    const listening = await Promise.race([
      // With --workers, each worker's line names it; the process's own line comes once all listen.
      waitForEvent((e) => e.event === 'listening' && e.worker === undefined),
      exited.then((status) => {
        throw new Error(`proxy exited (${status.code}) before listening:\n${stderr}`);
      }),
    ]);
    const match = /:(\d+)$/.exec(String(listening.listen));
    port = match ? Number(match[1]) : undefined;
  }
  return {
    proc,
    port,
    url: `ws://127.0.0.1:${port}`,
    stderr: () => stderr,
    events: () => events,
    exited,
    waitForEvent,
    stop: async (signal = 'SIGTERM') => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
}

/** TokenFile's text for `tokens`: a `token: 127.0.0.1:port` line for each. */
export function tokenFileText(tokens: Record<string, number>): string {
  return Object.entries(tokens)
    .map(([token, port]) => `${token}: 127.0.0.1:${port}\n`)
    .join('');
}

/**
 * Writes `tokens` to `file` (see {@link tokenFileText}) and starts the CLI as {@link startProxy} does, with
 * `--token-plugin TokenFile --token-source FILE`, the options `args`, and listening on 127.0.0.1:0 (the
 * tokens name the targets). Every test that starts one must stop it.
 */
export async function startTokenFileProxy(
  file: string,
  tokens: Record<string, number>,
  args: readonly string[] = [],
  options?: StartOptions,
): Promise<RunningProxy> {
  fs.writeFileSync(file, tokenFileText(tokens));
  return startProxy(['--token-plugin', 'TokenFile', '--token-source', file, ...args, '127.0.0.1:0'], options);
}

/** Runs the CLI to completion (for usage errors and start-up failures). */
export async function runCli(args: string[], timeoutMs = 30_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const proc = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout.setEncoding('utf8').on('data', (t: string) => (stdout += t));
  proc.stderr.setEncoding('utf8').on('data', (t: string) => (stderr += t));
  const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
  const [code] = (await once(proc, 'exit')) as [number | null];
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/**
 * The proxies one test file starts. `stopAll()` (call it from `after`) stops whatever is still running,
 * so a failing test leaves no process behind.
 */
export class ProxyPool {
  private readonly running = new Set<RunningProxy>();

  /** Starts the CLI as {@link startProxy} does, and keeps it for {@link stopAll}. */
  async start(args: string[], options?: StartOptions): Promise<RunningProxy> {
    const proxy = await startProxy(args, options);
    this.running.add(proxy);
    return proxy;
  }

  /** Stops one proxy now. */
  async stop(proxy: RunningProxy): Promise<void> {
    await proxy.stop();
    this.running.delete(proxy);
  }

  /** Stops every proxy still running. */
  async stopAll(): Promise<void> {
    await Promise.all([...this.running].map((proxy) => this.stop(proxy)));
  }
}

/**
 * A Python program (for `/usr/bin/python3 -c`) that plays inetd: it binds 127.0.0.1:0, prints the port,
 * moves the listening socket onto fd 0 and becomes the command in its arguments.
 */
export const LISTENING_STDIN_LAUNCHER = [
  'import os, socket, sys',
  's = socket.socket(socket.AF_INET, socket.SOCK_STREAM)',
  "s.bind(('127.0.0.1', 0))",
  's.listen(16)',
  "sys.stdout.write('%d\\n' % s.getsockname()[1])",
  'sys.stdout.flush()',
  'os.dup2(s.fileno(), 0)',
  's.close()',
  'os.execv(sys.argv[1], sys.argv[1:])',
].join('\n');
