// The cases of test/packet/nat.test.ts, run by it in a child process inside a namespace whose
// interfaces, routes and neighbours it made (replies take their next hop from the FIB). Every
// expected frame is built from scratch (checksums computed whole), so a wrong incremental update
// shows as a byte difference. Not a test file of its own: it refuses to run outside that namespace.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { DirectorHarness, XDP } from '../lib/director.js';
import {
  clientPacket, ether, ipv4, ipv6, l4, inetChecksum, pseudoHeader, addrBytes, DIRECTOR_MAC, CLIENT_ROUTER_MAC, TCP, type L4Spec,
} from '../lib/frames.js';
import { ifIndex } from '../../src/native/index.js';
// natTwoLinks' hosts: the client, one-armed realservers (on c0), two-armed ones (behind r0).
import {
  ownNatLinks, natNextHop, natFrame as pkt, expectFrame, R0_MAC,
  NAT_CLIENT_MAC as CLIENT_MAC, NAT_RS1_MAC as RS1_MAC, NAT_RS2_MAC as RS2_MAC, NAT_C4 as C4, NAT_C6 as C6,
} from '../lib/nat-netns.js';
import { parseConfigText } from '../../src/config/parse.js';
import { realId } from '../../src/dataplane/compile.js';
import { serviceId } from '../../src/model/types.js';
import type { Plan } from '../../src/director/plan.js';
import { encode, FLOW_KEY, type StructValue } from '../../src/abi/layout.js';

if (process.env.LVS_NAT_CASES !== '1') throw new Error('run by test/packet/nat.test.ts inside its namespace');

const VIP4 = '10.0.0.1';
const VIP6 = '2001:db8:a::1';

const CONFIG = `
services:
  - { vip: ${VIP4}, port: 80, protocol: tcp, scheduler: mh, realservers: [{ address: 203.0.113.10, port: 8080, method: nat }] }
  - { vip: ${VIP4}, port: 53, protocol: udp, scheduler: mh, realservers: [{ address: 192.0.2.10, port: 5353, method: nat }] }
  - { vip: "${VIP6}", port: 443, protocol: tcp, scheduler: mh, realservers: [{ address: "2001:db8:c::10", port: 8443, method: nat }] }
  - { vip: "${VIP6}", port: 53, protocol: udp, scheduler: mh, realservers: [{ address: "2001:db8:b::10", port: 5353, method: nat }] }
`;

let h: DirectorHarness;
let c0 = 0;
let r0 = 0;
let plan: Plan;

before(async () => {
  c0 = ifIndex('c0');
  r0 = ifIndex('r0');
  h = await DirectorHarness.load();
});
after(() => h.close());

function setup(): void {
  h.reset();
  ownNatLinks(h, c0, r0);
  plan = h.apply(parseConfigText(CONFIG, 'nat.yaml'), (_s, r) => natNextHop(r.address, r0));
}

/** The realserver slot of a service's only realserver, and the service's id. */
function slots(vip: string, port: number, proto: 'tcp' | 'udp'): { real: number; svc: number } {
  const s = plan.target.config.services.find((x) => x.vip === vip && x.port === port && x.protocol === proto)!;
  return { real: plan.target.allocation.reals[realId(s, s.realservers[0]!)]!.index, svc: plan.target.allocation.services[serviceId(s)]! };
}


/** ICMP (type, code, 4 bytes rest, quote) with its checksum; ICMPv6 with its pseudo-header. */
function icmp(type: number, code: number, rest: Buffer, quote: Buffer, v6?: { src: string; dst: string }): Buffer {
  const m = Buffer.concat([Buffer.from([type, code, 0, 0]), rest, quote]);
  const pseudo = v6 ? pseudoHeader(addrBytes(v6.src), addrBytes(v6.dst), 58, m.length, true) : Buffer.alloc(0);
  m.writeUInt16BE(inetChecksum(pseudo, m), 2);
  return m;
}

function withPort(seg: Buffer, at: 0 | 2, port: number): Buffer {
  const b = Buffer.from(seg);
  b.writeUInt16BE(port, at);
  return b;
}

const u32be = (v: number) => { const b = Buffer.alloc(4); b.writeUInt32BE(v); return b; };

