/**
 * The status page's pure parts: the summary's numbers, the rendering (complete without
 * JavaScript; problems marked in text, not only in colour), the sparklines and their bounded
 * history. The page in Chromium: test/e2e/ops.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderPage, renderContent, sparkline, ago, SPARK_MAX_REALSERVERS } from '../../src/ops/page.js';
import { summarize, type StatusDoc, type StatusService, type StatusRealserver } from '../../src/ops/status-doc.js';
import { RateHistory, historyKey } from '../../src/ops/history.js';
import type { StatsView } from '../../src/view/stats.js';

const rates = { pps: 0, bps: 0, cps: 0 };
function rs(address: string, health: StatusRealserver['health'], extra: Partial<StatusRealserver> = {}): StatusRealserver {
  return { address, port: 80, method: 'dr', weight: 1, effectiveWeight: health === 'down' ? 0 : 1, health, checks: 3, failures: 0,
    packets: '0', bytes: '0', conns: '0', active: 0, inactive: 0, rates, ...extra };
}
function svc(id: string, realservers: StatusRealserver[], extra: Partial<StatusService> = {}): StatusService {
  return { id, scheduler: 'mh', policy: 'keep-last', allDown: false, sorryActive: false, packets: '0', bytes: '0', conns: '0', rates, realservers, ...extra };
}
const counters = (drop: number): StatsView['counters'] => ({
  fwd_dr: { value: 100n, rate: 50, kind: 'fwd' },
  drop_no_real: { value: 7n, rate: drop, kind: 'drop' },
  drop_bad_header: { value: 1n, rate: drop / 2, kind: 'drop' },
});

function doc(o: { failedReload?: boolean; drops?: number } = {}): StatusDoc {
  const services = [
    svc('tcp 10.0.0.1:80', [rs('10.1.0.1', 'up', { since: '2026-01-01T00:00:00.000Z', history: { pps: [0, 5, 10, 5], cps: [0, 1, 2, 1] } }), rs('10.1.0.2', 'down', { since: '2026-01-01T00:09:00.000Z', last: 'FAILED: connect ECONNREFUSED' })]),
    svc('udp [2001:db8::1]:53', [rs('2001:db8::10', 'down'), rs('2001:db8::99', 'up', { sorry: true })], { allDown: true, sorryActive: true, policy: 'sorry-server' }),
    svc('tcp 10.0.0.2:443', [rs('10.1.0.3', 'unchecked')]),
  ];
  const reloads: StatusDoc['reloads'] = { ok: 1, failed: o.failedReload ? 1 : 0, last: o.failedReload ? { at: '2026-01-01T00:09:30.000Z', ok: false, error: 'line 3: vip: not an address' } : { at: '2026-01-01T00:05:00.000Z', ok: true } };
  const c = counters(o.drops ?? 0);
  return {
    time: '2026-01-01T00:10:00.000Z', pid: 1, file: '/etc/lvs-xdp/director.yaml', startedAt: '2026-01-01T00:00:00.000Z',
    summary: summarize(services, c, reloads), history: { intervalMs: 2000, capacity: 180 },
    interfaces: [{ name: 'eth0', mode: 'native', linked: true }], connections: { entries: 3, max: 100 }, reloads, services,
    counters: Object.fromEntries(Object.entries(c).filter(([, x]) => x.value > 0n).map(([k, x]) => [k, { value: String(x.value), rate: x.rate, kind: x.kind }])),
  };
}

test('summary: services up / degraded / down, realservers down (the sorry server not counted), drops per second, last reload', () => {
  const d = doc({ failedReload: true, drops: 4 });
  assert.deepEqual(d.summary.services, { up: 1, degraded: 1, down: 1 });
  assert.equal(d.summary.realserversDown, 2);
  assert.equal(d.summary.dropsPerSecond, 6);
  assert.deepEqual(d.summary.lastReload, { at: '2026-01-01T00:09:30.000Z', ok: false, error: 'line 3: vip: not an address' });
  // An unresolved realserver degrades its service as a down one does.
  assert.deepEqual(summarize([svc('tcp 10.0.0.1:80', [rs('10.1.0.1', 'up', { unresolved: { since: '', problem: 'no ARP answer' } })])], {}, { ok: 0, failed: 0 }).services, { up: 0, degraded: 1, down: 0 });
});

test('the page is complete without JavaScript: every service and realserver, the summary, no external resource', () => {
  const html = renderPage(doc());
  assert.doesNotMatch(html, /(src|href)=["']?https?:/);
  assert.doesNotMatch(html, /loading/i);
  for (const id of ['tcp 10.0.0.1:80', 'udp [2001:db8::1]:53', 'tcp 10.0.0.2:443']) assert.ok(html.includes(`data-service="${id}"`), id);
  assert.match(html, /<tr class="rs down" data-realserver="10\.1\.0\.2" data-health="down"/);
  assert.match(html, /<td class="l health"[^>]*>! DOWN 1m0s<\/td>/);
  assert.match(html, /services: 1 up, 1 degraded, 1 down/);
  assert.match(html, /realservers down: 2/);
  assert.match(html, /last reload ok 5m0s ago/);
  assert.match(html, /eth0 \(native\)/);
  // The live part fetches the server's own rendering of the content.
  assert.match(html, /fetch\('api\/status\.html'/);
  assert.ok(html.includes(`<main id="content">${renderContent(doc())}</main>`));
});

test('a failed reload and a drop reason that counts stand out, with a text marker besides the colour', () => {
  const calm = renderContent(doc());
  assert.doesNotMatch(calm, /data-reload="failed"/);
  assert.match(calm, /<span class="part" data-drops="0">drops: 0\/s<\/span>/);
  const bad = renderContent(doc({ failedReload: true, drops: 4 }));
  assert.match(bad, /<span class="part bad" data-reload="failed"><b class="mark">!<\/b> last reload FAILED 30s ago: line 3: vip: not an address \(the running configuration was kept\)<\/span>/);
  assert.match(bad, /<span class="part bad" data-drops="6"><b class="mark">!<\/b> drops: 6\/s<\/span>/);
  assert.match(bad, /<tr data-counter="drop_no_real" class="drop"><td class="l">! drop_no_real<\/td>/);
  assert.match(bad, /<tr data-counter="fwd_dr"><td class="l">fwd_dr<\/td>/);
  assert.match(bad, /! ALL DOWN \(sorry-server\), sorry server active/);
  assert.match(bad, /! degraded: 1 down/);
});

test('text from the configuration and the checks is escaped', () => {
  const d = doc();
  d.file = '<script>alert(1)</script>';
  d.services[0]!.realservers[1]!.last = 'FAILED: "<b>"';
  const html = renderPage(d);
  assert.ok(!html.includes('<script>alert'));
  assert.ok(html.includes('&lt;script&gt;alert(1)&lt;/script&gt;'));
  assert.ok(html.includes('FAILED: &quot;&lt;b&gt;&quot;'));
});

test('sparkline: newest at the right edge, scaled to the largest value, labelled; one sample draws no line', () => {
  const s = sparkline([0, 5, 10], 3, { width: 101, height: 12, label: 'pps' });
  assert.match(s, /^<svg class="spark" width="101" height="12" viewBox="0 0 101 12" role="img" aria-label="pps: max 10, now 10">/);
  assert.match(s, /points="0,11 50,6 100,1"/);
  // Fewer samples than the capacity: drawn from the right.
  assert.match(sparkline([2, 2], 5, { width: 101, height: 12, label: 'x' }), /points="75,1 100,1"/);
  assert.match(sparkline([0, 0], 2, { width: 11, height: 12, label: 'x' }), /points="0,11 10,11"/);
  // A full 6-minute history in 181 px: 60 points of 3 samples each, the largest of each (a
  // single-sample peak stays), the newest group at the right edge.
  const full = Array.from({ length: 180 }, (_, i) => (i === 100 ? 50 : 1));
  const pts = /points="([^"]+)"/.exec(sparkline(full, 180, { width: 181, height: 12, label: 'x' }))![1]!.split(' ');
  assert.equal(pts.length, 60);
  assert.equal(pts[59], '180,' + String(+(11 - 10 / 50).toFixed(1)));
  assert.deepEqual(pts.filter((p) => p.endsWith(',1')), ['100.7,1'], 'the peak: the 34th point (samples 99..101) at 33 x 180/59 px');
  assert.doesNotMatch(sparkline([3], 10, { label: 'x' }), /polyline/);
  assert.match(renderContent(doc()), /<td class="hist"><svg class="spark"[^>]*aria-label="10\.1\.0\.1 packets\/s, last 6 min: max 10, now 5"/);
});

test('no sparklines above SPARK_MAX_REALSERVERS realservers (the page would be megabytes a second); the header says so', () => {
  const d = doc();
  const one = d.services[0]!;
  d.services = Array.from({ length: Math.ceil((SPARK_MAX_REALSERVERS + 1) / one.realservers.length) }, (_, i) => ({ ...one, id: `tcp 10.0.${i >> 8}.${i & 255}:80` }));
  const html = renderContent(d);
  assert.doesNotMatch(html, /<svg/);
  assert.match(html, /pps \/ new conn\/s, none above 500 realservers \(see \/metrics\)/);
  d.services = d.services.slice(0, Math.floor(SPARK_MAX_REALSERVERS / one.realservers.length));
  assert.match(renderContent(d), /<svg class="spark"/);
});

test('history: a bounded ring per realserver, oldest first; a realserver that leaves is forgotten', () => {
  const h = new RateHistory(1000, 3);
  const view = (rows: [string, number][]): StatsView => ({
    seconds: 1, counters: {}, connections: { entries: 0, max: 1, evicted: 0 },
    services: [{ id: 'tcp 10.0.0.1:80', packets: 0n, bytes: 0n, conns: 0n, rates, realservers: rows.map(([address, pps]) => ({ address, port: 80, weight: 1, packets: 0n, bytes: 0n, conns: 0n, active: 0, inactive: 0, rates: { pps, bps: 0, cps: pps / 10 } })) }],
  });
  for (let i = 1; i <= 5; i++) h.push(view([['10.1.0.1', i * 10], ...(i >= 4 ? [['10.1.0.2', i] as [string, number]] : [])]));
  assert.deepEqual(h.series(historyKey('tcp 10.0.0.1:80', '10.1.0.1')), { pps: [30, 40, 50], cps: [3, 4, 5] });
  assert.deepEqual(h.series(historyKey('tcp 10.0.0.1:80', '10.1.0.2'))?.pps, [4, 5]);
  h.push(view([['10.1.0.2', 6]]));
  assert.equal(h.series(historyKey('tcp 10.0.0.1:80', '10.1.0.1')), undefined);
  assert.deepEqual(h.series(historyKey('tcp 10.0.0.1:80', '10.1.0.2'))?.pps, [4, 5, 6]);
});

test('ago', () => {
  assert.equal(ago('2026-01-01T00:00:00Z', '2026-01-01T00:00:59Z'), '59s');
  assert.equal(ago('2026-01-01T00:00:00Z', '2026-01-01T01:02:03Z'), '1h2m');
  assert.equal(ago('2026-01-01T00:00:00Z', '2026-01-03T05:00:00Z'), '2d5h');
});
