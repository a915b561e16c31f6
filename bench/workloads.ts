// The workloads (a)-(g). Each measures one subject at a time (except the slow readers, which only
// measure memory and run side by side), with a fresh subject process and target, every byte checked.
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
import { BULK_MESSAGE, type ClientSession, connectClient, PATTERN, PERIOD, pump, SMALL_MESSAGE, StreamCheck, wireSlice } from './wire.js';

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

/** A workload: an id (a-g), a title, and how to run it over a list of subjects. */
export interface Workload {
  id: string;
  title: string;
  /** Run once per bench rather than once per run (memory figures and long probes). */
  once?: boolean;
  run(ctx: Context, subjects: readonly SubjectName[]): Promise<Map<SubjectName, Outcome>>;
}

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
 * seconds it waited for a CPU (other load on its core); NaN for direct TCP.
 */
function meter(subject: RunningSubject): () => { cpu: number; waited: number } {
  const pid = subject.pid;
  if (pid === undefined) return () => ({ cpu: NaN, waited: NaN });
  const cpu = treeCpuSeconds(pid);
  const waited = treeRunDelaySeconds(pid);
  return () => ({ cpu: treeCpuSeconds(pid) - cpu, waited: treeRunDelaySeconds(pid) - waited });
}
const round = (n: number, digits = 3): number => (Number.isFinite(n) ? Number(n.toFixed(digits)) : n);
/** A CPU figure, or 'n/a' for direct TCP (no process to measure). */
const cpuFigure = (n: number, digits = 3): number | string => (Number.isFinite(n) ? round(n, digits) : 'n/a');
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
 * that the subject sees its sessions end), whatever happened.
 */
async function withSubject(
  ctx: Context,
  name: SubjectName,
  options: { tls?: boolean; target?: (socket: net.Socket) => void; queue?: boolean },
  measure: (subject: RunningSubject, target: Target, guard: Guard) => Promise<Metrics>,
): Promise<Outcome> {
  const target = await startTarget(options.target, options.queue ?? true);
  const guard = new Guard();
  let subject: RunningSubject | undefined;
  try {
    subject = await startSubject(name, {
      targetPort: target.port,
      pinning: ctx.pinning,
      logDir: ctx.logDir,
      tls: options.tls ? ctx.tls : undefined,
      nodeArgs: name === 'proxy' ? ctx.proxyNodeArgs : [],
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
  const at = (q: number): number => times[Math.min(samples - 1, Math.floor(q * samples))]!;
  return {
    p50us: round(at(0.5), 1),
    p99us: round(at(0.99), 1),
    p999us: round(at(0.999), 1),
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
async function handshakes(ctx: Context, subject: RunningSubject, guard: Guard, count: number): Promise<Metrics> {
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
  await Promise.all(Array.from({ length: ctx.sizes.handshakeConcurrency }, worker(warmup)));
  resets = 0;
  const used = meter(subject);
  const start = process.hrtime.bigint();
  await Promise.all(Array.from({ length: ctx.sizes.handshakeConcurrency }, worker(warmup + count)));
  const wall = seconds(start);
  const { cpu: cpuUsed, waited } = used();
  guard.finish();
  ctx.bytesChecked += (warmup + count) * SMALL_MESSAGE;
  return {
    perS: round(count / wall, 0),
    cpuMsPerConn: cpuFigure((cpuUsed / count) * 1000, 3),
    seconds: round(wall),
    waitedSeconds: cpuFigure(waited),
    resetsOnClose: resets,
  };
}

/** Opens sessions that each prove themselves with one echoed message, `concurrency` at a time. */
async function openIdle(
  subject: RunningSubject,
  count: number,
  concurrency: number,
  held: ClientSession[],
  stopOnError: boolean,
): Promise<string | undefined> {
  let started = 0;
  let error: string | undefined;
  const worker = async (): Promise<void> => {
    while (started < count && error === undefined) {
      started++;
      const guard = new Guard();
      try {
        const client = await connectClient(endpoint(subject), guard.fail);
        held.push(client);
        const check = new StreamCheck(SMALL_MESSAGE, `${subject.name} idle`);
        const echoed = checkClient(client, check);
        client.socket.write(wireSlice(subject.framed, SMALL_MESSAGE, 0, 1));
        await guard.race(Promise.race([echoed, client.closed.then(() => Promise.reject(new Error('closed by the subject')))]));
        guard.finish();
      } catch (err) {
        if (!stopOnError) throw err;
        error = (err as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return error;
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
      nodeArgs: name === 'proxy' ? ctx.proxyNodeArgs : [],
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

/** Every workload, in order. */
export const WORKLOADS: readonly Workload[] = [
  {
    id: 'a',
    title: 'bulk 64 KiB messages, 1 GiB up and 1 GiB down',
    run: (ctx, subjects) => eachSubject(subjects, (name) => bulk(ctx, name, false, ctx.sizes.bulkBytes)),
  },
  {
    id: 'b',
    title: 'round-trip latency of 64-byte messages',
    run: (ctx, subjects) => eachSubject(subjects, (name) => withSubject(ctx, name, { target: echo }, (s, t, g) => latency(ctx, s, t, g))),
  },
  {
    id: 'c',
    title: 'idle connections: memory per connection, most connections held',
    once: true,
    run: (ctx, subjects) => eachSubject(subjects, (name) => idle(ctx, name)),
  },
  {
    id: 'd',
    title: 'connection setup: connect, handshake, one echo, close',
    run: (ctx, subjects) =>
      eachSubject(subjects, (name) =>
        withSubject(ctx, name, { target: echo, queue: false }, (s, _t, g) => handshakes(ctx, s, g, ctx.sizes.handshakes)),
      ),
  },
  {
    id: 'e',
    title: 'wss: bulk and connection setup over TLS',
    run: (ctx, subjects) =>
      eachSubject(subjects, async (name) => {
        const bulkTls = await bulk(ctx, name, true, ctx.sizes.tlsBulkBytes);
        if (bulkTls instanceof NotAvailable) return bulkTls;
        const setup = await withSubject(ctx, name, { tls: true, target: echo, queue: false }, (s, _t, g) =>
          handshakes(ctx, s, g, ctx.sizes.tlsHandshakes),
        );
        if (setup instanceof NotAvailable) return setup;
        return { ...bulkTls, handshakesPerS: setup.perS!, cpuMsPerConn: setup.cpuMsPerConn!, resetsOnClose: setup.resetsOnClose! };
      }),
  },
  {
    id: 'f',
    title: '64-byte messages per second, pipelined, client to target',
    run: (ctx, subjects) => eachSubject(subjects, (name) => withSubject(ctx, name, {}, (s, t, g) => messages(ctx, s, t, g))),
  },
  {
    id: 'g',
    title: 'slow reader: peak memory while 1 GiB flows to a 10 MiB/s reader',
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
];
