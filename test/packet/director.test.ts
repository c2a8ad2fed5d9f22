// Packet tests: frames through the real XDP program with BPF_PROG_TEST_RUN. Each case sets up
// the maps, sends a frame and checks the XDP action, the exact output bytes (checksums verified
// here, independently of the program) and the counters.
import { readSynRecv } from '../../src/director/synrecv.js';
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import {
  clientPacket, ether, ipv4, ipv6, l4, mac, addrBytes, inetChecksum, pseudoHeader, TCP,
  DIRECTOR_MAC, CLIENT_ROUTER_MAC, l2Len, ipv4HeaderOk,
} from '../lib/frames.js';
import { DirectorHarness, XDP } from '../lib/director.js';
import { onOneCpu } from '../lib/cpu.js';
import { flowHash, HASH_ALL } from '../../src/dataplane/flowhash.js';
import { ABI } from '../../src/abi/generated.js';

const VIP4 = '10.0.0.1';
const VIP6 = '2001:db8::1';
const CLIENT4 = '198.51.100.7';
const CLIENT6 = '2001:db8:100::7';
const RS = [
  { addr: '192.168.1.10', mac: '02:00:00:00:01:0a' },
  { addr: '192.168.1.11', mac: '02:00:00:00:01:0b' },
  { addr: '192.168.1.12', mac: '02:00:00:00:01:0c' },
];
const RS6 = [
  { addr: '2001:db8:1::10', mac: '02:00:00:00:06:0a' },
  { addr: '2001:db8:1::11', mac: '02:00:00:00:06:0b' },
];
const NEXTHOP_MAC = '02:00:00:00:00:99';
const TUN_SRC4 = '192.168.1.1';
const TUN_SRC6 = '2001:db8:1::1';
const SEED = 0x5eed;

let h: DirectorHarness;

before(async () => {
  h = await DirectorHarness.load();
});
after(() => h?.close());
beforeEach(() => {
  h.reset();
  h.setCfg({ tunSrc4: TUN_SRC4, tunSrc6: TUN_SRC6, seed: SEED, tunMtu: 1500, ttl: 64 });
});

const syn4 = (sport = 40000, extra = {}) => clientPacket(CLIENT4, VIP4, { proto: 'tcp', sport, dport: 80, flags: TCP.SYN }, extra);

/** Expected DR output: only the MACs change. */
function drExpected(frame: Buffer, rsMac: string): Buffer {
  const out = Buffer.from(frame);
  mac(rsMac).copy(out, 0);
  frame.copy(out, 6, 0, 6);
  return out;
}

/** Expected Tun output, built independently: L2 (new MACs, ethertype of the outer family),
 *  outer header, inner IP packet unchanged. */
function tunExpected(frame: Buffer, outer: { family: 4 | 6; dst: string; nexthopMac: string; label?: number }): Buffer {
  const l2 = l2Len(frame);
  const inner = frame.subarray(l2);
  const innerV4 = inner[0]! >> 4 === 4;
  const tos = innerV4 ? inner[1]! : ((inner.readUInt32BE(0) >>> 20) & 0xff);
  const hdr = Buffer.from(frame.subarray(0, l2));
  mac(outer.nexthopMac).copy(hdr, 0);
  frame.copy(hdr, 6, 0, 6);
  let o: Buffer;
  if (outer.family === 4) {
    o = Buffer.alloc(20);
    o[0] = 0x45; o[1] = tos;
    o.writeUInt16BE(20 + inner.length, 2);
    o.writeUInt16BE(0x4000, 6);
    o[8] = 64; o[9] = innerV4 ? 4 : 41;
    addrBytes(TUN_SRC4).copy(o, 12);
    addrBytes(outer.dst).copy(o, 16);
    o.writeUInt16BE(inetChecksum(o), 10);
    hdr.writeUInt16BE(0x0800, l2 - 2);
  } else {
    o = Buffer.alloc(40);
    o.writeUInt32BE(((6 << 28) | (tos << 20) | (outer.label ?? 0)) >>> 0, 0);
    o.writeUInt16BE(inner.length, 4);
    o[6] = innerV4 ? 4 : 41; o[7] = 64;
    addrBytes(TUN_SRC6).copy(o, 8);
    addrBytes(outer.dst).copy(o, 24);
    hdr.writeUInt16BE(0x86dd, l2 - 2);
  }
  return Buffer.concat([hdr, o, inner]);
}

