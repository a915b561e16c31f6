// `npm run bench`: runs the workloads against every subject on loopback, prints the table of medians
// and writes bench/results/<timestamp>.json. Exits 1 when any byte went missing or a run failed.
//   --quick        tiny sizes, one run (the test suite's smoke test)
//   --only a,b     these workloads only (a-i)
//   --runs N       runs per workload (default 3; the idle, slow-reader and many-sessions workloads run once)
//   --subjects x,y these subjects only (proxy, proxy-2w, python, direct, relay; each workload measures
//                  those of its own subjects that are listed)
//   --results-dir  where to write the JSON (default bench/results)
//   --proxy-cli F  measure another build of the proxy (its dist/src/cli/main.js), for A/B comparisons
//   --profile      run the proxy under node --cpu-prof (profiles kept beside the results file) and
//                  summarise where its time went
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { machineInfo } from './proc.js';
import { NotAvailable, type Pinning, ROOT, SUBJECTS, type SubjectName } from './subjects.js';
import { addDerived, buildRows, medians, type Results, textTable, type WorkloadResult } from './table.js';
import { type Context, FULL_SIZES, type Metrics, QUICK_SIZES, WORKLOADS } from './workloads.js';

function usage(message: string): never {
  process.stderr.write(
    `bench: ${message}\nusage: node dist/bench/run.js [--quick] [--only a,b] [--runs N] [--subjects proxy,relay] [--results-dir DIR] [--profile] [--proxy-cli FILE]\n`,
  );
  process.exit(2);
}

/** Pins this process (the load and its in-process targets) to one core and returns where subjects go. */
function pin(): Pinning {
  const cores = os.cpus().length;
  if (cores < 2) return { subject: undefined, load: undefined, every: undefined };
  execFileSync('taskset', ['-a', '-cp', '1', String(process.pid)], { stdio: 'ignore' });
  return { subject: '0', load: '1', every: `0-${cores - 1}` };
}

/** A self-signed ECDSA P-256 certificate for the wss workload. */
function makeCertificate(dir: string): { cert: string; key: string } {
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '2',
      '-subj',
      '/CN=127.0.0.1',
      '-keyout',
      key,
      '-out',
      cert,
    ],
    { stdio: 'ignore' },
  );
  return { cert, key };
}

/** Self time per function over every .cpuprofile in `dir`, the top entries. */
function summariseProfiles(dir: string): Array<{ function: string; selfPercent: number }> {
  const self = new Map<string, number>();
  let total = 0;
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'))) {
    const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as {
      nodes: Array<{ callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number }>;
    };
    for (const node of profile.nodes) {
      const { functionName, url, lineNumber } = node.callFrame;
      const where = url ? `${url.replace(/^.*\/(node_modules|dist)\//, '$1/')}:${lineNumber + 1}` : '';
      const name = `${functionName || '(anonymous)'} ${where}`.trim();
      self.set(name, (self.get(name) ?? 0) + (node.hitCount ?? 0));
      total += node.hitCount ?? 0;
    }
  }
  return [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 15)
    .map(([name, hits]) => ({ function: name, selfPercent: Number(((hits / total) * 100).toFixed(1)) }));
}

/** The command line's options; a usage error exits. */
function parseCommandLine() {
  try {
    return parseArgs({
      options: {
        quick: { type: 'boolean', default: false },
        only: { type: 'string' },
        runs: { type: 'string' },
        subjects: { type: 'string' },
        'results-dir': { type: 'string' },
        profile: { type: 'boolean', default: false },
        'proxy-cli': { type: 'string' },
      },
    }).values;
  } catch (err) {
    return usage((err as Error).message);
  }
}

