// The fleet, on one machine: a client host, HAProxy (mode tcp, send-proxy-v2, health checks) in front of
// three websockify-ts instances (--workers 2 --proxy-protocol) that share their tokens in Redis, and a
// target host, each in a network namespace of its own (test/helpers/netns.ts). It shows that sessions
// spread over the instances and their workers, that every instance sees the client's address, that a
// drained instance stops being chosen while its sessions go on, that a killed one takes only its own
// sessions, that a restarted one is used again, and that the client cannot spoof its address.
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { canBuildNetworks, type NetHost, TestNetwork } from '../helpers/netns.js';
import { type RunningProxy, startProxy } from '../helpers/proxy.js';
import { waitUntil } from '../helpers/wait.js';
import type { ClientAnswer, ClientRequest } from './client-host.js';

const HAPROXY = '/usr/sbin/haproxy';
const REDIS = '/usr/bin/redis-server';
const REDIS_CLI = '/usr/bin/redis-cli';
const CLIENT_HOST = fileURLToPath(new URL('./client-host.js', import.meta.url));
const PORT = 6080;
const TARGET_PORT = 7000;
const INSTANCES = ['p1', 'p2', 'p3'] as const;
type Instance = (typeof INSTANCES)[number];

/** Hosts and their numbers (198.18.0.N). */
const HOSTS = { lb: 2, client: 10, p1: 21, p2: 22, p3: 23, redis: 30, target: 40 };
const ADDRESS = (name: keyof typeof HOSTS): string => `198.18.0.${HOSTS[name]}`;

/** Outside CI a machine without root or the packages skips; under CI=true it fails instead. */
function skipReason(): string | false {
  if (process.env.CI === 'true') return false;
  if (!canBuildNetworks()) return 'needs root and the ip command (network namespaces)';
  const missing = [HAPROXY, REDIS, REDIS_CLI].filter((file) => !fs.existsSync(file));
  return missing.length > 0 ? `missing ${missing.join(', ')}` : false;
}

/** The client host's RPC (client-host.ts): requests in, answers out, one JSON line each. */
class Client {
  private nextId = 1;
  private readonly waiting = new Map<number, (answer: ClientAnswer) => void>();

  constructor(private readonly proc: ChildProcess) {
    readline.createInterface({ input: proc.stdout! }).on('line', (line) => {
      const reply = JSON.parse(line) as ClientAnswer;
      this.waiting.get(reply.id)?.(reply);
      this.waiting.delete(reply.id);
    });
  }

