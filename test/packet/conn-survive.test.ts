// Connection semantics of issue 12, packet by packet through the real program: a deleted
// realserver's or service's entries wait (dropped and counted, never rescheduled, never passed to
// the local stack) and resume when it is back; TCP without SYN and without entry is forwarded as
// a stray that creates no connection until the flow shows it is real, and a flood of them evicts
// no established flow; a persistence template lives while a connection under it lives, and a
// quiesced realserver keeps its persistent clients unless expire-quiescent-template is set.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { clientPacket, mac, addrBytes, TCP } from '../lib/frames.js';
import { DirectorHarness, XDP } from '../lib/director.js';
import { ABI } from '../../src/abi/generated.js';
import { decode, encode, CONN, PIN, FLOW_KEY, PERSIST_KEY } from '../../src/abi/layout.js';
import { encodeReal, serviceKey } from '../../src/dataplane/compile.js';
import { emptyApplied, goneValue, tombstoneValue } from '../../src/director/plan.js';
import { DirectorReader } from '../../src/director/reader.js';
import type { DirectorMaps } from '../../src/director/writer.js';

const VIP = '10.0.0.1';
const CLIENT = '198.51.100.7';
const RS = [
  { addr: '192.168.1.10', mac: '02:00:00:00:01:0a' },
  { addr: '192.168.1.11', mac: '02:00:00:00:01:0b' },
  { addr: '192.168.1.12', mac: '02:00:00:00:01:0c' },
];
const S = 1_000_000_000n;

let h: DirectorHarness;
before(async () => {
  h = await DirectorHarness.load();
});
after(() => h?.close());

function cfg(flags = 0): void {
  h.setCfg({ tunSrc4: '192.168.1.1', tunSrc6: '2001:db8:1::1', seed: 7, tunMtu: 1500, ttl: 64, flags });
}
beforeEach(() => {
  h.reset();
  cfg();
});

const pkt = (sport: number, flags: number, client = CLIENT, dport = 80) => clientPacket(client, VIP, { proto: 'tcp', sport, dport, flags });
const dest = (r: { action: number; out: Buffer }) => (r.action === XDP.TX ? r.out.subarray(0, 6).toString('hex') : r.action === XDP.DROP ? 'drop' : r.action === XDP.PASS ? 'pass' : String(r.action));
const macHex = (i: number) => mac(RS[i]!.mac).toString('hex');
const realValue = (i: number, gen: number) => encodeReal({ addr: RS[i]!.addr, mac: RS[i]!.mac, method: 'dr', gen, svcId: 0 });
function flowKey(sport: number, client = CLIENT, dport = 80): Buffer {
  return encode(FLOW_KEY, { saddr: addrBytes(client), daddr: addrBytes(VIP), sport, dport, proto: 6, family: 4 });
}
function delta(before: Record<string, bigint>): Record<string, bigint> {
  const now = h.counters();
  return Object.fromEntries(Object.entries(now).filter(([k, v]) => v !== before[k]).map(([k, v]) => [k, v - before[k]!]));
}
/** Established flows (SYN, then ACK) on a service whose table is [0, 1, 2, ...]. */
function establish(n: number, from = 50000): { sport: number; rs: string }[] {
  return Array.from({ length: n }, (_, i) => {
    const sport = from + i;
    const rs = dest(h.run(pkt(sport, TCP.SYN)));
    assert.equal(dest(h.run(pkt(sport, TCP.ACK))), rs);
    return { sport, rs };
  });
}
function threeReals(table = [0, 1, 2], flags = 0, persistTimeout = 0): void {
  for (let i = 0; i < 3; i++) h.setReal(i, { ...RS[i]!, method: 'dr' }, 1);
  h.setService({ proto: 'tcp', vip: VIP, port: 80, flags, persistTimeout }, 0, table);
}