async function main(): Promise<number> {
  const options = parseCommandLine();
  const quick = options.quick!;
  const runs = options.runs === undefined ? (quick ? 1 : 3) : Number(options.runs);
  if (!Number.isInteger(runs) || runs < 1) usage(`--runs expects a positive whole number, not '${options.runs}'`);
  const ids = options.only?.split(',').map((s) => s.trim()) ?? WORKLOADS.map((w) => w.id);
  const unknown = ids.filter((id) => !WORKLOADS.some((w) => w.id === id));
  if (unknown.length > 0) usage(`unknown workload(s) ${unknown.join(', ')}; expected a-i`);
  const subjects = (options.subjects?.split(',').map((s) => s.trim()) ?? [...SUBJECTS]) as SubjectName[];
  if (subjects.some((s) => !SUBJECTS.includes(s))) usage(`--subjects takes ${SUBJECTS.join(', ')}`);
  const resultsDir = options['results-dir'] ?? join(ROOT, 'bench/results');

  const pinning = pin();
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const workDir = mkdtempSync(join(os.tmpdir(), 'websockify-bench-'));
  const startedAt = new Date();
  const ctx: Context = {
    sizes: quick ? QUICK_SIZES : FULL_SIZES,
    pinning,
    logDir: workDir,
    tls: makeCertificate(workDir),
    proxyNodeArgs: [],
    proxyCli: options['proxy-cli'],
    bytesChecked: 0,
  };
  const machine = machineInfo();
  process.stdout.write(
    `websockify-ts bench: ${machine.cpuModel}, ${machine.cores} cores, node ${machine.node}, ${machine.kernel}; ` +
      `subject on core ${pinning.subject ?? 'any'} (h, i: cores ${pinning.every ?? 'any'}), load on core ${pinning.load ?? 'any'}; ` +
      `${runs} run(s)${quick ? ', quick sizes' : ''}\n`,
  );
  const workloads: Record<string, WorkloadResult> = {};
  const profiles: Results['profiles'] = {};
  let failure: unknown;
  try {
    for (const workload of WORKLOADS.filter((w) => ids.includes(w.id))) {
      const collected = new Map<SubjectName, Metrics[] | NotAvailable>();
      const profileDir = join(resultsDir, `${stamp}-profiles`, workload.id);
      ctx.proxyNodeArgs = options.profile ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
      const times = workload.once ? 1 : runs;
      for (let run = 1; run <= times; run++) {
        const started = Date.now();
        const outcomes = await workload.run(
          ctx,
          subjects.filter((s) => workload.subjects.includes(s)),
        );
        const notes: string[] = [];
        for (const [name, outcome] of outcomes) {
          if (outcome instanceof NotAvailable) {
            collected.set(name, outcome);
            notes.push(`${name} n/a: ${outcome.message}`);
            continue;
          }
          const list = collected.get(name);
          if (Array.isArray(list)) list.push(outcome);
          else collected.set(name, [outcome]);
          notes.push(`${name} ${JSON.stringify(outcome)}`);
        }
        process.stdout.write(
          `(${workload.id}) ${workload.title}: run ${run}/${times} in ${((Date.now() - started) / 1000).toFixed(1)} s\n  ${notes.join('\n  ')}\n`,
        );
      }
      const result: WorkloadResult = { title: workload.title, once: workload.once ?? false, subjects: {} };
      for (const [name, list] of collected) {
        result.subjects[name] = list instanceof NotAvailable ? { notAvailable: list.message } : { runs: list, median: medians(list) };
      }
      workloads[workload.id] = result;
      if (options.profile) {
        try {
          profiles[workload.id] = summariseProfiles(profileDir);
        } catch {
          // no proxy ran in this workload
        }
      }
    }
  } catch (err) {
    failure = err;
  }
  const finishedAt = new Date();
  addDerived(workloads);
  const rows = buildRows(workloads);
  const results: Results = {
    schema: 'websockify-ts-bench/2',
    quick,
    runs,
    workloadIds: ids,
    subjects,
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    durationSeconds: Math.round((finishedAt.getTime() - startedAt.getTime()) / 1000),
    machine,
    pinning,
    sizes: ctx.sizes,
    workloads,
    rows,
    verification: { bytesChecked: ctx.bytesChecked, ok: failure === undefined },
    ...(options.profile ? { profiles } : {}),
  };
  mkdirSync(resultsDir, { recursive: true });
  const file = join(resultsDir, `${stamp}${quick ? '-quick' : ''}.json`);
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  process.stdout.write(
    `\n${textTable(rows, subjects)}\n\nmedians of ${runs} run(s); a ratio a/b is a's figure over b's; ${ctx.bytesChecked} payload bytes checked\n`,
  );
  for (const [id, top] of Object.entries(profiles)) {
    process.stdout.write(
      `\nproxy profile, workload ${id} (self time):\n${top.map((t) => `  ${String(t.selfPercent).padStart(5)}%  ${t.function}`).join('\n')}\n`,
    );
  }
  process.stdout.write(`results: ${file}\n`);
  if (failure !== undefined) {
    process.stderr.write(`\nBENCH FAILED: ${(failure as Error).stack ?? String(failure)}\nsubject logs kept in ${workDir}\n`);
    return 1;
  }
  rmSync(workDir, { recursive: true, force: true });
  process.stdout.write('every byte checked: OK\n');
  return 0;
}

process.exitCode = await main();
// Sockets of sessions the subjects never closed must not keep the bench alive.
process.exit();
