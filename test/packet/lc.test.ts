// The least-connection family and thresholds through the real program, configured by the
// director's plan: live connection counts follow new, established, closed and reused entries
// (lvs_real_conns), a recount from the connection table corrects what the data plane cannot see
// (expiry and eviction without a packet), every new flow goes to the cheaper of its draws, the
// upper / lower thresholds stop and restart new connections as IPVS's overload flag does, and
// fo / ovf / lc pick as IPVS defines them.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { clientPacket, TCP, addrBytes } from '../lib/frames.js';
import { DirectorHarness, XDP } from '../lib/director.js';
import type { MacResolver } from '../../src/dataplane/compile.js';
import { flowHash } from '../../src/dataplane/flowhash.js';
import { decode, encode, CONN, FLOW_KEY } from '../../src/abi/layout.js';
import { DirectorReader, decodeLiveCounts } from '../../src/director/reader.js';
import { u32, type DirectorMaps } from '../../src/director/writer.js';
import { lcDraw, lcBetter, LC_KIND } from '../../src/sched/lc.js';
import type { DirectorConfig, LcScheduler, Realserver, Scheduler } from '../../src/model/types.js';

const VIP = '10.0.0.1';
const SEED = 77;
const S = 1_000_000_000n;
const macOf = (addr: string) => `02:00:00:00:00:${addr.split('.').pop()!.padStart(2, '0').slice(-2)}`;
const resolve: MacResolver = (_s, r) => ({ mac: macOf(r.address) });

function config(scheduler: Scheduler, reals: Partial<Realserver>[]): DirectorConfig {
  return {
    settings: { hashSeed: SEED, tunnel: { source4: '192.168.1.1' } },
    services: [{
      protocol: 'tcp', vip: VIP, port: 80, scheduler, flags: [], ops: false, tableSize: 251,
      realservers: reals.map((r, i) => ({ address: `192.168.1.${11 + i}`, port: 80, weight: 1, method: 'dr' as const, ...r })),
    }],
  };
}

let h: DirectorHarness;
before(async () => { h = await DirectorHarness.load(); });
after(() => h?.close());
beforeEach(() => h.reset());

const CLIENT = '198.51.100.7';
const pkt = (sport: number, flags: number, client = CLIENT) => clientPacket(client, VIP, { proto: 'tcp', sport, dport: 80, flags });
/** The realserver (last octet of its address: 11, 12, ...) a packet went to, or 'drop'. */
function sent(sport: number, flags: number, client = CLIENT): number | 'drop' {
  const r = h.run(pkt(sport, flags, client));
  if (r.action === XDP.DROP) return 'drop';
  assert.equal(r.action, XDP.TX);
  return Number(r.out[5]!.toString(16)); // macOf: the last octet written as hex digits
}
const reader = () => new DirectorReader(h.writer.maps as DirectorMaps);
/** Live counts by realserver (last octet), as the data plane holds them. */
function counts(): Map<number, { active: number; inactive: number; overloaded: boolean }> {
  const out = new Map<number, { active: number; inactive: number; overloaded: boolean }>();
  const svc = h.appliedState.config.services[0]!;
  for (const r of svc.realservers) {
    const a = h.appliedState.allocation.reals[`tcp ${VIP}:80/${r.address}`]!;
    out.set(Number(r.address.split('.').pop()), decodeLiveCounts(h.writer.maps.lvs_real_conns.lookup(u32(a.index))!));
  }
  return out;
}
const c = (n: number) => counts().get(n)!;
function flowKey(sport: number, client = CLIENT): Buffer {
  return encode(FLOW_KEY, { saddr: addrBytes(client), daddr: addrBytes(VIP), sport, dport: 80, proto: 6, family: 4 });
}
function age(sport: number, seconds: bigint): void {
  const k = flowKey(sport);
  const e = decode(CONN, h.writer.maps.lvs_conns.lookup(k)!);
  h.writer.putEntry('lvs_conns', k, encode(CONN, { ...e, last_seen_ns: process.hrtime.bigint() - seconds * S }));
}
function reconcile(): number {
  const fixes = reader().connCountFixes(h.appliedState);
  h.writer.setConnCounts(fixes);
  return fixes.length;
}