function flowOf(src: string, dst: string, sport: number, dport: number, proto = 6) {
  return { saddr: addrBytes(src), daddr: addrBytes(dst), sport, dport, proto };
}

test('DR IPv4: SYN to the VIP goes to the table realserver with only the MACs rewritten', () => {
  h.setReal(0, { ...RS[0]!, method: 'dr' });
  h.setService({ proto: 'tcp', vip: VIP4, port: 80 }, 0, [0]);
  const frame = syn4();
  const r = h.run(frame);
  assert.equal(r.action, XDP.TX);
  assert.deepEqual(r.out, drExpected(frame, RS[0]!.mac));
  const c = h.counters();
  assert.equal(c.FWD_DR, 1n);
  assert.equal(c.CONN_NEW, 1n);
  // a DR SYN is a SYN_RECV connection in lvs_synrecv, entered in lvs_conns at the flow's next packet
  assert.equal(h.connCount(), 0);
  assert.equal(readSynRecv(h.writer.maps.lvs_synrecv).length, 1);
});

test('DR IPv6', () => {
  h.setReal(0, { ...RS6[0]!, method: 'dr' });
  h.setService({ proto: 'tcp', vip: VIP6, port: 443 }, 0, [0]);
  const frame = clientPacket(CLIENT6, VIP6, { proto: 'tcp', sport: 5555, dport: 443, flags: TCP.SYN });
  const r = h.run(frame);
  assert.equal(r.action, XDP.TX);
  assert.deepEqual(r.out, drExpected(frame, RS6[0]!.mac));
});

test('the data plane picks the table slot that the TypeScript flow hash predicts', () => {
  for (let i = 0; i < 3; i++) h.setReal(i, { ...RS[i]!, method: 'dr' });
  const table = Array.from({ length: 251 }, (_, i) => i % 3);
  h.setService({ proto: 'tcp', vip: VIP4, port: 80, hashFields: HASH_ALL }, 0, table);
  const seen = new Set<number>();
  for (let sport = 20000; sport < 20060; sport++) {
    const r = h.run(syn4(sport));
    const want = table[flowHash(flowOf(CLIENT4, VIP4, sport, 80), HASH_ALL, SEED) % 251]!;
    assert.deepEqual(r.out.subarray(0, 6), mac(RS[want]!.mac), `sport ${sport}`);
    seen.add(want);
  }
  assert.equal(seen.size, 3);
});

test('sh hashes the source address only: every port of a client lands on one realserver', () => {
  for (let i = 0; i < 3; i++) h.setReal(i, { ...RS[i]!, method: 'dr' });
  const table = Array.from({ length: 251 }, (_, i) => i % 3);
  h.setService({ proto: 'tcp', vip: VIP4, port: 80, hashFields: ABI.LVS_HF_SADDR }, 0, table);
  const want = table[flowHash(flowOf(CLIENT4, VIP4, 0, 0, 0), ABI.LVS_HF_SADDR, SEED) % 251]!;
  for (let sport = 1000; sport < 1020; sport++) {
    assert.deepEqual(h.run(syn4(sport)).out.subarray(0, 6), mac(RS[want]!.mac));
  }
});

test('Tun IPv4-in-IPv4', () => {
  h.setReal(0, { addr: RS[1]!.addr, mac: NEXTHOP_MAC, method: 'tun' });
  h.setService({ proto: 'tcp', vip: VIP4, port: 80 }, 0, [0]);
  const frame = syn4(40001, { tos: 0xb8 });
  const r = h.run(frame);
  assert.equal(r.action, XDP.TX);
  const want = tunExpected(frame, { family: 4, dst: RS[1]!.addr, nexthopMac: NEXTHOP_MAC });
  assert.deepEqual(r.out, want);
  assert.ok(ipv4HeaderOk(r.out.subarray(14)));
  assert.equal(h.counters().FWD_TUN, 1n);
});