test('a deleted realserver\'s entries are dropped (drop_real_gone), not refreshed, not rescheduled; back in its slot, they resume', () => {
  threeReals(Array.from({ length: 251 }, (_, i) => i % 3));
  const flows = establish(60);
  const on0 = flows.filter((f) => f.rs === macHex(0));
  assert.ok(on0.length > 5);
  const entry = (sport: number) => decode(CONN, h.writer.maps.lvs_conns.lookup(flowKey(sport))!);
  const stamp = entry(on0[0]!.sport).last_seen_ns;
  // -d: the table loses it, the slot is flagged gone (generation and data kept).
  h.setService({ proto: 'tcp', vip: VIP, port: 80 }, 0, Array.from({ length: 251 }, (_, i) => 1 + (i % 2)));
  h.writer.execute([{ op: 'gone-reals', writes: [{ index: 0, value: goneValue(realValue(0, 1).toString('hex')) }] }]);
  let c = h.counters();
  for (const f of on0) assert.equal(dest(h.run(pkt(f.sport, TCP.ACK | TCP.PSH))), 'drop', 'never sent to another realserver');
  assert.deepEqual(delta(c), { DROP_REAL_GONE: BigInt(on0.length) });
  assert.equal(entry(on0[0]!.sport).last_seen_ns, stamp, 'a dropped packet does not refresh its entry');
  for (const f of flows.filter((x) => x.rs !== macHex(0))) assert.equal(dest(h.run(pkt(f.sport, TCP.ACK))), f.rs);
  // New flows avoid it.
  for (let p = 0; p < 40; p++) assert.notEqual(dest(h.run(pkt(60000 + p, TCP.SYN))), macHex(0));
  // The same realserver back in its slot (same generation): every entry resumes on it.
  h.setReal(0, { ...RS[0]!, method: 'dr' }, 1);
  c = h.counters();
  for (const f of on0) assert.equal(dest(h.run(pkt(f.sport, TCP.ACK))), macHex(0));
  assert.deepEqual(delta(c), { CONN_HIT: BigInt(on0.length), FWD_DR: BigInt(on0.length) });
});

test('an entry of a gone realserver that expired is scheduled anew; a zeroed slot (expire-nodest-conn) reschedules at once', () => {
  threeReals([0]);
  establish(2, 51000);
  h.setService({ proto: 'tcp', vip: VIP, port: 80 }, 0, [1]);
  h.writer.execute([{ op: 'gone-reals', writes: [{ index: 0, value: goneValue(realValue(0, 1).toString('hex')) }] }]);
  // Age the first entry past the tcp timeout (900 s by default).
  const k = flowKey(51000);
  const e = decode(CONN, h.writer.maps.lvs_conns.lookup(k)!);
  h.writer.putEntry('lvs_conns', k, encode(CONN, { ...e, last_seen_ns: process.hrtime.bigint() - 901n * S }));
  let c = h.counters();
  assert.equal(dest(h.run(pkt(51000, TCP.ACK))), macHex(1));
  assert.deepEqual(delta(c), { CONN_EXPIRED: 1n, CONN_STRAY: 1n, FWD_DR: 1n }, 'expired: forwarded anew (as a stray: no SYN)');
  assert.equal(h.writer.maps.lvs_conns.lookup(k) ?? null, null, 'the stale entry is gone');
  // expire-nodest-conn: the control plane empties the slot instead; the next packet reschedules.
  h.deleteReal(0);
  c = h.counters();
  assert.equal(dest(h.run(pkt(51001, TCP.ACK))), macHex(1));
  assert.deepEqual(delta(c), { CONN_REAL_GONE: 1n, CONN_STRAY: 1n, FWD_DR: 1n });
});

