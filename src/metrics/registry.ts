import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { BridgeSummary } from '../bridge/bridge.js';
import type { TlsReloadResult } from '../tls/context.js';
import type { RefusalCounter, RefusalReason } from './refusals.js';

/** The sessions open now and the bytes they have moved so far, read when metrics are collected. */
export interface OpenTraffic {
  sessions: number;
  bytesFromClient: number;
  bytesFromTarget: number;
}

/** Nothing open: the source until an endpoint gives its own. */
const NO_TRAFFIC: OpenTraffic = { sessions: 0, bytesFromClient: 0, bytesFromTarget: 0 };

/**
 * A close code as a label: the codes RFC 6455 and its registry define stand for themselves; the ranges
 * applications choose from (3000-4999, as any client may send) are one value each, so that clients
 * cannot grow the label set.
 */
export function closeCodeLabel(code: number): string {
  if (code >= 1000 && code <= 1015) return String(code);
  if (code >= 3000 && code <= 3999) return '3xxx';
  if (code >= 4000 && code <= 4999) return '4xxx';
  return 'other';
}

/**
 * prom-client's process and Node metrics, but for three gauges whose `_total` names break the naming
 * rules (`promtool check metrics` says so): the same counts by type remain (`nodejs_active_handles`...).
 */
function collectProcessMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry });
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'])
    registry.removeSingleMetric(name);
}

/**
 * The metrics of one proxy process (`--metrics-listen`), in a registry of its own (not prom-client's
 * global one: an embedding program's metrics stay its own). Sessions cost nothing on the way: their
 * bytes are read from the bridges when metrics are collected, and added once when each session ends.
 */
export class ProxyMetrics {
  /** The registry to expose (or, in a worker, to send to the primary). */
  readonly registry = new Registry();
  /** Counts a refusal by status and reason (see `logRefusal`). */
  readonly refused: RefusalCounter;
  private openTraffic: () => OpenTraffic = () => NO_TRAFFIC;
  private endedSessions = 0;
  private endedFromClient = 0;
  private endedFromTarget = 0;
  private readonly sessionsEnded: Counter<'code' | 'initiator'>;
  private readonly sessionDuration: Histogram;
  private readonly targetConnect: Histogram<'result'>;
  private readonly tokenLookup: Histogram<'plugin'>;
  private readonly tlsHandshakes: Counter<'result'>;
  private readonly tlsReloads: Counter<'result'>;