test('Tun IPv6-in-IPv6 with a flow label from the flow', () => {
  h.setReal(0, { addr: RS6[1]!.addr, mac: NEXTHOP_MAC, method: 'tun' });
  h.setService({ proto: 'tcp', vip: VIP6, port: 80 }, 0, [0]);
  const frame = clientPacket(CLIENT6, VIP6, { proto: 'tcp', sport: 3333, dport: 80, flags: TCP.SYN }, { tc: 0x28 });
  const r = h.run(frame);
  assert.equal(r.action, XDP.TX);
  const label = flowHash(flowOf(CLIENT6, VIP6, 3333, 80), HASH_ALL, SEED) & 0xfffff;
  assert.deepEqual(r.out, tunExpected(frame, { family: 6, dst: RS6[1]!.addr, nexthopMac: NEXTHOP_MAC, label }));
});

test('Tun IPv4-in-IPv6 (IPv4 VIP served by an IPv6 realserver)', () => {
  h.setReal(0, { addr: RS6[0]!.addr, mac: NEXTHOP_MAC, method: 'tun' });
  h.setService({ proto: 'udp', vip: VIP4, port: 53 }, 0, [0]);
  const frame = clientPacket(CLIENT4, VIP4, { proto: 'udp', sport: 5353, dport: 53, payload: Buffer.from('query') });
  const r = h.run(frame);
  assert.equal(r.action, XDP.TX);
  const label = flowHash(flowOf(CLIENT4, VIP4, 5353, 53, 17), HASH_ALL, SEED) & 0xfffff;
  assert.deepEqual(r.out, tunExpected(frame, { family: 6, dst: RS6[0]!.addr, nexthopMac: NEXTHOP_MAC, label }));
});

test('VLAN-tagged (802.1ad + 802.1Q) DR keeps the tags; Tun puts the outer header after them', () => {
  const vlans = [{ tpid: 0x88a8, vid: 100 }, { tpid: 0x8100, vid: 200 }];
  h.setReal(0, { ...RS[0]!, method: 'dr' });
  h.setService({ proto: 'tcp', vip: VIP4, port: 80 }, 0, [0]);
  const frame = syn4(40002, { vlans });
  let r = h.run(frame);
  assert.equal(r.action, XDP.TX);
  assert.deepEqual(r.out, drExpected(frame, RS[0]!.mac));

  h.setReal(0, { addr: RS6[0]!.addr, mac: NEXTHOP_MAC, method: 'tun' }, 2);
  const frame2 = syn4(40003, { vlans: [{ tpid: 0x8100, vid: 7 }] });
  r = h.run(frame2);
  assert.equal(r.action, XDP.TX);
  const label = flowHash(flowOf(CLIENT4, VIP4, 40003, 80), HASH_ALL, SEED) & 0xfffff;
  assert.deepEqual(r.out, tunExpected(frame2, { family: 6, dst: RS6[0]!.addr, nexthopMac: NEXTHOP_MAC, label }));
});

test('all-ports service (port 0) catches any port; a port service wins over it', () => {
  h.setReal(0, { ...RS[0]!, method: 'dr' });
  h.setReal(1, { ...RS[1]!, method: 'dr' });
  h.setService({ proto: 'tcp', vip: VIP4, port: 0 }, 0, [0]);
  h.setService({ proto: 'tcp', vip: VIP4, port: 443 }, 1, [1]);
  const a = clientPacket(CLIENT4, VIP4, { proto: 'tcp', sport: 1, dport: 8081 });
  assert.deepEqual(h.run(a).out.subarray(0, 6), mac(RS[0]!.mac));
  const b = clientPacket(CLIENT4, VIP4, { proto: 'tcp', sport: 1, dport: 443 });
  assert.deepEqual(h.run(b).out.subarray(0, 6), mac(RS[1]!.mac));
});

test('non-VIP traffic, other protocols on the VIP and ARP pass untouched', () => {
  h.setReal(0, { ...RS[0]!, method: 'dr' });
  h.setService({ proto: 'tcp', vip: VIP4, port: 80 }, 0, [0]);
  const cases = [
    clientPacket(CLIENT4, '10.0.0.2', { proto: 'tcp', sport: 1, dport: 80 }),
    clientPacket(CLIENT4, VIP4, { proto: 'udp', sport: 1, dport: 80 }),
    clientPacket(CLIENT4, VIP4, { proto: 'tcp', sport: 1, dport: 81 }),
    ether(0x0806, Buffer.from('0001080006040001020000000000fec6336407000000000000' + '0a000001', 'hex')),
  ];
  for (const f of cases) {
    const r = h.run(f);
    assert.equal(r.action, XDP.PASS);
    assert.deepEqual(r.out, f);
  }
  const c = h.counters();
  assert.equal(c.PASS_NOT_VIP, 3n);
  assert.equal(c.PASS_NOT_IP, 1n);
});

