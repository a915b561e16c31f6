// The workloads (a)-(i). Each measures one subject at a time (except the slow readers, which only
// measure memory and run side by side), with a fresh subject process and target, every byte checked.
// (a)-(g) measure one process pinned to a core; (h) and (i) measure how the proxy scales over the
// machine's cores with one worker process and with two.
import type net from 'node:net';
import { fdLimit, resetPeak, treeCpuSeconds, treeMemory, treeRunDelaySeconds } from './proc.js';
import {
  NotAvailable,
  type Pinning,
  type RunningSubject,
  type SubjectName,
  startEchoProcess,
  startSubject,
  startTarget,
  type Target,
} from './subjects.js';
import {
  BULK_MESSAGE,
  type ClientSession,
  connectClient,
  IntegrityError,
  PATTERN,
  PERIOD,
  pump,
  SMALL_MESSAGE,
  StreamCheck,
  wireSlice,
} from './wire.js';

/** Sizes of every workload; `--quick` shrinks them all. */
export interface Sizes {
  bulkBytes: number;
  latencyWarmup: number;
  latencySamples: number;
  idleConnections: number;
  /** Python forks a process per connection: its idle test holds fewer. */
  idleConnectionsPython: number;
  /** Sessions opened and closed before the idle baseline, so that code paths are compiled and pools grown. */
  idleWarmup: number;
  /**
   * Pause for the subject to settle (garbage collected, closed sessions freed) before a memory reading:
   * before the idle baseline; twice as long with the idle sessions open; half before a slow flow starts.
   */
  settleMs: number;
  /** Stop the most-connections probe here (the load's own fd limit must stay above it). */
  probeCap: number;
  handshakes: number;
  /** Sessions set up before the measured ones, so that one-time costs (JIT compilation, pools) are not counted per session. */
  handshakeWarmup: number;
  handshakeConcurrency: number;
  /** Concurrent connectors of the scaling setup workload (h): enough to keep two workers busy. */
  scalingConcurrency: number;
  /** VNC-like sessions held at once in (i) (Python: as many of them as it holds). */
  vncSessions: number;
  /** How long (i) runs its sessions, in seconds: a multiple of 0.5, for whole numbers of messages. */
  vncSeconds: number;
  messages: number;
  slowBytes: number;
  slowRate: number;
  tlsBulkBytes: number;
  tlsHandshakes: number;
}

const MiB = 2 ** 20;
const GiB = 2 ** 30;
/** Frames per write in the messages workload (f). */
const MESSAGE_BATCH = 1024;

/** The full run's sizes (the figures). */
export const FULL_SIZES: Sizes = {
  bulkBytes: GiB,
  latencyWarmup: 2000,
  latencySamples: 20000,
  idleConnections: 5000,
  idleConnectionsPython: 200,
  idleWarmup: 50,
  settleMs: 1000,
  probeCap: 15000,
  handshakes: 3000,
  handshakeWarmup: 300,
  handshakeConcurrency: 16,
  scalingConcurrency: 32,
  vncSessions: 1000,
  vncSeconds: 60,
  messages: 256 * 1024,
  slowBytes: GiB,
  slowRate: 10 * MiB,
  tlsBulkBytes: GiB,
  tlsHandshakes: 1000,
};

/**
 * `--quick`: every code path of every workload exercised once, in seconds, for the smoke test (which
 * must also pass on a machine whose cores are busy with other work). The figures mean nothing.
 * Transfers stay whole periods of the pattern, message counts whole batches.
 */
export const QUICK_SIZES: Sizes = {
  bulkBytes: PERIOD,
  latencyWarmup: 5,
  latencySamples: 50,
  idleConnections: 8,
  idleConnectionsPython: 4,
  idleWarmup: 4,
  settleMs: 100,
  // Above idleConnections, so that the most-connections probe runs too.
  probeCap: 12,
  handshakes: 8,
  handshakeWarmup: 2,
  handshakeConcurrency: 2,
  scalingConcurrency: 4,
  vncSessions: 8,
  vncSeconds: 0.5,
  messages: 2 * MESSAGE_BATCH,
  slowBytes: PERIOD,
  slowRate: 10 * MiB,
  tlsBulkBytes: PERIOD,
  tlsHandshakes: 4,
};

/** What a workload run needs. */
export interface Context {
  sizes: Sizes;
  pinning: Pinning;
  logDir: string;
  tls: { cert: string; key: string };
  /** Node options for the proxy subject (--cpu-prof). */
  proxyNodeArgs: string[];
  /** `--proxy-cli`: another build of the proxy to measure. */
  proxyCli: string | undefined;
  /** Payload bytes verified so far, over every run. */
  bytesChecked: number;
}

/** One subject's figures from one run; strings for notes. */
export type Metrics = Record<string, number | string | boolean>;
/** A workload's outcome per subject: figures, or why the subject could not take part. */
export type Outcome = Metrics | NotAvailable;

/** A workload: an id (a-i), a title, its subjects, and how to run it over a list of them. */
export interface Workload {
  id: string;
  title: string;
  /** The subjects it measures (the runner passes those of them that `--subjects` keeps). */
  subjects: readonly SubjectName[];
  /** Run once per bench rather than once per run (memory figures and long probes). */
  once?: boolean;
  run(ctx: Context, subjects: readonly SubjectName[]): Promise<Map<SubjectName, Outcome>>;
}