test('a deleted service\'s tombstone: its entries are dropped (drop_service_gone), new flows are the kernel\'s; the service back, they resume', () => {
  threeReals();
  const flows = establish(9, 52000);
  const key = serviceKey({ protocol: 'tcp', vip: VIP, port: 80 });
  // -D: tombstone, realserver slots gone.
  h.writer.execute([
    { op: 'tombstones', writes: [{ service: 'x', key, value: tombstoneValue(0) }] },
    { op: 'gone-reals', writes: [0, 1, 2].map((i) => ({ index: i, value: goneValue(realValue(i, 1).toString('hex')) })) },
  ]);
  const c = h.counters();
  for (const f of flows) assert.equal(dest(h.run(pkt(f.sport, TCP.ACK))), 'drop', 'never handed to the local stack (it would reset it)');
  assert.equal(dest(h.run(pkt(52100, TCP.SYN))), 'pass', 'a new flow: as if there were no service');
  assert.equal(dest(h.run(pkt(52101, TCP.ACK))), 'pass');
  assert.deepEqual(delta(c), { DROP_SERVICE_GONE: 9n, PASS_NOT_VIP: 2n });
  // An all-ports service on the VIP takes the flows the tombstone does not hold.
  h.setReal(5, { ...RS[2]!, method: 'dr' }, 9);
  h.setService({ proto: 'tcp', vip: VIP, port: 0 }, 1, [5]);
  assert.equal(dest(h.run(pkt(52102, TCP.SYN))), macHex(2));
  assert.equal(dest(h.run(pkt(flows[0]!.sport, TCP.ACK))), 'drop');
  // Added back: slots restored, the service entry replaces the tombstone.
  for (let i = 0; i < 3; i++) h.setReal(i, { ...RS[i]!, method: 'dr' }, 1);
  h.setService({ proto: 'tcp', vip: VIP, port: 80 }, 0, [0, 1, 2]);
  for (const f of flows) assert.equal(dest(h.run(pkt(f.sport, TCP.ACK))), f.rs);
});

test('50 lone ACKs: forwarded by the table, no connection entry, counted as strays, not ActiveConn', () => {
  threeReals();
  const reader = new DirectorReader(h.writer.maps as DirectorMaps);
  const c = h.counters();
  for (let i = 0; i < 50; i++) assert.match(dest(h.run(pkt(53000 + i, TCP.ACK))), /^0200000001/);
  assert.deepEqual(delta(c), { CONN_STRAY: 50n, FWD_DR: 50n });
  assert.equal(h.connCount(), 0, 'no entry in lvs_conns');
  assert.equal(h.writer.maps.lvs_strays.entries().keys.length, 50);
  // ActiveConn / InActConn as the reader counts them (per slot index/gen).
  const counts = reader.connectionCounts(emptyApplied(), process.hrtime.bigint());
  const active = [...counts.byReal.values()].reduce((n, x) => n + x.active, 0);
  const inactive = [...counts.byReal.values()].reduce((n, x) => n + x.inactive, 0);
  assert.equal(active, 0);
  assert.equal(inactive, 50);
  // Seen again within a second: still a stray, same realserver, nothing written.
  const first = dest(h.run(pkt(53000, TCP.ACK)));
  assert.equal(h.connCount(), 0);
  // Seen again more than a second after it was recorded (its stamp moved back): promoted.
  const k = flowKey(53000);
  const s = decode(CONN, h.writer.maps.lvs_strays.lookup(k)!);
  h.writer.putEntry('lvs_strays', k, encode(CONN, { ...s, last_seen_ns: (s.last_seen_ns as bigint) - 2n * S }));
  const c2 = h.counters();
  assert.equal(dest(h.run(pkt(53000, TCP.ACK))), first);
  assert.deepEqual(delta(c2), { CONN_PROMOTED: 1n, FWD_DR: 1n });
  assert.equal(decode(CONN, h.writer.maps.lvs_conns.lookup(k)!).state, ABI.LVS_CS_ESTABLISHED);
  assert.equal(h.writer.maps.lvs_strays.lookup(k) ?? null, null);
  assert.equal(h.svcStats(0).conns, 1n, 'a promoted stray counts as a connection; strays do not');
});

test('an ACK flood of random 5-tuples fills the stray table only: established flows are neither evicted nor counted wrong', () => {
  threeReals(Array.from({ length: 251 }, (_, i) => i % 3));
  const flows = establish(200, 54000);
  const strayMax = h.writer.maps.lvs_strays.maxEntries;
  let seed = 12345;
  const rnd = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0);
  for (let i = 0; i < 8 * strayMax; i++) {
    const client = `203.0.${rnd() & 255}.${rnd() & 255}`;
    h.run(clientPacket(client, VIP, { proto: 'tcp', sport: 1024 + (rnd() % 60000), dport: 80, flags: TCP.ACK }));
  }
  assert.ok(h.writer.maps.lvs_strays.entries().keys.length <= strayMax);
  assert.equal(h.connCount(), 200, 'every established entry is still there, and only they');
  const c = h.counters();
  for (const f of flows) assert.equal(dest(h.run(pkt(f.sport, TCP.ACK))), f.rs);
  assert.deepEqual(delta(c), { CONN_HIT: 200n, FWD_DR: 200n });
  const reader = new DirectorReader(h.writer.maps as DirectorMaps);
  const counts = reader.connectionCounts(emptyApplied(), process.hrtime.bigint());
  assert.equal([...counts.byReal.values()].reduce((n, x) => n + x.active, 0), 200, 'ActiveConn: the established flows exactly');
});

