// Connection sync events (issue 14, bpf/lvs_sync.h), packet by packet through the real program:
// a connection entry is reported in lvs_sync_events where IPVS's master would sync it (a TCP
// entry moving into ESTABLISHED, FIN_WAIT or CLOSE, a promoted stray, a new UDP entry, a live
// entry once per refresh period), never for SYN_RECV (a SYN flood reports nothing), never with
// the flag clear; a full ring loses events (sync_lost), never packets. The records are decoded by
// src/sync/events.ts into the entries IPVS sends (templates of persistent services included).
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { clientPacket, mac, addrBytes, TCP } from '../lib/frames.js';
import { DirectorHarness, XDP } from '../lib/director.js';
import { ABI } from '../../src/abi/generated.js';
import { decode, encode, CONN, FLOW_KEY } from '../../src/abi/layout.js';
import type { MacResolver } from '../../src/dataplane/compile.js';
import type { DirectorConfig, FirewallMark, VirtualService } from '../../src/model/types.js';
import { decodeSyncEvent, syncConnsOf, type SyncEvent } from '../../src/sync/events.js';
import { IP_VS_CONN_F, IP_VS_TCP_S } from '../../src/sync/proto.js';

const VIP = '10.0.0.1';
const CLIENT = '198.51.100.7';
const RS = [
  { addr: '192.168.1.10', mac: '02:00:00:00:01:0a' },
  { addr: '192.168.1.11', mac: '02:00:00:00:01:0b' },
];
const S = 1_000_000_000n;

let h: DirectorHarness;
before(async () => {
  h = await DirectorHarness.load();
});
after(() => h?.close());

function cfg(sync: boolean, refreshS = 0): void {
  h.setCfg({ tunSrc4: '192.168.1.1', tunSrc6: '2001:db8:1::1', seed: 7, tunMtu: 1500, ttl: 64, flags: sync ? ABI.LVS_CFG_F_SYNC : 0, syncRefreshS: refreshS });
}
function services(): void {
  for (let i = 0; i < 2; i++) h.setReal(i, { ...RS[i]!, method: 'dr' }, 1);
  h.setService({ proto: 'tcp', vip: VIP, port: 80 }, 0, [0, 1]);
  h.setService({ proto: 'udp', vip: VIP, port: 53 }, 1, [1, 0]);
}
beforeEach(() => {
  h.reset();
  cfg(true);
  services();
});

const tcp = (sport: number, flags: number) => clientPacket(CLIENT, VIP, { proto: 'tcp', sport, dport: 80, flags });
const udp = (sport: number) => clientPacket(CLIENT, VIP, { proto: 'udp', sport, dport: 53 });
const events = (): SyncEvent[] => h.syncEvents().map(decodeSyncEvent);
/** The realserver a forwarded frame went to (by MAC), or the action. */
function sent(r: { action: number; out: Buffer }): string {
  if (r.action !== XDP.TX) return `action ${r.action}`;
  return RS.find((x) => r.out.subarray(0, 6).equals(mac(x.mac)))?.addr ?? 'unknown MAC';
}
function delta(before: Record<string, bigint>): Record<string, bigint> {
  const now = h.counters();
  return Object.fromEntries(Object.entries(now).filter(([k, v]) => v !== before[k]).map(([k, v]) => [k, v - before[k]!]));
}
function flowKey(sport: number): Buffer {
  return encode(FLOW_KEY, { saddr: addrBytes(CLIENT), daddr: addrBytes(VIP), sport, dport: 80, proto: 6, family: 4 });
}

