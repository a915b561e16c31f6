// The results file's shape, the medians over runs, the summary rows with their ratios and targets,
// and the plain-text table; shared by the runner and the report.
import type { MachineInfo } from './proc.js';
import { type Pinning, SUBJECTS, type SubjectName } from './subjects.js';
import type { Metrics, Sizes } from './workloads.js';

/** One subject in one workload: every run's figures and their medians, or why it could not run. */
export type SubjectResult = { runs: Metrics[]; median: Metrics } | { notAvailable: string };

/** One workload's results. */
export interface WorkloadResult {
  title: string;
  once: boolean;
  subjects: Partial<Record<SubjectName, SubjectResult>>;
}

/** A threshold the proxy's figure is judged against (reported, never asserted). */
export interface TargetVerdict {
  text: string;
  /** undefined when a figure it needs is missing. */
  pass: boolean | undefined;
}

/** One line of the summary table. */
export interface Row {
  workload: string;
  metric: string;
  label: string;
  higherIsBetter: boolean;
  values: Partial<Record<SubjectName, number | string>>;
  /** proxy / other, per other subject. */
  ratios: Partial<Record<SubjectName, number>>;
  targets: TargetVerdict[];
}

/** A results file (bench/results/*.json). */
export interface Results {
  schema: 'websockify-ts-bench/1';
  quick: boolean;
  runs: number;
  workloadIds: string[];
  subjects: SubjectName[];
  startedAt: string;
  finishedAt: string;
  durationSeconds: number;
  machine: MachineInfo;
  pinning: Pinning;
  sizes: Sizes;
  workloads: Record<string, WorkloadResult>;
  rows: Row[];
  verification: { bytesChecked: number; ok: boolean };
  profiles?: Record<string, Array<{ function: string; selfPercent: number }>>;
}

/** Median of each numeric field over runs; a non-numeric field keeps its last value. */
export function medians(runs: readonly Metrics[]): Metrics {
  const out: Metrics = {};
  for (const key of Object.keys(runs[0] ?? {})) {
    const values = runs.map((run) => run[key]);
    if (values.every((v) => typeof v === 'number')) {
      const sorted = (values as number[]).filter(Number.isFinite).sort((a, b) => a - b);
      const mid = sorted.length >> 1;
      out[key] = sorted.length === 0 ? NaN : sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
    } else out[key] = values[values.length - 1]!;
  }
  return out;
}

interface RowSpec {
  workload: string;
  metric: string;
  label: string;
  higherIsBetter: boolean;
  /** Thresholds for the proxy: an absolute bound, or a ratio to another subject. */
  targets?: Array<{ max?: number; min?: number; ratioTo?: SubjectName; text: string }>;
}

const ROWS: RowSpec[] = [
  {
    workload: 'a',
    metric: 'upMiBps',
    label: 'bulk up, MiB/s',
    higherIsBetter: true,
    targets: [
      { ratioTo: 'python', min: 3, text: '>= 3x python' },
      { ratioTo: 'relay', min: 0.7, text: '>= 0.7x relay' },
    ],
  },
  {
    workload: 'a',
    metric: 'downMiBps',
    label: 'bulk down, MiB/s',
    higherIsBetter: true,
    targets: [
      { ratioTo: 'python', min: 1.2, text: '>= 1.2x python' },
      { ratioTo: 'relay', min: 0.7, text: '>= 0.7x relay' },
    ],
  },
  { workload: 'a', metric: 'upCpuSPerGiB', label: 'bulk up, CPU s/GiB', higherIsBetter: false },
  { workload: 'a', metric: 'downCpuSPerGiB', label: 'bulk down, CPU s/GiB', higherIsBetter: false },
  { workload: 'b', metric: 'p50us', label: 'RTT p50, us', higherIsBetter: false },
  { workload: 'b', metric: 'p99us', label: 'RTT p99, us', higherIsBetter: false },
  {
    workload: 'b',
    metric: 'addedP50us',
    label: 'added p50 over direct, us',
    higherIsBetter: false,
    targets: [{ max: 60, text: '<= 60 us' }],
  },
  {
    workload: 'b',
    metric: 'addedP99us',
    label: 'added p99 over direct, us',
    higherIsBetter: false,
    targets: [{ max: 400, text: '<= 400 us' }],
  },
  { workload: 'b', metric: 'cpuUsPerRoundTrip', label: 'CPU us per round trip', higherIsBetter: false },
  {
    workload: 'c',
    metric: 'rssKiBPerConn',
    label: 'idle RSS per conn, KiB',
    higherIsBetter: false,
    targets: [{ max: 8, text: '<= 8 KiB' }],
  },
  { workload: 'c', metric: 'pssKiBPerConn', label: 'idle PSS per conn, KiB', higherIsBetter: false },
  { workload: 'c', metric: 'connections', label: 'idle connections held', higherIsBetter: true },
  { workload: 'c', metric: 'maxConnections', label: 'most connections held', higherIsBetter: true },
  { workload: 'c', metric: 'fdLimit', label: 'fd limit (soft)', higherIsBetter: true },
  { workload: 'd', metric: 'perS', label: 'sessions set up per s', higherIsBetter: true, targets: [{ min: 1500, text: '>= 1500/s' }] },
  { workload: 'd', metric: 'cpuMsPerConn', label: 'CPU ms per session', higherIsBetter: false, targets: [{ max: 0.5, text: '<= 0.5 ms' }] },
  { workload: 'e', metric: 'upMiBps', label: 'wss bulk up, MiB/s', higherIsBetter: true },
  { workload: 'e', metric: 'downMiBps', label: 'wss bulk down, MiB/s', higherIsBetter: true },
  { workload: 'e', metric: 'upCpuSPerGiB', label: 'wss up, CPU s/GiB', higherIsBetter: false, targets: [{ max: 2.5, text: '<= 2.5 s' }] },
  {
    workload: 'e',
    metric: 'downCpuSPerGiB',
    label: 'wss down, CPU s/GiB',
    higherIsBetter: false,
    targets: [{ max: 2.5, text: '<= 2.5 s' }],
  },
  { workload: 'e', metric: 'handshakesPerS', label: 'wss sessions set up per s', higherIsBetter: true },
  { workload: 'e', metric: 'cpuMsPerConn', label: 'wss CPU ms per session', higherIsBetter: false },
  {
    workload: 'f',
    metric: 'msgsPerS',
    label: '64 B messages per s',
    higherIsBetter: true,
    targets: [{ min: 150000, text: '>= 150000/s' }],
  },
  { workload: 'f', metric: 'cpuUsPerMsg', label: 'CPU us per message', higherIsBetter: false },
  {
    workload: 'g',
    metric: 'slowClientPeakMiB',
    label: 'slow client: peak above idle, MiB',
    higherIsBetter: false,
    targets: [{ max: 64, text: '<= 64 MiB' }],
  },
  {
    workload: 'g',
    metric: 'slowTargetPeakMiB',
    label: 'slow target: peak above idle, MiB',
    higherIsBetter: false,
    targets: [{ max: 64, text: '<= 64 MiB' }],
  },
];

