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

/**
 * The primary's side of `--metrics-listen` with `--workers`: asks every worker for its metrics over the
 * cluster IPC channel (`metrics-request`, answered by `metrics`: src/cluster/messages.ts) and adds them
 * up with the primary's own, by prom-client's aggregation (counters, gauges and histograms summed;
 * process metrics as prom-client defines). Nothing is sent unless a scrape asks.
 */
export class ClusterMetricsGatherer {
  private readonly gatherings = new Map<number, Gathering>();
  private nextId = 1;

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
    return AggregatorRegistry.aggregate([own as MetricsJson, ...answers]).metrics();
  }

  /** A worker's answer to request `id`. */
  answered(worker: Worker, id: number, metrics: MetricsJson): void {
    const gathering = this.gatherings.get(id);
    if (!gathering?.waiting.delete(worker)) return;
    gathering.answers.push(metrics);
    if (gathering.waiting.size === 0) gathering.finish();
  }

  /** A worker exited: no scrape waits for it any more. */
  gone(worker: Worker): void {
    for (const gathering of this.gatherings.values()) {
      if (gathering.waiting.delete(worker) && gathering.waiting.size === 0) gathering.finish();
    }
  }
}
