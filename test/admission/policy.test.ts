import assert from 'node:assert/strict';
import dns from 'node:dns';
import path from 'node:path';
import { test } from 'node:test';
import { parseTargetPattern, TargetPolicy } from '../../src/admission/policy.js';
import { UsageError } from '../../src/errors.js';
import type { Target } from '../../src/targets/target.js';

/** A policy made of `patterns`, as `--allow-target` builds it. */
function policy(...patterns: string[]): TargetPolicy {
  return new TargetPolicy(patterns.map(parseTargetPattern));
}

function tcp(host: string, port: number): Target {
  return { kind: 'tcp', host, port };
}

/** Whether `policy` lets `target` through (pinned or not). */
async function allows(p: TargetPolicy, target: Target): Promise<boolean> {
  return (await p.check(target)) !== undefined;
}

test('invalid patterns are usage errors', () => {
  const bad = [
    '',
    ':5900',
    'example.com:',
    'example.com:0',
    'example.com:65536',
    'example.com:6000-5900',
    'example.com:59x',
    '10.0.0.0/33',
    '10.0.0.0/8/1',
    '10.0.0',
    '300.1.1.1',
    '[fd00::/129]',
    '[fd00::1',
    'fd00::1]',
    '[example.com]:80',
    'a.*.example.com',
    '*example.com',
    'bad host',
    'under_score-.com',
    'unix:',
    'fe80::1%eth0',
    'host:1:2',
  ];
  for (const text of bad) assert.throws(() => parseTargetPattern(text), UsageError, `'${text}' should be refused`);
});

test('host names: exact and case-insensitive, a trailing dot ignored; the port defaults to any', async () => {
  const p = policy('VNC.example.com');
  assert.equal(await allows(p, tcp('vnc.example.com', 5900)), true);
  assert.equal(await allows(p, tcp('Vnc.Example.Com.', 1)), true);
  assert.equal(await allows(p, tcp('vnc.example.com.evil.test', 5900)), false);
  assert.equal(await allows(p, tcp('other.example.com', 5900)), false);
});

test('*.domain: any name below the domain, not the domain itself nor a look-alike', async () => {
  const p = policy('*.vnc.example.com:5900');
  assert.equal(await allows(p, tcp('a.vnc.example.com', 5900)), true);
  assert.equal(await allows(p, tcp('a.b.vnc.example.com', 5900)), true);
  assert.equal(await allows(p, tcp('vnc.example.com', 5900)), false);
  assert.equal(await allows(p, tcp('badvnc.example.com', 5900)), false);
  assert.equal(await allows(p, tcp('a.vnc.example.com', 5901)), false);
});

test('ports and port ranges, with any host (*) or a given one', async () => {
  const p = policy('*:22', 'desk.example.com:5900-5999');
  assert.equal(await allows(p, tcp('anything.example.org', 22)), true);
  assert.equal(await allows(p, tcp('192.0.2.1', 22)), true);
  assert.equal(await allows(p, tcp('desk.example.com', 5900)), true);
  assert.equal(await allows(p, tcp('desk.example.com', 5999)), true);
  assert.equal(await allows(p, tcp('desk.example.com', 5899)), false);
  assert.equal(await allows(p, tcp('desk.example.com', 6000)), false);
  assert.equal(await allows(policy('*:*'), tcp('x.example', 1)), true);
});

