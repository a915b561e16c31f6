// Readers of /proc for the bench: a subject's process tree, its CPU time and memory, and the machine.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';

/** USER_HZ: the unit of the times in /proc/PID/stat. */
const TICKS_PER_SECOND = Number(tryRun('getconf', ['CLK_TCK'])) || 100;

/** Runs a command and returns its trimmed stdout, or '' when it fails (optional facts only). */
export function tryRun(command: string, args: string[]): string {
  try {
    return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '';
  }
}

interface StatLine {
  ppid: number;
  /** utime + stime + cutime + cstime, in ticks: the process and its reaped children. */
  ticks: number;
}

function readStat(pid: number): StatLine | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  // The command name may hold spaces and parentheses: fields are counted from the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state); utime..cstime are fields 14..17.
  const ticks = Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
  return { ppid: Number(fields[1]), ticks };
}

/**
 * The live process tree under `root`, root first; empty when root is gone. There is no
 * /proc/PID/task/TID/children on every kernel, so this scans /proc for parent links.
 */
export function processTree(root: number): number[] {
  if (!readStat(root)) return [];
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (!stat) continue;
    const list = children.get(stat.ppid);
    if (list) list.push(Number(entry));
    else children.set(stat.ppid, [Number(entry)]);
  }
  const tree = [root];
  for (let i = 0; i < tree.length; i++) tree.push(...(children.get(tree[i]!) ?? []));
  return tree;
}

/**
 * Whether `root` or a process it forked listens on 127.0.0.1:`port`: the listening socket's inode in
 * /proc/net/tcp, held by one of the tree's file descriptors. Unlike a probe connection, this cannot be
 * answered by another program that took the port first, and it costs the subject nothing.
 */
export function treeListensOn(root: number, port: number): boolean {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const sockets = new Set<string>();
  for (const line of readFileSync('/proc/net/tcp', 'latin1').split('\n').slice(1)) {
    // local_address is field 1, st field 3 (0A: LISTEN), inode field 9.
    const fields = line.trim().split(/\s+/);
    if (fields[1] === local && fields[3] === '0A' && fields[9]) sockets.add(`socket:[${fields[9]}]`);
  }
  if (sockets.size === 0) return false;
  for (const pid of processTree(root)) {
    try {
      for (const fd of readdirSync(`/proc/${pid}/fd`)) if (sockets.has(readlinkSync(`/proc/${pid}/fd/${fd}`))) return true;
    } catch {
      // exited, or an fd closed between the listing and the read
    }
  }
  return false;
}

/**
 * CPU seconds used so far by `root` and everything it forked: each live process's own times plus
 * those of its reaped children (a child reaped between two readings moves into its parent's cutime,
 * so the sum stays continuous).
 */
export function treeCpuSeconds(root: number): number {
  let ticks = 0;
  for (const pid of processTree(root)) ticks += readStat(pid)?.ticks ?? 0;
  return ticks / TICKS_PER_SECOND;
}

/**
 * Seconds the tree's threads spent runnable but waiting for a CPU (schedstat run_delay, live threads
 * only): how much other load on the subject's core stretched a wall-clock figure.
 */
export function treeRunDelaySeconds(root: number): number {
  let ns = 0;
  for (const pid of processTree(root)) {
    try {
      for (const tid of readdirSync(`/proc/${pid}/task`))
        ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'latin1').split(' ')[1]);
    } catch {
      // exited meanwhile
    }
  }
  return ns / 1e9;
}

/** Memory of a process tree, in bytes, each figure summed over its processes. */
export interface TreeMemory {
  processes: number;
  rss: number;
  /** Peak RSS since start or since {@link resetPeak}. */
  hwm: number;
  /** Proportional set size: shared pages divided among their sharers (fair for forked workers). */
  pss: number;
}

function statusField(text: string, name: string): number {
  const match = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text);
  return match ? Number(match[1]) * 1024 : 0;
}

/** Reads RSS, peak RSS and PSS of `root` and its descendants. */
export function treeMemory(root: number): TreeMemory {
  const memory: TreeMemory = { processes: 0, rss: 0, hwm: 0, pss: 0 };
  for (const pid of processTree(root)) {
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'latin1');
      const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'latin1');
      memory.rss += statusField(status, 'VmRSS');
      memory.hwm += statusField(status, 'VmHWM');
      memory.pss += statusField(rollup, 'Pss');
      memory.processes++;
    } catch {
      // the process exited between the scan and the read
    }
  }
  return memory;
}

/** Resets VmHWM of every process in the tree to its current RSS (clear_refs 5, Linux 4.0+). */
export function resetPeak(root: number): boolean {
  let ok = true;
  for (const pid of processTree(root)) {
    try {
      writeFileSync(`/proc/${pid}/clear_refs`, '5');
    } catch {
      ok = false;
    }
  }
  return ok;
}

/** The soft limit on open files of a process (`Max open files` in /proc/PID/limits). */
export function fdLimit(pid: number | 'self'): number | undefined {
  try {
    const match = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync(`/proc/${pid}/limits`, 'latin1'));
    return match && match[1] !== 'unlimited' ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** The machine and software a result was measured on. */
export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  node: string;
  kernel: string;
  python: string;
  websockifyPackage: string;
  numpyPackage: string;
  opensslVersion: string;
  fdLimit: number | undefined;
  loadAverage: number[];
}

/** The installed version of a Debian package, or '' (`dpkg-query -W` prints the name, a tab, the version). */
function debianVersion(name: string): string {
  return tryRun('dpkg-query', ['-W', name]).split('\t')[1] ?? '';
}

/** Collects {@link MachineInfo}. */
export function machineInfo(): MachineInfo {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'latin1');
  return {
    cpuModel: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    kernel: `${os.type()} ${os.release()}`,
    python: tryRun('/usr/bin/python3', ['--version']),
    websockifyPackage: debianVersion('websockify'),
    numpyPackage: debianVersion('python3-numpy'),
    opensslVersion: process.versions.openssl ?? '',
    fdLimit: fdLimit('self'),
    loadAverage: os.loadavg().map((n) => Math.round(n * 100) / 100),
  };
}
