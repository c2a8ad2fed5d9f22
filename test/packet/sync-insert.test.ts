// Connection sync, backup side, through the real program: a master's IPVS sync entries inserted
// into the maps (src/sync/insert.ts) make the backup forward the master's flows to the
// realservers the master chose, whatever its own scheduler would pick (rr, wrr, persistence),
// expire after the message's timeout, keep live connection counts right, and follow IPVS's rule
// for an entry the backup already has. Nothing is scheduled locally before the inserts: every
// test shows what the backup's own scheduler does with the same packet (the other realserver).
import { test as nodeTest, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { clientPacket, TCP } from '../lib/frames.js';
import { DirectorHarness, XDP } from '../lib/director.js';
import { onOneCpu } from '../lib/cpu.js';
import type { MacResolver } from '../../src/dataplane/compile.js';
import { realId } from '../../src/dataplane/compile.js';
import { ABI } from '../../src/abi/generated.js';
import { decodeLiveCounts, DirectorReader } from '../../src/director/reader.js';
import { u32, type DirectorMaps } from '../../src/director/writer.js';
import { serviceId, type DirectorConfig, type VirtualService, type Realserver } from '../../src/model/types.js';
import { insertSynced, SyncInserter, type SyncInsertResult } from '../../src/sync/insert.js';
import { IP_VS_CONN_F, IP_VS_TCP_S, IP_VS_UDP_S_NORMAL, type SyncConn } from '../../src/sync/proto.js';

const S = 1_000_000_000n;
const VIP = '10.0.0.1';
const VIP6 = '2001:db8::1';
const A = '192.168.1.11';
const B = '192.168.1.12';
const A6 = '2001:db8:1::11';
const B6 = '2001:db8:1::12';
const CLIENT = '198.51.100.7';
const CLIENT6 = '2001:db8:c::7';
/** Realserver MACs end in the address's last group (11 / 12), so a frame names its realserver. */
const macOf = (addr: string) => `02:00:00:00:00:${addr.split(/[.:]/).pop()!.padStart(2, '0').slice(-2)}`;
const resolve: MacResolver = (_s, r) => ({ mac: macOf(r.address) });

type Svc = Partial<VirtualService> & Pick<VirtualService, 'scheduler'>;
function service(s: Svc, reals: Partial<Realserver>[] = [{ address: A }, { address: B }]): VirtualService {
  return {
    protocol: 'tcp', vip: VIP, port: 80, flags: [], ops: false, tableSize: 251, ...s,
    realservers: reals.map((r) => ({ address: A, port: s.port ?? 80, weight: 1, method: 'dr' as const, ...r })),
  };
}
function config(...services: VirtualService[]): DirectorConfig {
  return { settings: { hashSeed: 7, tunnel: { source4: '192.168.1.1' } }, services };
}

/** An IPVS sync entry as a master sends it for an established DR connection CLIENT:cport -> VIP:80 on B. */
function sc(o: Partial<SyncConn> = {}): SyncConn {
  return {
    family: 4, protocol: 6, flags: IP_VS_CONN_F.DROUTE, state: IP_VS_TCP_S.ESTABLISHED, cport: 40000, vport: 80, dport: 80,
    fwmark: 0, timeout: 900, caddr: CLIENT, vaddr: VIP, daddr: B, ...o,
  };
}
/** A persistence template as IPVS's master sends it: cport 0, TEMPLATE, the template's timeout. */
function tpl(o: Partial<SyncConn> = {}): SyncConn {
  return sc({ flags: IP_VS_CONN_F.TEMPLATE | IP_VS_CONN_F.DROUTE, state: 0, cport: 0, timeout: 300, ...o });
}

/** rr / wrr cursors are per CPU: each test's packets run on one. */
const test = (name: string, fn: () => void) => nodeTest(name, () => onOneCpu(fn));

let h: DirectorHarness;
before(async () => { h = await DirectorHarness.load(); });
after(() => h?.close());
beforeEach(() => h.reset());

const target = () => ({ applied: h.appliedState, writer: h.writer });
const insert = (conns: SyncConn[], now?: bigint): SyncInsertResult => insertSynced(target(), conns, now === undefined ? {} : { now });

/** Where a client packet went: the realserver's last address group (11 / 12), 'pass' or 'drop'. */
function sent(sport: number, flags: number, o: { client?: string; vip?: string; dport?: number; proto?: 'tcp' | 'udp' } = {}): string {
  const r = h.run(clientPacket(o.client ?? CLIENT, o.vip ?? VIP, { proto: o.proto ?? 'tcp', sport, dport: o.dport ?? 80, flags }));
  if (r.action === XDP.PASS) return 'pass';
  if (r.action === XDP.DROP) return 'drop';
  assert.equal(r.action, XDP.TX);
  return r.out[5]!.toString(16);
}
function counters(...names: string[]): Record<string, bigint> {
  const c = h.counters();
  return Object.fromEntries(names.map((n) => [n, c[n]!]));
}
/** What the backup made of a flow's ACK: a hit on an entry (and where it went), or an expired entry. */
function via(sport: number): string {
  const before = counters('CONN_HIT', 'CONN_EXPIRED');
  const to = sent(sport, TCP.ACK);
  const after = counters('CONN_HIT', 'CONN_EXPIRED');
  if (after.CONN_HIT === before.CONN_HIT! + 1n) return `hit ${to}`;
  return after.CONN_EXPIRED === before.CONN_EXPIRED! + 1n ? 'expired' : `? ${to}`;
}
/** What the backup made of a client's new SYN: its template (and where it went), or a new template. */
function client(addr: string): string {
  const before = counters('PERSIST_HIT', 'PERSIST_NEW');
  const to = sent(44000, TCP.SYN, { client: addr });
  const after = counters('PERSIST_HIT', 'PERSIST_NEW');
  if (after.PERSIST_HIT === before.PERSIST_HIT! + 1n) return `template ${to}`;
  return after.PERSIST_NEW === before.PERSIST_NEW! + 1n ? 'new' : `? ${to}`;
}
const HIT = { CONN_HIT: 1n, CONN_NEW: 0n, CONN_STRAY: 0n };
const hit = () => counters('CONN_HIT', 'CONN_NEW', 'CONN_STRAY');

for (const [name, svc] of [
  ['rr', { scheduler: 'rr' }],
  ['wrr (weights 3:1)', { scheduler: 'wrr' }],
  ['persistent rr', { scheduler: 'rr', persistence: { timeout: 300, netmask: '255.255.255.255' } }],
] as const) {
  test(`${name}: a synced ESTABLISHED entry to B sends the flow's next packet to B as a connection hit`, () => {
    h.apply(config(service(svc, [{ address: A, weight: name.startsWith('wrr') ? 3 : 1 }, { address: B }])), resolve);
    const r = insert([sc()]);
    assert.deepEqual(r, { conns: 1, updated: 0, replaced: 0, replies: 0, templates: 0, skipped: {} });
    assert.equal(sent(40000, TCP.ACK), '12');
    assert.deepEqual(hit(), HIT, 'found in the connection table: not a stray, not scheduled');
    // The backup's own choice for the same kind of packet: A (the rr / wrr cursor starts there).
    assert.equal(sent(40001, TCP.ACK), '11');
    assert.equal(counters('CONN_STRAY').CONN_STRAY, 1n);
  });
}

test('persistent service: a synced template sends a NEW SYN of that client to B; the netmask groups clients as the service does', () => {
  const svc = service({ scheduler: 'rr', persistence: { timeout: 300, netmask: '255.255.255.0' } });
  h.apply(config(svc), resolve);
  // the master sends the template with the client's address already masked (ip_vs_sched_persist)
  const r = insert([tpl({ caddr: '198.51.100.0' })]);
  assert.equal(r.templates, 1);
  assert.equal(sent(41000, TCP.SYN), '12');
  assert.equal(sent(41001, TCP.SYN, { client: '198.51.100.200' }), '12', 'another client of the same /24');
  assert.deepEqual(counters('PERSIST_HIT', 'PERSIST_NEW'), { PERSIST_HIT: 2n, PERSIST_NEW: 0n });
  // a client outside the group gets the backup's own choice (rr's first: A), and a template of its own
  assert.equal(sent(41002, TCP.SYN, { client: '198.51.101.1' }), '11');
  assert.equal(counters('PERSIST_NEW').PERSIST_NEW, 1n);
});

test('a connection and its template together: the flow goes on to B and the client\'s next connection joins it', () => {
  h.apply(config(service({ scheduler: 'rr', persistence: { timeout: 300, netmask: '255.255.255.255' } })), resolve);
  insert([tpl(), sc({ cport: 42000 })]);
  assert.equal(sent(42000, TCP.ACK), '12');
  assert.equal(sent(42001, TCP.SYN), '12');
  assert.deepEqual(counters('CONN_HIT', 'PERSIST_HIT', 'CONN_STRAY'), { CONN_HIT: 1n, PERSIST_HIT: 1n, CONN_STRAY: 0n });
});

test('IPv6: a synced connection and template on an IPv6 service', () => {
  h.apply(config(service({ scheduler: 'rr', vip: VIP6, persistence: { timeout: 300, netmask: '64' } }, [{ address: A6 }, { address: B6 }])), resolve);
  const r = insert([
    sc({ family: 6, caddr: CLIENT6, vaddr: VIP6, daddr: B6 }),
    tpl({ family: 6, caddr: '2001:db8:c::', vaddr: VIP6, daddr: B6 }),
  ]);
  assert.deepEqual(r, { conns: 1, updated: 0, replaced: 0, replies: 0, templates: 1, skipped: {} });
  assert.equal(sent(40000, TCP.ACK, { client: CLIENT6, vip: VIP6 }), '12');
  assert.equal(sent(40001, TCP.SYN, { client: '2001:db8:c::99', vip: VIP6 }), '12', 'the template covers the client\'s /64');
  assert.deepEqual(counters('CONN_HIT', 'PERSIST_HIT', 'CONN_STRAY'), { CONN_HIT: 1n, PERSIST_HIT: 1n, CONN_STRAY: 0n });
});

test('UDP and Tun: a synced UDP entry (IPVS NORMAL) to a Tun realserver goes out encapsulated to it', () => {
  const svc = service({ scheduler: 'rr', protocol: 'udp', port: 53 }, [{ address: A, method: 'tun' }, { address: B, method: 'tun' }]);
  h.apply(config(svc), resolve);
  insert([sc({ protocol: 17, state: IP_VS_UDP_S_NORMAL, flags: IP_VS_CONN_F.TUNNEL | IP_VS_CONN_F.INACTIVE, vport: 53, dport: 53, timeout: 300 })]);
  const r = h.run(clientPacket(CLIENT, VIP, { proto: 'udp', sport: 40000, dport: 53 }));
  assert.equal(r.action, XDP.TX);
  assert.equal(r.out.subarray(14 + 16, 14 + 20).join('.'), B, 'outer destination: B');
  assert.equal(h.counters().CONN_HIT, 1n);
});

test('entries the backup cannot hold are skipped and counted by reason; nothing is written for them', () => {
  h.apply(config(
    service({ scheduler: 'rr' }),
    service({ scheduler: 'rr', protocol: 'udp', port: 53, ops: true }),
  ), resolve);
  const r = insert([
    sc({ vaddr: '10.9.9.9' }),                                      // no such VIP
    sc({ vport: 81 }),                                              // no such port
    sc({ daddr: '192.168.1.99' }),                                  // not a realserver of the service
    sc({ flags: IP_VS_CONN_F.TUNNEL }),                             // B is DR here
    sc({ flags: IP_VS_CONN_F.MASQ }),                               // nor NAT
    sc({ flags: IP_VS_CONN_F.LOCALNODE }),                          // lvs-xdp has no local node
    sc({ protocol: 132, state: 1 }),                                // SCTP
    sc({ state: 99 }),                                              // no such TCP state
    tpl(),                                                          // the service is not persistent
    sc({ protocol: 17, state: 0, vport: 53, dport: 53 }),           // one-packet scheduling: no entries
  ]);
  assert.deepEqual(r, {
    conns: 0, updated: 0, replaced: 0, replies: 0, templates: 0,
    skipped: { 'no-service': 2, 'no-realserver': 1, method: 3, protocol: 1, state: 1, 'not-persistent': 1, ops: 1 },
  });
  assert.equal(h.connCount(), 0);
  assert.equal(h.writer.maps.lvs_persist.entries().keys.length, 0);
});

test('an all-ports service takes a port it does not list; a fwmark service is found by the entry\'s mark, its template too', () => {
  h.apply(config(service({ scheduler: 'rr', port: 0 }, [{ address: A, port: 0 }, { address: B, port: 0 }])), resolve);
  assert.equal(insert([sc({ vport: 8080, dport: 8080 })]).conns, 1);
  assert.equal(sent(40000, TCP.ACK, { dport: 8080 }), '12');
  h.reset();
  const marked: VirtualService = {
    fwmark: 5, protocol: 'tcp', vip: '0.0.0.0', port: 0, scheduler: 'rr', flags: [], ops: false, tableSize: 251,
    persistence: { timeout: 300, netmask: '255.255.255.255' },
    realservers: [A, B].map((address) => ({ address, port: 0, weight: 1, method: 'dr' as const })),
  };
  h.apply({ ...config(marked), marks: [{ mark: 5, match: [{ protocol: 'tcp', address: '10.0.0.0/24', ports: [{ from: 80, to: 443 }] }] }] }, resolve);
  // IPVS's fwmark template: protocol IPPROTO_IP, the mark as its "VIP", ports 0 (ip_vs_sched_persist)
  const r = insert([
    sc({ fwmark: 5, vaddr: '10.0.0.2', vport: 443, dport: 443 }),
    tpl({ fwmark: 5, protocol: 0, vaddr: '0.0.0.5', vport: 0, dport: 0 }),
    sc({ fwmark: 6, vaddr: '10.0.0.2', vport: 443, dport: 443 }),
  ]);
  assert.deepEqual([r.conns, r.templates, r.skipped], [1, 1, { 'no-service': 1 }]);
  assert.equal(sent(40000, TCP.ACK, { vip: '10.0.0.2', dport: 443 }), '12');
  assert.equal(sent(40001, TCP.SYN, { vip: '10.0.0.3', dport: 80 }), '12', 'the client\'s template holds for every address and port of the mark');
  assert.deepEqual(counters('CONN_HIT', 'PERSIST_HIT', 'CONN_STRAY'), { CONN_HIT: 1n, PERSIST_HIT: 1n, CONN_STRAY: 0n });
});

test('the entry expires after the message\'s timeout, shorter or longer than the state\'s (900 s)', () => {
  h.apply(config(service({ scheduler: 'rr' })), resolve);
  const now = process.hrtime.bigint();
  // 60 s: inserted 59 s ago it still holds, 61 s ago it has expired (the state alone would keep it 900 s)
  insert([sc({ cport: 43000, timeout: 60 }), sc({ cport: 43001, timeout: 60 })], now - 59n * S);
  insert([sc({ cport: 43002, timeout: 60 })], now - 61n * S);
  // longer than the state's: held to the state's 900 s (a backup cannot keep an entry longer)
  insert([sc({ cport: 43003, timeout: 2000 })], now - 899n * S);
  insert([sc({ cport: 43004, timeout: 2000 })], now - 901n * S);
  // no timeout (a version 0 message): the state's own
  insert([sc({ cport: 43005, timeout: 0 })], now - 899n * S);
  assert.deepEqual([43000, 43002, 43003, 43004, 43005].map(via), ['hit 12', 'expired', 'hit 12', 'expired', 'hit 12']);
  // the hit refreshed 43000 to the backup's own timeout: no longer the message's
  const k = [...h.conns()].find((e) => e.key.sport === 43000)!;
  assert.ok(k.value.readBigUInt64LE(0) >= now, 'refreshed by the packet');
  // 43001, never seen since, is live for the recount too, and gone once its 60 s have passed
  const b = h.appliedState.allocation.reals[realId(h.appliedState.config.services[0]!, { address: B })]!;
  const active = (at: bigint) => new DirectorReader(h.writer.maps as DirectorMaps).connectionCounts(h.appliedState, at).byReal.get(`${b.index}/${b.gen}`)?.active;
  assert.equal(active(now), 4, '43000, 43001, 43003, 43005');
  assert.equal(active(now + 2n * S), 3, '43001 expired 60 s after it was inserted');
});

test('a template\'s timeout is kept exactly, longer than the persistence timeout too', () => {
  h.apply(config(service({ scheduler: 'rr', persistence: { timeout: 300, netmask: '255.255.255.255' } })), resolve);
  const now = process.hrtime.bigint();
  insert([tpl({ caddr: '198.51.100.1', timeout: 30 })], now - 29n * S);
  insert([tpl({ caddr: '198.51.100.2', timeout: 30 })], now - 31n * S);
  insert([tpl({ caddr: '198.51.100.3', timeout: 600 })], now - 599n * S);
  insert([tpl({ caddr: '198.51.100.4', timeout: 600 })], now - 601n * S);
  assert.deepEqual(['198.51.100.1', '198.51.100.2', '198.51.100.3', '198.51.100.4'].map(client), ['template 12', 'new', 'template 12', 'new'],
    'valid 30 s / 600 s after it came (600 s: past the persistence timeout of 300)');
});

test('an entry the backup already has: same realserver updated; another realserver replaced only by an active (established) entry', () => {
  h.apply(config(service({ scheduler: 'rr' })), resolve);
  assert.equal(sent(45000, TCP.SYN), '11'); // the backup scheduled this flow itself: A
  assert.equal(sent(45000, TCP.ACK), '11');
  // a SYN_RECV / FIN_WAIT / UDP entry carries INACTIVE: IPVS ignores it for a flow on another realserver
  let r = insert([sc({ cport: 45000, state: IP_VS_TCP_S.SYN_RECV, flags: IP_VS_CONN_F.DROUTE | IP_VS_CONN_F.INACTIVE })]);
  assert.deepEqual(r.skipped, { conflict: 1 });
  assert.equal(sent(45000, TCP.ACK), '11');
  // an established one replaces it
  const seen = process.hrtime.bigint();
  r = insert([sc({ cport: 45000 })]);
  assert.deepEqual([r.conns, r.replaced], [1, 1]);
  assert.equal(sent(45000, TCP.ACK), '12');
  // and again, to the same realserver: an update, which never moves the entry's time back
  r = insert([sc({ cport: 45000, state: IP_VS_TCP_S.FIN_WAIT, flags: IP_VS_CONN_F.DROUTE | IP_VS_CONN_F.INACTIVE, timeout: 60 })]);
  assert.deepEqual([r.conns, r.updated, r.replaced], [1, 1, 0]);
  const e = h.conns().find((x) => x.key.sport === 45000)!.value;
  assert.equal(e[16], ABI.LVS_CS_FIN_WAIT, 'the master\'s state');
  assert.ok(e.readBigUInt64LE(0) >= seen, 'not moved back by the message\'s 60 s (840 s before now under the state\'s 900 s)');
  // an entry of the backup that has expired is simply overwritten, whatever the flags
  const other = sent(45001, TCP.SYN) === '11' ? B : A; // SYN_RECV here, 60 s
  const later = process.hrtime.bigint() + 61n * S;
  r = insert([sc({ cport: 45001, daddr: other, state: IP_VS_TCP_S.SYN_RECV, flags: IP_VS_CONN_F.DROUTE | IP_VS_CONN_F.INACTIVE })], later);
  assert.deepEqual([r.conns, r.replaced, r.skipped], [1, 0, {}], '61 s later the local SYN_RECV entry had expired: not a conflict');
});

test('live connection counts are bound on insert as the data plane binds them; the recount finds nothing to correct', () => {
  h.apply(config(service({ scheduler: 'wlc' })), resolve);
  const alloc = h.appliedState.allocation.reals;
  const sid = serviceId(h.appliedState.config.services[0]!);
  const live = (addr: string) => decodeLiveCounts(h.writer.maps.lvs_real_conns.lookup(u32(alloc[`${sid}/${addr}`]!.index))!);
  const reconcile = () => {
    const fixes = new DirectorReader(h.writer.maps as DirectorMaps).connCountFixes(h.appliedState);
    h.writer.setConnCounts(fixes);
    return fixes.length;
  };
  const inserter = new SyncInserter(target());
  inserter.insert([0, 1, 2, 3, 4].map((i) => sc({ cport: 46000 + i })));
  inserter.insert([sc({ cport: 46010, state: IP_VS_TCP_S.SYN_RECV, flags: IP_VS_CONN_F.DROUTE | IP_VS_CONN_F.INACTIVE })]);
  assert.deepEqual(live(B), { active: 5, inactive: 1, overloaded: false });
  assert.deepEqual(live(A), { active: 0, inactive: 0, overloaded: false });
  // a master re-sends established connections: no second bind; a state change moves the count
  inserter.insert([sc({ cport: 46000 }), sc({ cport: 46001, state: IP_VS_TCP_S.FIN_WAIT, flags: IP_VS_CONN_F.DROUTE | IP_VS_CONN_F.INACTIVE })]);
  assert.deepEqual(live(B), { active: 4, inactive: 2, overloaded: false });
  assert.equal(reconcile(), 0, 'the counts are what the connection table holds');
  // the data plane goes on from them: an ACK of a synced SYN_RECV entry makes it active
  assert.equal(sent(46010, TCP.ACK), '12');
  assert.deepEqual(live(B), { active: 5, inactive: 1, overloaded: false });
  assert.equal(reconcile(), 0);
});

test('an upper threshold reached by synced connections stops new ones to that realserver', () => {
  h.apply(config(service({ scheduler: 'wlc' }, [{ address: A, weight: 1 }, { address: B, weight: 100, upperThreshold: 3, lowerThreshold: 1 }])), resolve);
  insertSynced(target(), [0, 1, 2].map((i) => sc({ cport: 47000 + i })));
  for (let p = 47100; p < 47110; p++) assert.equal(sent(p, TCP.SYN), '11', 'B (weight 100) would take every new flow below its threshold');
});

test('templates the backup already has: the one valid longer wins (IPVS keeps its own); a connection extends its client\'s template', () => {
  h.apply(config(service({ scheduler: 'rr', persistence: { timeout: 300, netmask: '255.255.255.255' } })), resolve);
  const c1 = '198.51.100.1';
  const c2 = '198.51.100.2';
  // the backup served both clients itself (rr: A, then B)
  assert.equal(sent(48000, TCP.SYN, { client: c1 }), '11');
  assert.equal(sent(48000, TCP.SYN, { client: c2 }), '12');
  assert.equal(sent(48000, TCP.ACK, { client: c1 }), '11'); // c1's connection keeps its template valid to its expiry (900 s)
  const now = process.hrtime.bigint();
  // the master's templates: c1 -> B valid 300 s (shorter than what c1's live connection set here: kept),
  // c2 -> A valid 300 s from now (c2's template here, made by a SYN_RECV, runs out earlier: replaced)
  const r = insert([tpl({ caddr: c1, daddr: B }), tpl({ caddr: c2, daddr: A })], now);
  assert.deepEqual([r.templates, r.skipped], [1, { conflict: 1 }]);
  assert.equal(client(c1), 'template 11');
  assert.equal(client(c2), 'template 11');
  // a synced connection under a persistent service pushes the template to the connection's expiry
  h.reset();
  h.apply(config(service({ scheduler: 'rr', persistence: { timeout: 300, netmask: '255.255.255.255' } })), resolve);
  insert([tpl({ caddr: c1, timeout: 300 }), sc({ caddr: c1, cport: 48001, timeout: 900 })], now);
  insert([sc({ caddr: c2, cport: 48001, timeout: 900 }), tpl({ caddr: c2, timeout: 300 })], now); // the template after its connection
  const { values } = h.writer.maps.lvs_persist.entries();
  assert.deepEqual(values.map((v) => v.readBigUInt64LE(0)), [now + 600n * S, now + 600n * S],
    'valid until the connection\'s expiry (now + 900 s - 300 s), whatever the order in the batch');
});

test('the same flow twice in one batch: the later entry wins and is bound once', () => {
  h.apply(config(service({ scheduler: 'wlc' })), resolve);
  const r = insert([sc({ cport: 49000, daddr: A }), sc({ cport: 49000, daddr: B })]);
  assert.deepEqual([r.conns, r.replaced], [2, 1]);
  assert.equal(sent(49000, TCP.ACK), '12');
  const fixes = new DirectorReader(h.writer.maps as DirectorMaps).connCountFixes(h.appliedState);
  assert.deepEqual(fixes, [], 'A was unbound again when B replaced it');
});