test('IPv4 with header options is parsed and forwarded', () => {
  h.setReal(0, { ...RS[0]!, method: 'dr' });
  h.setService({ proto: 'tcp', vip: VIP4, port: 80 }, 0, [0]);
  const options = Buffer.from([0x94, 0x04, 0x00, 0x00, 0x01, 0x01, 0x01, 0x00]); // router alert, NOPs, EOL
  const frame = syn4(40004, { options });
  const r = h.run(frame);
  assert.equal(r.action, XDP.TX);
  assert.deepEqual(r.out, drExpected(frame, RS[0]!.mac));
});

test('IPv6 extension headers (hop-by-hop, destination options) are skipped to find TCP', () => {
  h.setReal(0, { ...RS6[0]!, method: 'dr' });
  h.setService({ proto: 'tcp', vip: VIP6, port: 80 }, 0, [0]);
  const seg = l4({ proto: 'tcp', sport: 1234, dport: 80, flags: TCP.SYN }, CLIENT6, VIP6);
  const ip = ipv6(CLIENT6, VIP6, seg, { ext: [{ type: 0, body: Buffer.alloc(6) }, { type: 60, body: Buffer.alloc(14) }] });
  const frame = ether(0x86dd, ip);
  const r = h.run(frame);
  assert.equal(r.action, XDP.TX);
  assert.deepEqual(r.out, drExpected(frame, RS6[0]!.mac));
});

test('fragments: the first is scheduled, later ones follow it; unknown later ones pass', () => {
  for (let i = 0; i < 3; i++) h.setReal(i, { ...RS[i]!, method: 'dr' });
  const table = Array.from({ length: 251 }, (_, i) => i % 3);
  h.setService({ proto: 'udp', vip: VIP4, port: 4789 }, 0, table);
  for (let id = 1; id <= 12; id++) {
    const seg = l4({ proto: 'udp', sport: 7000 + id, dport: 4789, payload: Buffer.alloc(64) }, CLIENT4, VIP4);
    const first = ether(0x0800, ipv4(CLIENT4, VIP4, seg.subarray(0, 24), { proto: 17, id, df: false, mf: true }));
    const later = ether(0x0800, ipv4(CLIENT4, VIP4, seg.subarray(24), { proto: 17, id, df: false, fragOffset: 24 }));
    const a = h.run(first);
    const b = h.run(later);
    assert.equal(a.action, XDP.TX);
    assert.equal(b.action, XDP.TX);
    assert.deepEqual(b.out.subarray(0, 6), a.out.subarray(0, 6), `id ${id}`);
  }
  const orphan = ether(0x0800, ipv4(CLIENT4, VIP4, Buffer.alloc(40), { proto: 17, id: 999, df: false, fragOffset: 1480 }));
  const r = h.run(orphan);
  assert.equal(r.action, XDP.PASS);
  assert.deepEqual(r.out, orphan);
  const c = h.counters();
  assert.equal(c.FRAG_FIRST, 12n);
  assert.equal(c.FRAG_FOLLOW, 12n);
  assert.equal(c.PASS_FRAG_NO_STATE, 1n);
});

test('IPv6 fragments follow their first fragment', () => {
  h.setReal(0, { ...RS6[0]!, method: 'dr' });
  h.setReal(1, { ...RS6[1]!, method: 'dr' });
  h.setService({ proto: 'udp', vip: VIP6, port: 53 }, 0, [1]);
  const seg = l4({ proto: 'udp', sport: 9, dport: 53, payload: Buffer.alloc(32) }, CLIENT6, VIP6);
  const fh = (off: number, more: boolean) => {
    const b = Buffer.alloc(6);
    b.writeUInt16BE((off << 3) | (more ? 1 : 0), 0);
    b.writeUInt32BE(0xabcdef, 2);
    return b;
  };
  const first = ether(0x86dd, ipv6(CLIENT6, VIP6, seg.subarray(0, 16), { proto: 17, ext: [{ type: 44, body: fh(0, true) }] }));
  const later = ether(0x86dd, ipv6(CLIENT6, VIP6, seg.subarray(16), { proto: 17, ext: [{ type: 44, body: fh(2, false) }] }));
  assert.deepEqual(h.run(first).out.subarray(0, 6), mac(RS6[1]!.mac));
  h.setService({ proto: 'udp', vip: VIP6, port: 53 }, 0, [0]); // table changes in between
  const r = h.run(later);
  assert.equal(r.action, XDP.TX);
  assert.deepEqual(r.out, drExpected(later, RS6[1]!.mac));
});