/** The subjects of (a)-(g): one process each, and the limits any proxy is bounded by. */
const PINNED_SUBJECTS: readonly SubjectName[] = ['proxy', 'python', 'direct', 'relay'];
/** The subjects of the scaling workloads (h, i): the proxy with one worker and with two, beside Python and direct TCP. */
const SCALING_SUBJECTS: readonly SubjectName[] = ['proxy', 'proxy-2w', 'python', 'direct'];

/** The first error of a measurement wins; every wait races against it and against a stall. */
class Guard {
  private rejectFailure!: (err: Error) => void;
  private readonly failure = new Promise<never>((_, reject) => (this.rejectFailure = reject));
  private timer: NodeJS.Timeout | undefined;
  finished = false;

  constructor() {
    this.failure.catch(() => undefined);
  }

  /** Fails the measurement (ignored once it has finished: teardown resets are expected). */
  readonly fail = (err: Error): void => {
    if (!this.finished) this.rejectFailure(err);
  };

  race<T>(promise: Promise<T>): Promise<T> {
    return Promise.race([promise, this.failure]);
  }

  /** Fails when `progress()` has not changed for `stallMs`. */
  watch(progress: () => number, what: string, stallMs = 30000): void {
    let last = -1;
    let since = Date.now();
    this.timer = setInterval(() => {
      const now = progress();
      if (now !== last) {
        last = now;
        since = Date.now();
      } else if (Date.now() - since > stallMs) this.fail(new Error(`${what}: no progress for ${stallMs / 1000} s`));
    }, 1000);
    this.timer.unref();
  }