/** Adds figures derived across subjects (latency added over direct TCP) to each subject's medians. */
export function addDerived(workloads: Record<string, WorkloadResult>): void {
  const latency = workloads.b?.subjects;
  const direct = latency?.direct;
  if (!latency || !direct || !('median' in direct)) return;
  for (const result of Object.values(latency)) {
    if (!result || !('median' in result)) continue;
    result.median.addedP50us = Number(((result.median.p50us as number) - (direct.median.p50us as number)).toFixed(1));
    result.median.addedP99us = Number(((result.median.p99us as number) - (direct.median.p99us as number)).toFixed(1));
  }
}

/** The summary rows for the workloads present, with ratios of the proxy to each other subject and target verdicts. */
export function buildRows(workloads: Record<string, WorkloadResult>): Row[] {
  const rows: Row[] = [];
  for (const spec of ROWS) {
    const workload = workloads[spec.workload];
    if (!workload) continue;
    const values: Row['values'] = {};
    for (const name of SUBJECTS) {
      const result = workload.subjects[name];
      if (!result) continue;
      if ('notAvailable' in result) values[name] = 'n/a';
      else if (result.median[spec.metric] !== undefined) values[name] = result.median[spec.metric] as number | string;
    }
    if (Object.values(values).every((v) => v === 'n/a')) continue;
    const proxy = values.proxy;
    const ratios: Row['ratios'] = {};
    for (const name of SUBJECTS) {
      const other = values[name];
      if (name !== 'proxy' && typeof proxy === 'number' && typeof other === 'number' && other !== 0 && Number.isFinite(proxy / other))
        ratios[name] = Number((proxy / other).toPrecision(3));
    }
    const targets = (spec.targets ?? []).map(({ max, min, ratioTo, text }): TargetVerdict => {
      const value = ratioTo ? ratios[ratioTo] : typeof proxy === 'number' ? proxy : undefined;
      if (value === undefined || !Number.isFinite(value)) return { text, pass: undefined };
      return { text, pass: (max === undefined || value <= max) && (min === undefined || value >= min) };
    });
    rows.push({
      workload: spec.workload,
      metric: spec.metric,
      label: spec.label,
      higherIsBetter: spec.higherIsBetter,
      values,
      ratios,
      targets,
    });
  }
  return rows;
}

/** A figure for a table cell: thousands grouped, at most 3 significant decimals. */
export function formatValue(value: number | string | undefined): string {
  if (value === undefined) return '';
  if (typeof value === 'string') return value;
  if (!Number.isFinite(value)) return 'n/a';
  const digits = Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : Math.abs(value) >= 1 ? 2 : 3;
  return value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

/** A verdict cell: PASS, FAIL or n/a per target. */
export function verdictText(targets: readonly TargetVerdict[]): string {
  return targets.map((t) => (t.pass === undefined ? 'n/a' : t.pass ? 'PASS' : 'FAIL')).join(' / ');
}

/** The header and cells of the summary table (console and Markdown share them). */
export function tableCells(rows: readonly Row[], subjects: readonly SubjectName[]): { header: string[]; cells: string[][] } {
  const others = subjects.filter((s) => s !== 'proxy');
  const header = ['', 'metric', ...subjects, ...others.map((s) => `proxy/${s}`), 'target', 'verdict'];
  const cells = rows.map((row) => [
    row.workload,
    row.label,
    ...subjects.map((s) => formatValue(row.values[s])),
    ...others.map((s) => (row.ratios[s] === undefined ? '' : `${row.ratios[s]}x`)),
    row.targets.map((t) => t.text).join(', '),
    verdictText(row.targets),
  ]);
  return { header, cells };
}

/** The summary as aligned plain text. */
export function textTable(rows: readonly Row[], subjects: readonly SubjectName[]): string {
  const { header, cells } = tableCells(rows, subjects);
  const all = [header, ...cells];
  const widths = header.map((_, i) => Math.max(...all.map((line) => line[i]!.length)));
  const numeric = (i: number): boolean => i >= 2 && i < header.length - 2;
  const format = (line: string[]): string =>
    line
      .map((cell, i) => (numeric(i) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [format(header), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(format)].join('\n');
}