test('ICMP error about a tracked flow goes to the realserver serving that flow', () => {
  for (let i = 0; i < 3; i++) h.setReal(i, { ...RS[i]!, method: 'dr' });
  h.setService({ proto: 'tcp', vip: VIP4, port: 80 }, 0, [2]);
  h.run(syn4(41000)); // tracked on RS 2
  h.setService({ proto: 'tcp', vip: VIP4, port: 80 }, 0, [0]); // new flows would go to RS 0
  // A router says "fragmentation needed" about a packet VIP:80 -> client:41000.
  const quoted = ipv4(VIP4, CLIENT4, l4({ proto: 'tcp', sport: 80, dport: 41000, flags: TCP.ACK }, VIP4, CLIENT4));
  const icmp = Buffer.concat([Buffer.from([3, 4, 0, 0, 0, 0, 0x05, 0x78]), quoted.subarray(0, 28)]);
  icmp.writeUInt16BE(inetChecksum(icmp), 2);
  const frame = ether(0x0800, ipv4('203.0.113.1', VIP4, icmp, { proto: 1 }));
  const r = h.run(frame);
  assert.equal(r.action, XDP.TX);
  assert.deepEqual(r.out, drExpected(frame, RS[2]!.mac));
  assert.equal(h.counters().ICMP_ERR_FWD, 1n);
  // the flow is a SYN_RECV connection (lvs_synrecv): found there, and nothing made
  assert.equal(h.connCount(), 0, 'an ICMP error creates no state');
  assert.equal(readSynRecv(h.writer.maps.lvs_synrecv).length, 1);
  h.run(clientPacket(CLIENT4, VIP4, { proto: 'tcp', sport: 41000, dport: 80, flags: TCP.ACK })); // its ACK: entered in lvs_conns
  assert.equal(h.connCount(), 1);
  assert.deepEqual(h.run(frame).out, drExpected(frame, RS[2]!.mac), 'and found there');
});

test('ICMPv6 packet-too-big about a VIP flow goes to its realserver', () => {
  h.setReal(0, { ...RS6[0]!, method: 'dr' });
  h.setService({ proto: 'tcp', vip: VIP6, port: 80 }, 0, [0]);
  const quoted = ipv6(VIP6, CLIENT6, l4({ proto: 'tcp', sport: 80, dport: 5000, flags: TCP.ACK }, VIP6, CLIENT6));
  const body = Buffer.concat([Buffer.from([2, 0, 0, 0, 0, 0, 0x05, 0x00]), quoted.subarray(0, 64)]);
  const frame = ether(0x86dd, ipv6('2001:db8:ffff::1', VIP6, body, { proto: 58 }));
  const r = h.run(frame);
  assert.equal(r.action, XDP.TX);
  assert.deepEqual(r.out, drExpected(frame, RS6[0]!.mac));
});

test('too big for the tunnel: the client gets ICMP fragmentation-needed with the right MTU', () => {
  h.setCfg({ tunSrc4: TUN_SRC4, tunSrc6: TUN_SRC6, seed: SEED, tunMtu: 1400, ttl: 64 });
  h.setReal(0, { addr: RS[0]!.addr, mac: NEXTHOP_MAC, method: 'tun' });
  h.setService({ proto: 'tcp', vip: VIP4, port: 80 }, 0, [0]);
  const frame = clientPacket(CLIENT4, VIP4, { proto: 'tcp', sport: 42000, dport: 80, flags: TCP.ACK, payload: Buffer.alloc(1390, 0x61) });
  const r = h.run(frame);
  assert.equal(r.action, XDP.TX);
  const out = r.out;
  assert.deepEqual(out.subarray(0, 6), mac(CLIENT_ROUTER_MAC));
  assert.deepEqual(out.subarray(6, 12), mac(DIRECTOR_MAC));
  const ip = out.subarray(14);
  assert.ok(ipv4HeaderOk(ip));
  assert.equal(ip[9], 1);
  assert.deepEqual(ip.subarray(12, 16), addrBytes(VIP4));
  assert.deepEqual(ip.subarray(16, 20), addrBytes(CLIENT4));
  const totLen = ip.readUInt16BE(2);
  assert.equal(out.length, 14 + totLen);
  const icmp = ip.subarray(20, totLen);
  assert.equal(icmp[0], 3);
  assert.equal(icmp[1], 4);
  assert.equal(icmp.readUInt16BE(6), 1380);
  assert.equal(inetChecksum(icmp), 0, 'ICMP checksum');
  assert.deepEqual(icmp.subarray(8), frame.subarray(14, 14 + icmp.length - 8), 'quotes the packet');
  assert.equal(h.counters().TX_ICMP_TOO_BIG, 1n);
});

