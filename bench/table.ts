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
  /** One subject's figure over another's, keyed `a/b` as in {@link RATIOS}. */
  ratios: Record<string, number>;
  targets: TargetVerdict[];
}

/**
 * The ratio columns: the proxy over every other subject, and the two-worker proxy over one worker
 * (the scaling figure) and over Python.
 */
export const RATIOS: ReadonlyArray<readonly [SubjectName, SubjectName]> = [
  ['proxy', 'python'],
  ['proxy', 'direct'],
  ['proxy', 'relay'],
  ['proxy-2w', 'proxy'],
  ['proxy-2w', 'python'],
];

/** A results file (bench/results/*.json). */
export interface Results {
  schema: 'websockify-ts-bench/2';
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
  /**
   * Thresholds for the subject `of` (default the proxy): an absolute bound on its figure, or on its
   * figure over another subject's.
   */
  targets?: Array<{ of?: SubjectName; max?: number; min?: number; ratioTo?: SubjectName; text: string }>;
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
  {
    workload: 'h',
    metric: 'perS',
    label: 'sessions set up per s, not pinned',
    higherIsBetter: true,
    targets: [{ of: 'proxy-2w', ratioTo: 'proxy', min: 1.7, text: 'proxy-2w >= 1.7x proxy' }],
  },
  { workload: 'h', metric: 'cpuMsPerConn', label: 'CPU ms per session, not pinned', higherIsBetter: false },
  { workload: 'h', metric: 'cpuPercent', label: 'subject CPU, % of a core', higherIsBetter: false },
  { workload: 'h', metric: 'loadCpuPercent', label: 'load generator CPU, % of a core', higherIsBetter: false },
  { workload: 'i', metric: 'sessions', label: 'VNC-like sessions held', higherIsBetter: true },
  { workload: 'i', metric: 'probeP50us', label: 'probe RTT p50, us', higherIsBetter: false },
  {
    workload: 'i',
    metric: 'probeP99us',
    label: 'probe RTT p99, us',
    higherIsBetter: false,
    targets: [{ of: 'proxy-2w', max: 2000, text: 'proxy-2w <= 2000 us' }],
  },
  { workload: 'i', metric: 'cpuPercent', label: 'subject CPU, % of a core', higherIsBetter: false },
  { workload: 'i', metric: 'rssMiB', label: 'subject RSS (process tree), MiB', higherIsBetter: false },
  { workload: 'i', metric: 'pssMiB', label: 'subject PSS (process tree), MiB', higherIsBetter: false },
  { workload: 'i', metric: 'loadCpuPercent', label: 'load generator CPU, % of a core', higherIsBetter: false },
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

/** `a`'s figure over `b`'s, to 3 significant digits; undefined unless both are numbers and it is finite. */
function ratio(values: Row['values'], a: SubjectName, b: SubjectName): number | undefined {
  const x = values[a];
  const y = values[b];
  if (typeof x !== 'number' || typeof y !== 'number' || y === 0 || !Number.isFinite(x / y)) return undefined;
  return Number((x / y).toPrecision(3));
}

/** The summary rows for the workloads present, with the {@link RATIOS} and target verdicts. */
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
    const ratios: Row['ratios'] = {};
    for (const [a, b] of RATIOS) {
      const value = ratio(values, a, b);
      if (value !== undefined) ratios[`${a}/${b}`] = value;
    }
    const targets = (spec.targets ?? []).map(({ of = 'proxy', max, min, ratioTo, text }): TargetVerdict => {
      const own = values[of];
      const value = ratioTo ? ratio(values, of, ratioTo) : typeof own === 'number' ? own : undefined;
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

/**
 * The header and cells of the summary table (console and Markdown share them). Only columns with a
 * figure in some row are shown: the two-worker proxy, for one, takes part in the scaling workloads only.
 */
export function tableCells(rows: readonly Row[], subjects: readonly SubjectName[]): { header: string[]; cells: string[][] } {
  const shown = subjects.filter((s) => rows.some((row) => row.values[s] !== undefined));
  const ratios = RATIOS.map(([a, b]) => `${a}/${b}`).filter((key) => rows.some((row) => row.ratios[key] !== undefined));
  const header = ['', 'metric', ...shown, ...ratios, 'target', 'verdict'];
  const cells = rows.map((row) => [
    row.workload,
    row.label,
    ...shown.map((s) => formatValue(row.values[s])),
    ...ratios.map((key) => (row.ratios[key] === undefined ? '' : `${row.ratios[key]}x`)),
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