test('IPv4 TCP one-armed: VIP:80 -> RIP:8080 and the reply back, XDP_TX both ways', () => {
  setup();
  const syn = pkt(C4, VIP4, { proto: 'tcp', sport: 40000, dport: 80, flags: TCP.SYN }, { dst: DIRECTOR_MAC, src: CLIENT_ROUTER_MAC });
  expectFrame(h.run(syn, c0), XDP.TX,
    pkt(C4, '203.0.113.10', { proto: 'tcp', sport: 40000, dport: 8080, flags: TCP.SYN }, { dst: RS1_MAC, src: DIRECTOR_MAC }), 'SYN');
  const synack = pkt('203.0.113.10', C4, { proto: 'tcp', sport: 8080, dport: 40000, flags: TCP.SYN | TCP.ACK }, { dst: DIRECTOR_MAC, src: RS1_MAC });
  expectFrame(h.run(synack, c0), XDP.TX,
    pkt(VIP4, C4, { proto: 'tcp', sport: 80, dport: 40000, flags: TCP.SYN | TCP.ACK }, { dst: CLIENT_MAC, src: DIRECTOR_MAC }, { ttl: 63 }), 'SYN-ACK');
  const c = h.counters();
  assert.equal(c.FWD_NAT, 1n);
  assert.equal(c.FWD_NAT_REPLY, 1n);
  assert.equal(c.CONN_NEW, 1n);
  const { real, svc } = slots(VIP4, 80, 'tcp');
  const l3 = BigInt(synack.length - 14);
  assert.deepEqual(h.realStats(real), { packets: 1n, bytes: BigInt(syn.length - 14), conns: 1n, outPackets: 1n, outBytes: l3 });
  assert.equal(h.svcStats(svc).outPackets, 1n);
  assert.equal(h.svcStats(svc).outBytes, l3);
  // A reply entry is a second key of the same flow in lvs_conns.
  assert.equal(h.connCount(), 2);
});

test('IPv4 UDP two-armed: redirected to r0 and the reply redirected to c0; zero UDP checksum kept', () => {
  setup();
  const q = pkt(C4, VIP4, { proto: 'udp', sport: 5000, dport: 53, payload: Buffer.from('query') }, { dst: DIRECTOR_MAC, src: CLIENT_ROUTER_MAC });
  expectFrame(h.run(q, c0), XDP.REDIRECT,
    pkt(C4, '192.0.2.10', { proto: 'udp', sport: 5000, dport: 5353, payload: Buffer.from('query') }, { dst: RS2_MAC, src: R0_MAC }), 'query');
  const a = pkt('192.0.2.10', C4, { proto: 'udp', sport: 5353, dport: 5000, payload: Buffer.from('answer!') }, { dst: R0_MAC, src: RS2_MAC });
  expectFrame(h.run(a, r0), XDP.REDIRECT,
    pkt(VIP4, C4, { proto: 'udp', sport: 53, dport: 5000, payload: Buffer.from('answer!') }, { dst: CLIENT_MAC, src: DIRECTOR_MAC }, { ttl: 63 }), 'answer');
  // UDP over IPv4 without a checksum (0) stays without one.
  const a0 = Buffer.from(a);
  a0.writeUInt16BE(0, 14 + 20 + 6);
  const want0 = pkt(VIP4, C4, { proto: 'udp', sport: 53, dport: 5000, payload: Buffer.from('answer!') }, { dst: CLIENT_MAC, src: DIRECTOR_MAC }, { ttl: 63 });
  want0.writeUInt16BE(0, 14 + 20 + 6);
  expectFrame(h.run(a0, r0), XDP.REDIRECT, want0, 'answer without UDP checksum');
  const c = h.counters();
  assert.equal(c.FWD_NAT, 1n);
  assert.equal(c.FWD_NAT_REPLY, 2n);
  assert.equal(c.FWD_REDIRECT, 3n);
});