test('a persistence template lives while a connection under it lives (not only -p seconds after its last packet)', () => {
  threeReals(Array.from({ length: 251 }, (_, i) => i % 3), ABI.LVS_SVC_F_PERSIST, 10);
  const rs = dest(h.run(pkt(55000, TCP.SYN)));
  assert.equal(dest(h.run(pkt(55000, TCP.ACK))), rs); // ESTABLISHED: the template now lasts as the connection (900 s)
  // 20 s of silence (twice the persistence timeout): move both stamps back.
  const ck = flowKey(55000);
  const conn = decode(CONN, h.writer.maps.lvs_conns.lookup(ck)!);
  h.writer.putEntry('lvs_conns', ck, encode(CONN, { ...conn, last_seen_ns: (conn.last_seen_ns as bigint) - 20n * S }));
  const pk = encode(PERSIST_KEY, { caddr: addrBytes(CLIENT), svc_id: 0, family: 4 });
  const tpl = decode(PIN, h.writer.maps.lvs_persist.lookup(pk)!);
  assert.ok((tpl.last_seen_ns as bigint) > process.hrtime.bigint() + 800n * S, 'the template counts from the connection\'s expiry');
  h.writer.putEntry('lvs_persist', pk, encode(PIN, { ...tpl, last_seen_ns: (tpl.last_seen_ns as bigint) - 20n * S }));
  const c = h.counters();
  for (let p = 1; p <= 20; p++) assert.equal(dest(h.run(pkt(55000 + p, TCP.SYN))), rs, 'a new connection of the client joins it');
  assert.equal(delta(c).PERSIST_HIT, 20n);
  // Once the connection is closed and its template's own time is up, the client is scheduled anew.
  h.writer.putEntry('lvs_persist', pk, encode(PIN, { ...tpl, last_seen_ns: process.hrtime.bigint() - 11n * S }));
  const c2 = h.counters();
  h.run(pkt(55100, TCP.SYN));
  assert.equal(delta(c2).PERSIST_NEW, 1n);
});

test('a quiesced realserver keeps its persistent clients; with expire-quiescent-template they are scheduled anew', () => {
  threeReals(Array.from({ length: 251 }, (_, i) => i % 3), ABI.LVS_SVC_F_PERSIST, 300);
  const rs = dest(h.run(pkt(56000, TCP.SYN)));
  const idx = [0, 1, 2].find((i) => macHex(i) === rs)!;
  // Quiesce it: weight 0 (same generation), out of the table.
  h.setReal(idx, { ...RS[idx]!, method: 'dr', quiesced: true }, 1);
  h.setService({ proto: 'tcp', vip: VIP, port: 80, flags: ABI.LVS_SVC_F_PERSIST, persistTimeout: 300 }, 0, [0, 1, 2].filter((i) => i !== idx));
  let c = h.counters();
  for (let p = 1; p <= 10; p++) assert.equal(dest(h.run(pkt(56000 + p, TCP.SYN))), rs);
  assert.equal(delta(c).PERSIST_HIT, 10n);
  cfg(ABI.LVS_CFG_F_EXPIRE_QUIESCENT);
  c = h.counters();
  const moved = dest(h.run(pkt(56100, TCP.SYN)));
  assert.notEqual(moved, rs);
  assert.deepEqual(delta(c), { PERSIST_NEW: 1n, CONN_NEW: 1n, CONN_SYNRECV_NEW: 1n, FWD_DR: 1n });
  assert.equal(dest(h.run(pkt(56000, TCP.ACK))), rs, 'its established connection stays');
});
