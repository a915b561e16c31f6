// `npm run soak -- --minutes N`: runs the real proxy (the built CLI) in front of an echo target and churns
// hundreds of concurrent WebSocket sessions through it (random bytes both ways, every byte checked; some
// sessions cut off abruptly), sampling the proxy's resident memory, V8 heap, file descriptors and
// event-loop delay. Exits 1 when any of them grows without bound after the warm-up, or when a byte came
// back wrong; prints a summary and writes bench/results/soak-<timestamp>.json. Not part of the test run.
//   --minutes N     how long to churn (default 10; fractions allowed)
//   --sessions N    concurrent sessions (default 200)
//   --interval S    seconds between samples (default 5)
//   --results-dir   where to write the JSON (default bench/results)
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { WebSocket } from 'ws';
import { type GrowthLimits, type GrowthVerdict, judgeGrowth, type Sample } from './growth.js';
import { machineInfo } from './proc.js';
import type { ProbeReport } from './soak-probe.js';
import { PROXY_CLI, ROOT } from './subjects.js';

function usage(message: string): never {
  process.stderr.write(`soak: ${message}\nusage: npm run soak -- [--minutes N] [--sessions N] [--interval S] [--results-dir DIR]\n`);
  process.exit(2);
}

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    sessions: { type: 'string', default: '200' },
    interval: { type: 'string', default: '5' },
    'results-dir': { type: 'string', default: join(ROOT, 'bench/results') },
  },
});
const minutes = Number(values.minutes);
const concurrency = Number(values.sessions);
const intervalS = Number(values.interval);
if (!(minutes > 0)) usage(`--minutes must be a positive number, not '${values.minutes}'`);
if (!Number.isInteger(concurrency) || concurrency < 1) usage(`--sessions must be a positive integer, not '${values.sessions}'`);
if (!(intervalS >= 0.5)) usage(`--interval must be at least 0.5 seconds, not '${values.interval}'`);

/** The metrics judged, with how much each may grow (see bench/growth.ts); memory in MiB. */
const METRICS = {
  rssMiB: { slopePerMinute: 1, absolute: 32, relative: 0.25 },
  heapUsedMiB: { slopePerMinute: 0.5, absolute: 16, relative: 0.25 },
  fds: { slopePerMinute: 2, absolute: 32, relative: 0.25 },
  loopDelayP99Ms: { slopePerMinute: 2, absolute: 50, relative: 1 },
} satisfies Record<string, GrowthLimits>;
type MetricName = keyof typeof METRICS;

// Payloads are slices of one random pool at random offsets: random content without the cost of
// generating it per message, and no two sessions send the same bytes at the same place.
const POOL = randomBytes(1 << 20);
const randomInt = (limit: number): number => Math.floor(Math.random() * limit);
function payload(): Buffer {
  // Mostly small messages, as interactive sessions send; now and then a large one.
  const size = Math.random() < 0.9 ? 1 + randomInt(2048) : 1 + randomInt(256 * 1024);
  const start = randomInt(POOL.length - size);
  return POOL.subarray(start, start + size);
}