  constructor() {
    const registers = [this.registry];
    const metrics = this;
    new Gauge({
      name: 'websockify_sessions_open',
      help: 'WebSocket sessions open now (handshake done, not yet ended).',
      registers,
      collect() {
        this.set(metrics.openTraffic().sessions);
      },
    });
    new Counter({
      name: 'websockify_sessions_total',
      help: 'WebSocket sessions opened (handshake done).',
      registers,
      collect() {
        this.reset();
        this.inc(metrics.endedSessions + metrics.openTraffic().sessions);
      },
    });
    this.sessionsEnded = new Counter({
      name: 'websockify_sessions_ended_total',
      help: 'WebSocket sessions ended, by close code (3xxx and 4xxx: any code of those ranges) and by who closed first.',
      labelNames: ['code', 'initiator'],
      registers,
    });
    new Counter({
      name: 'websockify_bytes_total',
      help: 'Payload bytes moved, client_to_target (after base64 decoding) and target_to_client (before encoding).',
      labelNames: ['direction'],
      registers,
      collect() {
        const open = metrics.openTraffic();
        this.reset();
        this.inc({ direction: 'client_to_target' }, metrics.endedFromClient + open.bytesFromClient);
        this.inc({ direction: 'target_to_client' }, metrics.endedFromTarget + open.bytesFromTarget);
      },
    });
    this.sessionDuration = new Histogram({
      name: 'websockify_session_duration_seconds',
      help: 'How long WebSocket sessions lasted, from the handshake to the close.',
      buckets: [0.1, 1, 10, 60, 300, 900, 3600, 14_400, 86_400],
      registers,
    });
    this.targetConnect = new Histogram({
      name: 'websockify_target_connect_seconds',
      help: 'Time to connect the target (TCP, PROXY header and TLS), by result (ok, failed).',
      labelNames: ['result'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30],
      registers,
    });
    this.tokenLookup = new Histogram({
      name: 'websockify_token_lookup_seconds',
      help: 'Time the token plugin took to answer a lookup, by plugin.',
      labelNames: ['plugin'],
      buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers,
    });
    const handshakesRefused = new Counter({
      name: 'websockify_handshakes_refused_total',
      help: 'Connections and requests refused before any session, by HTTP status (none: closed unanswered) and reason.',
      labelNames: ['status', 'reason'],
      registers,
    });
    this.refused = (status: number | undefined, reason: RefusalReason) =>
      handshakesRefused.inc({ status: status === undefined ? 'none' : String(status), reason });
    this.tlsHandshakes = new Counter({
      name: 'websockify_tls_handshakes_total',
      help: 'TLS handshakes on the listening port, by result (ok, failed; a client certificate refused counts as failed).',
      labelNames: ['result'],
      registers,
    });
    this.tlsReloads = new Counter({
      name: 'websockify_tls_certificate_reloads_total',
      help: 'Reloads of the TLS certificate and key (on change or SIGHUP), by result (ok, unchanged, failed).',
      labelNames: ['result'],
      registers,
    });
    collectProcessMetrics(this.registry);
  }

  /** Where the open sessions are read from when metrics are collected (the endpoint's). */
  watch(openTraffic: () => OpenTraffic): void {
    this.openTraffic = openTraffic;
  }

  /** A session ended: its totals move from the open sessions' to the ended ones'. */
  sessionEnded(summary: BridgeSummary): void {
    this.endedSessions++;
    this.endedFromClient += summary.bytesFromClient;
    this.endedFromTarget += summary.bytesFromTarget;
    this.sessionsEnded.inc({ code: closeCodeLabel(summary.code), initiator: summary.initiator });
    this.sessionDuration.observe(summary.durationMs / 1000);
  }

  /** A target connection was made (or failed) in `seconds`. */
  targetConnected(seconds: number, ok: boolean): void {
    this.targetConnect.observe({ result: ok ? 'ok' : 'failed' }, seconds);
  }

  /** The token plugin named `plugin` answered a lookup in `seconds`. */
  tokenLookedUp(plugin: string, seconds: number): void {
    this.tokenLookup.observe({ plugin }, seconds);
  }

  /** A TLS handshake on the listening port ended. */
  tlsHandshake(ok: boolean): void {
    this.tlsHandshakes.inc({ result: ok ? 'ok' : 'failed' });
  }

  /** The TLS certificate was read again. */
  tlsReloaded(result: TlsReloadResult): void {
    this.tlsReloads.inc({ result });
  }
}

/**
 * The metrics of a `--workers` primary: its workers' replacements and its own process; the workers'
 * metrics are added to these when collected (src/metrics/cluster.ts).
 */
export class PrimaryMetrics {
  readonly registry = new Registry();
  private readonly restarts: Counter;

  /** @param liveWorkers the number of worker processes alive now. */
  constructor(liveWorkers: () => number) {
    const registers = [this.registry];
    this.restarts = new Counter({
      name: 'websockify_worker_restarts_total',
      help: 'Worker processes replaced after they exited unasked (--workers).',
      registers,
    });
    new Gauge({
      name: 'websockify_workers',
      help: 'Worker processes alive now (--workers).',
      registers,
      collect() {
        this.set(liveWorkers());
      },
    });
    collectProcessMetrics(this.registry);
  }

  /** A worker is being replaced. */
  workerRestarted(): void {
    this.restarts.inc();
  }
}
