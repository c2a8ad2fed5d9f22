// The accepted destination MACs of attached interfaces (src/dataplane/l2addrs.ts), from links as
// `ip -j -d link` describes them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { acceptedSet, isUnicastMac, type LinkDesc } from '../../src/dataplane/l2addrs.js';
import { acceptStep } from '../../src/director/plan.js';

const L = (ifindex: number, ifname: string, address: string, extra: Partial<LinkDesc> = {}): LinkDesc => ({ ifindex, ifname, address, ...extra });
const show = (xs: ReturnType<typeof acceptedSet>) => xs.map((a) => `${a.ifindex} ${a.mac} ${a.kind} ${a.dev} via ${a.egress}`);

test('own MAC, macvlan and VRRP vmac uppers; a veth peer and a macvlan on another interface are not uppers', () => {
  const links = [
    L(1, 'lo', '00:00:00:00:00:00'),
    L(2, 'eth0', '02:00:00:00:00:01', { link: 'peer0', linkinfo: { info_kind: 'veth' } }),
    L(3, 'peer0', '02:00:00:00:00:99', { link: 'eth0', linkinfo: { info_kind: 'veth' } }),
    L(4, 'mv0', '02:00:00:00:0a:01', { link: 'eth0', linkinfo: { info_kind: 'macvlan' } }),
    L(5, 'vrrp.7', '00:00:5E:00:01:07', { link: 'eth0', linkinfo: { info_kind: 'macvlan' } }),
    L(6, 'eth1', '02:00:00:00:00:02'),
    L(7, 'mv1', '02:00:00:00:0b:01', { link: 'eth1', linkinfo: { info_kind: 'macvlan' } }),
  ];
  assert.deepEqual(show(acceptedSet(links, ['eth0'])), [
    '2 00:00:5e:00:01:07 vrrp vrrp.7 via 02:00:00:00:00:01',
    '2 02:00:00:00:00:01 own eth0 via 02:00:00:00:00:01',
    '2 02:00:00:00:0a:01 upper mv0 via 02:00:00:00:00:01',
  ]);
});

test('a bridge port accepts the bridge and what is stacked on it; a bond accepts its slaves, under their ifindexes too', () => {
  const links = [
    L(2, 'eth0', '02:00:00:00:00:01', { master: 'br0' }),
    L(3, 'br0', '02:00:00:00:00:b0', { linkinfo: { info_kind: 'bridge' } }),
    L(4, 'mvb', '02:00:00:00:00:b1', { link: 'br0', linkinfo: { info_kind: 'macvlan' } }),
    L(5, 'bond0', '02:00:00:00:00:c0', { linkinfo: { info_kind: 'bond' } }),
    L(6, 'eth2', '02:00:00:00:00:c0', { master: 'bond0' }),
    L(7, 'eth3', '02:00:00:00:00:c3', { master: 'bond0' }),
  ];
  assert.deepEqual(show(acceptedSet(links, ['eth0'])), [
    '2 02:00:00:00:00:01 own eth0 via 02:00:00:00:00:01',
    '2 02:00:00:00:00:b0 upper br0 via 02:00:00:00:00:01',
    '2 02:00:00:00:00:b1 upper mvb via 02:00:00:00:00:01',
  ]);
  assert.deepEqual(show(acceptedSet(links, ['bond0'])), [
    '5 02:00:00:00:00:c0 own bond0 via 02:00:00:00:00:c0',
    '5 02:00:00:00:00:c3 lower eth3 via 02:00:00:00:00:c0',
    '6 02:00:00:00:00:c0 own bond0 via 02:00:00:00:00:c0',
    '6 02:00:00:00:00:c3 lower eth3 via 02:00:00:00:00:c0',
    '7 02:00:00:00:00:c0 own bond0 via 02:00:00:00:00:c0',
    '7 02:00:00:00:00:c3 lower eth3 via 02:00:00:00:00:c0',
  ]);
  assert.deepEqual(acceptedSet(links, ['gone']), []);
});

test('group and zero MACs are never accepted', () => {
  for (const m of ['ff:ff:ff:ff:ff:ff', '01:00:5e:00:00:01', '33:33:00:00:00:01', '00:00:00:00:00:00', 'nonsense']) assert.equal(isUnicastMac(m), false, m);
  const links = [L(2, 'eth0', '02:00:00:00:00:01'), L(3, 'odd', '03:00:00:00:00:01', { link: 'eth0', linkinfo: { info_kind: 'macvlan' } })];
  assert.deepEqual(show(acceptedSet(links, ['eth0'])), ['2 02:00:00:00:00:01 own eth0 via 02:00:00:00:00:01']);
});

test('the l2-addrs step adds and changes before it removes, and is absent when nothing changed', () => {
  const a = { ifindex: 2, mac: '02:00:00:00:00:01', egress: '02:00:00:00:00:01', kind: 'own' as const };
  const b = { ifindex: 2, mac: '02:00:00:00:0a:01', egress: '02:00:00:00:00:01', kind: 'upper' as const };
  assert.equal(acceptStep([a, b], [b, a]), undefined);
  const moved = { ...a, egress: '02:00:00:00:00:09' };
  assert.deepEqual(acceptStep([a, b], [moved]), { op: 'l2-addrs', put: [moved], remove: [{ ifindex: 2, mac: b.mac }] });
});