/** The echo target: every connection sends back what it reads. */
async function startTarget(): Promise<net.Server> {
  const server = net.createServer((socket) => {
    socket.on('error', () => undefined);
    socket.pipe(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return server;
}

interface RunningProxy {
  proc: ChildProcess;
  port: number;
  latest: ProbeReport | undefined;
  errorLines: number;
}

/** Starts the CLI with the probe loaded into its process; resolves once it listens. */
async function startProxy(targetPort: number): Promise<RunningProxy> {
  const probe = pathToFileURL(join(ROOT, 'dist/bench/soak-probe.js')).href;
  const proc = spawn(process.execPath, ['--import', probe, PROXY_CLI, '--log-format', 'json', '127.0.0.1:0', `127.0.0.1:${targetPort}`], {
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  const running: RunningProxy = { proc, port: 0, latest: undefined, errorLines: 0 };
  proc.on('message', (message: { soakProbe?: ProbeReport }) => {
    if (message.soakProbe) running.latest = message.soakProbe;
  });
  let pending = '';
  const listening = new Promise<number>((resolve, reject) => {
    proc.once('exit', (code) => reject(new Error(`the proxy exited (${code}) before listening`)));
    proc.stderr!.setEncoding('utf8').on('data', (text: string) => {
      const lines = (pending + text).split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        let event: { event?: string; listen?: string; level?: number };
        try {
          event = JSON.parse(line) as typeof event;
        } catch {
          continue;
        }
        if (event.event === 'listening') resolve(Number(/:(\d+)$/.exec(String(event.listen))?.[1]));
        // pino's levels: 50 error, 60 fatal.
        if ((event.level ?? 0) >= 50) running.errorLines++;
      }
    });
  });
  running.port = await listening;
  return running;
}

/** Counts of what the sessions did. */
const totals = { sessions: 0, abrupt: 0, messages: 0, bytes: 0, failures: 0, mismatches: 0 };
const failureReasons = new Map<string, number>();

function fail(reason: string): void {
  totals.failures++;
  failureReasons.set(reason, (failureReasons.get(reason) ?? 0) + 1);
}

/**
 * One session: open, send a few messages, check that the echo is byte for byte what was sent, close.
 * One in five is cut off abruptly instead (the TCP connection dropped without a close frame), at a
 * random point, often with bytes still in flight.
 */
async function session(port: number): Promise<void> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`, ['binary'], { perMessageDeflate: false });
  const received: Buffer[] = [];
  let receivedLength = 0;
  let wake: (() => void) | undefined;
  let failed: Error | undefined;
  ws.on('message', (data: Buffer) => {
    received.push(data);
    receivedLength += data.length;
    wake?.();
  });
  ws.on('open', () => wake?.());
  ws.on('error', (err) => {
    failed ??= err;
    wake?.();
  });
  ws.on('close', () => {
    failed ??= new Error('closed early');
    wake?.();
  });
  const until = (done: () => boolean, ms: number): Promise<boolean> =>
    new Promise((resolve) => {
      const timer = setTimeout(() => finish(false), ms);
      const finish = (ok: boolean): void => {
        clearTimeout(timer);
        wake = undefined;
        resolve(ok);
      };
      wake = () => {
        if (done()) finish(true);
        else if (failed) finish(false);
      };
      wake();
    });
  if (!(await until(() => ws.readyState === WebSocket.OPEN, 30_000))) {
    fail(`open: ${failed?.message ?? 'timeout'}`);
    ws.terminate();
    return;
  }
  const count = 1 + randomInt(8);
  const abruptAfter = Math.random() < 0.2 ? randomInt(count + 1) : -1;
  const sent: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    if (i === abruptAfter) break;
    const bytes = payload();
    sent.push(bytes);
    ws.send(bytes);
  }
  totals.sessions++;
  totals.messages += sent.length;
  if (abruptAfter >= 0) {
    totals.abrupt++;
    ws.terminate();
    return;
  }
  const expected = Buffer.concat(sent);
  if (!(await until(() => receivedLength >= expected.length, 60_000))) {
    fail(`echo: ${failed?.message ?? 'timeout'}`);
    ws.terminate();
    return;
  }
  if (!Buffer.concat(received).equals(expected)) totals.mismatches++;
  totals.bytes += 2 * expected.length;
  ws.removeAllListeners('close');
  const closed = once(ws, 'close');
  ws.close(1000);
  await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 10_000))]);
}

/** Descriptors the process holds, from /proc (undefined once it is gone). */
function fdCount(pid: number): number | undefined {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return undefined;
  }
}

/** Resident memory as the kernel counts it, in bytes. */
function procRss(pid: number): number | undefined {
  try {
    const kib = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'latin1'))?.[1];
    return kib === undefined ? undefined : Number(kib) * 1024;
  } catch {
    return undefined;
  }
}

interface Row {
  t: number;
  sessions: number;
  rssMiB: number;
  heapUsedMiB: number;
  fds: number;
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
}

const MiB = 1024 * 1024;
const round = (value: number, digits = 1): number => Number(value.toFixed(digits));

async function main(): Promise<void> {
  const target = await startTarget();
  const proxy = await startProxy((target.address() as net.AddressInfo).port);
  const pid = proxy.proc.pid!;
  const started = Date.now();
  const endAt = started + minutes * 60_000;
  const rows: Row[] = [];
  process.stdout.write(`soak: ${concurrency} concurrent sessions for ${minutes} min against proxy pid ${pid}\n`);

  const sampler = setInterval(() => {
    const probe = proxy.latest;
    const rss = procRss(pid);
    const fds = fdCount(pid);
    if (!probe || rss === undefined || fds === undefined) return;
    const row: Row = {
      t: round((Date.now() - started) / 1000),
      sessions: totals.sessions,
      rssMiB: round(rss / MiB),
      heapUsedMiB: round(probe.heapUsed / MiB),
      fds,
      loopDelayP99Ms: round(probe.loopDelayP99, 2),
      loopDelayMaxMs: round(probe.loopDelayMax, 2),
    };
    rows.push(row);
    process.stdout.write(
      `  ${String(Math.round(row.t)).padStart(5)} s  sessions ${String(row.sessions).padStart(8)}  rss ${row.rssMiB} MiB  heap ${row.heapUsedMiB} MiB  fds ${row.fds}  loop p99 ${row.loopDelayP99Ms} ms\n`,
    );
  }, intervalS * 1000);

  const proxyGone = once(proxy.proc, 'exit').then(([code, signal]) => ({ code, signal }));
  let stopping = false;
  let crashed: unknown;
  void proxyGone.then((status) => {
    if (!stopping) crashed = status;
  });
  const loops = Array.from({ length: concurrency }, async () => {
    while (Date.now() < endAt && crashed === undefined) await session(proxy.port);
  });
  await Promise.all(loops);
  clearInterval(sampler);
  const seconds = (Date.now() - started) / 1000;

  stopping = true;
  if (crashed === undefined) proxy.proc.kill('SIGTERM');
  const exit = await proxyGone;
  target.close();

  // The warm-up (a fifth of the run, at least a minute, at most half) is left out of the verdict.
  const warmUp = Math.min(seconds / 2, Math.max(60, seconds / 5));
  const measured = rows.filter((row) => row.t >= warmUp);
  const verdicts = Object.fromEntries(
    Object.entries(METRICS).map(([name, limits]) => {
      const samples: Sample[] = measured.map((row) => ({ t: row.t, value: row[name as MetricName] }));
      return [name, { ...judgeGrowth(samples, limits), limits }];
    }),
  ) as Record<MetricName, GrowthVerdict & { limits: GrowthLimits }>;
  const growing = Object.entries(verdicts)
    .filter(([, verdict]) => verdict.grows)
    .map(([name]) => name);
  const ok =
    crashed === undefined &&
    exit.code === 0 &&
    totals.mismatches === 0 &&
    growing.length === 0 &&
    totals.failures <= totals.sessions / 1000;

  const summary = {
    minutes,
    concurrency,
    seconds: round(seconds),
    sessionsPerSecond: round(totals.sessions / seconds),
    ...totals,
    failureReasons: Object.fromEntries(failureReasons),
    proxyErrorLogLines: proxy.errorLines,
    proxyExit: crashed ?? exit,
    peak: {
      rssMiB: Math.max(...rows.map((r) => r.rssMiB)),
      heapUsedMiB: Math.max(...rows.map((r) => r.heapUsedMiB)),
      fds: Math.max(...rows.map((r) => r.fds)),
      loopDelayMaxMs: Math.max(...rows.map((r) => r.loopDelayMaxMs)),
    },
    verdicts,
    growing,
    ok,
  };
  process.stdout.write(`\n${JSON.stringify({ ...summary, verdicts: undefined }, null, 2)}\n`);
  for (const [name, verdict] of Object.entries(verdicts)) {
    process.stdout.write(
      `  ${name.padEnd(15)} first quarter ${round(verdict.firstQuarterMedian, 2)}  last quarter ${round(verdict.lastQuarterMedian, 2)}  slope ${round(verdict.slopePerMinute, 3)}/min  ${verdict.grows ? 'GROWS' : 'bounded'}\n`,
    );
  }
  const dir = values['results-dir'];
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `soak-${new Date(started).toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify({ machine: machineInfo(), summary, samples: rows }, null, 2)}\n`);
  process.stdout.write(`soak: ${ok ? 'passed' : 'FAILED'}; results in ${file}\n`);
  process.exit(ok ? 0 : 1);
}

await main();
