// A small network of hosts on one machine, for tests that need several (a load balancer in front of
// proxies): a network namespace per host, each with a veth link to a bridge in a "switch" namespace of
// its own. Nothing is added to the machine's own namespace; addresses come from 198.18.0.0/15 (RFC 2544's
// benchmark range) and exist only inside the namespaces made here, which are removed at the end.
import { type ChildProcess, execFileSync, type SpawnOptions, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';

/** The subnet of every test network (each lives in namespaces of its own, so they never meet). */
const SUBNET = '198.18.0';
const IP = '/usr/sbin/ip';

/** One host of a {@link TestNetwork}. */
export interface NetHost {
  /** The namespace's name. */
  namespace: string;
  /** Its address on the network. */
  address: string;
  /** The command line prefix that runs a program on this host. */
  prefix: string[];
  /** Starts a program on this host; {@link TestNetwork.destroy} kills it if it is still running. */
  spawn(command: string, args: readonly string[], options?: SpawnOptions): ChildProcess;
}

function ip(...args: string[]): void {
  execFileSync(IP, args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Whether this machine can build test networks: root, and the ip command. */
export function canBuildNetworks(): boolean {
  return process.getuid?.() === 0 && fs.existsSync(IP);
}

/**
 * Namespaces left by a test process that died before removing them (their names carry its pid): they
 * are removed when the next network is made.
 */
function removeLeftovers(): void {
  let names: string[];
  try {
    names = execFileSync(IP, ['netns', 'list'], { encoding: 'utf8' })
      .split('\n')
      .map((line) => line.split(' ')[0]!)
      .filter(Boolean);
  } catch {
    return;
  }
  for (const name of names) {
    const owner = /^wsfy(\d+)-/.exec(name)?.[1];
    if (!owner || fs.existsSync(`/proc/${owner}`)) continue;
    try {
      ip('netns', 'del', name);
    } catch {
      // another test removed it meanwhile
    }
  }
}

/**
 * Hosts on one Ethernet segment: host number i (from 2) has 198.18.0.i. Destroy it in an `after` hook;
 * it is also destroyed when the process exits.
 */
export class TestNetwork {
  private readonly hosts = new Map<string, NetHost>();
  private readonly processes = new Set<ChildProcess>();
  private readonly namespaces: string[] = [];
  private destroyed = false;
  private readonly onExit = (): void => this.destroySync();

  private constructor(private readonly tag: string) {
    process.once('exit', this.onExit);
  }

  /** Builds the network with a host for each name, numbered as given: `{ lb: 2, client: 10 }`. */
  static create(hosts: Readonly<Record<string, number>>): TestNetwork {
    removeLeftovers();
    const network = new TestNetwork(`wsfy${process.pid}-${randomBytes(2).toString('hex')}`);
    try {
      network.build(hosts);
    } catch (err) {
      network.destroySync();
      throw err;
    }
    return network;
  }

  /** The host named `name`. */
  host(name: string): NetHost {
    const host = this.hosts.get(name);
    if (!host) throw new Error(`no host ${name} in this network`);
    return host;
  }

  /** Kills what runs on the hosts, then removes every namespace (and with them every link). */
  async destroy(): Promise<void> {
    const exits = [...this.processes]
      .filter((child) => child.exitCode === null && child.signalCode === null)
      .map((child) => new Promise((resolve) => child.once('exit', resolve)));
    for (const child of this.processes) child.kill('SIGKILL');
    await Promise.all(exits);
    this.destroySync();
  }

  private destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    process.removeListener('exit', this.onExit);
    for (const child of this.processes) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    for (const name of this.namespaces) {
      try {
        ip('netns', 'del', name);
      } catch {
        // already gone
      }
    }
  }

  private build(hosts: Readonly<Record<string, number>>): void {
    const sw = `${this.tag}-switch`;
    ip('netns', 'add', sw);
    this.namespaces.push(sw);
    ip('-n', sw, 'link', 'add', 'br0', 'type', 'bridge');
    ip('-n', sw, 'link', 'set', 'br0', 'up');
    for (const [name, number] of Object.entries(hosts)) {
      const namespace = `${this.tag}-${name}`;
      const address = `${SUBNET}.${number}`;
      ip('netns', 'add', namespace);
      this.namespaces.push(namespace);
      // Both ends made inside their namespaces: the machine's own never holds them.
      ip('link', 'add', 'eth0', 'netns', namespace, 'type', 'veth', 'peer', 'name', `port${number}`, 'netns', sw);
      ip('-n', sw, 'link', 'set', `port${number}`, 'master', 'br0', 'up');
      ip('-n', namespace, 'addr', 'add', `${address}/24`, 'dev', 'eth0');
      ip('-n', namespace, 'link', 'set', 'eth0', 'up');
      ip('-n', namespace, 'link', 'set', 'lo', 'up');
      const prefix = [IP, 'netns', 'exec', namespace];
      this.hosts.set(name, {
        namespace,
        address,
        prefix,
        spawn: (command, args, options = {}) => {
          // `ip netns exec` execs the command: the child's pid is the program's.
          const child = spawn(IP, ['netns', 'exec', namespace, command, ...args], options);
          this.processes.add(child);
          child.once('exit', () => this.processes.delete(child));
          return child;
        },
      });
    }
  }
}
