// LVS-Tun end to end: two realservers on the director's LAN and two on another subnet behind a
// router (Tun across L3), each decapsulating with `lvs-xdp realserver setup --mode tun` (the XDP
// decapsulation program: there is no ipip module here). IPv4-in-IPv4 and IPv6-in-IPv6, HTTP from
// several client addresses, mh shares over 360 connections, and UDP.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NEEDS_ROOT, useLab, standardSetup, serviceRules, assertShares, tally, url, svc } from './helpers.js';

const WEIGHTS = [1, 2, 1, 2];

const lab = useLab('tun', { clients: 1, clientAddresses: 6, realservers: 2, remoteRealservers: 2 }, async (l) => {
  await standardSetup(l, { tun: true });
  const v = l.vips;
  const reals = (six: boolean) => l.realservers.map((r, i) => ({ addr: six ? r.v6 : r.v4, method: 'i' as const, weight: WEIGHTS[i]! }));
  await l.lvsOk(['-R'], l.director.ns, [
    serviceRules('tcp', v.tun4, 80, 'mh', reals(false)),
    serviceRules('tcp', v.tun6, 80, 'mh', reals(true)),
    serviceRules('udp', v.tun4, 9000, 'mh', reals(false)),
    '',
  ].join('\n'));
});

const weights = (): Record<string, number> => Object.fromEntries(WEIGHTS.map((w, i) => [`rs${i + 1}`, w]));

test('Tun: the lab has realservers on the LAN and behind a router (across L3)', { skip: NEEDS_ROOT }, () => {
  const l = lab();
  assert.deepEqual(l.realservers.map((r) => r.remote), [false, false, true, true]);
  assert.ok(l.router);
});

test('Tun: curl from every client address reaches every realserver (LAN and routed), IPv4 in IPv4 and IPv6 in IPv6', { skip: NEEDS_ROOT, timeout: 120_000 }, async () => {
  const l = lab();
  for (const six of [false, true]) {
    const vip = six ? l.vips.tun6 : l.vips.tun4;
    const c = l.clients[0]!;
    const per = await Promise.all((six ? c.v6s : c.v4s).map((source) => l.curl(url(vip), { source, count: 10 })));
    for (const names of per) assert.ok(!names.includes(''), `a request to ${vip} failed: ${JSON.stringify(names)}`);
    assert.deepEqual(Object.keys(tally(per.flat())).sort(), ['rs1', 'rs2', 'rs3', 'rs4'], `IPv${six ? 6 : 4}: ${JSON.stringify(tally(per.flat()))}`);
  }
  // Every realserver decapsulated: its decap counters are not all zero.
  for (const r of l.realservers) {
    const out = await l.lvsOk(['realserver', 'check', '--mode', 'tun', '--vip', l.vips.tun4, '--dev', 'eth0'], r.ns);
    assert.match(out, /realserver \(tun, eth0\): ok/, `${r.role}: ${out}`);
  }
});

test('Tun: mh over 360 connections gives each realserver between half and double its weighted share (1:2:1:2), IPv4 and IPv6', { skip: NEEDS_ROOT, timeout: 120_000 }, async (t) => {
  const l = lab();
  for (const six of [false, true]) {
    const vip = six ? l.vips.tun6 : l.vips.tun4;
    const c = l.clients[0]!;
    const r = await l.burst({ url: url(vip), sources: six ? c.v6s : c.v4s, count: 60, concurrency: 4 });
    assert.equal(r.failed, 0, `failed requests: ${r.errors.join('; ')}`);
    assert.equal(r.ok, 360);
    t.diagnostic(`Tun IPv${six ? 6 : 4} mh 1:2:1:2 over 360 connections: ${JSON.stringify(r.counts)}`);
    assertShares(r.counts, weights(), `Tun mh IPv${six ? 6 : 4}`);
  }
  const st = await l.lvsOk(['stats', '-i', '0']);
  assert.match(st, /^fwd_tun\s+fwd\s+\d+/m);
  assert.doesNotMatch(st, /^drop_/m, st);
});

test('Tun: UDP datagrams balanced over the four realservers and answered', { skip: NEEDS_ROOT, timeout: 120_000 }, async () => {
  const l = lab();
  const r = await l.udp({ host: l.vips.tun4, port: 9000, sources: l.clients[0]!.v4s, count: 60 });
  assert.equal(r.datagrams, 360);
  assert.equal(r.lost, 0);
  assertShares(r.counts, weights(), 'Tun UDP');
  const list = await l.lvsOk(['-L', '-n', '-u', svc(l.vips.tun4, 9000)]);
  assert.match(list, /Tunnel/);
});
