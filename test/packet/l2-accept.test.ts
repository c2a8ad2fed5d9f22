// Only frames for the director (bpf/lvs_l2.h): a frame to a virtual service is forwarded only
// when its destination MAC is one the ingress interface accepts (lvs_l2_addrs), and leaves with
// the egress interface's own MAC as source. Exact bytes in, exact bytes out.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { clientPacket, ether, ipv4, l4, mac, TCP, DIRECTOR_MAC } from '../lib/frames.js';
import { DirectorHarness, XDP, TEST_IFINDEX } from '../lib/director.js';
import type { AcceptedMac } from '../../src/dataplane/l2addrs.js';

const VIP4 = '10.0.0.1';
const CLIENT4 = '198.51.100.7';
const RS = { addr: '192.168.1.10', mac: '02:00:00:00:01:0a' };
const NEXTHOP_MAC = '02:00:00:00:00:99';
const UPPER_MAC = '02:00:00:00:0a:01'; // a macvlan on the director's interface
const VMAC = '00:00:5e:00:01:07'; // keepalived use_vmac, VRID 7
const FOREIGN_MAC = '02:00:00:00:0b:07'; // another host on the segment (the other director)
const OTHER_IF_MAC = '02:00:00:00:0c:01'; // accepted only on another interface

let h: DirectorHarness;

const own = (m: string, kind: AcceptedMac['kind'] = 'own', ifindex = TEST_IFINDEX): AcceptedMac => ({ ifindex, mac: m, egress: DIRECTOR_MAC, kind });

before(async () => {
  h = await DirectorHarness.load();
});
after(() => h?.close());
beforeEach(() => {
  h.reset();
  h.setCfg({ tunSrc4: '192.168.1.1', tunSrc6: '2001:db8:1::1', seed: 1, tunMtu: 1500, ttl: 64 });
  h.setAccepted([own(DIRECTOR_MAC), own(UPPER_MAC, 'upper'), own(VMAC, 'vrrp'), own(OTHER_IF_MAC, 'own', 7)]);
  h.setReal(0, { ...RS, method: 'dr' });
  h.setService({ proto: 'tcp', vip: VIP4, port: 80 }, 0, [0]);
});

const syn = (dst: string, sport = 40000) => clientPacket(CLIENT4, VIP4, { proto: 'tcp', sport, dport: 80, flags: TCP.SYN }, { dst });

/** DR output: destination = the realserver, source = the director's own MAC, nothing else changed. */
function dr(frame: Buffer): Buffer {
  const out = Buffer.from(frame);
  mac(RS.mac).copy(out, 0);
  mac(DIRECTOR_MAC).copy(out, 6);
  return out;
}

test('a frame to another host\'s MAC passes untouched, counted, with no state and no stats', () => {
  const frame = syn(FOREIGN_MAC);
  const r = h.run(frame);
  assert.equal(r.action, XDP.PASS);
  assert.deepEqual(r.out, frame);
  const c = h.counters();
  assert.equal(c.PASS_NOT_OUR_MAC, 1n);
  assert.equal(c.FWD_DR, 0n);
  assert.equal(c.CONN_NEW, 0n);
  assert.equal(h.connCount(), 0);
  assert.equal(h.svcStats(0).packets, 0n);
});

test('to the director\'s own MAC: forwarded, source = its own MAC', () => {
  const frame = syn(DIRECTOR_MAC);
  const r = h.run(frame);
  assert.equal(r.action, XDP.TX);
  assert.deepEqual(r.out, dr(frame));
  assert.equal(h.counters().FWD_DR, 1n);
});

test('to a macvlan upper\'s MAC and a VRRP vmac: forwarded with the interface\'s own MAC as source, not theirs', () => {
  for (const [i, dst] of [UPPER_MAC, VMAC].entries()) {
    const frame = syn(dst, 41000 + i);
    const r = h.run(frame);
    assert.equal(r.action, XDP.TX, dst);
    assert.deepEqual(r.out, dr(frame), dst);
    assert.equal(r.out.subarray(6, 12).toString('hex'), '020000000001');
  }
  assert.equal(h.counters().FWD_DR, 2n);
});