test('counts follow entries: SYN inactive, ESTABLISHED active, FIN back to inactive, a reused port unbinds', () => {
  h.apply(config('wlc', [{ weight: 1 }]), resolve);
  assert.equal(sent(40000, TCP.SYN), 11);
  assert.deepEqual(c(11), { active: 0, inactive: 1, overloaded: false }, 'SYN_RECV is InActConn (IPVS starts every connection inactive)');
  sent(40000, TCP.ACK);
  assert.deepEqual(c(11), { active: 1, inactive: 0, overloaded: false });
  sent(40000, TCP.FIN | TCP.ACK);
  assert.deepEqual(c(11), { active: 0, inactive: 1, overloaded: false }, 'FIN_WAIT: still a connection, inactive');
  sent(40000, TCP.SYN);
  assert.deepEqual(c(11), { active: 0, inactive: 1, overloaded: false }, 'the old entry unbound, the new one bound');
  // a stray (no SYN) is InActConn, and active once promoted
  sent(40001, TCP.ACK);
  assert.deepEqual(c(11), { active: 0, inactive: 2, overloaded: false });
  assert.equal(reconcile(), 0, 'the data plane counted what the table holds');
});

test('the recount corrects what the data plane cannot see: an entry expired without a packet, an entry evicted', () => {
  h.apply(config('wlc', [{ weight: 1 }]), resolve);
  for (const p of [41000, 41001, 41002]) { sent(p, TCP.SYN); sent(p, TCP.ACK); }
  assert.equal(c(11).active, 3);
  age(41000, 901n); // idle past the tcp timeout: IPVS's timer would have freed it
  h.writer.deleteEntries('lvs_conns', [flowKey(41001)]); // what LRU eviction does
  assert.equal(c(11).active, 3, 'without the recount the counts drift: nothing told the data plane');
  assert.equal(reconcile(), 1);
  assert.deepEqual(c(11), { active: 1, inactive: 0, overloaded: false });
  assert.equal(reconcile(), 0, 'nothing left to correct');
});

test('wlc: each new flow goes to the cheaper of its two weighted draws; with 60 established flows the shares follow the weights', () => {
  const plan = h.apply(config('wlc', [{ weight: 1 }, { weight: 2 }, { weight: 3 }]), resolve);
  const svc = plan.compiled!.services[0]!;
  const table = svc.table;
  const drawn = table.length - 3; // the three realservers by weight follow the drawn part
  const byIndex = new Map(plan.compiled!.reals.map((r) => [r.index, Number(r.id.split('.').pop())]));
  const weightOf = new Map([[11, 1], [12, 2], [13, 3]]);
  for (let i = 0; i < 60; i++) {
    const sport = 42000 + i;
    // the prediction: the first two distinct draws, compared by overhead / weight
    const hash = flowHash({ saddr: addrBytes(CLIENT), daddr: addrBytes(VIP), sport, dport: 80, proto: 6 }, 0x1f, SEED);
    const now = counts();
    const cand: number[] = [];
    for (let k = 0; k < 4 && cand.length < 2; k++) {
      const rs = byIndex.get(table[lcDraw(hash, k) % drawn]!)!;
      if (!cand.includes(rs)) cand.push(rs);
    }
    const d = (rs: number) => ({ weight: weightOf.get(rs)!, active: now.get(rs)!.active, inactive: now.get(rs)!.inactive, overloaded: false });
    const want = cand.length === 1 || !lcBetter(LC_KIND.wlc, d(cand[1]!), d(cand[0]!)) ? cand[0] : cand[1];
    assert.equal(sent(sport, TCP.SYN), want, `flow ${i}: candidates ${cand.join(',')}`);
    sent(sport, TCP.ACK);
  }
  const n = counts();
  // exact wlc would give 10 / 20 / 30; two choices stay close
  for (const [rs, w] of weightOf) assert.ok(Math.abs(n.get(rs)!.active - 10 * w) <= 3, `realserver .${rs}: ${n.get(rs)!.active} active for weight ${w}`);
});

