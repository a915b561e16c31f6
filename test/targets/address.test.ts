import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UsageError } from '../../src/errors.js';
import { formatHostPort, ipv6First, isPort, parseHostPort, parsePort, portFromText, splitHostPort } from '../../src/targets/address.js';

test('listen addresses: port alone, host:port, bracketed and bare IPv6, empty host', () => {
  assert.deepEqual(parseHostPort('6080', 'listen', false), { host: '', port: 6080 });
  assert.deepEqual(parseHostPort('127.0.0.1:6080', 'listen', false), { host: '127.0.0.1', port: 6080 });
  assert.deepEqual(parseHostPort('[::1]:6080', 'listen', false), { host: '::1', port: 6080 });
  assert.deepEqual(parseHostPort('[::]:6080', 'listen', false), { host: '::', port: 6080 });
  assert.deepEqual(parseHostPort('::1:6080', 'listen', false), { host: '::1', port: 6080 });
  assert.deepEqual(parseHostPort(':6080', 'listen', false), { host: '', port: 6080 });
  assert.deepEqual(parseHostPort('localhost:0', 'listen', false, true), { host: 'localhost', port: 0 });
});

test('targets need a host and a port from 1 to 65535', () => {
  assert.deepEqual(parseHostPort('vnc.example:5901', 'target', true), { host: 'vnc.example', port: 5901 });
  assert.deepEqual(parseHostPort('[2001:db8::1]:22', 'target', true), { host: '2001:db8::1', port: 22 });
  for (const bad of ['5901', ':5901', 'host:', 'host:0', 'host:65536', 'host:x', '[::1]', '[::1', 'a:-1', 'a]:80']) {
    assert.throws(() => parseHostPort(bad, 'target', true), UsageError, bad);
  }
});

test('the message names what was wrong', () => {
  assert.throws(() => parsePort('99999', 'listen address'), /listen address: invalid port '99999'/);
  assert.throws(() => parseHostPort('localhost', 'target', true), /target: expected host:port, got 'localhost'/);
});

test('IPv6 literals are bracketed when printed', () => {
  assert.equal(formatHostPort('::1', 80), '[::1]:80');
  assert.equal(formatHostPort('127.0.0.1', 80), '127.0.0.1:80');
});

test('port numbers: integers 1-65535, 0 only when allowed; as text, decimal digits only', () => {
  for (const good of [1, 80, 65535]) assert.equal(isPort(good), true, String(good));
  for (const bad of [0, -1, 65536, 1.5, Number.NaN, '80', undefined]) assert.equal(isPort(bad), false, String(bad));
  assert.equal(isPort(0, true), true);
  assert.equal(portFromText('5900'), 5900);
  assert.equal(portFromText('00080'), 80);
  assert.equal(portFromText('0'), undefined);
  assert.equal(portFromText('0', true), 0);
  // What Number() would take but a port is not written as.
  for (const bad of ['', ' 80', '+80', '-1', '8e1', '0x50', '80.0', '65536', '000080']) assert.equal(portFromText(bad), undefined, bad);
});

test('splitting host:port: brackets around IPv6, else the last colon; nothing checked yet', () => {
  assert.deepEqual(splitHostPort('example.com:80'), { host: 'example.com', port: '80', bracketed: false });
  assert.deepEqual(splitHostPort('example.com'), { host: 'example.com', port: undefined, bracketed: false });
  assert.deepEqual(splitHostPort('host:'), { host: 'host', port: '', bracketed: false });
  assert.deepEqual(splitHostPort('::1:514'), { host: '::1', port: '514', bracketed: false });
  assert.deepEqual(splitHostPort('[::1]:514'), { host: '::1', port: '514', bracketed: true });
  assert.deepEqual(splitHostPort('[fd00::/8]'), { host: 'fd00::/8', port: undefined, bracketed: true });
  assert.deepEqual(splitHostPort('[::1]:'), { host: '::1', port: '', bracketed: true });
  for (const bad of ['[::1', '[::1]x', '[::1]]:80', 'a]:80', 'a[b]:80', '::1]']) assert.equal(splitHostPort(bad), undefined, bad);
});

test('IPv6 first: the IPv6 addresses before the IPv4 ones, each family in the order given', () => {
  const answers = [
    { address: '10.0.0.1', family: 4 },
    { address: 'fd00::1', family: 6 },
    { address: '10.0.0.2', family: 4 },
    { address: 'fd00::2', family: 6 },
  ];
  assert.deepEqual(
    ipv6First(answers).map((a) => a.address),
    ['fd00::1', 'fd00::2', '10.0.0.1', '10.0.0.2'],
  );
  assert.equal(answers[0]!.address, '10.0.0.1', 'the list given is left as it was');
  assert.deepEqual(ipv6First([{ address: '10.0.0.1', family: 4 }]), [{ address: '10.0.0.1', family: 4 }]);
});
