/** `lvs-xdp top`'s pure screen and keys (src/view/top.ts): rates, health from run, sort, service filter, colour. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { COUNTERS } from '../../src/abi/generated.js';
import type { StatsSample } from '../../src/director/director.js';
import { statsView } from '../../src/view/stats.js';
import { formatTop, topKey, serviceMatches, validServiceFilter, SORT_KEYS, type TopHealthDoc } from '../../src/view/top.js';

const S = 'tcp 10.0.0.1:80';
const U = 'udp [2001:db8::1]:53';

/** Two services; k scales every counter (two samples a second apart give rates). */
function sample(at: bigint, k: bigint): StatsSample {
  const counters: Record<string, bigint> = {};
  COUNTERS.forEach((c, i) => { counters[c.name.toLowerCase()] = BigInt(i) * k; });
  return {
    at, counters, connections: { entries: 25, max: 100, evicted: 3 },
    services: [{
      id: S, packets: 100n * k, bytes: 6000n * k, conns: 10n * k,
      realservers: [
        { address: '192.168.1.10', port: 80, weight: 1, packets: 60n * k, bytes: 3600n * k, conns: 6n * k, active: 3, inactive: 1 },
        { address: '192.168.1.11', port: 80, weight: 0, packets: 40n * k, bytes: 2400n * k, conns: 4n * k, active: 0, inactive: 2 },
        { address: '192.168.1.9', port: 80, weight: 2, packets: 0n, bytes: 0n, conns: 0n, active: 9, inactive: 0 },
      ],
    }, {
      id: U, packets: 1000n * k, bytes: 9000n * k, conns: 100n * k,
      realservers: [{ address: '2001:db8::10', port: 53, weight: 1, packets: 1000n * k, bytes: 9000n * k, conns: 100n * k, active: 0, inactive: 5 }],
    }],
  };
}

const view = statsView(sample(2_000_000_000n, 3n), sample(1_000_000_000n, 1n));
const health: TopHealthDoc = {
  pid: 42,
  realservers: [
    { service: S, address: '192.168.1.10', state: 'up' },
    { service: S, address: '192.168.1.11', state: 'down' },
    { service: S, address: '192.168.1.9', state: 'up', drained: true },
    { service: U, address: '2001:db8::10', state: 'down' },
  ],
  services: [{ service: S, allDown: false, sorryActive: false }, { service: U, allDown: true, sorryActive: false }],
};

/** The table's first column, in screen order. */
function names(screen: string): string[] {
  return screen.split('\n').slice(5).map((l) => l.trim().split(/\s{2,}/)[0]!).filter(Boolean);
}

test('top: rates from two samples, health from run, one line per realserver', () => {
  const screen = formatTop(view, health, new Date(0));
  assert.match(screen, /conn table 25\/100 \(25\.0%\)/);
  assert.match(screen, /health: from run \(pid 42\)/);
  assert.match(screen, /^tcp 10\.0\.0\.1:80\s+2\/3 up\s+200\s+96\.0K\s+20\s+30$/m);
  assert.match(screen, /^ {2}192\.168\.1\.10:80\s+1\s+up\s+120\s+57\.6K\s+12\s+3\s+1\s+18$/m);
  assert.match(screen, /^ {2}192\.168\.1\.11:80\s+0\s+down\s+/m);
  assert.match(screen, /^ {2}192\.168\.1\.9:80\s+2\s+up drained\s+/m);
  assert.match(screen, /^udp \[2001:db8::1\]:53\s+ALL DOWN\s+2000\s+/m);
  assert.match(screen, /sort: as configured {2}service: all/);
  assert.deepEqual(names(screen), [S, '192.168.1.10:80', '192.168.1.11:80', '192.168.1.9:80', U, '[2001:db8::10]:53']);
  assert.doesNotMatch(screen, /\x1b/, 'no colour unless asked');
  assert.match(formatTop(statsView(sample(0n, 1n)), undefined, new Date(0)), /no run active/);
});