  /** Sends a request and waits for its answer (which may say `ok: false`). */
  ask(request: DistributiveOmit<ClientRequest, 'id'>): Promise<ClientAnswer> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.proc.stdin!.write(`${JSON.stringify({ ...request, id })}\n`);
    });
  }

  /** As {@link ask}, failing the test on `ok: false`. */
  async must(request: DistributiveOmit<ClientRequest, 'id'>): Promise<ClientAnswer> {
    const reply = await this.ask(request);
    assert.ok(reply.ok, `${JSON.stringify(request)}: ${reply.error}`);
    return reply;
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

describe('a fleet behind HAProxy, with tokens in Redis', { skip: skipReason() }, () => {
  let network: TestNetwork;
  let client: Client;
  let scratch: string;
  const proxies = new Map<Instance, RunningProxy>();
  const token = 'fleet-token';
  const url = `ws://${ADDRESS('lb')}:${PORT}/?token=${token}`;

  /** Starts websockify-ts on an instance's host, as the fleet runs it. */
  async function startInstance(name: Instance): Promise<RunningProxy> {
    const host = network.host(name);
    const proxy = await startProxy(
      [
        '--workers',
        '2',
        '--proxy-protocol',
        '--trusted-proxy',
        `${ADDRESS('lb')}/32`,
        '--token-plugin',
        'TokenRedis',
        '--token-source',
        `${ADDRESS('redis')}:6379`,
        '--drain-timeout',
        '60',
        `${host.address}:${PORT}`,
      ],
      { prefix: host.prefix },
    );
    proxies.set(name, proxy);
    return proxy;
  }

  /** HAProxy's view of each instance: UP, DOWN... (its runtime API on a Unix socket in the scratch dir). */
  async function serverStates(): Promise<Record<string, string>> {
    const text = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(path.join(scratch, 'haproxy.sock'));
      let out = '';
      socket.setEncoding('utf8').on('data', (t: string) => (out += t));
      socket.once('end', () => resolve(out));
      socket.once('error', reject);
      socket.end('show stat\n');
    });
    const states: Record<string, string> = {};
    for (const line of text.split('\n')) {
      const [proxy, server, ...rest] = line.split(',');
      if (proxy === 'instances' && server && server !== 'BACKEND' && server !== 'FRONTEND') states[server] = rest[15] ?? '';
    }
    return states;
  }

  async function waitForState(name: Instance, state: 'UP' | 'DOWN'): Promise<void> {
    await waitUntil(`HAProxy to see ${name} ${state}`, async () => (await serverStates())[name]?.startsWith(state), 30_000);
  }

  /** The instance and worker that logged the opening of the client's session from `localPort`. */
  function whereServed(localPort: number): { instance: Instance; worker: number; client: string } | undefined {
    const client = `${ADDRESS('client')}:${localPort}`;
    for (const [instance, proxy] of proxies) {
      const open = proxy.events().find((e) => e.event === 'open' && e.client === client);
      if (open) return { instance, worker: Number(open.worker), client };
    }
    return undefined;
  }

  /** Opens `count` sessions through the balancer; returns where each went (found in the instances' logs). */
  async function openSessions(prefix: string, count: number): Promise<Array<{ session: string; instance: Instance; worker: number }>> {
    const opened: Array<{ session: string; instance: Instance; worker: number }> = [];
    for (let i = 0; i < count; i++) {
      const session = `${prefix}-${i}`;
      const { localPort } = await client.must({ op: 'open', session, url });
      const served = await waitUntil(`the log line of ${session}`, () => whereServed(localPort!));
      assert.equal((await client.must({ op: 'echo', session, text: `${session} says hi` })).text, `${session} says hi`);
      opened.push({ session, instance: served.instance, worker: served.worker });
    }
    return opened;
  }

  /** Sessions per instance and worker, as a line for the test's output (the figures in docs/DEPLOYMENT.md). */
  function spread(opened: ReadonlyArray<{ instance: Instance; worker: number }>): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const { instance, worker } of opened) counts[`${instance}/w${worker}`] = (counts[`${instance}/w${worker}`] ?? 0) + 1;
    return counts;
  }

  before(async () => {
    assert.ok(canBuildNetworks(), 'the fleet test needs root and /usr/sbin/ip');
    for (const tool of [HAPROXY, REDIS, REDIS_CLI]) assert.ok(fs.existsSync(tool), `${tool} is needed (see scripts/test-all.sh)`);
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'wsfy-fleet-'));
    network = TestNetwork.create(HOSTS);
    const run = (host: NetHost, command: string, args: string[]): ChildProcess => {
      const child = host.spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
      child.stderr!.resume();
      return child;
    };
    // The target: an echo server.
    run(network.host('target'), process.execPath, [
      '-e',
      `require('net').createServer((s) => s.pipe(s)).listen(${TARGET_PORT}, '${ADDRESS('target')}')`,
    ]).stdout!.resume();
    // Redis holds the token, written once.
    run(network.host('redis'), REDIS, [
      '--bind',
      ADDRESS('redis'),
      '--port',
      '6379',
      '--save',
      '',
      '--appendonly',
      'no',
      '--protected-mode',
      'no',
    ]).stdout!.resume();
    await waitUntil('redis to answer', () => {
      try {
        execFileSync(
          network.host('redis').prefix[0]!,
          [...network.host('redis').prefix.slice(1), REDIS_CLI, '-h', ADDRESS('redis'), 'ping'],
          {
            stdio: 'pipe',
          },
        );
        return true;
      } catch {
        return false;
      }
    });
    execFileSync(network.host('redis').prefix[0]!, [
      ...network.host('redis').prefix.slice(1),
      REDIS_CLI,
      '-h',
      ADDRESS('redis'),
      'set',
      token,
      `${ADDRESS('target')}:${TARGET_PORT}`,
    ]);
    for (const name of INSTANCES) await startInstance(name);
    // HAProxy: TCP mode, the PROXY protocol v2 to every instance (its checks too), quick health checks,
    // and a failed connection retried on another instance.
    const config = path.join(scratch, 'haproxy.cfg');
    fs.writeFileSync(
      config,
      [
        'global',
        `  stats socket ${path.join(scratch, 'haproxy.sock')} mode 600 level admin`,
        'defaults',
        '  mode tcp',
        '  timeout connect 2s',
        '  timeout client 1h',
        '  timeout server 1h',
        '  retries 3',
        '  option redispatch',
        'frontend websockets',
        `  bind ${ADDRESS('lb')}:${PORT}`,
        '  default_backend instances',
        'backend instances',
        '  balance roundrobin',
        ...INSTANCES.map(
          (name) => `  server ${name} ${ADDRESS(name)}:${PORT} send-proxy-v2 check check-send-proxy inter 300 fall 1 rise 2`,
        ),
        '',
      ].join('\n'),
    );
    const haproxy = run(network.host('lb'), HAPROXY, ['-f', config, '-db']);
    haproxy.stdout!.resume();
    await waitUntil('HAProxy to see every instance up', async () => {
      try {
        const states = await serverStates();
        return INSTANCES.every((name) => states[name]?.startsWith('UP'));
      } catch {
        return false;
      }
    });
    const clientProc = run(network.host('client'), process.execPath, [CLIENT_HOST]);
    client = new Client(clientProc);
  });

  after(async () => {
    await Promise.all([...proxies.values()].map((proxy) => proxy.stop('SIGKILL')));
    await network?.destroy();
    if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
  });

  test('sessions spread over the three instances and both workers of each; each logs the client host, never the balancer', async (t) => {
    const opened = await openSessions('spread', 30);
    const counts = spread(opened);
    t.diagnostic(`sessions per instance/worker: ${JSON.stringify(counts)}`);
    for (const name of INSTANCES)
      for (const worker of [1, 2])
        assert.ok(counts[`${name}/w${worker}`], `no session on ${name} worker ${worker}: ${JSON.stringify(counts)}`);
    for (const proxy of proxies.values()) {
      const opens = proxy.events().filter((e) => e.event === 'open');
      assert.ok(opens.length > 0);
      for (const open of opens) assert.match(String(open.client), new RegExp(`^${ADDRESS('client').replaceAll('.', '\\.')}:\\d+$`));
      assert.ok(!proxy.stderr().includes(`${ADDRESS('lb')}:`), "the balancer's address appears in a log line");
    }
    for (const { session } of opened) await client.must({ op: 'close', session });
  });

  test('a spoofed PROXY header or X-Forwarded-For from the client host is not believed', async () => {
    // Straight to an instance, bypassing the balancer, with a PROXY header claiming another address.
    const handshake =
      `GET /?token=${token} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';
    const spoofed = await client.must({
      op: 'raw',
      host: ADDRESS('p3'),
      port: PORT,
      data: Buffer.from(`PROXY TCP4 203.0.113.7 ${ADDRESS('p3')} 4444 ${PORT}\r\n${handshake}`).toString('base64'),
      timeoutMs: 5000,
    });
    assert.equal(spoofed.closedByPeer, true);
    assert.doesNotMatch(Buffer.from(spoofed.received!, 'base64').toString(), /101 Switching Protocols/);
    const p3 = proxies.get('p3')!;
    await p3.waitForEvent((e) => JSON.stringify(e).includes(ADDRESS('client')) && /PROXY/i.test(String(e.msg)));
    assert.ok(!p3.stderr().includes('203.0.113.7'), 'the spoofed address was believed');
    // Through the balancer, an X-Forwarded-For of the client's own making.
    const { localPort } = await client.must({ op: 'open', session: 'xff', url, headers: { 'X-Forwarded-For': '203.0.113.8' } });
    const served = await waitUntil('the log line of the session', () => whereServed(localPort!));
    assert.equal(served.client, `${ADDRESS('client')}:${localPort}`);
    for (const proxy of proxies.values()) assert.ok(!proxy.stderr().includes('203.0.113.8'), 'the forwarded address was believed');
    await client.must({ op: 'close', session: 'xff' });
  });

  test('draining one instance: it is no longer chosen, its open sessions go on, it exits when they end; restarted, it is used again', async (t) => {
    const before = await openSessions('before-drain', 6);
    const onP1 = before.filter((s) => s.instance === 'p1');
    assert.ok(onP1.length > 0, JSON.stringify(spread(before)));
    const p1 = proxies.get('p1')!;
    const drainStarted = Date.now();
    p1.proc.kill('SIGTERM');
    await p1.waitForEvent((e) => e.event === 'draining');
    await waitForState('p1', 'DOWN');
    t.diagnostic(`HAProxy saw the drained instance down after ${Date.now() - drainStarted} ms`);
    const during = await openSessions('during-drain', 6);
    t.diagnostic(`sessions opened while p1 drains: ${JSON.stringify(spread(during))}`);
    assert.ok(
      during.every((s) => s.instance !== 'p1'),
      JSON.stringify(spread(during)),
    );
    for (const { session } of onP1) assert.equal((await client.must({ op: 'echo', session, text: 'still served' })).text, 'still served');
    assert.equal(p1.proc.exitCode, null, 'p1 exited while its sessions were open');
    for (const { session } of [...before, ...during]) await client.must({ op: 'close', session });
    assert.equal((await p1.exited).code, 0, p1.stderr());

    await startInstance('p1');
    await waitForState('p1', 'UP');
    const after = await openSessions('after-restart', 6);
    t.diagnostic(`sessions after p1 restarted: ${JSON.stringify(spread(after))}`);
    assert.ok(
      after.some((s) => s.instance === 'p1'),
      JSON.stringify(spread(after)),
    );
    for (const { session } of after) await client.must({ op: 'close', session });
  });

  test('killing one instance (SIGKILL) ends only its sessions; new sessions go to the others; restarted, it is used again', async (t) => {
    const before = await openSessions('before-kill', 9);
    const onP2 = before.filter((s) => s.instance === 'p2');
    const others = before.filter((s) => s.instance !== 'p2');
    assert.ok(onP2.length > 0 && others.length > 0, JSON.stringify(spread(before)));
    proxies.get('p2')!.proc.kill('SIGKILL');
    for (const { session } of onP2) {
      const closed = await client.ask({ op: 'closed', session, timeoutMs: 10_000 });
      assert.ok(closed.ok, `${session} was not ended: ${closed.error}`);
    }
    for (const { session } of others) assert.equal((await client.must({ op: 'echo', session, text: 'unaffected' })).text, 'unaffected');
    await waitForState('p2', 'DOWN');
    const during = await openSessions('p2-down', 6);
    t.diagnostic(`sessions opened while p2 is down: ${JSON.stringify(spread(during))}`);
    assert.ok(during.every((s) => s.instance !== 'p2'));

    await startInstance('p2');
    await waitForState('p2', 'UP');
    const after = await openSessions('p2-back', 6);
    assert.ok(
      after.some((s) => s.instance === 'p2'),
      JSON.stringify(spread(after)),
    );
    for (const { session } of [...others, ...during, ...after]) await client.must({ op: 'close', session });
  });
});
