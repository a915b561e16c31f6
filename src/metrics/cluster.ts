import type { Worker } from 'node:cluster';
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue, type Registry } from 'prom-client';

/** One registry's metrics as `Registry#getMetricsAsJSON` gives them (what a worker sends). */
export type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];

/** How long the primary waits for a worker's metrics: a worker that does not answer is left out of that scrape. */
const ANSWER_TIMEOUT_MS = 2000;

/** One scrape in progress: the workers still to answer, and the answers so far. */
interface Gathering {
  waiting: Set<Worker>;
  answers: MetricsJson[];
  finish: () => void;
}

/** Metric types whose values only grow: a gone worker's last values of these stay in the sums. */
const CUMULATIVE = new Set(['counter', 'histogram', 'summary']);

/**
 * The primary's side of `--metrics-listen` with `--workers`: asks every worker for its metrics over the
 * cluster IPC channel (`metrics-request`, answered by `metrics`: src/cluster/messages.ts) and adds them
 * up with the primary's own, by prom-client's aggregation (counters, gauges and histograms summed;
 * process metrics as prom-client defines). Nothing is sent unless a scrape asks.
 *
 * A worker that exits takes its counts with it; its last answer's counters and histograms are kept (in
 * one merged set), so that the sums never go down, which Prometheus would take for a restart of them all.
 * What it counted after its last scrape is lost.
 */
export class ClusterMetricsGatherer {
  private readonly gatherings = new Map<number, Gathering>();
  private nextId = 1;
  /** Each live worker's latest answer. */
  private readonly latest = new Map<Worker, MetricsJson>();
  /** The cumulative metrics of workers gone, merged. */
  private retired: MetricsJson = [];

  /** @param own the primary's registry (worker restarts, its own process). */
  constructor(private readonly own: Registry) {}

  /**
   * The metrics of the primary and of `workers` together, in Prometheus's text format. A worker that
   * dies or stays silent for 2 s is left out.
   * @param ask sends the request to one worker.
   */
  async collect(workers: readonly Worker[], ask: (worker: Worker, id: number) => void): Promise<string> {
    const id = this.nextId++;
    const answers: MetricsJson[] = [];
    const waiting = new Set(workers);
    if (waiting.size > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => finish(), ANSWER_TIMEOUT_MS);
        const finish = (): void => {
          clearTimeout(timer);
          this.gatherings.delete(id);
          resolve();
        };
        this.gatherings.set(id, { waiting, answers, finish });
        for (const worker of workers) ask(worker, id);
      });
    }
    const own = await this.own.getMetricsAsJSON();
    return AggregatorRegistry.aggregate([own as MetricsJson, this.retired, ...answers]).metrics();
  }

  /** A worker's answer to request `id`. */
  answered(worker: Worker, id: number, metrics: MetricsJson): void {
    const gathering = this.gatherings.get(id);
    if (!gathering?.waiting.delete(worker)) return;
    gathering.answers.push(metrics);
    this.latest.set(worker, metrics);
    if (gathering.waiting.size === 0) gathering.finish();
  }

  /** A worker exited: no scrape waits for it any more; its last counts are kept. */
  gone(worker: Worker): void {
    for (const gathering of this.gatherings.values()) {
      if (gathering.waiting.delete(worker) && gathering.waiting.size === 0) gathering.finish();
    }
    const last = this.latest.get(worker);
    this.latest.delete(worker);
    if (!last) return;
    const cumulative = last.filter((metric) => CUMULATIVE.has(String(metric.type)));
    // The merged registry's metrics hold their values already (their get() is not asynchronous).
    const merged = AggregatorRegistry.aggregate([this.retired, cumulative]).getMetricsAsArray();
    this.retired = merged.map((metric) => (metric as unknown as { get(): MetricsJson[number] }).get());
  }
}
