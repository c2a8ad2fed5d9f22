// SYN_RECV connections of DR / Tun flows kept out of the connection table (bpf/lvs_synrecv.h):
// a SYN writes a slot of lvs_synrecv, the flow's next packet enters it in lvs_conns. Checked
// through the real program: the handshake lands in lvs_conns on the SYN's realserver (rr, where a
// stray would go elsewhere, and mh), a retransmitted SYN keeps its realserver, a SYN flood into a
// full table leaves every established entry in place, a slot overwritten by another flow is
// counted and its live count unbound, a torn or expired slot is no connection, `-Lc` and the
// recount see SYN_RECV connections, and LVS-NAT still enters the SYN in lvs_conns. Ways of a
// bucket: other flows' SYNs into a client's bucket between its SYN and ACK do not lose it until a
// 5th, which evicts the way seen longest ago (counted, its live count unbound).
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { clientPacket, TCP, addrBytes } from '../lib/frames.js';
import { DirectorHarness, XDP } from '../lib/director.js';
import { loadDirector, DEFAULT_SIZES, SMALL_BOX_SIZES } from '../../src/dataplane/loader.js';
import type { MacResolver } from '../../src/dataplane/compile.js';
import { decode, encode, CONN, FLOW_KEY } from '../../src/abi/layout.js';
import { ABI } from '../../src/abi/generated.js';
import { DirectorReader, decodeLiveCounts } from '../../src/director/reader.js';
import { readSynRecv } from '../../src/director/synrecv.js';
import { u32, type DirectorMaps } from '../../src/director/writer.js';
import { synRecvBucket, synRecvOf, encodeSynRecv } from '../model/synrecv.js';
import type { DirectorConfig, Realserver, Scheduler } from '../../src/model/types.js';

const VIP = '10.0.0.1';
const S = 1_000_000_000n;
const macOf = (addr: string) => `02:00:00:00:00:${addr.split('.').pop()!.padStart(2, '0').slice(-2)}`;
const resolve: MacResolver = (_s, r) => ({ mac: macOf(r.address) });

function config(scheduler: Scheduler, n: number, extra: Partial<Realserver> = {}): DirectorConfig {
  return {
    settings: { hashSeed: 5, tunnel: { source4: '192.168.1.1' } },
    services: [{
      protocol: 'tcp', vip: VIP, port: 80, scheduler, flags: [], ops: false, tableSize: 251,
      realservers: Array.from({ length: n }, (_, i) => ({ address: `192.168.1.${11 + i}`, port: 80, weight: 1, method: 'dr' as const, ...extra })),
    }],
  };
}

let h: DirectorHarness;
before(async () => { h = await DirectorHarness.load(); });
after(() => h?.close());
beforeEach(() => h.reset());

const CLIENT = '198.51.100.7';
/** The realserver (last octet: 11, 12, ...) a packet went to. */
function sent(sport: number, flags: number, client = CLIENT): number {
  const r = h.run(clientPacket(client, VIP, { proto: 'tcp', sport, dport: 80, flags }));
  assert.equal(r.action, XDP.TX);
  return Number(r.out[5]!.toString(16));
}
const flowKey = (sport: number, client = CLIENT) =>
  encode(FLOW_KEY, { saddr: addrBytes(client), daddr: addrBytes(VIP), sport, dport: 80, proto: 6, family: 4 });
const entry = (sport: number, client = CLIENT) => {
  const v = h.writer.maps.lvs_conns.lookup(flowKey(sport, client));
  return v ? decode(CONN, v) : undefined;
};
const slots = () => readSynRecv(h.writer.maps.lvs_synrecv);
const reader = () => new DirectorReader(h.writer.maps as DirectorMaps);
const diff = (a: Record<string, bigint>, b: Record<string, bigint>, name: string) => Number(b[name]! - a[name]!);
const realIndex = (last: number) => h.appliedState.allocation.reals[`tcp ${VIP}:80/192.168.1.${last}`]!.index;
const counts = (last: number) => decodeLiveCounts(h.writer.maps.lvs_real_conns.lookup(u32(realIndex(last)))!);

