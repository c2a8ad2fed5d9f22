// The accepted destination MACs of attached interfaces (src/dataplane/l2addrs.ts), from links as
// `ip -j -d link` describes them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { acceptedSet, isUnicastMac, placeSlots, ifEntries, encodeL2If, decodeL2If, type LinkDesc, type AcceptedMac, type AcceptedIf } from '../../src/dataplane/l2addrs.js';
import { ABI } from '../../src/abi/generated.js';
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
  const held = new Map<number, AcceptedIf>([[2, { ifindex: 2, slots: [a.mac, b.mac, '', ''], egress: a.egress, more: false }]]);
  assert.equal(acceptStep([a, b], [b, a], held), undefined);
  const moved = { ...a, mac: '02:00:00:00:00:09', egress: '02:00:00:00:00:09' };
  assert.deepEqual(acceptStep([a, b], [moved], held), {
    op: 'l2-addrs', put: [moved], ifs: [{ ifindex: 2, slots: [moved.mac, '', '', ''], egress: moved.egress, more: false }], remove: [{ ifindex: 2, mac: a.mac }, { ifindex: 2, mac: b.mac }],
  });
  // The inline entry missing (a new map, a write cut short): written though lvs_l2_addrs agrees.
  assert.deepEqual(acceptStep([a, b], [a, b], new Map())?.op, 'l2-addrs');
  // An interface that accepts nothing any more gets an empty entry (count 0).
  assert.deepEqual(acceptStep([a, b], [], held), { op: 'l2-addrs', put: [], ifs: [{ ifindex: 2, slots: [], egress: '00:00:00:00:00:00', more: false }], remove: [{ ifindex: 2, mac: a.mac }, { ifindex: 2, mac: b.mac }] });
});

const acc = (mac: string, kind: AcceptedMac['kind'] = 'upper', ifindex = 2): AcceptedMac => ({ ifindex, mac, egress: '02:00:00:00:00:01', kind });
const m = (i: number) => `02:00:00:00:0a:${String(i).padStart(2, '0')}`;

test(`slots: the own MAC first, ${ABI.LVS_L2_IF_MACS} inline, the rest in lvs_l2_addrs; a MAC that stays keeps its slot`, () => {
  assert.equal(ABI.LVS_L2_IF_MACS, 4);
  const own = acc('02:00:00:00:00:01', 'own');
  assert.deepEqual(placeSlots([], [acc(m(1)), own, acc(m(2))]), { slots: [own.mac, m(1), m(2), ''], more: false });
  assert.deepEqual(placeSlots([], [own, acc(m(1)), acc(m(2)), acc(m(3)), acc(m(4))]), { slots: [own.mac, m(1), m(2), m(3)], more: true });
  // m(1) goes, m(5) comes: m(2) and m(3) stay where a frame racing the rewrite looks for them.
  assert.deepEqual(placeSlots([own.mac, m(1), m(2), m(3)], [own, acc(m(2)), acc(m(3)), acc(m(5))]), { slots: [own.mac, m(5), m(2), m(3)], more: false });
  // A hole below the last used slot is filled with a group MAC (never compared equal) and counted.
  const e = decodeL2If(2, encodeL2If({ ifindex: 2, slots: [own.mac, '', m(3), ''], egress: own.mac, more: false }));
  assert.deepEqual(e, { ifindex: 2, slots: [own.mac, '', m(3), ''], egress: own.mac, more: false });
  const raw = encodeL2If({ ifindex: 2, slots: [own.mac, '', m(3), ''], egress: own.mac, more: true });
  assert.equal(raw.length, 40);
  assert.equal(raw.subarray(8, 14).toString('hex'), 'ffffffffffff');
  assert.equal(raw[38], 3, 'count');
  assert.equal(raw[39], 1, 'more');
});

test('lvs_l2_ifs entries: only changed interfaces, none at or above LVS_L2_IF_SLOTS, one egress per interface', () => {
  const own = acc('02:00:00:00:00:01', 'own');
  const big = acc(m(7), 'own', ABI.LVS_L2_IF_SLOTS);
  assert.deepEqual(ifEntries(new Map(), [own, big]).map((e) => e.ifindex), [2]);
  const held = new Map(ifEntries(new Map(), [own, acc(m(1))]).map((e) => [e.ifindex, e]));
  assert.deepEqual(ifEntries(held, [own, acc(m(1))]), []);
  assert.throws(() => ifEntries(new Map(), [own, { ...acc(m(1)), egress: '02:00:00:00:00:02' }]), /egress/);
});