test('SYN reports nothing; the ACK that establishes reports one ESTABLISHED event naming the realserver', () => {
  const c = h.counters();
  const rs = sent(h.run(tcp(40000, TCP.SYN)));
  assert.deepEqual(events(), [], 'SYN_RECV is never synced');
  assert.equal(sent(h.run(tcp(40000, TCP.ACK))), rs);
  const ev = events();
  assert.equal(ev.length, 1);
  assert.deepEqual(ev[0], {
    family: 4, proto: 6, caddr: CLIENT, cport: 40000, vaddr: VIP, vport: 80, daddr: rs, dfamily: 4, rport: 0,
    method: 'dr', state: 'ESTABLISHED', fwmark: 0, persistent: false, allPorts: false, pcaddr: CLIENT, persistTimeout: 0,
  });
  // More packets of the established flow within its refresh second: nothing more.
  for (let i = 0; i < 5; i++) h.run(tcp(40000, TCP.ACK | TCP.PSH));
  assert.deepEqual(events(), []);
  const d = delta(c);
  assert.equal(d.SYNC_EVENT, 1n);
  assert.equal(d.SYNC_LOST, undefined);
  // As IPVS's master sends it: DROUTE, ESTABLISHED, the director's TCP timeout.
  const [conn] = syncConnsOf(ev, [0, 60, 900, 120, 10, 300]);
  assert.deepEqual(conn, {
    family: 4, protocol: 6, flags: IP_VS_CONN_F.DROUTE, state: IP_VS_TCP_S.ESTABLISHED, cport: 40000, vport: 80, dport: 80,
    fwmark: 0, timeout: 900, caddr: CLIENT, vaddr: VIP, daddr: rs,
  });
});

test('FIN reports FIN_WAIT, RST reports CLOSE; each state change once', () => {
  h.run(tcp(40001, TCP.SYN));
  h.run(tcp(40001, TCP.ACK));
  h.run(tcp(40001, TCP.FIN | TCP.ACK));
  h.run(tcp(40001, TCP.ACK)); // still FIN_WAIT: no change
  h.run(tcp(40001, TCP.RST));
  assert.deepEqual(events().map((e) => e.state), ['ESTABLISHED', 'FIN_WAIT', 'CLOSE']);
  // An established flow reset at once.
  h.run(tcp(40002, TCP.SYN));
  h.run(tcp(40002, TCP.ACK));
  h.run(tcp(40002, TCP.RST | TCP.ACK));
  assert.deepEqual(events().map((e) => [e.cport, e.state]), [[40002, 'ESTABLISHED'], [40002, 'CLOSE']]);
});

test('a UDP flow reports its new entry once (state UDP), its realserver as the slot has it', () => {
  const rs = sent(h.run(udp(5353)));
  assert.equal(sent(h.run(udp(5353))), rs);
  const ev = events();
  assert.deepEqual(ev.map((e) => [e.proto, e.cport, e.vport, e.state, e.daddr]), [[17, 5353, 53, 'UDP', rs]]);
  const [conn] = syncConnsOf(ev, [0, 60, 900, 120, 10, 300]);
  assert.equal(conn!.flags, IP_VS_CONN_F.DROUTE | IP_VS_CONN_F.INACTIVE);
  assert.equal(conn!.timeout, 300);
});

test('a stray promoted to ESTABLISHED is reported; the stray itself is not', () => {
  h.run(tcp(40003, TCP.ACK));
  assert.deepEqual(events(), [], 'a stray is no connection entry');
  // Seen again more than LVS_STRAY_PROMOTE_S later: its stray entry aged by hand.
  const k = flowKey(40003);
  const v = Buffer.from(h.writer.maps.lvs_strays.lookup(k)!);
  v.writeBigUInt64LE(decode(CONN, v).last_seen_ns as bigint - 2n * S, 0);
  h.writer.maps.lvs_strays.update(k, v);
  h.run(tcp(40003, TCP.ACK));
  assert.deepEqual(events().map((e) => [e.cport, e.state]), [[40003, 'ESTABLISHED']]);
});

test('with the flag clear nothing is reported and nothing counted', () => {
  cfg(false, 1);
  const c = h.counters();
  h.run(tcp(40004, TCP.SYN));
  h.run(tcp(40004, TCP.ACK));
  h.run(tcp(40004, TCP.FIN));
  h.run(udp(5354));
  assert.deepEqual(events(), []);
  const d = delta(c);
  assert.equal(d.SYNC_EVENT, undefined);
  assert.equal(d.SYNC_LOST, undefined);
});