test('too big for an IPv6 tunnel: ICMPv6 packet-too-big with a valid checksum', () => {
  h.setCfg({ tunSrc4: TUN_SRC4, tunSrc6: TUN_SRC6, seed: SEED, tunMtu: 1500, ttl: 64 });
  h.setReal(0, { addr: RS6[0]!.addr, mac: NEXTHOP_MAC, method: 'tun' });
  h.setService({ proto: 'udp', vip: VIP6, port: 53 }, 0, [0]);
  const frame = clientPacket(CLIENT6, VIP6, { proto: 'udp', sport: 1, dport: 53, payload: Buffer.alloc(1440) });
  const r = h.run(frame);
  assert.equal(r.action, XDP.TX);
  const ip = r.out.subarray(14);
  assert.equal(ip[6], 58);
  const plen = ip.readUInt16BE(4);
  const icmp = ip.subarray(40, 40 + plen);
  assert.equal(icmp[0], 2);
  assert.equal(icmp.readUInt32BE(4), 1460);
  const ph = pseudoHeader(ip.subarray(8, 24), ip.subarray(24, 40), 58, icmp.length, true);
  assert.equal(inetChecksum(ph, icmp), 0, 'ICMPv6 checksum');
});

test('without DF a too-big packet is dropped and counted', () => {
  h.setCfg({ tunSrc4: TUN_SRC4, tunSrc6: TUN_SRC6, seed: SEED, tunMtu: 1000, ttl: 64 });
  h.setReal(0, { addr: RS[0]!.addr, mac: NEXTHOP_MAC, method: 'tun' });
  h.setService({ proto: 'udp', vip: VIP4, port: 53 }, 0, [0]);
  const frame = clientPacket(CLIENT4, VIP4, { proto: 'udp', sport: 1, dport: 53, payload: Buffer.alloc(990) }, { df: false });
  assert.equal(h.run(frame).action, XDP.DROP);
  assert.equal(h.counters().DROP_TOO_BIG, 1n);
});

test('the connection table keeps a flow on its realserver after the table changes', () => {
  h.setReal(0, { ...RS[0]!, method: 'dr' });
  h.setReal(1, { ...RS[1]!, method: 'dr' });
  h.setService({ proto: 'tcp', vip: VIP4, port: 80 }, 0, [0]);
  assert.deepEqual(h.run(syn4(43000)).out.subarray(0, 6), mac(RS[0]!.mac));
  h.setService({ proto: 'tcp', vip: VIP4, port: 80 }, 0, [1]);
  const ack = clientPacket(CLIENT4, VIP4, { proto: 'tcp', sport: 43000, dport: 80, flags: TCP.ACK });
  assert.deepEqual(h.run(ack).out.subarray(0, 6), mac(RS[0]!.mac), 'established flow stays');
  assert.deepEqual(h.run(syn4(43001)).out.subarray(0, 6), mac(RS[1]!.mac), 'new flow takes the new table');
  assert.equal(h.counters().CONN_HIT, 1n);
});

