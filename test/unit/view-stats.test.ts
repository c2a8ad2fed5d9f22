/** The stats view: rates from two readings of a director's counters, and its text table. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statsView, formatStatsView, humanCount } from '../../src/view/stats.js';
import type { StatsSample } from '../../src/director/director.js';

function sample(at: bigint, pk: bigint, by: bigint, conns: bigint): StatsSample {
  return {
    at,
    services: [{
      id: 'tcp 10.0.0.1:80', packets: pk, bytes: by, conns,
      realservers: [{ address: '10.0.0.2', port: 80, weight: 1, packets: pk, bytes: by, conns, active: 3, inactive: 1 }],
    }],
    counters: { fwd_dr: pk, pass_not_vip: 0n },
    connections: { entries: 4, max: 100, evicted: 2 },
  };
}

test('stats view: rates are deltas over the measured interval', () => {
  const v = statsView(sample(3_000_000_000n, 3000n, 300000n, 30n), sample(1_000_000_000n, 1000n, 100000n, 10n));
  assert.equal(v.seconds, 2);
  assert.deepEqual(v.services[0]!.rates, { pps: 1000, bps: 100000, cps: 10 });
  assert.deepEqual(v.services[0]!.realservers[0]!.rates, { pps: 1000, bps: 100000, cps: 10 });
  assert.equal(v.counters.fwd_dr!.rate, 1000);
  // Without a previous reading (or after a counter reset) rates are 0, never negative.
  assert.equal(statsView(sample(1n, 5n, 5n, 5n)).services[0]!.rates.pps, 0);
  assert.equal(statsView(sample(2_000_000_000n, 5n, 5n, 5n), sample(1_000_000_000n, 50n, 50n, 50n)).services[0]!.rates.pps, 0);
});

test('stats text: one row per service and realserver, zero counters hidden unless asked', () => {
  const text = formatStatsView(statsView(sample(2_000_000_000n, 20000n, 2_000_000n, 30n), sample(1_000_000_000n, 10000n, 1_000_000n, 10n)));
  const lines = text.split('\n');
  assert.match(lines[0]!, /packets +bytes +conns +active +inact +pps +bit\/s +conn\/s/);
  assert.match(lines[1]!, /^tcp 10\.0\.0\.1:80 +20\.0K +2\.0M +30 +10\.0K +8\.0M +20$/);
  assert.match(lines[2]!, /^ {2}-> 10\.0\.0\.2:80 w1 +20\.0K +2\.0M +30 +3 +1 +10\.0K +8\.0M +20$/);
  assert.match(text, /connection table: 4 \/ 100 entries \(4\.0%\), 2 evicted since load/);
  assert.match(text, /fwd_dr +fwd +20000 +10\.0K/);
  assert.doesNotMatch(text, /pass_not_vip/);
  assert.match(formatStatsView(statsView(sample(1n, 1n, 1n, 1n)), true), /pass_not_vip/);
});

test('counts are abbreviated from 10000 on, with one decimal below 100 of the unit', () => {
  assert.deepEqual([0, 9999, 10_000, 123_456, 2_500_000, 7e9, 1.5e13].map(humanCount), ['0', '9999', '10.0K', '123K', '2.5M', '7.0G', '15.0T']);
  assert.equal(humanCount(12_345n), '12.3K');
});