test('a live ESTABLISHED entry is reported again when its refresh crosses a multiple of the refresh period', () => {
  cfg(true, 3);
  h.run(tcp(40005, TCP.SYN));
  h.run(tcp(40005, TCP.ACK));
  assert.equal(events().length, 1);
  const k = flowKey(40005);
  const entry = () => decode(CONN, h.writer.maps.lvs_conns.lookup(k)!);
  const period = 3n * S;
  // Entries refreshed 1.5 s and 4 s ago: whether a period boundary lies between the old and the
  // new timestamp decides, exactly (4 s: always; 1.5 s: by the clock's phase).
  for (const back of [4n * S, 3n * S / 2n, 2n * S]) {
    const v = Buffer.from(h.writer.maps.lvs_conns.lookup(k)!);
    const then = (entry().last_seen_ns as bigint) - back;
    v.writeBigUInt64LE(then, 0);
    h.writer.maps.lvs_conns.update(k, v);
    h.run(tcp(40005, TCP.ACK));
    const now = entry().last_seen_ns as bigint;
    const crossed = now / period !== then / period;
    if (back >= period) assert.ok(crossed);
    assert.deepEqual(events().map((e) => e.state), crossed ? ['ESTABLISHED'] : [], `refreshed ${back} ns later`);
  }
  // Period 0: state changes only.
  cfg(true, 0);
  const v = Buffer.from(h.writer.maps.lvs_conns.lookup(k)!);
  v.writeBigUInt64LE((entry().last_seen_ns as bigint) - 100n * S, 0);
  h.writer.maps.lvs_conns.update(k, v);
  h.run(tcp(40005, TCP.ACK));
  assert.deepEqual(events(), []);
});

test('a full ring counts sync_lost and the packets are forwarded all the same', () => {
  const c = h.counters();
  const n = 400; // 16 KiB ring: 178 events of 92 bytes
  for (let i = 0; i < n; i++) assert.notEqual(sent(h.run(udp(10000 + i))), `action ${XDP.DROP}`);
  const d = delta(c);
  assert.equal(d.FWD_DR, BigInt(n), 'every packet forwarded');
  assert.ok((d.SYNC_LOST ?? 0n) > 0n, 'events lost');
  assert.equal((d.SYNC_EVENT ?? 0n) + (d.SYNC_LOST ?? 0n), BigInt(n));
  const ev = events();
  assert.equal(BigInt(ev.length), d.SYNC_EVENT, 'what was counted is in the ring');
  assert.deepEqual(ev.map((e) => e.cport), Array.from({ length: ev.length }, (_, i) => 10000 + i), 'the first ones, in order');
  // Read out, the ring takes events again.
  h.run(udp(20000));
  assert.equal(events().length, 1);
});

test('a flood of 10,000 SYNs reports nothing', () => {
  const c = h.counters();
  for (let i = 0; i < 10000; i++) h.run(clientPacket(`198.51.${100 + (i >> 8)}.${i & 0xff}`, VIP, { proto: 'tcp', sport: 1024 + i, dport: 80, flags: TCP.SYN }));
  const d = delta(c);
  assert.equal(d.CONN_NEW, 10000n);
  assert.equal(d.SYNC_EVENT, undefined);
  assert.equal(d.SYNC_LOST, undefined);
  assert.deepEqual(events(), []);
});

// ---- through the plan: persistent, all-ports and firewall-mark services ---------------------

const macOf = (addr: string) => `02:00:00:00:00:${addr.split('.').pop()!.padStart(2, '0').slice(-2)}`;
const resolve: MacResolver = (_s, r) => ({ mac: macOf(r.address) });
const REALS = ['192.168.1.21', '192.168.1.22'];
function service(o: Partial<VirtualService>): VirtualService {
  return {
    protocol: 'tcp', vip: VIP, port: 80, scheduler: 'mh', flags: [], ops: false, tableSize: 251,
    realservers: REALS.map((a) => ({ address: a, port: o.port ?? 80, weight: 1, method: 'dr' as const })), ...o,
  };
}