test('rr: SYN -> ACK enters the flow in lvs_conns on its SYN\'s realserver, not where rr would send a stray', () => {
  h.apply(config('rr', 3), resolve);
  const c0 = h.counters();
  const to = [50000, 50001, 50002].map((p) => sent(p, TCP.SYN));
  assert.deepEqual(new Set(to).size, 3, 'rr spread the SYNs');
  assert.equal(h.connCount(), 0, 'no SYN entered lvs_conns');
  assert.equal(slots().length, 3, 'three SYN_RECV slots');
  // ACKs in another order: the cursor would now give each a different realserver
  for (const i of [2, 0, 1]) assert.equal(sent(50000 + i, TCP.ACK), to[i], `flow ${i}`);
  for (const i of [0, 1, 2]) {
    const e = entry(50000 + i)!;
    assert.equal(e.state, ABI.LVS_CS_ESTABLISHED);
    assert.equal(e.real, realIndex(to[i]!));
  }
  assert.equal(slots().length, 0, 'the slots were cleared');
  const c1 = h.counters();
  assert.equal(diff(c0, c1, 'CONN_NEW'), 3);
  assert.equal(diff(c0, c1, 'CONN_SYNRECV_ENTERED'), 3);
  assert.equal(diff(c0, c1, 'CONN_STRAY'), 0);
  assert.equal(diff(c0, c1, 'CONN_HIT'), 3);
});

test('mh: the handshake lands in lvs_conns on the table\'s realserver; data goes on there', () => {
  h.apply(config('mh', 4), resolve);
  for (let p = 51000; p < 51040; p++) {
    const rs = sent(p, TCP.SYN);
    assert.equal(entry(p), undefined);
    assert.equal(sent(p, TCP.ACK), rs);
    assert.equal(entry(p)!.real, realIndex(rs));
    assert.equal(sent(p, TCP.ACK | TCP.PSH), rs);
  }
  assert.equal(h.connCount(), 40);
});

test('a retransmitted SYN keeps its realserver (rr) and refreshes its slot; it is no new connection', () => {
  h.apply(config('rr', 3), resolve);
  const a = sent(52000, TCP.SYN);
  const at = slots()[0]!.lastSeenNs;
  const b = sent(52001, TCP.SYN);
  assert.notEqual(a, b);
  const c0 = h.counters();
  assert.equal(sent(52000, TCP.SYN), a, 'same realserver');
  assert.equal(sent(52000, TCP.SYN), a);
  const mine = slots().find((s) => s.key.equals(flowKey(52000)))!;
  assert.ok(mine.lastSeenNs >= at, 'timestamp refreshed');
  const c1 = h.counters();
  assert.equal(diff(c0, c1, 'CONN_NEW'), 0);
  assert.equal(diff(c0, c1, 'CONN_HIT'), 2);
  assert.deepEqual(counts(a), { active: 0, inactive: 1, overloaded: false }, 'bound once');
  assert.equal(sent(52000, TCP.ACK), a);
});

test('SYN flood into a full connection table: every established entry stays in lvs_conns', () => {
  h.apply(config('mh', 4), resolve);
  const max = h.writer.maps.lvs_conns.maxEntries;
  // fill the table with established flows (SYN, ACK) from many clients
  for (let i = 0; i < max; i++) {
    const client = `198.51.${100 + (i >> 12)}.${1 + ((i >> 6) & 63)}`;
    const sport = 10000 + (i & 63);
    sent(sport, TCP.SYN, client);
    sent(sport, TCP.ACK, client);
  }
  const held = new Set(h.writer.maps.lvs_conns.entries().keys.map((k) => k.toString('hex')));
  assert.ok(held.size > max * 0.9, `the table is (nearly) full: ${held.size} of ${max}`);
  const c0 = h.counters();
  // the flood: three times as many SYNs as the table holds, each a new flow
  for (let i = 0; i < 3 * max; i++) sent(20000 + (i % 40000), TCP.SYN, `203.0.${113 + (i >> 16)}.${1 + ((i >> 8) & 127)}`);
  const c1 = h.counters();
  assert.equal(diff(c0, c1, 'CONN_NEW'), 3 * max);
  const after = new Set(h.writer.maps.lvs_conns.entries().keys.map((k) => k.toString('hex')));
  const lost = [...held].filter((k) => !after.has(k));
  assert.deepEqual(lost, [], 'no established entry was evicted');
  assert.equal(after.size, held.size, 'the flood entered nothing');
  assert.ok(diff(c0, c1, 'CONN_SYNRECV_EVICTED') > 0, 'the flood overwrote its own SYN_RECV slots');
});

