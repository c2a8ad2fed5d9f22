// Packet tests of lvs_decap (the LVS-Tun realserver's XDP program) with BPF_PROG_TEST_RUN: every
// tunnel combination decapsulated byte-exactly, everything else passed untouched, truncations,
// ECN, per-CPU counters, and a round trip through the director's own encapsulation.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { clientPacket, ether, ipv4, ipv6, ipv4HeaderOk, TCP, DIRECTOR_MAC } from '../lib/frames.js';
import { DirectorHarness, XDP } from '../lib/director.js';
import { BpfObject, BpfMap, testRun } from '../../src/native/index.js';
import { inspectDecap } from '../../src/realserver/decap.js';
import { vipKey, decodeVipStats, DECAP_MAPS, DECAP_PROGRAM } from '../../src/realserver/decap-abi.js';
import { DECAP_COUNTERS } from '../../src/abi/decap-generated.js';
import { parseAddress } from '../../src/model/address.js';
import { repoRoot } from '../lib/paths.js';

const VIP4 = '10.0.0.1';
const VIP6 = '2001:db8::1';
const OTHER4 = '10.0.0.99';
const OTHER6 = '2001:db8::99';
const CLIENT4 = '198.51.100.7';
const CLIENT6 = '2001:db8:100::7';
const TUN_SRC4 = '192.168.1.1';
const TUN_SRC6 = '2001:db8:1::1';
const RIP4 = '192.168.1.10';
const RIP6 = '2001:db8:1::10';
const RS_MAC = '02:00:00:00:01:0a';
const ROUTER_MAC = '02:00:00:00:00:99';

let obj: BpfObject;
let progFd: number;
let vips: BpfMap;
let counters: BpfMap;

before(async () => {
  obj = inspectDecap(`${repoRoot()}/bpf/lvs_decap.o`);
  await obj.load();
  progFd = obj.progFd(DECAP_PROGRAM);
  vips = obj.map(DECAP_MAPS.vips);
  counters = obj.map(DECAP_MAPS.counters);
});
after(() => obj?.close());
beforeEach(() => {
  for (const k of [...vips.keys()]) vips.delete(k);
  for (const c of DECAP_COUNTERS) counters.updatePerCpu(u32(c.index), Buffer.alloc(8));
  for (const v of [VIP4, VIP6]) vips.update(vipKey(parseAddress(v)!), Buffer.alloc(16));
});

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

function run(frame: Buffer): { action: number; out: Buffer } {
  const r = testRun(progFd, frame, { dataSizeOut: frame.length + 64 });
  return { action: r.retval, out: r.data };
}

/** Non-zero counters by name. */
function nonZero(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of DECAP_COUNTERS) {
    const n = (counters.lookupPerCpu(u32(c.index)) ?? []).reduce((s, b) => s + b.readBigUInt64LE(0), 0n);
    if (n) out[c.name] = Number(n);
  }
  return out;
}

/** Every packet counts exactly one decap, pass or drop outcome. */
function outcomes(): number {
  const nz = nonZero();
  return DECAP_COUNTERS.filter((c) => c.kind !== 'event').reduce((s, c) => s + (nz[c.name] ?? 0), 0);
}

function vipStats(v: string) {
  const val = vips.lookup(vipKey(parseAddress(v)!));
  assert.ok(val, `VIP ${v} in the map`);
  return decodeVipStats(val);
}

/** The client's IP packet (no Ethernet header). */
function innerPacket(src: string, dst: string, o: { tos?: number; payload?: Buffer; proto?: 'tcp' | 'udp' } = {}): Buffer {
  const frame = clientPacket(src, dst, { proto: o.proto ?? 'tcp', sport: 40000, dport: 80, flags: TCP.SYN, ...(o.payload ? { payload: o.payload } : {}) }, { tos: o.tos ?? 0, tc: o.tos ?? 0 });
  return frame.subarray(14);
}

