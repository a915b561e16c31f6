import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';

// The bench end to end at --quick sizes: every workload, every subject, real processes on loopback.
// Timing figures are not asserted (they depend on the machine); completeness and shape are. The sizes
// are tiny, so the run is mostly starting and stopping some forty subject processes: seconds on an
// idle machine, under half a minute with both cores busy.
const RUNNER = fileURLToPath(new URL('../../bench/run.js', import.meta.url));
const resultsDir = mkdtempSync(join(os.tmpdir(), 'bench-smoke-'));
after(() => rmSync(resultsDir, { recursive: true, force: true }));

function runBench(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [RUNNER, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
    child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    // Only for a hang (the bench's own guards fail a stalled run sooner), so far beyond a busy machine's time.
    const timer = setTimeout(() => child.kill('SIGKILL'), 600_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

test('bench --quick runs every workload, checks every byte and writes a results file', async () => {
  const { code, stdout, stderr } = await runBench(['--quick', '--results-dir', resultsDir]);
  assert.equal(code, 0, `bench failed:\n${stdout}\n${stderr}`);
  assert.match(stdout, /every byte checked: OK/);

  const files = readdirSync(resultsDir).filter((f) => f.endsWith('-quick.json'));
  assert.equal(files.length, 1);
  const results = JSON.parse(readFileSync(join(resultsDir, files[0]!), 'utf8'));
  assert.equal(results.schema, 'websockify-ts-bench/2');
  assert.equal(results.quick, true);
  assert.equal(results.runs, 1);
  assert.equal(results.verification.ok, true);
  assert.ok(results.verification.bytesChecked > 0);
  for (const key of ['cpuModel', 'cores', 'node', 'kernel']) assert.ok(results.machine[key], `machine.${key}`);
  assert.deepEqual(Object.keys(results.workloads).sort(), ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i']);

  // Every subject of a workload has figures or a reason; those that always run have the workload's figures.
  for (const [id, workload] of Object.entries<{ subjects: Record<string, { median?: Record<string, unknown>; notAvailable?: string }> }>(
    results.workloads,
  )) {
    const names = id === 'h' || id === 'i' ? ['proxy', 'proxy-2w', 'python', 'direct'] : ['proxy', 'python', 'direct', 'relay'];
    assert.deepEqual(Object.keys(workload.subjects).sort(), [...names].sort(), id);
    for (const name of names) {
      const subject = workload.subjects[name];
      assert.ok(subject && (subject.median || typeof subject.notAvailable === 'string'), `${id}/${name}`);
    }
  }
  const median = (id: string, name: string): Record<string, unknown> => results.workloads[id].subjects[name].median;
  assert.equal(typeof median('a', 'proxy').upMiBps, 'number');
  assert.equal(typeof median('a', 'proxy').downMiBps, 'number');
  assert.equal(typeof median('a', 'direct').upMiBps, 'number');
  assert.equal(typeof median('b', 'proxy').p99us, 'number');
  assert.equal(typeof median('b', 'proxy').addedP50us, 'number');
  assert.equal(typeof median('c', 'proxy').rssKiBPerConn, 'number');
  // The quick probe's cap is just above the idle sessions: reached, with the proxy still up.
  assert.equal(median('c', 'proxy').maxConnections, results.sizes.probeCap);
  assert.equal(median('c', 'proxy').survived, true);
  assert.equal(typeof median('d', 'relay').perS, 'number');
  assert.equal(typeof median('f', 'proxy').msgsPerS, 'number');
  assert.equal(typeof median('g', 'proxy').slowClientPeakMiB, 'number');
  assert.equal(typeof median('g', 'proxy').slowTargetPeakMiB, 'number');
  // The scaling workloads: the proxy with one worker and with two, each a process tree measured whole.
  for (const name of ['proxy', 'proxy-2w']) {
    assert.ok((median('h', name).perS as number) > 0, `h/${name}`);
    assert.equal(typeof median('h', name).loadCpuPercent, 'number');
    const many = median('i', name);
    assert.equal(many.sessions, results.sizes.vncSessions);
    assert.ok((many.probeP50us as number) > 0 && (many.probeP99us as number) >= (many.probeP50us as number), JSON.stringify(many));
    assert.equal(typeof many.cpuPercent, 'number');
    assert.ok((many.rssMiB as number) > 0);
  }
  // A worker per process: the primary and its two workers.
  assert.equal(median('i', 'proxy-2w').processes, 3);
  assert.equal(median('i', 'direct').rssMiB, 'n/a');
  // wss: figures when the proxy takes --cert/--key, else marked not available (never a failure).
  const wss = results.workloads.e.subjects.proxy;
  assert.ok(typeof wss.median?.upCpuSPerGiB === 'number' || /cert/.test(wss.notAvailable), JSON.stringify(wss));

  // The summary rows carry the proxy's figure, ratios and a verdict for each target.
  const row = results.rows.find((r: { workload: string; metric: string }) => r.workload === 'a' && r.metric === 'upMiBps');
  assert.equal(typeof row.values.proxy, 'number');
  assert.equal(typeof row.ratios['proxy/direct'], 'number');
  assert.equal(row.targets.length, 2);
  assert.match(stdout, /bulk up, MiB\/s/);
  const scaling = results.rows.find((r: { workload: string; metric: string }) => r.workload === 'h' && r.metric === 'perS');
  assert.equal(typeof scaling.ratios['proxy-2w/proxy'], 'number');
  assert.equal(scaling.targets[0].text, 'proxy-2w >= 1.7x proxy');
});

test('bench refuses an unknown workload with a usage error', async () => {
  const { code, stderr } = await runBench(['--only', 'z', '--results-dir', resultsDir]);
  assert.equal(code, 2);
  assert.match(stderr, /unknown workload\(s\) z/);
});
