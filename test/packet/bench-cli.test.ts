// `lvs-xdp bench` on a director attached in a namespace, through the public CLI: --json reports
// the three cases (established, new flow, non-VIP) with finite costs at or above their floors,
// --live a rate between a veth pair for the floor and the copy, and the running director's
// state is exactly as before: every map its packet path writes
// (connection table, strays, persistence, least-connection counts, counters, statistics, rr
// cursors) byte for byte, and `-L -n --stats` alike. A test run on the pinned program itself
// would change them (checked here too, so the comparison can tell).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { clientPacket, TCP } from '../lib/frames.js';
import { XDP } from '../lib/director.js';
import { CliNamespace } from '../lib/cli-ns.js';
import { BpfMap, openPinned, closeFd, testRun } from '../../src/native/index.js';
import { acceptTestRunFrames } from '../lib/accept.js';
import type { BenchReport } from '../../src/bench/program.js';

const L = new CliNamespace('lvsbc');
const VIP = '10.78.0.100';
const SVC = `${VIP}:80`;
/** The maps the director's packet path writes (src/bench/program.ts shares only the others). */
const WRITTEN = ['lvs_conns', 'lvs_strays', 'lvs_persist', 'lvs_frags', 'lvs_real_conns', 'lvs_counters', 'lvs_svc_stats', 'lvs_real_stats', 'lvs_rr_cursor'];

let prog = -1;
function send(sport: number, flags: number): number {
  acceptTestRunFrames(L.pin);
  return testRun(prog, clientPacket('198.51.100.9', VIP, { proto: 'tcp', sport, dport: 80, flags }), { dataSizeOut: 2048 }).retval;
}

/** Every entry of every written map, as hex. */
function liveState(): Record<string, string[]> {
  return Object.fromEntries(WRITTEN.map((name) => {
    const m = BpfMap.fromPin(`${L.pin}/${name}`);
    try {
      const { keys, values } = m.entries();
      return [name, keys.map((k, i) => `${k.toString('hex')}=${values[i]!.toString('hex')}`).sort()];
    } finally {
      m.close();
    }
  }));
}

before(() => {
  L.create();
  // No IPv6 on the links: their router solicitations and MLD reports would reach the director
  // meanwhile and count (PASS_NOT_VIP), which is not the benchmark's doing.
  L.sh('ip', 'netns', 'exec', L.ns, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1');
  L.veth('lvsbc0', 'lvsbc1');
  // A second pair, free of XDP, for --live.
  L.veth('lvsbc2', 'lvsbc3');
  L.ok(['attach', 'lvsbc0', '--preset', 'small']);
  L.ok(['-R'], { input: [`-A -t ${SVC} -s mh`, ...[11, 12].map((r) => `-a -t ${SVC} -r 10.78.0.${r} -g -w 1 --mac 02:00:00:00:04:${r}`), ''].join('\n') });
  prog = openPinned(`${L.pin}/prog_lvs_director`);
  L.onCleanup(() => closeFd(prog));
  // Live connections and counters for the benchmark to leave alone.
  for (const sport of [40001, 40002, 40003]) {
    assert.equal(send(sport, TCP.SYN), XDP.TX);
    assert.equal(send(sport, TCP.ACK), XDP.TX);
  }
});

after(() => L.cleanup());

test('lvs-xdp bench --json: established, new flow and non-VIP rows at or above their floors; live connections, counters and statistics unchanged', { timeout: 120_000 }, () => {
  const state0 = liveState();
  const stats0 = L.ok(['-L', '-n', '--stats', '--exact']);
  assert.ok(state0.lvs_conns!.length >= 3, 'the live connections are there to compare');

  const r = JSON.parse(L.ok(['bench', '--json', '--rounds', '3', '--repeat', '2000'])) as BenchReport;
  assert.deepEqual(r.rows.map((x) => x.case), ['established', 'new flow', 'pass']);
  assert.equal(r.service, `tcp ${SVC}`);
  assert.equal(r.interface, 'lvsbc0');
  assert.ok(r.program.sameCode, 'the private copy runs the same instructions as the pinned program');
  for (const x of r.rows) {
    for (const v of [x.ns, x.floorNs, x.ratio, x.ratioMin, x.ratioMax, x.mpps]) assert.ok(Number.isFinite(v) && v > 0, `${x.case}: ${JSON.stringify(x)}`);
    assert.ok(x.ratio >= 1, `${x.case} costs at least its floor: ${x.ratio}x of ${x.floor}`);
  }
  assert.deepEqual(r.rows.map((x) => x.action), ['XDP_TX', 'XDP_TX', 'XDP_PASS']);
  // A new flow pays scheduling and an insert into a full table: dearer than an established one.
  assert.ok(r.rows[1]!.ns > r.rows[0]!.ns, JSON.stringify(r.rows));

  assert.deepEqual(liveState(), state0, 'the running director\'s written maps are byte for byte as before');
  assert.equal(L.ok(['-L', '-n', '--stats', '--exact']), stats0);

  // The comparison can tell: one packet through the pinned program changes them.
  assert.equal(send(40001, TCP.ACK), XDP.TX);
  assert.notDeepEqual(liveState(), state0);
});

test('lvs-xdp bench: table output, --service of no such service exits 2, no director exits 4', () => {
  const out = L.ok(['bench', '--rounds', '2', '--repeat', '1000']);
  assert.match(out, /^established\s+\d+\.\d \[/m);
  assert.match(out, /^new flow\s+\d+\.\d \[/m);
  assert.match(out, /^pass\s+\d+\.\d \[/m);
  const bad = L.run(['bench', '--service', '10.78.0.99:80']);
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /no virtual service 10\.78\.0\.99:80\nhint: services: 10\.78\.0\.100:80/);
  const none = L.run(['bench'], { env: { LVS_XDP_PIN_DIR: `${L.pin}-none`, LVS_XDP_STATE_DIR: `${L.state}-none` } });
  assert.equal(none.code, 4, none.stderr);
  assert.match(none.stderr, /no director is attached/);
});

test('lvs-xdp bench --live A B: the floor and the private copy forward live frames between the pair; nothing left behind, live state unchanged; the director\'s interface is refused', { timeout: 120_000 }, () => {
  const state0 = liveState();
  const r = JSON.parse(L.ok(['bench', '--json', '--rounds', '2', '--repeat', '1000', '--live', 'lvsbc2', 'lvsbc3', '--frames', '50000'])) as BenchReport;
  assert.ok(r.live, 'a live section');
  assert.deepEqual([r.live.sender, r.live.receiver, r.live.mode], ['lvsbc2', 'lvsbc3', 'native']);
  assert.equal(r.live.rows.length, 2);
  for (const x of r.live.rows) {
    assert.ok(Number.isFinite(x.mpps) && x.mpps > 0, JSON.stringify(x));
    assert.ok(x.lostPct < 50, `most frames come back: ${JSON.stringify(x)}`);
  }
  assert.ok(Number.isFinite(r.live.rows[1]!.ratio!) && r.live.rows[1]!.ratio! > 0);
  assert.deepEqual(liveState(), state0, 'the running director is not touched by the live rate either');
  for (const dev of ['lvsbc2', 'lvsbc3']) {
    const link = L.ip('-d', 'link', 'show', 'dev', dev);
    assert.doesNotMatch(link, /xdp/, `${dev}: no XDP program left`);
    assert.match(link, /promiscuity 0/, `${dev}: not left promiscuous`);
  }
  const bad = L.run(['bench', '--live', 'lvsbc0', 'lvsbc3']);
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /--live: lvsbc0 carries an XDP program \(id \d+\): the running director/);
});