/** What the director sends: Ethernet to the realserver / outer header / inner packet. */
function tunnelled(inner: Buffer, outerFamily: 4 | 6, o: { tos?: number; ipv4Opts?: Buffer; ext?: { type: number; body: Buffer }[] } = {}): Buffer {
  const innerProto = inner[0]! >> 4 === 4 ? 4 : 41;
  if (outerFamily === 4) {
    const outer = ipv4(TUN_SRC4, RIP4, inner, { proto: innerProto, tos: o.tos ?? 0, id: 0, df: true, ...(o.ipv4Opts ? { options: o.ipv4Opts } : {}) });
    return ether(0x0800, outer, { dst: RS_MAC, src: ROUTER_MAC });
  }
  const outer = ipv6(TUN_SRC6, RIP6, inner, { proto: innerProto, tc: o.tos ?? 0, ...(o.ext ? { ext: o.ext } : {}) });
  return ether(0x86dd, outer, { dst: RS_MAC, src: ROUTER_MAC });
}

/** Expected after decapsulation: the same MACs, the inner family's ethertype, the inner packet. */
function decapsulated(inner: Buffer, macs: { dst: string; src: string } = { dst: RS_MAC, src: ROUTER_MAC }): Buffer {
  return ether(inner[0]! >> 4 === 4 ? 0x0800 : 0x86dd, inner, macs);
}

const CASES = [
  { name: '4in4', client: CLIENT4, vip: VIP4, outer: 4 as const, counter: 'DECAP_4IN4' },
  { name: '6in6', client: CLIENT6, vip: VIP6, outer: 6 as const, counter: 'DECAP_6IN6' },
  { name: '4in6', client: CLIENT4, vip: VIP4, outer: 6 as const, counter: 'DECAP_4IN6' },
  { name: '6in4', client: CLIENT6, vip: VIP6, outer: 4 as const, counter: 'DECAP_6IN4' },
];

for (const c of CASES) {
  test(`${c.name}: outer header removed byte-exactly, ethertype of the inner family, VIP statistics`, () => {
    const inner = innerPacket(c.client, c.vip, { tos: 0x28, payload: Buffer.from('hello realserver') });
    const r = run(tunnelled(inner, c.outer, { tos: 0x28 }));
    assert.equal(r.action, XDP.PASS);
    assert.deepEqual(r.out, decapsulated(inner));
    assert.deepEqual(nonZero(), { [c.counter]: 1 });
    assert.deepEqual(vipStats(c.vip), { packets: 1n, bytes: BigInt(inner.length) });
  });
}

test('a tunnelled packet for an address that is not a VIP passes unchanged', () => {
  for (const [client, other, outer] of [[CLIENT4, OTHER4, 4], [CLIENT6, OTHER6, 6], [CLIENT4, OTHER4, 6]] as const) {
    const frame = tunnelled(innerPacket(client, other), outer);
    const r = run(frame);
    assert.equal(r.action, XDP.PASS);
    assert.deepEqual(r.out, frame);
  }
  assert.deepEqual(nonZero(), { PASS_UNKNOWN_VIP: 3 });
  assert.deepEqual(vipStats(VIP4), { packets: 0n, bytes: 0n });
});

test('a VIP removed from the map is no longer decapsulated', () => {
  const frame = tunnelled(innerPacket(CLIENT4, VIP4), 4);
  assert.notDeepEqual(run(frame).out, frame);
  vips.delete(vipKey(parseAddress(VIP4)!));
  assert.deepEqual(run(frame).out, frame);
  assert.deepEqual(nonZero(), { DECAP_4IN4: 1, PASS_UNKNOWN_VIP: 1 });
});

test('non-tunnel traffic passes untouched: direct TCP to the VIP (DR), UDP, ARP, VLAN-tagged', () => {
  const frames = [
    clientPacket(CLIENT4, VIP4, { proto: 'tcp', sport: 1, dport: 80 }),
    clientPacket(CLIENT6, VIP6, { proto: 'udp', sport: 1, dport: 53 }),
    ether(0x0806, Buffer.alloc(28, 1)),
    ether(0x0800, ipv4(TUN_SRC4, RIP4, innerPacket(CLIENT4, VIP4), { proto: 4 }), { vlans: [{ tpid: 0x8100, vid: 7 }] }),
  ];
  for (const f of frames) {
    const r = run(f);
    assert.equal(r.action, XDP.PASS);
    assert.deepEqual(r.out, f);
  }
  assert.deepEqual(nonZero(), { PASS_NOT_TUNNEL: 2, PASS_NOT_IP: 1, PASS_VLAN: 1 });
});

