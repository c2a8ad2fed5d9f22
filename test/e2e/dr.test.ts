// LVS-DR end to end in a namespace lab (two clients with four addresses each, a director with
// lvs-xdp in native XDP mode, three realservers on one bridge), configured only through the
// public CLI: HTTP from every client address reaches every realserver over IPv4 and IPv6, mh keeps
// 360 connections within half..double of the weighted shares, sh pins a client address to one
// realserver, and a UDP service is balanced and answered.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NEEDS_ROOT, useLab, standardSetup, serviceRules, assertShares, tally, url, svc } from './helpers.js';

const lab = useLab('dr', { clients: 2, clientAddresses: 4, realservers: 3 }, async (l) => {
  await standardSetup(l, { dr: true });
  const v = l.vips;
  const reals = (six: boolean, weights: number[]) => l.realservers.map((r, i) => ({ addr: six ? r.v6 : r.v4, method: 'g' as const, weight: weights[i]! }));
  await l.lvsOk(['-R'], l.director.ns, [
    serviceRules('tcp', v.dr4, 80, 'mh', reals(false, [1, 2, 3])),
    serviceRules('tcp', v.dr6, 80, 'mh', reals(true, [1, 2, 3])),
    serviceRules('udp', v.dr4, 9000, 'mh', reals(false, [1, 1, 1])),
    serviceRules('udp', v.dr6, 9000, 'mh', reals(true, [1, 1, 1])),
    '',
  ].join('\n'));
});

const WEIGHTS = { rs1: 1, rs2: 2, rs3: 3 };

test('DR: curl from every client address (both client namespaces) reaches every realserver, IPv4 and IPv6', { skip: NEEDS_ROOT, timeout: 120_000 }, async () => {
  const l = lab();
  for (const six of [false, true]) {
    const vip = six ? l.vips.dr6 : l.vips.dr4;
    const all: string[] = [];
    for (const [ci, c] of l.clients.entries()) {
      const per = await Promise.all((six ? c.v6s : c.v4s).map((source) => l.curl(url(vip), { client: ci, source, count: 8 })));
      for (const names of per) assert.ok(!names.includes(''), `a request from client ${c.role} to ${vip} failed: ${JSON.stringify(names)}`);
      all.push(...per.flat());
    }
    const t = tally(all);
    assert.deepEqual(Object.keys(t).sort(), ['rs1', 'rs2', 'rs3'], `IPv${six ? 6 : 4}: ${JSON.stringify(t)}`);
  }
});

test('DR: mh over 360 connections gives each realserver between half and double its weighted share (1:2:3), IPv4 and IPv6', { skip: NEEDS_ROOT, timeout: 120_000 }, async () => {
  const l = lab();
  for (const six of [false, true]) {
    const vip = six ? l.vips.dr6 : l.vips.dr4;
    const counts: Record<string, number> = {};
    for (const [ci, c] of l.clients.entries()) {
      const r = await l.burst({ url: url(vip), sources: six ? c.v6s : c.v4s, count: 45, concurrency: 4 }, ci);
      assert.equal(r.failed, 0, `failed requests: ${r.errors.join('; ')}`);
      for (const [k, n] of Object.entries(r.counts)) counts[k] = (counts[k] ?? 0) + n;
    }
    assert.equal(Object.values(counts).reduce((a, b) => a + b, 0), 360);
    assertShares(counts, WEIGHTS, `mh IPv${six ? 6 : 4}`);
  }
  // The director saw them: per-realserver connection counts in the ipvsadm stats view.
  const stats = await l.lvsOk(['-L', '-n', '--stats', '--exact', '-t', svc(l.vips.dr4)]);
  const conns = [...stats.matchAll(/->\s+198\.51\.100\.10(\d):80\s+(\d+)/g)].map((m) => Number(m[2]));
  assert.equal(conns.length, 3, stats);
  assert.ok(conns.reduce((a, b) => a + b, 0) >= 360, stats);
});

test('DR: sh sends every request of one client address to the same realserver; different addresses spread', { skip: NEEDS_ROOT, timeout: 120_000 }, async () => {
  const l = lab();
  for (const vip of [l.vips.dr4, l.vips.dr6]) {
    await l.lvsOk(['-E', '-t', svc(vip), '-s', 'sh']);
    const chosen = new Set<string>();
    for (const [ci, c] of l.clients.entries()) {
      const r = await l.burst({ url: url(vip), sources: vip.includes(':') ? c.v6s : c.v4s, count: 10, concurrency: 4 }, ci);
      assert.equal(r.failed, 0, r.errors.join('; '));
      for (const [source, byRs] of Object.entries(r.bySource)) {
        assert.equal(Object.keys(byRs).length, 1, `sh: ${source} reached ${JSON.stringify(byRs)}`);
        chosen.add(Object.keys(byRs)[0]!);
      }
    }
    assert.ok(chosen.size >= 2, `sh: 8 client addresses all went to ${[...chosen].join()}`);
    await l.lvsOk(['-E', '-t', svc(vip), '-s', 'mh']);
  }
});

test('DR: UDP echo service balanced over all realservers and every datagram answered, IPv4 and IPv6', { skip: NEEDS_ROOT, timeout: 120_000 }, async () => {
  const l = lab();
  for (const vip of [l.vips.dr4, l.vips.dr6]) {
    const counts: Record<string, number> = {};
    let lost = 0;
    let sent = 0;
    for (const [ci, c] of l.clients.entries()) {
      const r = await l.udp({ host: vip, port: 9000, sources: vip.includes(':') ? c.v6s : c.v4s, count: 20 }, ci);
      lost += r.lost;
      sent += r.datagrams;
      for (const [k, n] of Object.entries(r.counts)) counts[k] = (counts[k] ?? 0) + n;
    }
    assert.equal(sent, 160);
    assert.equal(lost, 0, `UDP ${vip}: ${lost} datagrams unanswered`);
    assertShares(counts, { rs1: 1, rs2: 1, rs3: 1 }, `UDP ${vip}`);
  }
  const list = await l.lvsOk(['-L', '-n', '-u', svc(l.vips.dr4, 9000)]);
  assert.match(list, /UDP\s+198\.51\.100\.200:9000 mh/);
});