test('top --sort: services by the column, realservers within their service; numbers largest first, names and health ascending', () => {
  assert.deepEqual(names(formatTop(view, health, new Date(0), { sort: 'pps' })), [U, '[2001:db8::10]:53', S, '192.168.1.10:80', '192.168.1.11:80', '192.168.1.9:80']);
  assert.deepEqual(names(formatTop(view, health, new Date(0), { sort: 'active' })), [S, '192.168.1.9:80', '192.168.1.10:80', '192.168.1.11:80', U, '[2001:db8::10]:53']);
  // 1.10 < 1.11 < 1.9 as text, 9 < 10 < 11 as numbers: names compare numerically.
  assert.deepEqual(names(formatTop(view, health, new Date(0), { sort: 'name' })), [S, '192.168.1.9:80', '192.168.1.10:80', '192.168.1.11:80', U, '[2001:db8::10]:53']);
  // Health: down first, then degraded (drained), then up; the all-down service first.
  assert.deepEqual(names(formatTop(view, health, new Date(0), { sort: 'health' })), [U, '[2001:db8::10]:53', S, '192.168.1.11:80', '192.168.1.9:80', '192.168.1.10:80']);
  assert.deepEqual(names(formatTop(view, health, new Date(0), { sort: 'pps', reverse: true })), [S, '192.168.1.9:80', '192.168.1.11:80', '192.168.1.10:80', U, '[2001:db8::10]:53']);
  const screen = formatTop(view, health, new Date(0), { sort: 'pps' });
  assert.match(screen, /^service \/ realserver\s+weight\s+health\s+pps\*\s+bit\/s/m);
  assert.match(screen, /sort: pps {2}/);
});

test('top --service: one service by VIP:PORT, [V6]:PORT or its id; none matching says so', () => {
  assert.deepEqual(names(formatTop(view, health, new Date(0), { service: '10.0.0.1:80' })), [S, '192.168.1.10:80', '192.168.1.11:80', '192.168.1.9:80']);
  assert.deepEqual(names(formatTop(view, health, new Date(0), { service: '[2001:db8::1]:53' })), [U, '[2001:db8::10]:53']);
  assert.deepEqual(names(formatTop(view, health, new Date(0), { service: U })), [U, '[2001:db8::10]:53']);
  assert.match(formatTop(view, health, new Date(0), { service: '10.0.0.9:80' }), /\(no virtual service matches 10\.0\.0\.9:80\)/);
  assert.equal(serviceMatches('10.0.0.1:80', S), true);
  assert.equal(serviceMatches('10.0.0.1:8', S), false);
  assert.equal(serviceMatches('udp 10.0.0.1:80', S), false);
  for (const ok of ['10.0.0.1:80', '[2001:db8::1]:53', 'tcp 10.0.0.1:80', 'udp [::1]:53']) assert.equal(validServiceFilter(ok), true, ok);
  for (const bad of ['10.0.0.1', 'sctp 10.0.0.1:80', '2001:db8::1:53', 'x:80']) assert.equal(validServiceFilter(bad), false, bad);
});

test('top colour: the health cell green up, yellow degraded or drained, red down; widths unchanged', () => {
  const plain = formatTop(view, health, new Date(0));
  const screen = formatTop(view, health, new Date(0), { color: true });
  assert.match(screen, /^ {2}192\.168\.1\.10:80\s+1 {2}\x1b\[32mup\x1b\[0m/m);
  assert.match(screen, /^ {2}192\.168\.1\.11:80\s+0 {2}\x1b\[31mdown\x1b\[0m/m);
  assert.match(screen, /^ {2}192\.168\.1\.9:80\s+2 {2}\x1b\[33mup drained\x1b\[0m/m);
  assert.match(screen, /^tcp 10\.0\.0\.1:80\s+\x1b\[33m2\/3 up\x1b\[0m/m);
  assert.match(screen, /^udp \[2001:db8::1\]:53\s+\x1b\[31mALL DOWN\x1b\[0m/m);
  assert.equal(screen.replace(/\x1b\[\d+m/g, ''), plain);
  // Narrow: a health cell that does not fit whole is not painted (no escape is cut in half).
  assert.doesNotMatch(formatTop(view, health, new Date(0), { color: true, width: 20 }).split('\n').slice(4).join('\n'), /\x1b/);
});

test('top keys: s cycles the sort columns then back to the configured order, r reverses, f cycles services, a shows all', () => {
  const services = [S, U];
  let v = {};
  const seen: (string | undefined)[] = [];
  for (let i = 0; i <= SORT_KEYS.length; i++) {
    v = topKey(v, 's', services);
    seen.push((v as { sort?: string }).sort);
  }
  assert.deepEqual(seen, [...SORT_KEYS, undefined]);
  assert.deepEqual(topKey({ sort: 'pps' }, 'r', services), { sort: 'pps', reverse: true });
  assert.deepEqual(topKey({}, 'f', services), { service: S });
  assert.deepEqual(topKey({ service: S }, 'f', services), { service: U });
  assert.deepEqual(topKey({ service: U }, 'f', services), {});
  assert.deepEqual(topKey({ service: '10.0.0.1:80' }, 'f', services), { service: U }, 'from a --service VIP:PORT');
  assert.deepEqual(topKey({ service: U, sort: 'cps' }, 'a', services), { sort: 'cps' });
  const same = { sort: 'pps' as const };
  assert.equal(topKey(same, 'x', services), same);
});