test('every truncation of tunnelled frames passes unchanged (from 14 bytes)', () => {
  let runs = 0;
  for (const c of CASES) {
    const frame = tunnelled(innerPacket(c.client, c.vip), c.outer);
    for (let len = 14; len < frame.length; len++) {
      const cut = Buffer.from(frame.subarray(0, len));
      const r = run(cut);
      assert.equal(r.action, XDP.PASS, `${c.name} cut at ${len}`);
      assert.deepEqual(r.out, cut, `${c.name} cut at ${len}`);
      runs++;
    }
  }
  const nz = nonZero();
  assert.equal(outcomes(), runs);
  assert.deepEqual(Object.keys(nz).sort(), ['PASS_MALFORMED_OUTER']);
});

test('extra bytes after the outer packet (Ethernet padding) stay behind the inner packet', () => {
  const inner = innerPacket(CLIENT4, VIP4);
  const pad = Buffer.alloc(6, 0xee);
  const r = run(Buffer.concat([tunnelled(inner, 4), pad]));
  assert.equal(r.action, XDP.PASS);
  assert.deepEqual(r.out, Buffer.concat([decapsulated(inner), pad]));
});

test('outer IPv4 options and outer IPv6 extension headers are removed with the outer header', () => {
  const inner4 = innerPacket(CLIENT4, VIP4);
  const opts = Buffer.from([0x94, 0x04, 0x00, 0x00]); // router alert
  assert.deepEqual(run(tunnelled(inner4, 4, { ipv4Opts: opts })).out, decapsulated(inner4));
  const inner6 = innerPacket(CLIENT6, VIP6);
  const ext = [{ type: 0, body: Buffer.alloc(6) }, { type: 60, body: Buffer.alloc(14) }];
  assert.deepEqual(run(tunnelled(inner6, 6, { ext })).out, decapsulated(inner6));
  assert.deepEqual(nonZero(), { DECAP_4IN4: 1, DECAP_6IN6: 1 });
});

test('outer fragments, long extension chains and inconsistent headers pass unchanged, each counted', () => {
  const inner4 = innerPacket(CLIENT4, VIP4);
  const inner6 = innerPacket(CLIENT6, VIP6);
  const badCsum = tunnelled(inner4, 4);
  badCsum[14 + 10]! ^= 0x01;
  const frag4 = ether(0x0800, ipv4(TUN_SRC4, RIP4, inner4, { proto: 4, mf: true }), { dst: RS_MAC, src: ROUTER_MAC });
  const frag6 = tunnelled(inner6, 6, { ext: [{ type: 44, body: Buffer.from([0, 1, 0, 0, 0, 7]) }] });
  const longChain = tunnelled(inner6, 6, { ext: Array.from({ length: 5 }, () => ({ type: 60, body: Buffer.alloc(6) })) });
  const wrongVersion = ether(0x0800, ipv4(TUN_SRC4, RIP4, inner6, { proto: 4 }), { dst: RS_MAC, src: ROUTER_MAC });
  // The inner packet claims more bytes than the outer header carries.
  const longInner = Buffer.from(inner4);
  longInner.writeUInt16BE(inner4.length + 8, 2);
  const overlong = ether(0x0800, ipv4(TUN_SRC4, RIP4, longInner, { proto: 4 }), { dst: RS_MAC, src: ROUTER_MAC });
  const cases: [Buffer, string][] = [
    [badCsum, 'PASS_MALFORMED_OUTER'],
    [frag4, 'PASS_OUTER_FRAGMENT'],
    [frag6, 'PASS_OUTER_FRAGMENT'],
    [longChain, 'PASS_EXT_HDR_LIMIT'],
    [wrongVersion, 'PASS_MALFORMED_INNER'],
    [overlong, 'PASS_MALFORMED_INNER'],
  ];
  for (const [frame, counter] of cases) {
    const before = nonZero()[counter] ?? 0;
    const r = run(frame);
    assert.equal(r.action, XDP.PASS, counter);
    assert.deepEqual(r.out, frame, counter);
    assert.equal(nonZero()[counter], before + 1, counter);
  }
  assert.equal(outcomes(), cases.length);
});

