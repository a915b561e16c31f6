// The per-address tables: token buckets, failures and bans, open-connection counts. Each is bounded in
// memory, whatever the number of addresses.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BanList } from '../../src/limits/bans.js';
import { ALL_CONNECTIONS, ConnectionCounter } from '../../src/limits/connection-counter.js';
import { RateLimiter } from '../../src/limits/rate-limiter.js';

describe('RateLimiter', () => {
  test('a burst of N, then one token per 1/N s; the wait until the next is told', () => {
    const rate = new RateLimiter(4, 4);
    for (let i = 0; i < 4; i++) assert.equal(rate.take('a', 0), 0);
    assert.equal(rate.take('a', 0), 0.25);
    assert.equal(rate.take('b', 0), 0, 'another address has its own bucket');
    assert.equal(rate.take('a', 250), 0, 'a token came back after 1/4 s');
    assert.ok(rate.take('a', 250) > 0);
  });

  test('at most cap addresses are kept: the least recently seen is forgotten', () => {
    const rate = new RateLimiter(1, 1, 3);
    for (const address of ['a', 'b', 'c']) rate.take(address, 0);
    rate.take('a', 1); // a is now the most recent
    rate.take('d', 1); // b, the least recent, goes
    assert.equal(rate.size, 3);
    assert.equal(rate.take('b', 1), 0, 'b was forgotten: it starts full');
    assert.ok(rate.take('a', 1) > 0, 'a was kept: its bucket is empty');
    for (let i = 0; i < 1000; i++) rate.take(`x${i}`, 2);
    assert.equal(rate.size, 3);
  });
});

describe('BanList', () => {
  test('N failures within the window ban for the ban time; failures spread wider do not', () => {
    const bans = new BanList(3, 10);
    assert.equal(bans.failed('a', 0), false);
    assert.equal(bans.failed('a', 1000), false);
    assert.equal(bans.failed('a', 2000), true);
    assert.equal(bans.bannedFor('a', 2000), 10);
    assert.equal(bans.bannedFor('a', 11_500), 1);
    assert.equal(bans.bannedFor('a', 12_000), 0, 'the ban is over');
    // Three failures, but never three within 10 s.
    assert.equal(bans.failed('b', 0), false);
    assert.equal(bans.failed('b', 6000), false);
    assert.equal(bans.failed('b', 11_000), false);
    assert.equal(bans.bannedFor('b', 11_000), 0);
  });

  test('both tables stay within the cap; expired entries go first', () => {
    const bans = new BanList(1, 10, 4);
    for (let i = 0; i < 100; i++) bans.failed(`a${i}`, i);
    assert.equal([...bans.current(100)].length, 4);
    // The newest bans are the ones kept.
    assert.ok(bans.bannedFor('a99', 100) > 0);
    assert.equal(bans.bannedFor('a0', 100), 0);
  });

  test('a ban decided elsewhere lasts the seconds given', () => {
    const bans = new BanList(1, 1);
    bans.ban('c', 30, 0);
    assert.equal(bans.bannedFor('c', 29_000), 1);
    assert.deepEqual([...bans.current(0)], [['c', 30]]);
  });
});

describe('ConnectionCounter', () => {
  test('takes every claim or none; a key at 0 is dropped', () => {
    const counter = new ConnectionCounter();
    const claims = [
      { key: ALL_CONNECTIONS, max: 3 },
      { key: '10.0.0.1', max: 1 },
    ];
    assert.equal(counter.acquire(claims), -1);
    assert.equal(counter.acquire(claims), 1, 'the per-address claim is full');
    assert.equal(counter.count(ALL_CONNECTIONS), 1, 'nothing taken for a refused connection');
    counter.release([ALL_CONNECTIONS, '10.0.0.1']);
    assert.equal(counter.count('10.0.0.1'), 0);
    assert.equal(counter.acquire(claims), -1);
  });
});