  finish(): void {
    this.finished = true;
    clearInterval(this.timer);
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const seconds = (from: bigint): number => Number(process.hrtime.bigint() - from) / 1e9;
/**
 * Starts metering a subject: the returned function gives the CPU seconds it used since, and the
 * seconds it waited for a CPU (other load on its cores); NaN for direct TCP.
 */
function meter(subject: RunningSubject): () => { cpu: number; waited: number } {
  const pid = subject.pid;
  if (pid === undefined) return () => ({ cpu: NaN, waited: NaN });
  const cpu = treeCpuSeconds(pid);
  const waited = treeRunDelaySeconds(pid);
  return () => ({ cpu: treeCpuSeconds(pid) - cpu, waited: treeRunDelaySeconds(pid) - waited });
}
/**
 * Starts metering this process (the load client and its in-process targets): the returned function
 * gives the CPU seconds it used since. Where the subject is not pinned away from it, this is the
 * competition the subject had for the cores.
 */
function meterLoad(): () => number {
  const from = process.cpuUsage();
  return () => {
    const used = process.cpuUsage(from);
    return (used.user + used.system) / 1e6;
  };
}
const round = (n: number, digits = 3): number => (Number.isFinite(n) ? Number(n.toFixed(digits)) : n);
/** A CPU figure, or 'n/a' for direct TCP (no process to measure). */
const cpuFigure = (n: number, digits = 3): number | string => (Number.isFinite(n) ? round(n, digits) : 'n/a');
/** The `q` quantile of ascending `sorted` samples (nearest rank below). */
const quantile = (sorted: ArrayLike<number>, q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
const endpoint = (s: RunningSubject): { port: number; framed: boolean; tls: boolean } => ({ port: s.port, framed: s.framed, tls: s.tls });

/** Resolves once `check` is complete after feeding it from `source`'s data events; fails the guard on a wrong byte. */
function checkSocket(source: net.Socket, check: StreamCheck, guard: Guard): Promise<void> {
  return new Promise((resolve) => {
    source.on('data', (chunk: Buffer) => {
      try {
        check.feed(chunk);
        if (check.done) resolve();
      } catch (err) {
        guard.fail(err as Error);
      }
    });
  });
}

/** Routes a client session's payload into `check`; resolves once complete. */
function checkClient(client: ClientSession, check: StreamCheck): Promise<void> {
  return new Promise((resolve) => {
    client.onPayload = (chunk) => {
      check.feed(chunk); // a throw reaches connectClient's failure path
      if (check.done) resolve();
    };
  });
}

/**
 * Runs `measure` against a fresh target and subject, then tears both down (client sockets first, so
 * that the subject sees its sessions end), whatever happened. `target` sets up each accepted
 * connection; a wrong byte there fails the measurement's guard.
 */
async function withSubject(
  ctx: Context,
  name: SubjectName,
  options: { tls?: boolean; spread?: boolean; target?: (socket: net.Socket, guard: Guard) => void; queue?: boolean },
  measure: (subject: RunningSubject, target: Target, guard: Guard) => Promise<Metrics>,
): Promise<Outcome> {
  const guard = new Guard();
  const setUp = options.target;
  const target = await startTarget(setUp && ((socket) => setUp(socket, guard)), options.queue ?? true);
  let subject: RunningSubject | undefined;
  try {
    subject = await startSubject(name, {
      targetPort: target.port,
      pinning: ctx.pinning,
      logDir: ctx.logDir,
      tls: options.tls ? ctx.tls : undefined,
      spread: options.spread ?? false,
      nodeArgs: ctx.proxyNodeArgs,
      proxyCli: ctx.proxyCli,
    });
    return await measure(subject, target, guard);
  } catch (err) {
    if (err instanceof NotAvailable) return err;
    throw err;
  } finally {
    guard.finish();
    await subject?.stop();
    await target.close();
  }
}

async function eachSubject(
  subjects: readonly SubjectName[],
  one: (name: SubjectName) => Promise<Outcome>,
): Promise<Map<SubjectName, Outcome>> {
  const outcomes = new Map<SubjectName, Outcome>();
  for (const name of subjects) outcomes.set(name, await one(name));
  return outcomes;
}

/**
 * `bytes` (1 GiB) one way in 64 KiB pieces: up, client to target as masked frames; down, written by the
 * target. Wall clock from the first write to the last byte checked at the receiving end.
 */
async function bulkTransfer(
  ctx: Context,
  subject: RunningSubject,
  target: Target,
  guard: Guard,
  bytes: number,
  direction: 'up' | 'down',
): Promise<Metrics> {
  const client = await connectClient(endpoint(subject), guard.fail);
  const socket = await guard.race(target.next());
  const check = new StreamCheck(bytes, `${subject.name}${subject.tls ? ' tls' : ''} bulk ${direction}`);
  const complete = direction === 'up' ? checkSocket(socket, check, guard) : checkClient(client, check);
  guard.watch(() => check.received, check.label);
  const used = meter(subject);
  const start = process.hrtime.bigint();
  const perPeriod = PERIOD / BULK_MESSAGE;
  const sent =
    direction === 'up'
      ? pump(client.socket, bytes / PERIOD, () => wireSlice(subject.framed, BULK_MESSAGE, 0, perPeriod))
      : pump(socket, bytes / BULK_MESSAGE, (i) => PATTERN.subarray((i % perPeriod) * BULK_MESSAGE, ((i % perPeriod) + 1) * BULK_MESSAGE));
  await guard.race(sent);
  await guard.race(complete);
  const wall = seconds(start);
  const { cpu: cpuUsed, waited } = used();
  guard.finish();
  check.assertComplete();
  ctx.bytesChecked += bytes;
  client.socket.destroy();
  return {
    mibPerS: round(bytes / MiB / wall, 1),
    seconds: round(wall),
    cpuSecondsPerGiB: cpuFigure(cpuUsed / (bytes / GiB)),
    waitedSeconds: cpuFigure(waited),
  };
}

async function bulk(ctx: Context, name: SubjectName, tls: boolean, bytes: number): Promise<Outcome> {
  const up = await withSubject(ctx, name, { tls }, (s, t, g) => bulkTransfer(ctx, s, t, g, bytes, 'up'));
  if (up instanceof NotAvailable) return up;
  const down = await withSubject(ctx, name, { tls }, (s, t, g) => bulkTransfer(ctx, s, t, g, bytes, 'down'));
  if (down instanceof NotAvailable) return down;
  return {
    upMiBps: up.mibPerS!,
    downMiBps: down.mibPerS!,
    upCpuSPerGiB: up.cpuSecondsPerGiB!,
    downCpuSPerGiB: down.cpuSecondsPerGiB!,
    upSeconds: up.seconds!,
    downSeconds: down.seconds!,
    upWaitedSeconds: up.waitedSeconds!,
    downWaitedSeconds: down.waitedSeconds!,
  };
}

const echo = (socket: net.Socket): void => void socket.pipe(socket);

/** Sequential round trips of one 64-byte message through an echo target. */
async function latency(ctx: Context, subject: RunningSubject, target: Target, guard: Guard): Promise<Metrics> {
  const { latencyWarmup: warmup, latencySamples: samples } = ctx.sizes;
  const total = warmup + samples;
  const client = await connectClient(endpoint(subject), guard.fail);
  await guard.race(target.next());
  const check = new StreamCheck(total * SMALL_MESSAGE, `${subject.name} latency`);
  const times = new Float64Array(samples);
  let k = 0;
  let sentAt = 0n;
  let used = meter(subject);
  let start = 0n;
  const send = (): void => {
    if (k === warmup) {
      used = meter(subject);
      start = process.hrtime.bigint();
    }
    sentAt = process.hrtime.bigint();
    client.socket.write(wireSlice(subject.framed, SMALL_MESSAGE, k, 1));
  };
  const complete = new Promise<void>((resolve) => {
    client.onPayload = (chunk) => {
      check.feed(chunk);
      if (check.received < (k + 1) * SMALL_MESSAGE) return;
      if (k >= warmup) times[k - warmup] = Number(process.hrtime.bigint() - sentAt) / 1000;
      k++;
      if (k === total) resolve();
      else send();
    };
  });
  guard.watch(() => check.received, check.label);
  send();
  await guard.race(complete);
  const wall = seconds(start);
  const { cpu: cpuUsed, waited } = used();
  guard.finish();
  check.assertComplete();
  ctx.bytesChecked += total * SMALL_MESSAGE;
  client.socket.destroy();
  times.sort();
  return {
    p50us: round(quantile(times, 0.5), 1),
    p99us: round(quantile(times, 0.99), 1),
    p999us: round(quantile(times, 0.999), 1),
    roundTripsPerS: round(samples / wall, 0),
    cpuUsPerRoundTrip: cpuFigure((cpuUsed / samples) * 1e6, 1),
    waitedSeconds: cpuFigure(waited),
  };
}

/** Pipelined 64-byte messages client to target, written {@link MESSAGE_BATCH} frames at a time. */
async function messages(ctx: Context, subject: RunningSubject, target: Target, guard: Guard): Promise<Metrics> {
  const count = ctx.sizes.messages;
  const batch = MESSAGE_BATCH;
  const client = await connectClient(endpoint(subject), guard.fail);
  const socket = await guard.race(target.next());
  const check = new StreamCheck(count * SMALL_MESSAGE, `${subject.name} messages`);
  const complete = checkSocket(socket, check, guard);
  guard.watch(() => check.received, check.label);
  const used = meter(subject);
  const start = process.hrtime.bigint();
  await guard.race(pump(client.socket, count / batch, (i) => wireSlice(subject.framed, SMALL_MESSAGE, i * batch, batch)));
  await guard.race(complete);
  const wall = seconds(start);
  const { cpu: cpuUsed, waited } = used();
  guard.finish();
  check.assertComplete();
  ctx.bytesChecked += count * SMALL_MESSAGE;
  client.socket.destroy();
  return {
    msgsPerS: round(count / wall, 0),
    cpuUsPerMsg: cpuFigure((cpuUsed / count) * 1e6, 2),
    seconds: round(wall),
    waitedSeconds: cpuFigure(waited),
  };
}

/**
 * One connection's whole life: connect (TLS), WebSocket handshake, one 64-byte message echoed by the
 * target (so the subject's target leg is up and carries data), close handshake, socket closed.
 */
async function oneSession(subject: RunningSubject, guard: Guard): Promise<boolean> {
  const client = await connectClient(endpoint(subject), guard.fail);
  const check = new StreamCheck(SMALL_MESSAGE, `${subject.name} setup`);
  const echoed = checkClient(client, check);
  client.socket.write(wireSlice(subject.framed, SMALL_MESSAGE, 0, 1));
  await guard.race(echoed);
  await guard.race(client.close());
  return client.resetOnClose;
}

/** Sessions opened and closed as fast as `concurrency` clients can. */
async function handshakes(ctx: Context, subject: RunningSubject, guard: Guard, count: number, concurrency: number): Promise<Metrics> {
  let started = 0;
  let finished = 0;
  let resets = 0;
  guard.watch(() => finished, `${subject.name} handshakes`);
  const worker = (until: number) => async (): Promise<void> => {
    while (started < until) {
      started++;
      if (await oneSession(subject, guard)) resets++;
      finished++;
    }
  };
  const warmup = ctx.sizes.handshakeWarmup;
  await Promise.all(Array.from({ length: concurrency }, worker(warmup)));
  resets = 0;
  const used = meter(subject);
  const loadUsed = meterLoad();
  const start = process.hrtime.bigint();
  await Promise.all(Array.from({ length: concurrency }, worker(warmup + count)));
  const wall = seconds(start);
  const { cpu: cpuUsed, waited } = used();
  const loadCpu = loadUsed();
  guard.finish();
  ctx.bytesChecked += (warmup + count) * SMALL_MESSAGE;
  return {
    perS: round(count / wall, 0),
    cpuMsPerConn: cpuFigure((cpuUsed / count) * 1000, 3),
    cpuPercent: cpuFigure((cpuUsed / wall) * 100, 1),
    loadCpuPercent: round((loadCpu / wall) * 100, 1),
    seconds: round(wall),
    waitedSeconds: cpuFigure(waited),
    resetsOnClose: resets,
  };
}

/** Rejects once the subject has closed `client` (a session that should have stayed open). */
const closedBySubject = (client: ClientSession): Promise<never> =>
  client.closed.then(() => Promise.reject(new Error('closed by the subject')));

/**
 * Opens `count` sessions with `openOne`, `concurrency` at a time. With `stopOnError` the first failure
 * ends the opening and its message is returned (probing how many sessions a subject holds); without,
 * it is thrown, as a wrong byte always is.
 */
async function openMany(
  count: number,
  concurrency: number,
  openOne: () => Promise<void>,
  stopOnError: boolean,
): Promise<string | undefined> {
  let started = 0;
  let error: string | undefined;
  const worker = async (): Promise<void> => {
    while (started < count && error === undefined) {
      started++;
      try {
        await openOne();
      } catch (err) {
        if (!stopOnError || err instanceof IntegrityError) throw err;
        error = (err as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return error;
}

/** Opens sessions that each prove themselves with one echoed message, kept in `held` from the connect on. */
function openIdle(
  subject: RunningSubject,
  count: number,
  concurrency: number,
  held: ClientSession[],
  stopOnError: boolean,
): Promise<string | undefined> {
  return openMany(
    count,
    concurrency,
    async () => {
      // A guard per session, finished once it proved itself: an idle session that fails later is
      // counted by the most-connections probe, not a failed measurement.
      const guard = new Guard();
      const client = await connectClient(endpoint(subject), guard.fail);
      held.push(client);
      const check = new StreamCheck(SMALL_MESSAGE, `${subject.name} idle`);
      const echoed = checkClient(client, check);
      client.socket.write(wireSlice(subject.framed, SMALL_MESSAGE, 0, 1));
      await guard.race(Promise.race([echoed, closedBySubject(client)]));
      guard.finish();
    },
    stopOnError,
  );
}

/**
 * (c) Idle sessions against an echo target in its own process: RSS (and PSS, fair to forked workers)
 * per connection, then, for single-process subjects, sessions added until one fails or the cap.
 */
async function idle(ctx: Context, name: SubjectName): Promise<Outcome> {
  const echoServer = await startEchoProcess(ctx.pinning, ctx.logDir);
  let subject: RunningSubject | undefined;
  const held: ClientSession[] = [];
  try {
    subject = await startSubject(name, {
      targetPort: echoServer.port,
      pinning: ctx.pinning,
      logDir: ctx.logDir,
      nodeArgs: ctx.proxyNodeArgs,
      proxyCli: ctx.proxyCli,
    });
    if (subject.pid === undefined) return new NotAvailable('no process between client and target');
    const count = name === 'python' ? ctx.sizes.idleConnectionsPython : ctx.sizes.idleConnections;
    // Warm-up sessions, closed again: code paths compiled and pools grown before the baseline.
    const warm: ClientSession[] = [];
    await openIdle(subject, ctx.sizes.idleWarmup, 16, warm, false);
    for (const client of warm) client.socket.destroy();
    await sleep(ctx.sizes.settleMs);
    const base = treeMemory(subject.pid);
    await openIdle(subject, count, 64, held, false);
    await sleep(2 * ctx.sizes.settleMs);
    const loaded = treeMemory(subject.pid);
    const metrics: Metrics = {
      connections: count,
      baseRssMiB: round(base.rss / MiB, 1),
      rssKiBPerConn: round((loaded.rss - base.rss) / count / 1024, 2),
      pssKiBPerConn: round((loaded.pss - base.pss) / count / 1024, 2),
      processes: loaded.processes,
      fdLimit: fdLimit(subject.pid) ?? 'unknown',
    };
    if (name === 'python' || ctx.sizes.probeCap <= count) return metrics;
    const error = await openIdle(subject, ctx.sizes.probeCap - count, 64, held, true);
    const open = held.filter((client) => !client.socket.destroyed).length;
    metrics.maxConnections = open;
    metrics.maxConnectionsStop = error === undefined ? `cap ${ctx.sizes.probeCap} reached` : error;
    metrics.survived = treeMemory(subject.pid).processes > 0;
    return metrics;
  } catch (err) {
    if (err instanceof NotAvailable) return err;
    throw err;
  } finally {
    for (const client of held) client.socket.destroy();
    await subject?.stop();
    await echoServer.stop();
  }
}

/**
 * Pauses `socket` whenever more than `rate` bytes per second have been read, so that the peer's
 * sends back up into the subject.
 */
function throttle(socket: net.Socket, rate: number): (bytes: number) => void {
  const start = Date.now();
  let total = 0;
  return (bytes) => {
    total += bytes;
    const wait = start + (total / rate) * 1000 - Date.now();
    if (wait > 1) {
      socket.pause();
      setTimeout(() => socket.resume(), wait);
    }
  };
}

/**
 * (g) One slow flow: `down` sends to a client that reads 10 MiB/s, else the target reads 10 MiB/s.
 * Reports the subject's peak resident memory above its idle RSS with the session open.
 */
async function slowFlow(ctx: Context, subject: RunningSubject, target: Target, guard: Guard, down: boolean): Promise<Metrics> {
  const { slowBytes: bytes, slowRate: rate } = ctx.sizes;
  const pid = subject.pid!;
  const client = await connectClient(endpoint(subject), guard.fail);
  const socket = await guard.race(target.next());
  await sleep(ctx.sizes.settleMs / 2);
  resetPeak(pid);
  const idleRss = treeMemory(pid).rss;
  let sampledPeak = idleRss;
  const sampler = setInterval(() => (sampledPeak = Math.max(sampledPeak, treeMemory(pid).rss)), 250);
  const check = new StreamCheck(bytes, `${subject.name} slow ${down ? 'client' : 'target'}`);
  guard.watch(() => check.received, check.label, 60000);
  let complete: Promise<void>;
  try {
    if (down) {
      const slow = throttle(client.socket, rate);
      complete = new Promise((resolve) => {
        client.onPayload = (chunk) => {
          check.feed(chunk);
          slow(chunk.length);
          if (check.done) resolve();
        };
      });
      await guard.race(pump(socket, bytes / BULK_MESSAGE, (i) => PATTERN.subarray((i % 16) * BULK_MESSAGE, ((i % 16) + 1) * BULK_MESSAGE)));
    } else {
      const slow = throttle(socket, rate);
      complete = checkSocket(socket, check, guard);
      socket.on('data', (chunk: Buffer) => slow(chunk.length));
      await guard.race(pump(client.socket, bytes / PERIOD, () => wireSlice(subject.framed, BULK_MESSAGE, 0, PERIOD / BULK_MESSAGE)));
    }
    await guard.race(complete);
  } finally {
    clearInterval(sampler);
  }
  const peak = Math.max(sampledPeak, treeMemory(pid).hwm);
  guard.finish();
  check.assertComplete();
  ctx.bytesChecked += bytes;
  client.socket.destroy();
  return { idleRssMiB: round(idleRss / MiB, 1), peakAboveIdleMiB: round((peak - idleRss) / MiB, 1) };
}

/** Bytes of one framebuffer update of the VNC-like target in (i); a new session is greeted with one. */
const VNC_UPDATE = 32 * 1024;
/** Updates per second the VNC-like target sends each session after the greeting. */
const VNC_UPDATES_PER_S = 4;
/** 64-byte messages per second each VNC-like client sends (input events, update requests). */
const VNC_INPUTS_PER_S = 2;
/** The probe session's round trips start this far apart. */
const PROBE_INTERVAL_MS = 10;
/** Tries at holding (i)'s sessions, each at 90% of what the last one held (Python forks a process per session). */
const HOLD_TRIES = 3;

/** Update `k` of a VNC-like session's stream: the pattern from k updates in (updates divide the period). */
function vncUpdate(k: number): Buffer {
  const at = (k * VNC_UPDATE) % PERIOD;
  return PATTERN.subarray(at, at + VNC_UPDATE);
}

/**
 * Timers that each run an action a set number of times on a fixed cadence (a late callback does not
 * push the later ones back), all stopped at once when a measurement ends or fails.
 */
class Schedules {
  private readonly timers = new Set<NodeJS.Timeout>();

  /**
   * Runs `action(0)` .. `action(times - 1)` every `periodMs`, the first after a random part of a period
   * (sessions out of step, as independent viewers are); resolves after the last.
   */
  repeat(periodMs: number, times: number, action: (i: number) => void): Promise<void> {
    return new Promise((resolve) => {
      const first = Date.now() + Math.random() * periodMs;
      let i = 0;
      const tick = (): void => {
        action(i++);
        if (i < times) this.at(first + i * periodMs, tick);
        else resolve();
      };
      this.at(first, tick);
    });
  }

  stop(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }

  private at(when: number, run: () => void): void {
    const timer = setTimeout(
      () => {
        this.timers.delete(timer);
        run();
      },
      Math.max(0, when - Date.now()),
    );
    this.timers.add(timer);
  }
}

/**
 * The target side of (i). Its first connection is the probe's (opened and answered before any other),
 * echoed; every later one is a VNC-like session, greeted with one update at once (a VNC server speaks
 * first), its input messages checked.
 */
class VncTargets {
  private probeSeen = false;
  /** The sessions' target sockets, in accept order, and when each has received all its input. */
  readonly sessions: Array<{ socket: net.Socket; complete: Promise<void> }> = [];

  constructor(private readonly inputs: number) {}

  readonly onConnection = (socket: net.Socket, guard: Guard): void => {
    if (!this.probeSeen) {
      this.probeSeen = true;
      echo(socket);
      return;
    }
    const complete = checkSocket(socket, new StreamCheck(this.inputs * SMALL_MESSAGE, 'vnc input'), guard);
    socket.once('close', () => guard.fail(new Error('the subject closed a target connection')));
    this.sessions.push({ socket, complete });
    socket.write(vncUpdate(0));
  };
}

/** A subject held fewer sessions than asked for: how many it held when opening one more failed, and why. */
class Shortfall extends Error {
  constructor(
    readonly held: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Opens the probe session of (i) and makes its first round trip, so that its target connection is
 * the first one accepted. The returned function times one more round trip of a 64-byte message, in us.
 */
async function openProbe(subject: RunningSubject, guard: Guard, held: ClientSession[]): Promise<() => Promise<number>> {
  const client = await connectClient(endpoint(subject), guard.fail);
  held.push(client);
  void client.closed.then(() => guard.fail(new Error(`${subject.name} closed the probe session`)));
  // No total is known up front: the count of echoed bytes is held to the count sent instead.
  const check = new StreamCheck(Number.MAX_SAFE_INTEGER, `${subject.name} probe`);
  let sent = 0;
  let echoed: () => void = () => undefined;
  client.onPayload = (chunk) => {
    check.feed(chunk);
    if (check.received > sent * SMALL_MESSAGE) throw new IntegrityError(`${check.label}: more bytes echoed than sent`);
    if (check.received === sent * SMALL_MESSAGE) echoed();
  };
  const roundTrip = async (): Promise<number> => {
    const back = new Promise<void>((resolve) => (echoed = resolve));
    const start = process.hrtime.bigint();
    client.socket.write(wireSlice(subject.framed, SMALL_MESSAGE, sent++, 1));
    await guard.race(back);
    return Number(process.hrtime.bigint() - start) / 1000;
  };
  await roundTrip();
  return roundTrip;
}

/** A VNC-like session of (i), and when it has received every update. */
interface VncSession {
  client: ClientSession;
  complete: Promise<void>;
}

/**
 * Opens one VNC-like session of (i): resolves once its greeting (the first update) has arrived, so its
 * target connection is up. Until then a failure rejects the opening (a subject at the most sessions it
 * holds), after it fails the measurement; a wrong byte always does.
 */
async function openVncSession(
  subject: RunningSubject,
  guard: Guard,
  updates: number,
  held: ClientSession[],
  progress: { count: number },
): Promise<VncSession> {
  let opening = true;
  let openFailed!: (err: Error) => void;
  const openError = new Promise<never>((_, reject) => (openFailed = reject));
  const client = await connectClient(endpoint(subject), (err) =>
    opening && !(err instanceof IntegrityError) ? openFailed(err) : guard.fail(err),
  );
  held.push(client);
  const check = new StreamCheck((1 + updates) * VNC_UPDATE, `${subject.name} vnc updates`);
  let greeted!: () => void;
  const greeting = new Promise<void>((resolve) => (greeted = resolve));
  const complete = new Promise<void>((resolve) => {
    client.onPayload = (chunk) => {
      check.feed(chunk);
      progress.count++;
      if (check.received >= VNC_UPDATE) greeted();
      if (check.done) resolve();
    };
  });
  await guard.race(Promise.race([greeting, openError, closedBySubject(client)]));
  opening = false;
  void client.closed.then(() => guard.fail(new Error(`${subject.name} closed a session`)));
  return { client, complete };
}

/**
 * (i) `count` VNC-like sessions at once for `vncSeconds`: each client sends a 64-byte input message
 * twice a second, each target a 32 KiB update four times a second; beside them a probe session times a
 * round trip every 10 ms. Reports the probe's percentiles, and the subject's CPU and memory over its
 * whole process tree.
 * @throws Shortfall when `stopOnError` and a session failed to open.
 */
async function vncSessions(
  ctx: Context,
  subject: RunningSubject,
  guard: Guard,
  targets: VncTargets,
  count: number,
  stopOnError: boolean,
): Promise<Metrics> {
  const updates = ctx.sizes.vncSeconds * VNC_UPDATES_PER_S;
  const inputs = ctx.sizes.vncSeconds * VNC_INPUTS_PER_S;
  const held: ClientSession[] = [];
  const schedules = new Schedules();
  const progress = { count: 0 };
  guard.watch(() => progress.count, `${subject.name} vnc sessions`);
  try {
    const roundTrip = await openProbe(subject, guard, held);
    const sessions: VncSession[] = [];
    const error = await openMany(
      count,
      64,
      async () => void sessions.push(await openVncSession(subject, guard, updates, held, progress)),
      stopOnError,
    );
    if (error !== undefined) throw new Shortfall(sessions.length, error);
    await sleep(ctx.sizes.settleMs);
    if (targets.sessions.length !== count) throw new Error(`${targets.sessions.length} target connections for ${count} sessions`);

    const used = meter(subject);
    const loadUsed = meterLoad();
    const start = process.hrtime.bigint();
    let over = false;
    const schedulesDone = Promise.all([
      ...targets.sessions.map(({ socket }) => schedules.repeat(1000 / VNC_UPDATES_PER_S, updates, (k) => socket.write(vncUpdate(k + 1)))),
      ...sessions.map(({ client }) =>
        schedules.repeat(1000 / VNC_INPUTS_PER_S, inputs, (k) => client.socket.write(wireSlice(subject.framed, SMALL_MESSAGE, k, 1))),
      ),
    ]).then(() => {
      over = true;
    });
    const samples: number[] = [];
    while (!over) {
      const us = await roundTrip();
      samples.push(us);
      progress.count++;
      await sleep(Math.max(0, PROBE_INTERVAL_MS - us / 1000));
    }
    await schedulesDone;
    await guard.race(Promise.all([...sessions.map((s) => s.complete), ...targets.sessions.map((t) => t.complete)]));
    const wall = seconds(start);
    const { cpu: cpuUsed, waited } = used();
    const loadCpu = loadUsed();
    const memory = subject.pid === undefined ? undefined : treeMemory(subject.pid);
    guard.finish();
    ctx.bytesChecked += count * ((1 + updates) * VNC_UPDATE + inputs * SMALL_MESSAGE) + (samples.length + 1) * SMALL_MESSAGE;
    samples.sort((a, b) => a - b);
    return {
      sessions: count,
      probeP50us: round(quantile(samples, 0.5), 1),
      probeP99us: round(quantile(samples, 0.99), 1),
      probeRoundTrips: samples.length,
      cpuPercent: cpuFigure((cpuUsed / wall) * 100, 1),
      rssMiB: memory ? round(memory.rss / MiB, 1) : 'n/a',
      pssMiB: memory ? round(memory.pss / MiB, 1) : 'n/a',
      processes: memory ? memory.processes : 'n/a',
      loadCpuPercent: round((loadCpu / wall) * 100, 1),
      seconds: round(wall),
      waitedSeconds: cpuFigure(waited),
    };
  } finally {
    schedules.stop();
    guard.finish();
    for (const client of held) client.socket.destroy();
  }
}

/**
 * (i) for one subject, at the full count of sessions; a subject that cannot hold them all (Python, a
 * process per session) is measured at 90% of what it held, up to {@link HOLD_TRIES} tries, and the
 * count it ran with is reported.
 */
async function manySessions(ctx: Context, name: SubjectName): Promise<Outcome> {
  const asked = ctx.sizes.vncSessions;
  // The load process holds both ends of every session (the client and the in-process target). Node
  // raises its soft limit to the hard one at start, and the subjects inherit it: the hard one counts.
  const needed = 2 * asked + 100;
  const limit = fdLimit('self');
  if (limit !== undefined && limit < needed) {
    return new NotAvailable(
      `the open-file limit (${limit}) is below the ${needed} that ${asked} sessions need: raise the hard limit (ulimit -Hn)`,
    );
  }
  let count = asked;
  const shortfalls: string[] = [];
  for (;;) {
    const targets = new VncTargets(ctx.sizes.vncSeconds * VNC_INPUTS_PER_S);
    try {
      const outcome = await withSubject(ctx, name, { spread: true, target: targets.onConnection, queue: false }, (s, _t, g) =>
        vncSessions(ctx, s, g, targets, count, name === 'python'),
      );
      if (shortfalls.length > 0 && !(outcome instanceof NotAvailable)) outcome.sessionsShortfall = shortfalls.join('; ');
      return outcome;
    } catch (err) {
      if (!(err instanceof Shortfall)) throw err;
      shortfalls.push(`held ${err.held} of ${count}: ${err.message}`);
      count = Math.floor(err.held * 0.9);
      if (shortfalls.length === HOLD_TRIES || count < 1) return new NotAvailable(`could not hold the sessions: ${shortfalls.join('; ')}`);
    }
  }
}

/** Every workload, in order. */
export const WORKLOADS: readonly Workload[] = [
  {
    id: 'a',
    title: 'bulk 64 KiB messages, 1 GiB up and 1 GiB down',
    subjects: PINNED_SUBJECTS,
    run: (ctx, subjects) => eachSubject(subjects, (name) => bulk(ctx, name, false, ctx.sizes.bulkBytes)),
  },
  {
    id: 'b',
    title: 'round-trip latency of 64-byte messages',
    subjects: PINNED_SUBJECTS,
    run: (ctx, subjects) => eachSubject(subjects, (name) => withSubject(ctx, name, { target: echo }, (s, t, g) => latency(ctx, s, t, g))),
  },
  {
    id: 'c',
    title: 'idle connections: memory per connection, most connections held',
    subjects: PINNED_SUBJECTS,
    once: true,
    run: (ctx, subjects) => eachSubject(subjects, (name) => idle(ctx, name)),
  },
  {
    id: 'd',
    title: 'connection setup: connect, handshake, one echo, close',
    subjects: PINNED_SUBJECTS,
    run: (ctx, subjects) =>
      eachSubject(subjects, (name) =>
        withSubject(ctx, name, { target: echo, queue: false }, (s, _t, g) =>
          handshakes(ctx, s, g, ctx.sizes.handshakes, ctx.sizes.handshakeConcurrency),
        ),
      ),
  },
  {
    id: 'e',
    title: 'wss: bulk and connection setup over TLS',
    subjects: PINNED_SUBJECTS,
    run: (ctx, subjects) =>
      eachSubject(subjects, async (name) => {
        const bulkTls = await bulk(ctx, name, true, ctx.sizes.tlsBulkBytes);
        if (bulkTls instanceof NotAvailable) return bulkTls;
        const setup = await withSubject(ctx, name, { tls: true, target: echo, queue: false }, (s, _t, g) =>
          handshakes(ctx, s, g, ctx.sizes.tlsHandshakes, ctx.sizes.handshakeConcurrency),
        );
        if (setup instanceof NotAvailable) return setup;
        return { ...bulkTls, handshakesPerS: setup.perS!, cpuMsPerConn: setup.cpuMsPerConn!, resetsOnClose: setup.resetsOnClose! };
      }),
  },
  {
    id: 'f',
    title: '64-byte messages per second, pipelined, client to target',
    subjects: PINNED_SUBJECTS,
    run: (ctx, subjects) => eachSubject(subjects, (name) => withSubject(ctx, name, {}, (s, t, g) => messages(ctx, s, t, g))),
  },
  {
    id: 'g',
    title: 'slow reader: peak memory while 1 GiB flows to a 10 MiB/s reader',
    subjects: PINNED_SUBJECTS,
    once: true,
    run: async (ctx, subjects) => {
      // Memory, not speed: every flow runs side by side (each with its own subject process) so that
      // 1 GiB at 10 MiB/s costs 100 s once rather than per subject and direction.
      const flows = subjects.flatMap((name) =>
        [true, false].map(async (down) => {
          if (name === 'direct') return [name, down, new NotAvailable('no process between client and target')] as const;
          return [name, down, await withSubject(ctx, name, {}, (s, t, g) => slowFlow(ctx, s, t, g, down))] as const;
        }),
      );
      // Every flow ends (and stops its subject) before a failure is reported.
      const settled = await Promise.allSettled(flows);
      const failed = settled.find((result) => result.status === 'rejected');
      if (failed) throw failed.reason;
      const outcomes = new Map<SubjectName, Outcome>();
      for (const [name, down, outcome] of settled.map(
        (result) => (result as PromiseFulfilledResult<Awaited<(typeof flows)[number]>>).value,
      )) {
        const previous = outcomes.get(name);
        if (outcome instanceof NotAvailable || previous instanceof NotAvailable) {
          outcomes.set(name, previous instanceof NotAvailable ? previous : (outcome as NotAvailable));
          continue;
        }
        const prefix = down ? 'slowClient' : 'slowTarget';
        outcomes.set(name, { ...previous, [`${prefix}PeakMiB`]: outcome.peakAboveIdleMiB!, [`${prefix}IdleRssMiB`]: outcome.idleRssMiB! });
      }
      return outcomes;
    },
  },
  {
    id: 'h',
    title: 'connection setup on every core: the proxy with 1 and 2 workers',
    subjects: SCALING_SUBJECTS,
    run: (ctx, subjects) =>
      eachSubject(subjects, (name) =>
        withSubject(ctx, name, { spread: true, target: echo, queue: false }, (s, _t, g) =>
          handshakes(ctx, s, g, ctx.sizes.handshakes, ctx.sizes.scalingConcurrency),
        ),
      ),
  },
  {
    id: 'i',
    title: 'many VNC-like sessions at once: probe latency, CPU and memory',
    subjects: SCALING_SUBJECTS,
    once: true,
    run: (ctx, subjects) => eachSubject(subjects, (name) => manySessions(ctx, name)),
  },
];