test('ECN (RFC 6040): outer CE marks an ECT inner packet, drops a Not-ECT one, other outer codepoints change nothing', () => {
  // IPv4 inner ECT(0) under an outer CE: inner becomes CE with a correct header checksum.
  const ect0 = innerPacket(CLIENT4, VIP4, { tos: 0x2a });
  const r4 = run(tunnelled(ect0, 4, { tos: 0x2b }));
  assert.equal(r4.action, XDP.PASS);
  // Expected header rebuilt with its checksum computed from scratch (the program updates it
  // incrementally).
  assert.deepEqual(r4.out, decapsulated(ipv4(CLIENT4, VIP4, ect0.subarray(20), { tos: 0x2b, proto: 6 })));
  assert.ok(ipv4HeaderOk(r4.out.subarray(14)));
  // IPv6 inner ECT(1) under an outer CE (IPv4 outer): traffic class gets CE.
  const ect1 = innerPacket(CLIENT6, VIP6, { tos: 0x01 });
  const r6 = run(tunnelled(ect1, 4, { tos: 0x03 }));
  const want6 = Buffer.from(ect1);
  want6.writeUInt32BE((want6.readUInt32BE(0) | (0x03 << 20)) >>> 0, 0);
  assert.deepEqual(r6.out, decapsulated(want6));
  assert.deepEqual(nonZero(), { DECAP_4IN4: 1, DECAP_6IN4: 1, ECN_CE: 2 });
  // Not-ECT inner under CE: dropped.
  const notEct = tunnelled(innerPacket(CLIENT4, VIP4, { tos: 0 }), 6, { tos: 0x03 });
  assert.equal(run(notEct).action, XDP.DROP);
  // Outer ECT(0) over Not-ECT: nothing to copy.
  const inner = innerPacket(CLIENT4, VIP4, { tos: 0 });
  assert.deepEqual(run(tunnelled(inner, 4, { tos: 0x02 })).out, decapsulated(inner));
  assert.deepEqual(nonZero(), { DECAP_4IN4: 2, DECAP_6IN4: 1, ECN_CE: 2, DROP_ECN_NOT_ECT: 1 });
});

test('round trip: the director encapsulates (Tun), lvs_decap restores the client packet exactly', async () => {
  const NEXTHOP_MAC = RS_MAC; // the realserver is on the director's link
  const h = await DirectorHarness.load(`${repoRoot()}/bpf/lvs_director.o`);
  try {
    const combos = [
      { client: CLIENT4, vip: VIP4, rip: RIP4, counter: 'DECAP_4IN4' },
      { client: CLIENT6, vip: VIP6, rip: RIP6, counter: 'DECAP_6IN6' },
      { client: CLIENT4, vip: VIP4, rip: RIP6, counter: 'DECAP_4IN6' },
      { client: CLIENT6, vip: VIP6, rip: RIP4, counter: 'DECAP_6IN4' },
    ];
    for (const [i, c] of combos.entries()) {
      h.reset();
      h.setCfg({ tunSrc4: TUN_SRC4, tunSrc6: TUN_SRC6, seed: 7, tunMtu: 1500, ttl: 64 });
      h.setReal(0, { addr: c.rip, mac: NEXTHOP_MAC, method: 'tun' });
      h.setService({ proto: 'udp', vip: c.vip, port: 53 }, 0, [0]);
      const client = clientPacket(c.client, c.vip, { proto: 'udp', sport: 5353 + i, dport: 53, payload: Buffer.from('query') }, { tos: 0x10, tc: 0x10 });
      const enc = h.run(client);
      assert.equal(enc.action, XDP.TX, `${c.counter}: director forwards`);
      assert.ok(enc.out.length > client.length, 'encapsulated');
      const dec = run(enc.out);
      assert.equal(dec.action, XDP.PASS);
      assert.deepEqual(dec.out, ether(client.readUInt16BE(12), client.subarray(14), { dst: NEXTHOP_MAC, src: DIRECTOR_MAC }), c.counter);
      assert.equal(nonZero()[c.counter], 1, c.counter);
    }
  } finally {
    h.close();
  }
  assert.equal(outcomes(), 4);
});