test('IP addresses and CIDR ranges, IPv4 and IPv6; an IPv4-mapped IPv6 target is its IPv4 address', async () => {
  const p = policy('10.0.0.0/8:5900-5999', '192.0.2.7', '[fd00::/8]:22', '2001:db8::/32');
  assert.equal(await allows(p, tcp('10.200.3.4', 5900)), true);
  assert.equal(await allows(p, tcp('10.200.3.4', 6000)), false);
  assert.equal(await allows(p, tcp('11.0.0.1', 5900)), false);
  assert.equal(await allows(p, tcp('::ffff:10.1.2.3', 5901)), true);
  assert.equal(await allows(p, tcp('::ffff:11.1.2.3', 5901)), false);
  assert.equal(await allows(p, tcp('192.0.2.7', 443)), true);
  assert.equal(await allows(p, tcp('192.0.2.8', 443)), false);
  assert.equal(await allows(p, tcp('fd12::1', 22)), true);
  assert.equal(await allows(p, tcp('fd12::1', 23)), false);
  assert.equal(await allows(p, tcp('2001:db8:1::5', 80)), true);
  assert.equal(await allows(p, tcp('2001:db9::5', 80)), false);
  // A name pattern never lets an address through, nor an address pattern a name-less address elsewhere.
  assert.equal(await allows(policy('example.com'), tcp('192.0.2.7', 80)), false);
});

test('a host name against address ranges: every address it resolves to must be inside, and the target is pinned', async () => {
  const addresses = await dns.promises.lookup('localhost', { all: true });
  assert.ok(addresses.length > 0);
  const everyLocal = policy('127.0.0.0/8', '[::1]');
  const pinned = await everyLocal.check({ kind: 'tcp', host: 'localhost', port: 5900, tls: { insecure: false } });
  assert.ok(pinned && pinned.kind === 'tcp', 'localhost resolves to loopback addresses only');
  assert.equal(pinned.host, addresses[0]!.address);
  assert.equal(pinned.port, 5900);
  // The certificate is still checked against the name.
  assert.equal(pinned.tls?.servername, 'localhost');

  // Any address outside: refused, so a name is no way around a range.
  assert.equal(await allows(policy('10.0.0.0/8'), tcp('localhost', 5900)), false);
  const onlyV4 = addresses.every((a) => a.family === 4);
  assert.equal(await allows(policy('127.0.0.0/8'), tcp('localhost', 5900)), onlyV4);
  // A name that does not resolve cannot be checked: refused even by the widest ranges.
  assert.equal(await allows(policy('0.0.0.0/0', '[::/0]'), tcp('no-such-host.invalid', 5900)), false);
  // A name matched by a name pattern is not looked up nor pinned.
  const byName = await policy('localhost:5900', '10.0.0.0/8').check(tcp('localhost', 5900));
  assert.deepEqual(byName, tcp('localhost', 5900));
});

test('with -6 a name is pinned to an IPv6 address when it has one', async () => {
  const addresses = await dns.promises.lookup('localhost', { all: true });
  const p = new TargetPolicy(['127.0.0.0/8', '[::1]'].map(parseTargetPattern), { preferIpv6: true });
  const pinned = await p.check(tcp('localhost', 80));
  const expected = addresses.find((a) => a.family === 6) ?? addresses[0]!;
  assert.equal(pinned?.kind === 'tcp' && pinned.host, expected.address);
});

test('Unix targets: only unix: patterns, an exact path or * within one directory level', async () => {
  const p = policy('unix:/run/vnc/*.sock', 'unix:/tmp/one.sock', '*:*');
  assert.equal(await allows(p, { kind: 'unix', path: '/run/vnc/desk1.sock' }), true);
  assert.equal(await allows(p, { kind: 'unix', path: '/run/vnc/sub/desk1.sock' }), false);
  assert.equal(await allows(p, { kind: 'unix', path: '/run/vnc/../secret/x.sock' }), false);
  assert.equal(await allows(p, { kind: 'unix', path: '/tmp/one.sock' }), true);
  assert.equal(await allows(p, { kind: 'unix', path: '/tmp/one.sockx' }), false);
  // A TCP pattern, even '*:*', allows no Unix socket; a Unix pattern no TCP target.
  assert.equal(await allows(policy('*:*'), { kind: 'unix', path: '/tmp/one.sock' }), false);
  assert.equal(await allows(policy('unix:/tmp/*'), tcp('127.0.0.1', 80)), false);
  // Relative paths are taken from the working directory, as --unix-target's are.
  const relative = policy('unix:sockets/*');
  assert.equal(await allows(relative, { kind: 'unix', path: path.resolve('sockets/a') }), true);
});