test('IPv6 TCP one-armed and UDP two-armed, both ways (hop limit decremented on replies)', () => {
  setup();
  const syn = pkt(C6, VIP6, { proto: 'tcp', sport: 40001, dport: 443, flags: TCP.SYN }, { dst: DIRECTOR_MAC, src: CLIENT_ROUTER_MAC });
  expectFrame(h.run(syn, c0), XDP.TX,
    pkt(C6, '2001:db8:c::10', { proto: 'tcp', sport: 40001, dport: 8443, flags: TCP.SYN }, { dst: RS1_MAC, src: DIRECTOR_MAC }), 'v6 SYN');
  const synack = pkt('2001:db8:c::10', C6, { proto: 'tcp', sport: 8443, dport: 40001, flags: TCP.SYN | TCP.ACK }, { dst: DIRECTOR_MAC, src: RS1_MAC });
  expectFrame(h.run(synack, c0), XDP.TX,
    pkt(VIP6, C6, { proto: 'tcp', sport: 443, dport: 40001, flags: TCP.SYN | TCP.ACK }, { dst: CLIENT_MAC, src: DIRECTOR_MAC }, { hop: 63 }), 'v6 SYN-ACK');
  const q = pkt(C6, VIP6, { proto: 'udp', sport: 5001, dport: 53, payload: Buffer.from('q6') }, { dst: DIRECTOR_MAC, src: CLIENT_ROUTER_MAC });
  expectFrame(h.run(q, c0), XDP.REDIRECT,
    pkt(C6, '2001:db8:b::10', { proto: 'udp', sport: 5001, dport: 5353, payload: Buffer.from('q6') }, { dst: RS2_MAC, src: R0_MAC }), 'v6 query');
  const a = pkt('2001:db8:b::10', C6, { proto: 'udp', sport: 5353, dport: 5001, payload: Buffer.from('a6') }, { dst: R0_MAC, src: RS2_MAC });
  expectFrame(h.run(a, r0), XDP.REDIRECT,
    pkt(VIP6, C6, { proto: 'udp', sport: 53, dport: 5001, payload: Buffer.from('a6') }, { dst: CLIENT_MAC, src: DIRECTOR_MAC }, { hop: 63 }), 'v6 answer');
  const c = h.counters();
  assert.equal(c.FWD_NAT, 2n);
  assert.equal(c.FWD_NAT_REPLY, 2n);
});

test('ICMP errors about NAT flows are translated: outer and quoted headers, both directions, IPv4', () => {
  setup();
  h.run(pkt(C4, VIP4, { proto: 'tcp', sport: 40000, dport: 80, flags: TCP.SYN }, { dst: DIRECTOR_MAC, src: CLIENT_ROUTER_MAC }), c0);
  h.run(pkt(C4, VIP4, { proto: 'udp', sport: 5000, dport: 53, payload: Buffer.from('query') }, { dst: DIRECTOR_MAC, src: CLIENT_ROUTER_MAC }), c0);

  // Port unreachable from the realserver about the client's datagram (as it received it).
  const seen = l4({ proto: 'udp', sport: 5000, dport: 5353, payload: Buffer.from('query') }, C4, '192.0.2.10');
  const unreach = ether(0x0800, ipv4('192.0.2.10', C4, icmp(3, 3, Buffer.alloc(4), ipv4(C4, '192.0.2.10', seen, { proto: 17 })), { proto: 1 }),
    { dst: R0_MAC, src: RS2_MAC });
  // Quoted UDP checksum left as quoted (as IPVS); the quoted IPv4 header's recomputed.
  const wantUnreach = ether(0x0800, ipv4(VIP4, C4, icmp(3, 3, Buffer.alloc(4), ipv4(C4, VIP4, withPort(seen, 2, 53), { proto: 17 })), { proto: 1, ttl: 63 }),
    { dst: CLIENT_MAC, src: DIRECTOR_MAC });
  expectFrame(h.run(unreach, r0), XDP.REDIRECT, wantUnreach, 'port unreachable from the realserver');

  // Fragmentation needed from a router on the client's side about a reply (VIP:80 -> client).
  const sent = l4({ proto: 'tcp', sport: 80, dport: 40000, flags: TCP.ACK }, VIP4, C4);
  const fragNeeded = ether(0x0800, ipv4('198.51.100.254', VIP4, icmp(3, 4, u32be(1400), ipv4(VIP4, C4, sent, { proto: 6 })), { proto: 1 }),
    { dst: DIRECTOR_MAC, src: CLIENT_ROUTER_MAC });
  const wantFrag = ether(0x0800, ipv4('198.51.100.254', '203.0.113.10',
    icmp(3, 4, u32be(1400), ipv4('203.0.113.10', C4, withPort(sent, 0, 8080), { proto: 6 })), { proto: 1 }), { dst: RS1_MAC, src: DIRECTOR_MAC });
  expectFrame(h.run(fragNeeded, c0), XDP.TX, wantFrag, 'frag-needed about a reply');
  const c = h.counters();
  assert.equal(c.ICMP_NAT_REPLY, 1n);
  assert.equal(c.ICMP_ERR_FWD, 1n);
  assert.equal(c.FWD_NAT, 3n);
  assert.equal(c.FWD_NAT_REPLY, 1n);
});