test('a connection younger than the cached coarse clock is not taken for expired', () => {
  // The per-CPU coarse clock can trail a timestamp written with the exact clock (written since
  // the last refresh, or a stalled tick in a descheduled VM): such an age must not wrap to "old".
  h.setReal(0, { ...RS[0]!, method: 'dr' });
  h.setService({ proto: 'tcp', vip: VIP4, port: 80 }, 0, [0]);
  onOneCpu(() => {
    for (let attempt = 0, port = 46000; ; attempt++, port++) {
      assert.ok(attempt < 200, 'never ran within one jiffy of making the clock cache stale');
      const before = h.counters();
      h.run(syn4(port)); // refreshes this CPU's cache and stamps the entry with the exact clock
      const untouched = h.staleClock(1n);
      h.run(clientPacket(CLIENT4, VIP4, { proto: 'tcp', sport: port, dport: 80, flags: TCP.ACK }));
      if (!untouched()) continue; // a tick passed: the cache was refreshed, try again
      const after = h.counters();
      assert.equal(after.CONN_EXPIRED! - before.CONN_EXPIRED!, 0n);
      assert.equal(after.CONN_HIT! - before.CONN_HIT!, 1n);
      break;
    }
  });
});

test('a quiesced (weight 0) realserver keeps its flows; a deleted one loses them', () => {
  h.setReal(0, { ...RS[0]!, method: 'dr' });
  h.setReal(1, { ...RS[1]!, method: 'dr' });
  h.setService({ proto: 'tcp', vip: VIP4, port: 80 }, 0, [0]);
  h.run(syn4(44000));
  h.setReal(0, { ...RS[0]!, method: 'dr', quiesced: true }); // same gen: quiesce
  h.setService({ proto: 'tcp', vip: VIP4, port: 80 }, 0, [1]);
  const ack = clientPacket(CLIENT4, VIP4, { proto: 'tcp', sport: 44000, dport: 80, flags: TCP.ACK });
  assert.deepEqual(h.run(ack).out.subarray(0, 6), mac(RS[0]!.mac));
  h.deleteReal(0);
  assert.deepEqual(h.run(ack).out.subarray(0, 6), mac(RS[1]!.mac), 'rescheduled once deleted');
  assert.equal(h.counters().CONN_REAL_GONE, 1n);
});

test('a reused realserver slot (new gen) does not inherit the old flows', () => {
  h.setReal(0, { ...RS[0]!, method: 'dr' }, 1);
  h.setReal(1, { ...RS[1]!, method: 'dr' }, 1);
  h.setService({ proto: 'tcp', vip: VIP4, port: 80 }, 0, [0]);
  h.run(syn4(44500));
  h.setReal(0, { ...RS[2]!, method: 'dr' }, 2);
  h.setService({ proto: 'tcp', vip: VIP4, port: 80 }, 0, [1]);
  const ack = clientPacket(CLIENT4, VIP4, { proto: 'tcp', sport: 44500, dport: 80, flags: TCP.ACK });
  assert.deepEqual(h.run(ack).out.subarray(0, 6), mac(RS[1]!.mac));
});

test('one-packet scheduling: every packet scheduled, no connection entry', () => {
  h.setReal(0, { ...RS[0]!, method: 'dr' });
  h.setReal(1, { ...RS[1]!, method: 'dr' });
  h.setService({ proto: 'udp', vip: VIP4, port: 53, flags: ABI.LVS_SVC_F_OPS }, 0, [0]);
  const dg = clientPacket(CLIENT4, VIP4, { proto: 'udp', sport: 5000, dport: 53 });
  assert.deepEqual(h.run(dg).out.subarray(0, 6), mac(RS[0]!.mac));
  h.setService({ proto: 'udp', vip: VIP4, port: 53, flags: ABI.LVS_SVC_F_OPS }, 0, [1]);
  assert.deepEqual(h.run(dg).out.subarray(0, 6), mac(RS[1]!.mac));
  assert.equal(h.connCount(), 0);
  assert.equal(h.counters().OPS_SCHEDULED, 2n);
  assert.equal(h.svcStats(0).conns, 2n);
});

test('rr walks the table with a cursor', () => {
  for (let i = 0; i < 3; i++) h.setReal(i, { ...RS[i]!, method: 'dr' });
  h.setService({ proto: 'tcp', vip: VIP4, port: 80, flags: ABI.LVS_SVC_F_ROTATE }, 0, [0, 1, 2]);
  // The cursor is per CPU (no shared write per packet): walk it from one CPU.
  const got = onOneCpu(() => Array.from({ length: 6 }, (_, p) => h.run(syn4(45000 + p)).out.subarray(0, 6).toString('hex')));
  assert.equal(new Set(got.slice(0, 3)).size, 3, 'three new connections go to three realservers');
  assert.deepEqual(got.slice(3), got.slice(0, 3), 'and the next three in the same order');
});