test('upper and lower thresholds: no new connections from the upper one until below the lower one', () => {
  h.apply(config('wlc', [{ weight: 100, upperThreshold: 2, lowerThreshold: 1 }, { weight: 1 }]), resolve);
  // .11 (weight 100) is always cheaper until it is overloaded at 2 connections
  const on11: number[] = [];
  let p = 43000;
  while (on11.length < 2) {
    const to = sent(p, TCP.SYN);
    if (to === 11) on11.push(p);
    sent(p++, TCP.ACK);
    assert.ok(p < 43100);
  }
  assert.equal(c(11).overloaded, true, 'at the upper threshold');
  for (let i = 0; i < 20; i++) { assert.equal(sent(p, TCP.SYN), 12, 'an overloaded realserver gets no new connection'); sent(p++, TCP.ACK); }
  // one of its connections closes and expires: 1 left, not below the lower threshold 1
  sent(on11[0]!, TCP.RST);
  age(on11[0]!, 11n);
  reconcile();
  assert.deepEqual(c(11), { active: 1, inactive: 0, overloaded: true }, '1 is not below the lower threshold 1');
  assert.equal(sent(p++, TCP.SYN), 12);
  sent(on11[1]!, TCP.RST);
  age(on11[1]!, 11n);
  reconcile();
  assert.deepEqual(c(11), { active: 0, inactive: 0, overloaded: false }, 'below the lower threshold: available again');
  assert.equal(sent(p++, TCP.SYN), 11);
});

test('thresholds on table schedulers: rr moves past an overloaded realserver, mh drops (drop_overloaded)', () => {
  h.apply(config('rr', [{ upperThreshold: 1 }, {}]), resolve);
  const first = [sent(44000, TCP.SYN), sent(44001, TCP.SYN)];
  assert.deepEqual(first.sort(), [11, 12]);
  assert.equal(c(11).overloaded, true);
  for (let i = 0; i < 6; i++) assert.equal(sent(44010 + i, TCP.SYN), 12, 'rr takes the next slot');
  h.reset();
  h.apply(config('mh', [{ upperThreshold: 1 }, { upperThreshold: 1 }]), resolve);
  const before = h.counters();
  const got = Array.from({ length: 20 }, (_, i) => sent(45000 + i, TCP.SYN));
  assert.equal(got.filter((x) => x === 11).length, 1);
  assert.equal(got.filter((x) => x === 12).length, 1);
  assert.equal(h.counters().DROP_OVERLOADED! - before.DROP_OVERLOADED!, 18n, 'mh finds no other realserver (as IPVS mh without fallback)');
});

test('fo takes the highest weight until it is overloaded; ovf the highest weight while its active connections <= its weight', () => {
  h.apply(config('fo', [{ weight: 1 }, { weight: 3, upperThreshold: 2 }, { weight: 2 }]), resolve);
  const fo = Array.from({ length: 5 }, (_, i) => { const r = sent(46000 + i, TCP.SYN); sent(46000 + i, TCP.ACK); return r; });
  assert.deepEqual(fo, [12, 12, 13, 13, 13]);
  h.reset();
  h.apply(config('ovf', [{ weight: 1 }, { weight: 2 }]), resolve);
  const ovf = Array.from({ length: 6 }, (_, i) => { const r = sent(47000 + i, TCP.SYN); if (r !== 'drop') sent(47000 + i, TCP.ACK); return r; });
  // IPVS skips a realserver once active > weight: .12 takes 3, .11 takes 2, then none is left
  assert.deepEqual(ovf, [12, 12, 12, 11, 11, 'drop']);
});

test('lc ignores weights (except 0); sed, nq and twos follow the weights; weight 0 takes nothing', () => {
  for (const s of ['lc', 'sed', 'nq', 'twos'] as LcScheduler[]) {
    h.reset();
    h.apply(config(s, [{ weight: 1 }, { weight: 50 }, { weight: 0 }]), resolve);
    const hits = new Map<number | 'drop', number>();
    for (let i = 0; i < 40; i++) { const r = sent(48000 + i, TCP.SYN); sent(48000 + i, TCP.ACK); hits.set(r, (hits.get(r) ?? 0) + 1); }
    assert.equal(hits.get(13), undefined, `${s}: weight 0 takes nothing`);
    if (s === 'lc') assert.ok(Math.abs(hits.get(11)! - 20) <= 2, `lc: ${[...hits]}`);
    else assert.ok((hits.get(12) ?? 0) > 30, `${s} follows the weights: ${[...hits]}`);
  }
});
