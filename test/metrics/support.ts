import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { RunningProxy } from '../helpers/proxy.js';
import { unusedPort } from '../helpers/targets.js';
import { waitUntil } from '../helpers/wait.js';

export const PROMTOOL = '/usr/bin/promtool';
export const PROMETHEUS = '/usr/bin/prometheus';

/** The port of a CLI proxy's `--metrics-listen` listener, from its log line. */
export async function metricsPort(proxy: RunningProxy): Promise<number> {
  const line = await proxy.waitForEvent((e) => e.event === 'metrics-listening');
  return Number(/:(\d+)$/.exec(String(line.listen))?.[1]);
}

/** An answer of the metrics listener. */
export interface Answer {
  status: number;
  body: string;
  headers: http.IncomingHttpHeaders;
}

/** One request to 127.0.0.1:`port`. */
export function request(port: number, urlPath: string, method = 'GET'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: urlPath, method, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (text: string) => (body += text));
      res.once('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.once('error', reject);
    req.end();
  });
}

/** `GET /metrics`, which must answer 200. */
export async function scrape(port: number): Promise<string> {
  const answer = await request(port, '/metrics');
  if (answer.status !== 200) throw new Error(`/metrics answered ${answer.status}: ${answer.body}`);
  return answer.body;
}

/** One sample line of the text format. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of a scrape (label values without escapes: ours have none). */
export function samples(text: string): Sample[] {
  const found: Sample[] = [];
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) continue;
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)) labels[pair[1]!] = pair[2]!;
    found.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return found;
}

/** The sum of the samples named `name` whose labels include `labels`; undefined when there is none. */
export function sampleValue(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const matching = samples(text).filter(
    (sample) => sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value),
  );
  return matching.length === 0 ? undefined : matching.reduce((sum, sample) => sum + sample.value, 0);
}

/** Polls the metrics until `name{labels}` reaches `expected`; resolves with the scrape that showed it. */
export function metricReaches(port: number, name: string, labels: Record<string, string>, expected: number): Promise<string> {
  return waitUntil(`${name}${JSON.stringify(labels)} to reach ${expected}`, async () => {
    const text = await scrape(port);
    return sampleValue(text, name, labels) === expected && text;
  });
}

/** `promtool check metrics` on `text`: its exit code and what it printed. */
export async function promtoolCheck(text: string): Promise<{ code: number | null; output: string }> {
  const proc = spawn(PROMTOOL, ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  proc.stdout.setEncoding('utf8').on('data', (t: string) => (output += t));
  proc.stderr.setEncoding('utf8').on('data', (t: string) => (output += t));
  proc.stdin.end(text);
  const [code] = (await once(proc, 'exit')) as [number | null];
  return { code, output };
}

/** A Prometheus server started by a test, scraping the given ports every second. */
export interface PrometheusServer {
  /** Runs an instant query; resolves with its result vector. */
  query(promql: string): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>>;
  stop(): Promise<void>;
}

/**
 * Starts `prometheus` on a free loopback port with its storage in `dir`, scraping `targets`
 * (127.0.0.1:PORT) every second, and waits until it is ready.
 */
export async function startPrometheus(dir: string, targets: readonly number[]): Promise<PrometheusServer> {
  const config = path.join(dir, 'prometheus.yml');
  fs.writeFileSync(
    config,
    [
      'global:',
      '  scrape_interval: 1s',
      '  scrape_timeout: 1s',
      '  evaluation_interval: 1s',
      'scrape_configs:',
      '  - job_name: websockify',
      '    static_configs:',
      `      - targets: [${targets.map((port) => `'127.0.0.1:${port}'`).join(', ')}]`,
      '',
    ].join('\n'),
  );
  const port = await unusedPort();
  const proc = spawn(
    PROMETHEUS,
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  proc.stderr.setEncoding('utf8').on('data', (t: string) => (log += t));
  const exited = once(proc, 'exit');
  const stop = async (): Promise<void> => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
    await exited;
  };
  try {
    await waitUntil('Prometheus to be ready', async () => {
      if (proc.exitCode !== null) throw new Error(`prometheus exited with ${proc.exitCode}:\n${log}`);
      return (await request(port, '/-/ready').catch(() => undefined))?.status === 200;
    });
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    async query(promql) {
      const answer = await request(port, `/api/v1/query?query=${encodeURIComponent(promql)}`);
      const parsed = JSON.parse(answer.body) as { status: string; data: { result: [] }; error?: string };
      if (parsed.status !== 'success') throw new Error(`query ${promql} failed: ${parsed.error}`);
      return parsed.data.result;
    },
    stop,
  };
}
