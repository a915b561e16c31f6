// A real Prometheus server scrapes `--metrics-listen` every second while sessions run, and its query API
// finds the counts the sessions produced: from one process, and summed over `--workers 2`.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { gone, sessionsOnEveryWorker, workerPids } from '../cluster/support.js';
import { cliFixture } from '../helpers/cli-fixture.js';
import { assertTools, skipWithout } from '../helpers/tools.js';
import { waitUntil } from '../helpers/wait.js';
import { echoed, openClient } from '../helpers/ws-client.js';
import { metricReaches, metricsPort, PROMETHEUS, type PrometheusServer, sampleValue, startPrometheus } from './support.js';

const cli = cliFixture('prometheus');
const skip = skipWithout(PROMETHEUS);

/** Waits until Prometheus's latest value of `promql` (a single series) is `expected`. */
async function promReaches(prometheus: PrometheusServer, promql: string, expected: number): Promise<void> {
  let last: unknown;
  try {
    await waitUntil(`Prometheus to see ${promql} = ${expected}`, async () => {
      const result = await prometheus.query(promql);
      last = result.map((series) => series.value[1]);
      return result.length === 1 && Number(result[0]!.value[1]) === expected;
    });
  } catch (err) {
    throw new Error(`${(err as Error).message}; last seen: ${JSON.stringify(last)}`);
  }
}

/** A directory of the test's own for Prometheus's configuration and storage. */
function storage(name: string): string {
  const dir = path.join(cli.scratch, name);
  fs.mkdirSync(dir);
  return dir;
}

describe('Prometheus scraping --metrics-listen', () => {
  test('finds the sessions, their bytes and the open one while it runs', { skip }, async () => {
    assertTools(PROMETHEUS);
    const p = await cli.proxy(['--metrics-listen', '0']);
    const prometheus = await startPrometheus(storage('one'), [await metricsPort(p)]);
    try {
      await promReaches(prometheus, 'up{job="websockify"}', 1);
      const open = await openClient(p.url, 'binary');
      assert.equal(await echoed(open, 'x'.repeat(100)), 'x'.repeat(100));
      await promReaches(prometheus, 'websockify_sessions_open', 1);
      for (let i = 0; i < 3; i++) {
        const ws = await openClient(p.url, 'binary');
        assert.equal(await echoed(ws, 'y'.repeat(1000)), 'y'.repeat(1000));
        ws.close(1000);
      }
      await promReaches(prometheus, 'sum(websockify_sessions_ended_total{code="1000",initiator="client"})', 3);
      // The open session's 100 bytes are counted while it is open.
      await promReaches(prometheus, 'websockify_bytes_total{direction="client_to_target"}', 3100);
      await promReaches(prometheus, 'websockify_bytes_total{direction="target_to_client"}', 3100);
      await promReaches(prometheus, 'websockify_session_duration_seconds_count', 3);
      open.close();
    } finally {
      await prometheus.stop();
      await cli.stop(p);
    }
  });

  test('with --workers 2 the counts of both workers are summed; a replaced worker is counted, its counts kept', { skip }, async () => {
    assertTools(PROMETHEUS);
    const p = await cli.proxy(['--workers', '2', '--metrics-listen', '0']);
    const port = await metricsPort(p);
    const prometheus = await startPrometheus(storage('workers'), [port]);
    try {
      const sessions = await sessionsOnEveryWorker(p, p.url, 2, 4);
      for (const { ws } of sessions) assert.equal(await echoed(ws, 'z'.repeat(10)), 'z'.repeat(10));
      await promReaches(prometheus, 'websockify_sessions_open', sessions.length);
      for (const { ws } of sessions) ws.close(1000);
      await promReaches(prometheus, 'sum(websockify_sessions_ended_total)', sessions.length);
      await promReaches(prometheus, 'websockify_bytes_total{direction="target_to_client"}', 10 * sessions.length);
      await promReaches(prometheus, 'websockify_workers', 2);
      // Each worker's own count is a part of the sum: both served some.
      const perWorker = new Map<number, number>();
      for (const { worker } of sessions) perWorker.set(worker, (perWorker.get(worker) ?? 0) + 1);
      assert.equal(perWorker.size, 2);

      const [victim] = workerPids(p);
      process.kill(victim!, 'SIGKILL');
      await gone(victim!);
      const text = await metricReaches(port, 'websockify_worker_restarts_total', {}, 1);
      // The gone worker's counts stay in the sums (Prometheus would take a drop for a reset).
      assert.equal(sampleValue(text, 'websockify_sessions_ended_total'), sessions.length);
      assert.equal(sampleValue(text, 'websockify_bytes_total', { direction: 'target_to_client' }), 10 * sessions.length);
      await promReaches(prometheus, 'websockify_worker_restarts_total', 1);
      await promReaches(prometheus, 'sum(websockify_sessions_ended_total)', sessions.length);
    } finally {
      await prometheus.stop();
      await cli.stop(p);
    }
  });
});