test('persistence: new connections of a client (masked) go to its template realserver', () => {
  for (let i = 0; i < 3; i++) h.setReal(i, { ...RS[i]!, method: 'dr' });
  const table = Array.from({ length: 251 }, (_, i) => i % 3);
  h.setService({ proto: 'tcp', vip: VIP4, port: 80, flags: ABI.LVS_SVC_F_PERSIST, persistTimeout: 300, persistMask: '255.255.255.0' }, 0, table);
  const first = h.run(syn4(46000)).out.subarray(0, 6);
  for (let p = 1; p < 30; p++) {
    const other = clientPacket('198.51.100.99', VIP4, { proto: 'tcp', sport: 46000 + p, dport: 80 });
    assert.deepEqual(h.run(other).out.subarray(0, 6), first, 'same /24 -> same realserver');
  }
  const c = h.counters();
  assert.equal(c.PERSIST_NEW, 1n);
  assert.equal(c.PERSIST_HIT, 29n);
});

test('a service with no usable realserver drops and says why', () => {
  h.setService({ proto: 'tcp', vip: VIP4, port: 80 }, 0, [ABI.LVS_REAL_NONE]);
  assert.equal(h.run(syn4()).action, XDP.DROP);
  assert.equal(h.counters().DROP_NO_REAL, 1n);
});

test('every truncation of a valid TCP packet passes untouched under a named reason', () => {
  const setup = () => {
    h.setReal(0, { addr: RS[0]!.addr, mac: NEXTHOP_MAC, method: 'tun' });
    h.setReal(1, { addr: RS6[0]!.addr, mac: NEXTHOP_MAC, method: 'tun' });
    h.setService({ proto: 'tcp', vip: VIP4, port: 80 }, 0, [0]);
    h.setService({ proto: 'tcp', vip: VIP6, port: 80 }, 1, [1]);
  };
  for (const full of [syn4(47000, { vlans: [{ tpid: 0x8100, vid: 3 }] }),
    clientPacket(CLIENT6, VIP6, { proto: 'tcp', sport: 1, dport: 80 })]) {
    setup();
    assert.equal(h.run(full).action, XDP.TX, 'the whole packet is forwarded');
    // BPF_PROG_TEST_RUN refuses XDP frames shorter than an Ethernet header (EINVAL).
    for (let len = 14; len < full.length; len++) {
      h.reset();
      setup();
      const cut = full.subarray(0, len);
      const r = h.run(cut);
      assert.equal(r.action, XDP.PASS, `length ${len}`);
      assert.deepEqual(r.out, cut, `length ${len} untouched`);
      const c = h.counters();
      const named = Object.entries(c).filter(([k, v]) => v > 0n && k.startsWith('PASS_'));
      assert.equal(named.length, 1, `length ${len}: one pass reason, got ${JSON.stringify(named.map((x) => x[0]))}`);
    }
  }
});

test('per-CPU counters and stats read back match the packets sent', () => {
  h.setReal(0, { ...RS[0]!, method: 'dr' });
  h.setReal(1, { ...RS[1]!, method: 'dr' });
  h.setService({ proto: 'tcp', vip: VIP4, port: 80 }, 3, [0, 1]);
  let bytes = 0n;
  const n = 40;
  for (let i = 0; i < n; i++) {
    const f = syn4(48000 + i);
    bytes += BigInt(f.length - 14);
    h.run(f);
  }
  for (let i = 0; i < 5; i++) h.run(clientPacket(CLIENT4, '10.9.9.9', { proto: 'udp', sport: 1, dport: 2 }));
  const c = h.counters();
  assert.equal(c.FWD_DR, BigInt(n));
  assert.equal(c.CONN_NEW, BigInt(n));
  assert.equal(c.PASS_NOT_VIP, 5n);
  const s = h.svcStats(3);
  assert.equal(s.packets, BigInt(n));
  assert.equal(s.bytes, bytes);
  assert.equal(s.conns, BigInt(n));
  assert.equal(h.realStats(0).packets + h.realStats(1).packets, BigInt(n));
  assert.ok(h.realStats(0).packets > 0n && h.realStats(1).packets > 0n);
});