test('ICMPv6 errors about NAT flows are translated (pseudo-header included), both directions', () => {
  setup();
  h.run(pkt(C6, VIP6, { proto: 'tcp', sport: 40001, dport: 443, flags: TCP.SYN }, { dst: DIRECTOR_MAC, src: CLIENT_ROUTER_MAC }), c0);
  h.run(pkt(C6, VIP6, { proto: 'udp', sport: 5001, dport: 53, payload: Buffer.from('q6') }, { dst: DIRECTOR_MAC, src: CLIENT_ROUTER_MAC }), c0);

  const seen = l4({ proto: 'udp', sport: 5001, dport: 5353, payload: Buffer.from('q6') }, C6, '2001:db8:b::10');
  const quote = ipv6(C6, '2001:db8:b::10', seen, { proto: 17 });
  const unreach = ether(0x86dd, ipv6('2001:db8:b::10', C6, icmp(1, 4, Buffer.alloc(4), quote, { src: '2001:db8:b::10', dst: C6 }), { proto: 58 }),
    { dst: R0_MAC, src: RS2_MAC });
  const wantQuote = ipv6(C6, VIP6, withPort(seen, 2, 53), { proto: 17 });
  const want = ether(0x86dd, ipv6(VIP6, C6, icmp(1, 4, Buffer.alloc(4), wantQuote, { src: VIP6, dst: C6 }), { proto: 58, hop: 63 }),
    { dst: CLIENT_MAC, src: DIRECTOR_MAC });
  expectFrame(h.run(unreach, r0), XDP.REDIRECT, want, 'ICMPv6 port unreachable from the realserver');

  const sent = l4({ proto: 'tcp', sport: 443, dport: 40001, flags: TCP.ACK }, VIP6, C6);
  const ptb = ether(0x86dd, ipv6('2001:db8:c::fe', VIP6, icmp(2, 0, u32be(1280), ipv6(VIP6, C6, sent, { proto: 6 }), { src: '2001:db8:c::fe', dst: VIP6 }), { proto: 58 }),
    { dst: DIRECTOR_MAC, src: CLIENT_ROUTER_MAC });
  const wantPtb = ether(0x86dd, ipv6('2001:db8:c::fe', '2001:db8:c::10',
    icmp(2, 0, u32be(1280), ipv6('2001:db8:c::10', C6, withPort(sent, 0, 8443), { proto: 6 }), { src: '2001:db8:c::fe', dst: '2001:db8:c::10' }), { proto: 58 }),
    { dst: RS1_MAC, src: DIRECTOR_MAC });
  expectFrame(h.run(ptb, c0), XDP.TX, wantPtb, 'packet too big about a reply');
  assert.equal(h.counters().ICMP_NAT_REPLY, 1n);
});

test('fragments: a large UDP reply and a large client datagram, first and later fragments (IPv4)', () => {
  setup();
  const payload = Buffer.alloc(100, 0x5a);
  // The client's datagram in two fragments: the first carries the UDP header.
  const dg = l4({ proto: 'udp', sport: 5000, dport: 53, payload }, C4, VIP4);
  const dgT = l4({ proto: 'udp', sport: 5000, dport: 5353, payload }, C4, '192.0.2.10');
  const f = (src: string, dst: string, b: Buffer, more: boolean, off: number, macs: { dst: string; src: string }, ttl = 64) =>
    ether(0x0800, ipv4(src, dst, b, { proto: 17, id: 0x4242, df: false, mf: more, fragOffset: off, ttl }), macs);
  const inMacs = { dst: DIRECTOR_MAC, src: CLIENT_ROUTER_MAC };
  const toRs = { dst: RS2_MAC, src: R0_MAC };
  expectFrame(h.run(f(C4, VIP4, dg.subarray(0, 32), true, 0, inMacs), c0), XDP.REDIRECT, f(C4, '192.0.2.10', dgT.subarray(0, 32), true, 0, toRs), 'client first fragment');
  expectFrame(h.run(f(C4, VIP4, dg.subarray(32), false, 32, inMacs), c0), XDP.REDIRECT, f(C4, '192.0.2.10', dgT.subarray(32), false, 32, toRs), 'client later fragment');

  const rep = l4({ proto: 'udp', sport: 5353, dport: 5000, payload }, '192.0.2.10', C4);
  const repT = l4({ proto: 'udp', sport: 53, dport: 5000, payload }, VIP4, C4);
  const fromRs = { dst: R0_MAC, src: RS2_MAC };
  const toClient = { dst: CLIENT_MAC, src: DIRECTOR_MAC };
  expectFrame(h.run(f('192.0.2.10', C4, rep.subarray(0, 32), true, 0, fromRs), r0), XDP.REDIRECT, f(VIP4, C4, repT.subarray(0, 32), true, 0, toClient, 63), 'reply first fragment');
  expectFrame(h.run(f('192.0.2.10', C4, rep.subarray(32), false, 32, fromRs), r0), XDP.REDIRECT, f(VIP4, C4, repT.subarray(32), false, 32, toClient, 63), 'reply later fragment');
  const c = h.counters();
  assert.equal(c.FRAG_FIRST, 2n);
  assert.equal(c.FRAG_FOLLOW, 2n);
  assert.equal(c.FWD_NAT, 2n);
  assert.equal(c.FWD_NAT_REPLY, 2n);
  const { real } = slots(VIP4, 53, 'udp');
  const st = h.realStats(real);
  assert.equal(st.packets, 2n, 'both client fragments are InPkts');
  assert.equal(st.outPackets, 2n, 'both reply fragments are OutPkts');
});

