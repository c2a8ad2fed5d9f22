// Separate in/out interfaces: clients reach the director on eth0, the realservers sit on another
// subnet directly connected to the director's eth1 (lvs-xdp attached to both). DR packets leave
// by eth1 through XDP_REDIRECT with eth1's MAC as source; the realservers answer the clients
// through a router, not through the director. IPv4 and IPv6, mh shares over 360 connections.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NEEDS_ROOT, useLab, standardSetup, serviceRules, assertShares, url } from './helpers.js';

const WEIGHTS = [1, 1, 2];

const lab = useLab('arm', { clients: 1, clientAddresses: 6, realservers: 0, remoteRealservers: 3, twoArmed: true }, async (l) => {
  await standardSetup(l, { dr: true });
  await l.lvsOk(['attach', 'eth1', '--mode', 'native']);
  const v = l.vips;
  const reals = (six: boolean) => l.realservers.map((r, i) => ({ addr: six ? r.v6 : r.v4, method: 'g' as const, weight: WEIGHTS[i]! }));
  await l.lvsOk(['-R'], l.director.ns, `${serviceRules('tcp', v.dr4, 80, 'mh', reals(false))}\n${serviceRules('tcp', v.dr6, 80, 'mh', reals(true))}\n`);
});

test('two-armed DR: in on eth0, out on eth1 (XDP_REDIRECT), answers via the router; mh shares 1:1:2 over 360 connections, IPv4 and IPv6', { skip: NEEDS_ROOT, timeout: 120_000 }, async (t) => {
  const l = lab();
  assert.ok(l.realservers.every((r) => r.remote));
  const st = JSON.parse(await l.lvsOk(['status', '--json'])) as { interfaces: { name: string; mode: string }[] };
  assert.deepEqual(st.interfaces.map((i) => `${i.name} ${i.mode}`).sort(), ['eth0 native', 'eth1 native']);
  for (const six of [false, true]) {
    const c = l.clients[0]!;
    const r = await l.burst({ url: url(six ? l.vips.dr6 : l.vips.dr4), sources: six ? c.v6s : c.v4s, count: 60, concurrency: 4 });
    assert.equal(r.failed, 0, r.errors.join('; '));
    t.diagnostic(`two-armed IPv${six ? 6 : 4} mh 1:1:2 over 360 connections: ${JSON.stringify(r.counts)}`);
    assertShares(r.counts, Object.fromEntries(WEIGHTS.map((w, i) => [`rs${i + 1}`, w])), `two-armed IPv${six ? 6 : 4}`);
  }
  const stats = await l.lvsOk(['stats', '-i', '0']);
  const redirected = Number(/^fwd_redirect\s+event\s+(\d+)/m.exec(stats)?.[1] ?? 0);
  const dr = Number(/^fwd_dr\s+fwd\s+(\d+)/m.exec(stats)?.[1] ?? 0);
  assert.ok(dr > 0 && redirected === dr, `every DR packet redirected to eth1: fwd_dr ${dr}, fwd_redirect ${redirected}\n${stats}`);
  assert.doesNotMatch(stats, /^drop_/m, stats);
});