/** `count` client ports after `from` whose flows hash to the bucket of `port`'s flow. */
function sameBucket(port: number, count: number, from = port + 1): number[] {
  const n = h.writer.maps.lvs_synrecv.maxEntries;
  const bucketOf = (p: number) => synRecvBucket(flowKey(p).toString('hex'), n, h.synrecvKey);
  const out: number[] = [];
  for (let p = from; out.length < count; p++) if (bucketOf(p) === bucketOf(port)) out.push(p);
  return out;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('rr: SYNs of 3 other flows into a client\'s bucket between its SYN and ACK do not lose it', () => {
  h.apply(config('rr', 3), resolve);
  const others = sameBucket(53000, 3);
  const to = sent(53000, TCP.SYN);
  const c0 = h.counters();
  for (const p of others) sent(p, TCP.SYN);
  const c1 = h.counters();
  assert.equal(diff(c0, c1, 'CONN_SYNRECV_EVICTED'), 0, 'the bucket had a way for each');
  // rr's cursor has gone round once since the client's SYN: a stray would go to the next one
  assert.equal(sent(53000, TCP.ACK), to, 'the ACK reaches the SYN\'s realserver');
  const c2 = h.counters();
  assert.equal(diff(c1, c2, 'CONN_STRAY'), 0);
  assert.equal(diff(c1, c2, 'CONN_SYNRECV_ENTERED'), 1);
  assert.equal(entry(53000)!.real, realIndex(to));
  for (const p of others) assert.ok(slots().some((x) => x.key.equals(flowKey(p))), `flow ${p} still waits`);
});

test('a 5th SYN into a full bucket evicts the way seen longest ago (counted, unbound; lc); that flow\'s ACK is a stray', async () => {
  h.apply(config('wlc', 1), resolve);
  const [b, c, d, e] = sameBucket(53100, 4);
  // ways 0..3 in order; the first flow's SYN retransmitted last, so the oldest is the second
  for (const p of [53100, b!, c!, d!]) { sent(p, TCP.SYN); await sleep(2); }
  sent(53100, TCP.SYN);
  assert.deepEqual(counts(11), { active: 0, inactive: 4, overloaded: false });
  const c0 = h.counters();
  sent(e!, TCP.SYN);
  const c1 = h.counters();
  assert.equal(diff(c0, c1, 'CONN_SYNRECV_EVICTED'), 1);
  assert.deepEqual(counts(11), { active: 0, inactive: 4, overloaded: false }, 'the evicted one unbound, the new one bound');
  const waiting = new Set(slots().map((x) => x.key.toString('hex')));
  assert.deepEqual([53100, b!, c!, d!, e!].map((p) => waiting.has(flowKey(p).toString('hex'))), [true, false, true, true, true], 'the second flow\'s way was taken');
  for (const p of [53100, c!, d!, e!]) assert.equal(sent(p, TCP.ACK), 11);
  const c2 = h.counters();
  assert.equal(diff(c1, c2, 'CONN_SYNRECV_ENTERED'), 4);
  assert.equal(diff(c1, c2, 'CONN_STRAY'), 0);
  assert.equal(sent(b!, TCP.ACK), 11);
  const c3 = h.counters();
  assert.equal(diff(c2, c3, 'CONN_STRAY'), 1, 'no SYN_RECV connection left for it: a stray');
  assert.equal(entry(b!), undefined);
  assert.equal(reader().connCountFixes(h.appliedState).length, 0, 'the recount agrees with the data plane');
});

test('a torn slot (check word off) and an expired one hold no connection', () => {
  h.apply(config('mh', 2), resolve);
  const n = h.writer.maps.lvs_synrecv.maxEntries;
  const now = process.hrtime.bigint();
  const idx = realIndex(11);
  const put = (sport: number, lastSeen: bigint, torn: boolean) => {
    const key = flowKey(sport).toString('hex');
    const v = synRecvOf({ key, lastSeen, real: idx, gen: h.appliedState.allocation.reals[`tcp ${VIP}:80/192.168.1.11`]!.gen, svcId: 0 });
    h.writer.putSynRecv([synRecvBucket(key, n, h.synrecvKey)], [encodeSynRecv(torn ? { ...v, check: v.check ^ 1 } : v)]);
  };
  put(54000, now, false);
  put(54001, now, true);
  put(54002, now - 61n * S, false); // SYN_RECV times out after 60 s
  assert.equal(slots().length, 2, 'the torn slot is not read as a connection');
  const c0 = h.counters();
  sent(54000, TCP.ACK);
  sent(54001, TCP.ACK);
  sent(54002, TCP.ACK);
  const c1 = h.counters();
  assert.equal(diff(c0, c1, 'CONN_SYNRECV_ENTERED'), 1);
  assert.equal(diff(c0, c1, 'CONN_STRAY'), 2);
  assert.equal(entry(54000)!.real, idx);
});

test('-Lc lists a SYN_RECV connection; the recount counts it inactive', () => {
  h.apply(config('mh', 2), resolve);
  const rs = sent(55000, TCP.SYN);
  const list = reader().connections(h.appliedState);
  assert.equal(list.length, 1);
  assert.equal(list[0]!.state, 'SYN_RECV');
  assert.equal(list[0]!.client.port, 55000);
  assert.equal(list[0]!.realserver?.address, `192.168.1.${rs}`);
  assert.ok(list[0]!.expire > 59 && list[0]!.expire <= 60);
  const byReal = reader().connectionCounts(h.appliedState, process.hrtime.bigint()).byReal;
  const a = h.appliedState.allocation.reals[`tcp ${VIP}:80/192.168.1.${rs}`]!;
  assert.deepEqual(byReal.get(`${a.index}/${a.gen}`), { active: 0, inactive: 1 });
  assert.equal(reader().connCountFixes(h.appliedState).length, 0);
  sent(55000, TCP.ACK);
  assert.deepEqual(reader().connections(h.appliedState).map((c) => c.state), ['ESTABLISHED']);
});

test('LVS-NAT: the SYN still enters lvs_conns (the realserver\'s SYN-ACK needs the reply entry)', () => {
  h.apply({
    settings: { hashSeed: 5 },
    services: [{
      protocol: 'tcp', vip: VIP, port: 80, scheduler: 'mh', flags: [], ops: false, tableSize: 251,
      realservers: [{ address: '192.168.1.11', port: 8080, weight: 1, method: 'nat' }],
    }],
  }, resolve);
  const r = h.run(clientPacket(CLIENT, VIP, { proto: 'tcp', sport: 56000, dport: 80, flags: TCP.SYN }));
  assert.notEqual(r.action, XDP.DROP);
  assert.equal(entry(56000)!.state, ABI.LVS_CS_SYN_RECV);
  assert.equal(h.connCount(), 2, 'client and reply entries');
  assert.equal(slots().length, 0);
});

test('a lvs_synrecv size that is not a whole number of buckets is refused, saying why', async () => {
  for (const bad of [1022, 2, 0]) {
    await assert.rejects(loadDirector({ sizes: { maxSynRecv: bad } }), (e: Error) => e instanceof RangeError && /maxSynRecv .*multiple of 4/.test(e.message), String(bad));
  }
  assert.equal(DEFAULT_SIZES.maxSynRecv % 4, 0);
  assert.equal(SMALL_BOX_SIZES.maxSynRecv % 4, 0);
});
