/** Metrics exposition from a sample (names from COUNTERS), the label split, promtool on the whole exposition, --listen (top: ops-top.test.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, writeFileSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { writeAtomically } from '../../src/cli/metrics.js';
import { spawnSync } from 'node:child_process';
import { DirectorMetrics, parseExposition, serviceLabels } from '../../src/ops/metrics.js';
import { COUNTERS, ABI_VERSION } from '../../src/abi/generated.js';
import { VERSION } from '../../src/version.js';
import { serviceId } from '../../src/model/types.js';
import type { StatsSample } from '../../src/director/director.js';
import { parseListen } from '../../src/cli/run.js';
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
      { service: 'tcp 10.0.0.1:80', address: '192.168.1.10', up: 1, configuredWeight: 1, effectiveWeight: 1, checks: 7, failures: 1, since: '2026-01-02T03:04:05.500Z' },
      { service: 'tcp 10.0.0.1:80', address: '192.168.1.11', up: 0, configuredWeight: 1, effectiveWeight: 0, checks: 7, failures: 5 },
    ],
    services: [{ service: 'tcp 10.0.0.1:80', allDown: false, sorryActive: false }],
    reloads: { ok: 2, failed: 1, last: { at: '2026-01-02T00:00:00.000Z', ok: false } }, applies: { ok: 5, failed: 0 },
    lastLoadOk: '2026-01-01T00:00:10.000Z', configChangedAt: '2026-01-01T00:00:11.000Z',
  });
  const text = await m.text();
  const v = parseExposition(text);
  const s = '{protocol="tcp",vip="10.0.0.1",port="80"}';
  const r0 = '{protocol="tcp",vip="10.0.0.1",port="80",realserver="192.168.1.10"}';
  const r1 = '{protocol="tcp",vip="10.0.0.1",port="80",realserver="192.168.1.11"}';
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
    assert.equal(v.get(`lvs_xdp_datapath_events_total{counter="${c.name.toLowerCase()}",kind="${c.kind}"}`), i * 2, c.name);
  }
  assert.equal(v.get(`lvs_xdp_realserver_health_since_timestamp_seconds${r0}`), Date.parse('2026-01-02T03:04:05.500Z') / 1000);
  assert.equal(v.get(`lvs_xdp_build_info{version="${VERSION}",abi="${ABI_VERSION}"}`), 1);
  assert.equal(v.get('lvs_xdp_config_last_reload_success_timestamp_seconds'), Date.parse('2026-01-01T00:00:10.000Z') / 1000);
  assert.equal(v.get('lvs_xdp_config_last_reload_successful'), 0);
  assert.equal(v.get('lvs_xdp_config_last_change_timestamp_seconds'), Date.parse('2026-01-01T00:00:11.000Z') / 1000);
  assert.equal(v.get('lvs_xdp_conntrack_evicted_total'), 3);
  assert.match(text, /# TYPE lvs_xdp_conntrack_evicted_total counter/);
  assert.match(text, /# TYPE lvs_xdp_datapath_events_total counter/);
  assert.equal(v.get('lvs_xdp_conntrack_entries'), 25);
  assert.equal(v.get('lvs_xdp_conntrack_fill_ratio'), 0.25);
  assert.equal(v.get('lvs_xdp_interface_info{interface="eth0",mode="native",linked="1"}'), 1);
  assert.equal(v.get('lvs_xdp_config_reloads_total{result="error"}'), 1);
  assert.match(text, /# TYPE lvs_xdp_realserver_packets_total counter/);
  // A second update replaces (does not add to) the totals; gone realservers disappear.
  const smaller = sample(1n, 1n);
  smaller.services[0]!.realservers.pop();
  m.update({ sample: smaller, interfaces: [], health: [], services: [] });
  const text2 = await m.text();
  const v2 = parseExposition(text2);
  assert.doesNotMatch(text2, /config_reloads_total|config_applies_total|config_last_reload/, 'not even HELP lines');
  // Without run's reloads (lvs-xdp metrics) there are no reload series at all.
  assert.equal(v2.get('lvs_xdp_config_reloads_total{result="ok"}'), undefined);
  assert.equal(v2.get('lvs_xdp_config_last_reload_success_timestamp_seconds'), undefined);
  assert.equal(v2.get(`lvs_xdp_realserver_health_since_timestamp_seconds${r0}`), undefined);
  assert.equal(v2.get(`lvs_xdp_service_packets_total${s}`), 100);
  assert.equal(v2.get(`lvs_xdp_realserver_packets_total${r1}`), undefined);
});

const MEMORY = {
  maps: [{ name: 'lvs_conns', maxEntries: 262144, memlock: 33554432 }, { name: 'lvs_tables', maxEntries: 2048, memlock: 16640 }],
  tables: { count: 2, slots: 2042, memlock: 16640 }, total: 33587712,
};

test('kernel memory: one series per map and one for the lookup tables (they sum to status\'s total); none without a reading', async () => {
  const m = new DirectorMetrics({ processMetrics: false });
  m.update({ sample: sample(0n, 1n), interfaces: [], health: [], services: [], memory: MEMORY });
  const v = parseExposition(await m.text());
  assert.equal(v.get('lvs_xdp_map_memory_bytes{map="lvs_conns"}'), 33554432);
  assert.equal(v.get('lvs_xdp_map_memory_bytes{map="lookup_tables"}'), 16640);
  assert.equal([...v].filter(([k]) => k.startsWith('lvs_xdp_map_memory_bytes{')).reduce((n, [, x]) => n + x, 0), MEMORY.total);
  assert.equal(v.get('lvs_xdp_lookup_tables'), 2);
  assert.equal(v.get('lvs_xdp_lookup_table_slots'), 2042);
  m.update({ sample: sample(0n, 1n), interfaces: [], health: [], services: [] });
  const text = await m.text();
  assert.doesNotMatch(text, /^lvs_xdp_lookup_table|^lvs_xdp_map_memory_bytes\{/m);
});

test('service labels: the service id split into protocol, vip and port, serviceId\'s inverse', () => {
  assert.deepEqual(serviceLabels('tcp 10.0.0.1:80'), { protocol: 'tcp', vip: '10.0.0.1', port: '80' });
  assert.deepEqual(serviceLabels('udp [2001:db8::1]:53'), { protocol: 'udp', vip: '2001:db8::1', port: '53' });
  for (const s of [{ protocol: 'tcp' as const, vip: '::ffff:10.0.0.1', port: 0 }, { protocol: 'udp' as const, vip: '192.0.2.255', port: 65535 }]) {
    const l = serviceLabels(serviceId(s));
    assert.deepEqual({ protocol: l.protocol, vip: l.vip, port: Number(l.port) }, s);
  }
  for (const bad of ['tcp 10.0.0.1', '10.0.0.1:80', 'tcp [::1:80', '']) assert.throws(() => serviceLabels(bad), /not a service id/, bad);
});


test('--listen parsing', () => {
  assert.deepEqual(parseListen('127.0.0.1:9469'), { host: '127.0.0.1', port: 9469 });
  assert.deepEqual(parseListen('[::1]:80'), { host: '::1', port: 80 });
  assert.deepEqual(parseListen('0.0.0.0:0'), { host: '0.0.0.0', port: 0 });
  for (const bad of ['9469', 'host', '1.2.3.4:70000', '[::1]']) assert.throws(() => parseListen(bad), ConfigError, bad);
});


const PROMTOOL = '/usr/bin/promtool';

test('promtool check metrics: the whole exposition (every series, process metrics too) is clean', { skip: !existsSync(PROMTOOL) && 'needs promtool (Debian\'s prometheus; scripts/setup-test.sh installs it)' }, async () => {
  const m = new DirectorMetrics({ processMetrics: true });
  m.update({
    sample: sample(0n, 1n), interfaces: [{ name: 'eth0', ifindex: 2, mode: 'native', attachedAt: '', linked: true }],
    health: [{ service: 'tcp 10.0.0.1:80', address: '192.168.1.10', up: 1, configuredWeight: 1, effectiveWeight: 1, checks: 7, failures: 1, since: new Date(0).toISOString(), unresolved: false, drained: true }],
    services: [{ service: 'tcp 10.0.0.1:80', allDown: false, sorryActive: false }],
    reloads: { ok: 1, failed: 0, last: { at: new Date(0).toISOString(), ok: true } }, applies: { ok: 1, failed: 0 },
    lastLoadOk: new Date(0).toISOString(), configChangedAt: new Date(0).toISOString(),
    announcements: [{ vip: '10.0.0.1', announced: true, reason: 'serving' }], directorDrained: false, bgpSessions: [{ name: 'upstream1', established: true }],
    tables: { digest: 'ab', hashSeed: 1, services: [{ service: 'tcp 10.0.0.1:80', scheduler: 'mh', tableSize: 251, digest: 'cd' }] },
    memory: MEMORY,
  });
  const text = await m.text();
  const r = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8' });
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  assert.equal(`${r.stdout}${r.stderr}`.trim(), '');
  // No label packs protocol, VIP and port together.
  assert.doesNotMatch(text, /service="/);
});

test('lvs-xdp metrics --textfile: written atomically (a temporary file in the same directory, renamed), none left behind', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lvs-xdp-textfile-'));
  try {
    const path = join(dir, 'lvs_xdp.prom');
    writeFileSync(path, 'old\n');
    writeAtomically(path, 'new\n');
    assert.equal(readFileSync(path, 'utf8'), 'new\n');
    assert.deepEqual(readdirSync(dir), ['lvs_xdp.prom']);
    // A directory that is not there: the error reaches the caller, nothing is left.
    assert.throws(() => writeAtomically(join(dir, 'missing', 'x.prom'), 'x'), /ENOENT/);
    assert.deepEqual(readdirSync(dir), ['lvs_xdp.prom']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