test('not translated: no flow, TTL expiring here, no resolved next hop (handed to the kernel untouched)', () => {
  setup();
  const stranger = pkt('203.0.113.10', C4, { proto: 'tcp', sport: 8080, dport: 41000, flags: TCP.ACK }, { dst: DIRECTOR_MAC, src: RS1_MAC });
  expectFrame(h.run(stranger, c0), XDP.PASS, stranger, 'reply of no flow');
  assert.equal(h.counters().PASS_NOT_VIP, 1n);

  h.run(pkt(C4, VIP4, { proto: 'tcp', sport: 40000, dport: 80, flags: TCP.SYN }, { dst: DIRECTOR_MAC, src: CLIENT_ROUTER_MAC }), c0);
  const ttl1 = pkt('203.0.113.10', C4, { proto: 'tcp', sport: 8080, dport: 40000, flags: TCP.SYN | TCP.ACK }, { dst: DIRECTOR_MAC, src: RS1_MAC }, { ttl: 1 });
  expectFrame(h.run(ttl1, c0), XDP.PASS, ttl1, 'TTL 1');
  assert.equal(h.counters().PASS_NAT_TTL, 1n);

  // 203.0.113.99 has no neighbour entry: the kernel routes the packet (and resolves it).
  h.run(pkt('203.0.113.99', VIP4, { proto: 'tcp', sport: 40000, dport: 80, flags: TCP.SYN }, { dst: DIRECTOR_MAC, src: CLIENT_ROUTER_MAC }), c0);
  const noNeigh = pkt('203.0.113.10', '203.0.113.99', { proto: 'tcp', sport: 8080, dport: 40000, flags: TCP.SYN | TCP.ACK }, { dst: DIRECTOR_MAC, src: RS1_MAC });
  expectFrame(h.run(noNeigh, c0), XDP.PASS, noNeigh, 'no resolved next hop');
  assert.equal(h.counters().PASS_NAT_NO_ROUTE, 1n);
  assert.equal(h.counters().FWD_NAT_REPLY, 0n);
});

test('a reply keeps the flow alive: it refreshes the client entry too (IPVS: either direction)', () => {
  setup();
  h.run(pkt(C4, VIP4, { proto: 'udp', sport: 5000, dport: 53, payload: Buffer.from('query') }, { dst: DIRECTOR_MAC, src: CLIENT_ROUTER_MAC }), c0);
  // Age both entries by 10 s, then one reply: both must carry a fresh timestamp.
  const age = 10_000_000_000n;
  for (const e of h.conns()) {
    const v = Buffer.from(e.value);
    v.writeBigUInt64LE(v.readBigUInt64LE(0) - age, 0);
    h.writer.putEntry('lvs_conns', encode(FLOW_KEY, e.key as StructValue), v);
  }
  const before = h.conns().map((e) => e.value.readBigUInt64LE(0));
  h.run(pkt('192.0.2.10', C4, { proto: 'udp', sport: 5353, dport: 5000, payload: Buffer.from('a') }, { dst: R0_MAC, src: RS2_MAC }), r0);
  const afterTs = h.conns().map((e) => e.value.readBigUInt64LE(0));
  assert.equal(afterTs.length, 2);
  afterTs.forEach((t, i) => assert.ok(t > before[i]! + age / 2n, `entry ${i} refreshed by the reply`));
});