test('Tun takes the egress MAC from the accepted entry too', () => {
  h.setReal(1, { addr: '192.168.1.11', mac: NEXTHOP_MAC, method: 'tun' });
  h.setService({ proto: 'tcp', vip: VIP4, port: 80 }, 0, [1]);
  const r = h.run(syn(UPPER_MAC));
  assert.equal(r.action, XDP.TX);
  assert.deepEqual(r.out.subarray(0, 12), Buffer.concat([mac(NEXTHOP_MAC), mac(DIRECTOR_MAC)]));
  assert.equal(h.counters().FWD_TUN, 1n);
});

test('broadcast and multicast destinations pass, even when the map holds them', () => {
  h.setAccepted([own(DIRECTOR_MAC), own('ff:ff:ff:ff:ff:ff', 'upper'), own('01:00:5e:00:00:01', 'upper'), own('33:33:00:00:00:01', 'upper')]);
  for (const dst of ['ff:ff:ff:ff:ff:ff', '01:00:5e:00:00:01', '33:33:00:00:00:01']) {
    const frame = syn(dst);
    const r = h.run(frame);
    assert.equal(r.action, XDP.PASS, dst);
    assert.deepEqual(r.out, frame, dst);
  }
  assert.equal(h.counters().PASS_NOT_OUR_MAC, 3n);
  assert.equal(h.connCount(), 0);
});

test('a MAC accepted on another interface only is not ours on this one', () => {
  const frame = syn(OTHER_IF_MAC);
  const r = h.run(frame);
  assert.equal(r.action, XDP.PASS);
  assert.deepEqual(r.out, frame);
  assert.equal(h.counters().PASS_NOT_OUR_MAC, 1n);
});

test('traffic to no service is pass_not_vip whatever its MAC (the check comes after the lookup)', () => {
  const frame = clientPacket(CLIENT4, '10.0.0.9', { proto: 'tcp', sport: 40000, dport: 80, flags: TCP.SYN }, { dst: FOREIGN_MAC });
  const r = h.run(frame);
  assert.equal(r.action, XDP.PASS);
  assert.deepEqual(r.out, frame);
  const c = h.counters();
  assert.equal(c.PASS_NOT_VIP, 1n);
  assert.equal(c.PASS_NOT_OUR_MAC, 0n);
});

test('a non-first fragment to a foreign MAC passes although its first fragment was forwarded', () => {
  h.setService({ proto: 'udp', vip: VIP4, port: 4789 }, 1, [0]);
  const seg = l4({ proto: 'udp', sport: 7000, dport: 4789, payload: Buffer.alloc(64) }, CLIENT4, VIP4);
  const first = ether(0x0800, ipv4(CLIENT4, VIP4, seg.subarray(0, 24), { proto: 17, id: 5, df: false, mf: true }));
  const later = ether(0x0800, ipv4(CLIENT4, VIP4, seg.subarray(24), { proto: 17, id: 5, df: false, fragOffset: 24 }), { dst: FOREIGN_MAC });
  assert.equal(h.run(first).action, XDP.TX);
  const r = h.run(later);
  assert.equal(r.action, XDP.PASS);
  assert.deepEqual(r.out, later);
  const c = h.counters();
  assert.equal(c.FRAG_FOLLOW, 0n);
  assert.equal(c.PASS_NOT_OUR_MAC, 1n);
});

test('with nothing accepted nothing is forwarded', () => {
  h.setAccepted([]);
  const frame = syn(DIRECTOR_MAC);
  const r = h.run(frame);
  assert.equal(r.action, XDP.PASS);
  assert.deepEqual(r.out, frame);
});