test('persistent services: the event carries the client\'s group and timeout; its template follows the connection once per batch', () => {
  const conf: DirectorConfig = {
    settings: { hashSeed: 3 },
    services: [
      service({ port: 0, persistence: { timeout: 600, netmask: '255.255.255.0' } }),
      service({ vip: '10.0.0.2', port: 443, persistence: { timeout: 300, netmask: '255.255.255.255' } }),
    ],
  };
  h.apply(conf, resolve, { on: true, refreshS: 0 });
  for (const [vip, dport, sport] of [[VIP, 8080, 41000], [VIP, 8081, 41001], ['10.0.0.2', 443, 41002]] as const) {
    h.run(clientPacket(CLIENT, vip, { proto: 'tcp', sport, dport, flags: TCP.SYN }));
    assert.equal(h.run(clientPacket(CLIENT, vip, { proto: 'tcp', sport, dport, flags: TCP.ACK })).action, XDP.TX);
  }
  const ev = events();
  assert.deepEqual(ev.map((e) => [e.vport, e.persistent, e.allPorts, e.pcaddr, e.persistTimeout]), [
    [8080, true, true, '198.51.100.0', 600], [8081, true, true, '198.51.100.0', 600], [443, true, false, CLIENT, 300],
  ]);
  const conns = syncConnsOf(ev, [0, 60, 900, 120, 10, 300]);
  const tpl = (c: { flags: number }) => (c.flags & IP_VS_CONN_F.TEMPLATE) !== 0;
  assert.deepEqual(conns.map((c) => [tpl(c), c.caddr, c.cport, c.vaddr, c.vport, c.dport, c.timeout]), [
    [false, CLIENT, 41000, VIP, 8080, 8080, 900],
    [true, '198.51.100.0', 0, VIP, 0, 0, 600], // all-ports: IPVS's port-zero template
    [false, CLIENT, 41001, VIP, 8081, 8081, 900], // same group: its template once per batch
    [false, CLIENT, 41002, '10.0.0.2', 443, 443, 900],
    [true, CLIENT, 0, '10.0.0.2', 443, 443, 300],
  ]);
  assert.equal(conns[1]!.flags, IP_VS_CONN_F.TEMPLATE | IP_VS_CONN_F.DROUTE | IP_VS_CONN_F.INACTIVE);
});

test('a firewall-mark service reports its mark; its template is <IPPROTO_IP, caddr, 0, mark, 0>', () => {
  const marks: FirewallMark[] = [{ mark: 9, match: [{ protocol: 'tcp', address: '10.0.0.0/24', ports: [{ from: 80, to: 80 }] }] }];
  const conf: DirectorConfig = {
    settings: { hashSeed: 3 }, marks,
    services: [{
      fwmark: 9, protocol: 'tcp', vip: '0.0.0.0', port: 0, scheduler: 'mh', flags: [], ops: false, tableSize: 251,
      persistence: { timeout: 120, netmask: '255.255.255.255' },
      realservers: REALS.map((a) => ({ address: a, port: 0, weight: 1, method: 'dr' as const })),
    }],
  };
  h.apply(conf, resolve, { on: true, refreshS: 0 });
  h.run(clientPacket(CLIENT, '10.0.0.9', { proto: 'tcp', sport: 42000, dport: 80, flags: TCP.SYN }));
  h.run(clientPacket(CLIENT, '10.0.0.9', { proto: 'tcp', sport: 42000, dport: 80, flags: TCP.ACK }));
  const ev = events();
  assert.deepEqual(ev.map((e) => [e.vaddr, e.fwmark, e.persistent]), [['10.0.0.9', 9, true]]);
  const conns = syncConnsOf(ev, [0, 60, 900, 120, 10, 300]);
  assert.deepEqual(conns.map((c) => [c.protocol, c.caddr, c.cport, c.vaddr, c.vport, c.dport, c.fwmark, c.timeout]), [
    [6, CLIENT, 42000, '10.0.0.9', 80, 80, 9, 900],
    [0, CLIENT, 0, '0.0.0.9', 0, 0, 9, 120],
  ]);
});

test('the plan keeps the sync setting: a later change without it leaves lvs_cfg reporting', () => {
  const conf: DirectorConfig = { settings: { hashSeed: 3 }, services: [service({})] };
  const p = h.apply(conf, resolve, { on: true, refreshS: 30 });
  assert.deepEqual(p.target.sync, { on: true, refreshS: 30 });
  const p2 = h.apply({ ...conf, settings: { hashSeed: 4 } }, resolve);
  assert.deepEqual(p2.target.sync, { on: true, refreshS: 30 });
  h.run(clientPacket(CLIENT, VIP, { proto: 'tcp', sport: 43000, dport: 80, flags: TCP.SYN }));
  h.run(clientPacket(CLIENT, VIP, { proto: 'tcp', sport: 43000, dport: 80, flags: TCP.ACK }));
  assert.equal(events().length, 1);
  h.apply(conf, resolve, { on: false, refreshS: 0 });
  h.run(clientPacket(CLIENT, VIP, { proto: 'tcp', sport: 43001, dport: 80, flags: TCP.SYN }));
  h.run(clientPacket(CLIENT, VIP, { proto: 'tcp', sport: 43001, dport: 80, flags: TCP.ACK }));
  assert.deepEqual(events(), []);
});
