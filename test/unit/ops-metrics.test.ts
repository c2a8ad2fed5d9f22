/** Metrics exposition from a sample (names from COUNTERS), the status-page document shape, top's screen, --listen. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DirectorMetrics, parseExposition } from '../../src/ops/metrics.js';
import { COUNTERS } from '../../src/abi/generated.js';
import type { StatsSample } from '../../src/director/director.js';
import { statsView } from '../../src/view/stats.js';
import { formatTop } from '../../src/cli/top.js';
import { parseListen } from '../../src/cli/run.js';
import { STATUS_PAGE } from '../../src/ops/page.js';
import { ConfigError } from '../../src/errors.js';

function sample(at: bigint, k: bigint): StatsSample {
  const counters: Record<string, bigint> = {};
  COUNTERS.forEach((c, i) => { counters[c.name.toLowerCase()] = BigInt(i) * k; });
  return {
    at, counters, connections: { entries: 25, max: 100, evicted: 3 },
    services: [{
      id: 'tcp 10.0.0.1:80', packets: 100n * k, bytes: 6000n * k, conns: 10n * k,
      realservers: [
        { address: '192.168.1.10', port: 80, weight: 1, packets: 60n * k, bytes: 3600n * k, conns: 6n * k, active: 3, inactive: 1 },
        { address: '192.168.1.11', port: 80, weight: 0, packets: 40n * k, bytes: 2400n * k, conns: 4n * k, active: 0, inactive: 2 },
      ],
    }],
  };
}

test('every series from one sample; counter names are the ABI\'s', async () => {
  const m = new DirectorMetrics({ processMetrics: false });
  m.update({
    sample: sample(0n, 2n), interfaces: [{ name: 'eth0', ifindex: 2, mode: 'native', attachedAt: '', linked: true }],
    health: [
      { service: 'tcp 10.0.0.1:80', address: '192.168.1.10', up: 1, configuredWeight: 1, effectiveWeight: 1, checks: 7, failures: 1 },
      { service: 'tcp 10.0.0.1:80', address: '192.168.1.11', up: 0, configuredWeight: 1, effectiveWeight: 0, checks: 7, failures: 5 },
    ],
    services: [{ service: 'tcp 10.0.0.1:80', allDown: false, sorryActive: false }],
    reloads: { ok: 2, failed: 1 }, applies: { ok: 5, failed: 0 },
  });
  const text = await m.text();
  const v = parseExposition(text);
  const s = '{service="tcp 10.0.0.1:80"}';
  const r0 = '{service="tcp 10.0.0.1:80",realserver="192.168.1.10"}';
  const r1 = '{service="tcp 10.0.0.1:80",realserver="192.168.1.11"}';
  assert.equal(v.get(`lvs_xdp_service_packets_total${s}`), 200);
  assert.equal(v.get(`lvs_xdp_service_bytes_total${s}`), 12000);
  assert.equal(v.get(`lvs_xdp_service_connections_total${s}`), 20);
  assert.equal(v.get(`lvs_xdp_realserver_packets_total${r0}`), 120);
  assert.equal(v.get(`lvs_xdp_realserver_active_connections${r0}`), 3);
  assert.equal(v.get(`lvs_xdp_realserver_inactive_connections${r1}`), 2);
  assert.equal(v.get(`lvs_xdp_realserver_weight${r1}`), 0);
  assert.equal(v.get(`lvs_xdp_realserver_configured_weight${r1}`), 1);
  assert.equal(v.get(`lvs_xdp_realserver_up${r0}`), 1);
  assert.equal(v.get(`lvs_xdp_realserver_up${r1}`), 0);
  assert.equal(v.get(`lvs_xdp_realserver_health_check_failures_total${r1}`), 5);
  assert.equal(v.get(`lvs_xdp_service_all_down${s}`), 0);
  for (const [i, c] of COUNTERS.entries()) {
    assert.equal(v.get(`lvs_xdp_counter_total{counter="${c.name.toLowerCase()}",kind="${c.kind}"}`), i * 2, c.name);
  }
  assert.equal(v.get('lvs_xdp_conntrack_entries'), 25);
  assert.equal(v.get('lvs_xdp_conntrack_fill_ratio'), 0.25);
  assert.equal(v.get('lvs_xdp_interface_info{interface="eth0",mode="native",linked="1"}'), 1);
  assert.equal(v.get('lvs_xdp_config_reloads_total{result="error"}'), 1);
  assert.match(text, /# TYPE lvs_xdp_realserver_packets_total counter/);
  // A second update replaces (does not add to) the totals; gone realservers disappear.
  const smaller = sample(1n, 1n);
  smaller.services[0]!.realservers.pop();
  m.update({ sample: smaller, interfaces: [], health: [], services: [], reloads: { ok: 0, failed: 0 }, applies: { ok: 0, failed: 0 } });
  const v2 = parseExposition(await m.text());
  assert.equal(v2.get(`lvs_xdp_service_packets_total${s}`), 100);
  assert.equal(v2.get(`lvs_xdp_realserver_packets_total${r1}`), undefined);
});

test('top: rates from two samples, health from run, one line per realserver', () => {
  const v = statsView(sample(2_000_000_000n, 3n), sample(1_000_000_000n, 1n));
  const screen = formatTop(v, { pid: 42, realservers: [{ service: 'tcp 10.0.0.1:80', address: '192.168.1.10', state: 'up' }, { service: 'tcp 10.0.0.1:80', address: '192.168.1.11', state: 'down' }] }, new Date(0));
  assert.match(screen, /conn table 25\/100 \(25\.0%\)/);
  assert.match(screen, /health: from run \(pid 42\)/);
  assert.match(screen, /^tcp 10\.0\.0\.1:80\s+200\s+96\.0K\s+20\s+30$/m);
  assert.match(screen, /^ {2}192\.168\.1\.10:80\s+1\s+up\s+120\s+57\.6K\s+12\s+3\s+1\s+18$/m);
  assert.match(screen, /^ {2}192\.168\.1\.11:80\s+0\s+down\s+/m);
  assert.match(formatTop(statsView(sample(0n, 1n)), undefined, new Date(0)), /no run active/);
});

test('--listen parsing', () => {
  assert.deepEqual(parseListen('127.0.0.1:9469'), { host: '127.0.0.1', port: 9469 });
  assert.deepEqual(parseListen('[::1]:80'), { host: '::1', port: 80 });
  assert.deepEqual(parseListen('0.0.0.0:0'), { host: '0.0.0.0', port: 0 });
  for (const bad of ['9469', 'host', '1.2.3.4:70000', '[::1]']) assert.throws(() => parseListen(bad), ConfigError, bad);
});

test('the status page is self-contained and polls the JSON endpoint', () => {
  assert.doesNotMatch(STATUS_PAGE, /(src|href)=["']https?:/);
  assert.match(STATUS_PAGE, /fetch\('api\/status'/);
});
