// Refusal lines once per address per interval, with a count of the rest, and bounded memory.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MAX_FOLLOWED_ADDRESSES, RefusalLog } from '../../src/log/refusal-log.js';
import { captureLog } from '../helpers/log-capture.js';

describe('RefusalLog', () => {
  test('the first refusal of an address is logged; the others are counted in one line at the end of the interval', async () => {
    const log = captureLog();
    const refusals = new RefusalLog(log.logger, 0.2);
    for (let i = 0; i < 50; i++) refusals.refused('192.0.2.1', { event: 'refused', n: i }, `refused #${i}`);
    refusals.refused('192.0.2.2', { event: 'refused' }, 'another address');
    assert.equal(log.events.filter((e) => e.event === 'refused').length, 2);
    const more = await log.waitFor((e) => e.event === 'refused-more');
    assert.equal(more.client, '192.0.2.1');
    assert.equal(more.count, 49);
    assert.equal(more.msg, 'refused 49 more from 192.0.2.1 in the last 0.2 s');
    // A new interval begins with a line again.
    refusals.refused('192.0.2.1', { event: 'refused', n: 50 }, 'refused #50');
    assert.equal(log.events.filter((e) => e.event === 'refused').length, 3);
    assert.equal(log.events.filter((e) => e.event === 'refused-more').length, 1, 'no summary for an address with nothing suppressed');
  });

  test('addresses beyond the bound share one line', async () => {
    const log = captureLog();
    const refusals = new RefusalLog(log.logger, 0.2);
    for (let i = 0; i < MAX_FOLLOWED_ADDRESSES + 500; i++) refusals.refused(`a${i}`, { event: 'refused' }, 'x');
    assert.equal(log.events.filter((e) => e.event === 'refused').length, MAX_FOLLOWED_ADDRESSES + 1);
    const more = await log.waitFor((e) => e.event === 'refused-more');
    assert.equal(more.client, 'other addresses');
    assert.equal(more.count, 499);
  });

  test('an interval of 0 logs every refusal', () => {
    const log = captureLog();
    const refusals = new RefusalLog(log.logger, 0);
    for (let i = 0; i < 5; i++) refusals.refused('a', { event: 'refused' }, 'x');
    assert.equal(log.events.length, 5);
  });
});
