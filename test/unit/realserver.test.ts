// The realserver rules as pure functions (src/realserver/model.ts): argument parsing, which
// interface, which sysctl writes, and what check reports with which fix, on synthetic
// observations of the kernel's state.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  checkItems, confKey, effective, formatCheck, parseMode, parseVips, plannedSysctls, resolveDev, sysctlCommand, tunnelMss,
  type CheckItem, type DecapStatus, type Observed,
} from '../../src/realserver/model.js';
import { ConfigError, ExitCode, InterfaceNotFoundError } from '../../src/errors.js';

const LINKS = [
  { ifname: 'lo', ifindex: 1, up: true, mtu: 65536 },
  { ifname: 'eth0', ifindex: 2, up: true, mtu: 1500 },
];

function sysctls(v: Partial<Record<'ai' | 'aa' | 'rp' | 'dai' | 'daa' | 'drp', number>> = {}, dev = 'eth0'): Record<string, number> {
  return {
    [confKey('all', 'arp_ignore')]: v.ai ?? 0,
    [confKey('all', 'arp_announce')]: v.aa ?? 0,
    [confKey('all', 'rp_filter')]: v.rp ?? 0,
    [confKey(dev, 'arp_ignore')]: v.dai ?? 0,
    [confKey(dev, 'arp_announce')]: v.daa ?? 0,
    [confKey(dev, 'rp_filter')]: v.drp ?? 0,
  };
}

const GOOD_DECAP: DecapStatus = {
  pinned: true, linkIfname: 'eth0', linkProgId: 42, devProgId: 42, devProgName: 'lvs_decap',
  vips: new Map([['10.0.0.1', { packets: 3n, bytes: 180n }], ['2001:db8::1', { packets: 0n, bytes: 0n }]]),
};

/** A realserver that is right for both modes and VIPs 10.0.0.1 and 2001:db8::1. */
function good(over: Partial<Observed> = {}): Observed {
  return {
    dev: 'eth0',
    links: LINKS,
    addrs: [
      { ifname: 'lo', family: 4, local: '127.0.0.1', prefixlen: 8, scope: 'host' },
      { ifname: 'lo', family: 4, local: '10.0.0.1', prefixlen: 32, scope: 'global' },
      { ifname: 'lo', family: 6, local: '2001:db8::1', prefixlen: 128, scope: 'global' },
      { ifname: 'eth0', family: 4, local: '192.168.1.10', prefixlen: 24, scope: 'global' },
    ],
    sysctl: sysctls({ ai: 1, aa: 2 }),
    defaultRoutes: [{ family: 4, dev: 'eth0', gateway: '192.168.1.1', advmss: 1400 }],
    decap: GOOD_DECAP,
    ...over,
  };
}

const VIPS = parseVips(['10.0.0.1', '2001:db8::1']);
const VIP4 = parseVips(['10.0.0.1']);
const wrong = (items: CheckItem[]) => items.filter((i) => i.status === 'wrong');
const item = (items: CheckItem[], id: string) => {
  const i = items.find((x) => x.id === id);
  assert.ok(i, `item ${id} reported`);
  return i;
};

test('parseVips: canonical text, host prefix per family, duplicates merged', () => {
  const v = parseVips(['2001:DB8:0:0::1', '10.0.0.1', '2001:db8::1']);
  assert.deepEqual(v.map((x) => [x.text, x.prefix, x.addr.family]), [['2001:db8::1', 128, 6], ['10.0.0.1', 32, 4]]);
});

test('parseVips: refuses what cannot be a VIP, naming --vip', () => {
  for (const bad of ['10.0.0', 'vip', '0.0.0.0', '127.0.0.2', '224.0.0.5', '255.255.255.255', '::', '::1', 'fe80::1', 'ff02::1', '::ffff:10.0.0.1', '10.0.0.1/32']) {
    assert.throws(() => parseVips([bad]), (e: unknown) => e instanceof ConfigError && e.field === '--vip' && e.exitCode === ExitCode.USAGE, bad);
  }
  assert.throws(() => parseVips([]), /at least one VIP/);
});

test('parseMode: dr or tun, else a usage error naming --mode', () => {
  assert.equal(parseMode('dr'), 'dr');
  assert.equal(parseMode('tun'), 'tun');
  assert.throws(() => parseMode('nat'), (e: unknown) => e instanceof ConfigError && e.field === '--mode' && /dr or tun/.test(e.message));
  assert.throws(() => parseMode(undefined), ConfigError);
});

test('resolveDev: --dev if it exists, else the default route (IPv4 first), else the only interface', () => {
  const links = [...LINKS, { ifname: 'eth1', ifindex: 3, up: true, mtu: 1500 }];
  assert.equal(resolveDev('eth1', links, []), 'eth1');
  assert.throws(() => resolveDev('eth9', links, []), InterfaceNotFoundError);
  assert.throws(() => resolveDev('a/b', links, []), (e: unknown) => e instanceof ConfigError && e.field === '--dev');
  assert.equal(resolveDev(undefined, links, [{ family: 6, dev: 'eth1' }, { family: 4, dev: 'eth0' }]), 'eth0');
  assert.equal(resolveDev(undefined, links, [{ family: 6, dev: 'eth1' }]), 'eth1');
  assert.equal(resolveDev(undefined, LINKS, []), 'eth0');
  assert.throws(() => resolveDev(undefined, links, []), (e: unknown) => e instanceof ConfigError && e.field === '--dev' && /eth0, eth1/.test(e.message));
});

test('effective value is max(all, dev), as the kernel computes it for these three', () => {
  const o = good({ sysctl: sysctls({ ai: 0, dai: 3, rp: 1, drp: 2 }) });
  assert.deepEqual(effective(o, 'arp_ignore'), { value: 3, all: 0, dev: 3 });
  assert.deepEqual(effective(o, 'rp_filter'), { value: 2, all: 1, dev: 2 });
});

test('planned sysctl writes: defaults, a bad per-device value, IPv6 only, DR vs Tun', () => {
  assert.deepEqual(plannedSysctls(good({ sysctl: sysctls() }), 'dr', VIPS), [
    { key: 'net/ipv4/conf/all/arp_ignore', value: 1, reason: 'arp' },
    { key: 'net/ipv4/conf/all/arp_announce', value: 2, reason: 'arp' },
  ]);
  // arp_ignore 3 on the device would win over all=1: the device is set too.
  assert.deepEqual(plannedSysctls(good({ sysctl: sysctls({ aa: 2, dai: 3 }) }), 'dr', VIP4), [
    { key: 'net/ipv4/conf/all/arp_ignore', value: 1, reason: 'arp' },
    { key: 'net/ipv4/conf/eth0/arp_ignore', value: 1, reason: 'arp' },
  ]);
  assert.deepEqual(plannedSysctls(good({ sysctl: sysctls({ ai: 8, aa: 2 }) }), 'dr', VIP4), []);
  assert.deepEqual(plannedSysctls(good({ sysctl: sysctls() }), 'tun', parseVips(['2001:db8::1'])), [], 'IPv6 needs no sysctl');
  assert.deepEqual(plannedSysctls(good({ sysctl: sysctls({ ai: 1, aa: 2, rp: 1 }) }), 'dr', VIP4), [], 'DR leaves rp_filter');
  assert.deepEqual(plannedSysctls(good({ sysctl: sysctls({ ai: 1, aa: 2, rp: 1 }) }), 'tun', VIP4), [
    { key: 'net/ipv4/conf/eth0/rp_filter', value: 2, reason: 'rp_filter' },
  ]);
  assert.deepEqual(plannedSysctls(good({ sysctl: sysctls({ ai: 1, aa: 2, rp: 0, drp: 1 }) }), 'tun', VIP4), [
    { key: 'net/ipv4/conf/eth0/rp_filter', value: 2, reason: 'rp_filter' },
  ]);
});

test('for every combination of values, applying the plan makes check happy and the plan empty', () => {
  let combos = 0;
  for (const ai of [0, 1, 2, 3, 4, 8]) for (const dai of [0, 1, 3, 5, 8]) for (const aa of [0, 1, 2]) for (const daa of [0, 1, 2]) {
    for (const rp of [0, 1, 2]) for (const drp of [0, 1, 2]) {
      const o = good({ sysctl: sysctls({ ai, dai, aa, daa, rp, drp }) });
      const after = { ...o, sysctl: { ...o.sysctl } };
      for (const w of plannedSysctls(o, 'tun', VIP4)) after.sysctl[w.key] = w.value;
      assert.deepEqual(plannedSysctls(after, 'tun', VIP4), [], JSON.stringify({ ai, dai, aa, daa, rp, drp }));
      assert.deepEqual(wrong(checkItems(after, 'tun', VIP4)), []);
      // And check's verdict on the sysctls matches the kernel's rules before the writes.
      const items = checkItems(o, 'tun', VIP4);
      assert.equal(item(items, 'arp_ignore').status === 'ok', [1, 2, 8].includes(Math.max(ai, dai)));
      assert.equal(item(items, 'arp_announce').status === 'ok', Math.max(aa, daa) === 2);
      assert.equal(item(items, 'rp_filter').status === 'ok', Math.max(rp, drp) !== 1);
      combos++;
    }
  }
  assert.equal(combos, 6 * 5 * 3 * 3 * 3 * 3);
});

test('check on a right realserver: everything ok, in a stable order', () => {
  const items = checkItems(good(), 'tun', VIPS);
  assert.deepEqual(wrong(items), []);
  assert.deepEqual(items.map((i) => i.id), [
    'lo-up', 'vip:10.0.0.1', 'vip:2001:db8::1', 'arp_ignore', 'arp_announce', 'rp_filter', 'nd:2001:db8::1',
    'decap', 'decap-vip:10.0.0.1', 'decap-vip:2001:db8::1', 'mss:4', 'mss:6',
  ]);
  assert.match(item(items, 'decap-vip:10.0.0.1').message, /3 packets, 180 bytes/);
  assert.deepEqual(checkItems(good(), 'dr', VIPS).map((i) => i.id), ['lo-up', 'vip:10.0.0.1', 'vip:2001:db8::1', 'arp_ignore', 'arp_announce', 'rp_filter', 'nd:2001:db8::1']);
});

test('check: a missing VIP and arp_ignore 0 are reported with exactly their fixes', () => {
  const o = good({ sysctl: sysctls({ ai: 0, aa: 2 }) });
  o.addrs = o.addrs.filter((a) => a.local !== '10.0.0.1');
  const w = wrong(checkItems(o, 'dr', VIPS));
  assert.deepEqual(w.map((i) => [i.id, i.fix]), [
    ['vip:10.0.0.1', ['ip addr add 10.0.0.1/32 dev lo']],
    ['arp_ignore', ['sysctl -w net.ipv4.conf.all.arp_ignore=1']],
  ]);
});

test('check: VIP with a wider prefix on lo, on another interface, IPv6 fix with /128, lo down', () => {
  const o = good({ links: [{ ...LINKS[0]!, up: false }, LINKS[1]!] });
  o.addrs = [
    ...o.addrs.filter((a) => a.local !== '10.0.0.1' && a.local !== '2001:db8::1'),
    { ifname: 'lo', family: 4, local: '10.0.0.1', prefixlen: 24, scope: 'global' },
    { ifname: 'eth0', family: 4, local: '10.0.0.1', prefixlen: 32, scope: 'global' },
  ];
  const items = checkItems(o, 'dr', VIPS);
  assert.deepEqual(item(items, 'lo-up').fix, ['ip link set dev lo up']);
  assert.deepEqual(item(items, 'vip:10.0.0.1').fix, [
    'ip addr del 10.0.0.1/32 dev eth0', 'ip addr del 10.0.0.1/24 dev lo', 'ip addr add 10.0.0.1/32 dev lo',
  ]);
  assert.deepEqual(item(items, 'vip:2001:db8::1').fix, ['ip addr add 2001:db8::1/128 dev lo']);
  assert.equal(wrong(items).length, 3);
});

test('check (Tun): strict rp_filter, and a device name with a dot in the sysctl fix', () => {
  const o = good({ dev: 'eth0.7', sysctl: sysctls({ ai: 1, aa: 2, rp: 1 }, 'eth0.7'), links: [...LINKS, { ifname: 'eth0.7', ifindex: 3, up: true, mtu: 1500 }] });
  o.decap = { ...GOOD_DECAP, linkIfname: 'eth0.7' };
  const w = wrong(checkItems(o, 'tun', VIP4));
  assert.deepEqual(w.map((i) => [i.id, i.fix]), [['rp_filter', ['sysctl -w net/ipv4/conf/eth0.7/rp_filter=2']]]);
  assert.equal(sysctlCommand('net/ipv4/conf/all/arp_ignore', 1), 'sysctl -w net.ipv4.conf.all.arp_ignore=1');
});

test('check (Tun): decapsulation missing, foreign program, other interface, VIP not in the map', () => {
  const setupCmd = 'lvs-xdp realserver setup --mode tun --vip 10.0.0.1 --dev eth0';
  const none = checkItems(good({ decap: { pinned: false, devProgId: 0, vips: null } }), 'tun', VIP4);
  assert.deepEqual(wrong(none).map((i) => [i.id, i.fix]), [['decap', [setupCmd]], ['decap-vip:10.0.0.1', [setupCmd]]]);
  const foreign = checkItems(good({ decap: { pinned: false, devProgId: 7, devProgName: 'xdp_fw', vips: null } }), 'tun', VIP4);
  assert.match(item(foreign, 'decap').message, /another XDP program \(id 7, xdp_fw\)/);
  assert.deepEqual(item(foreign, 'decap').fix, ['ip link set dev eth0 xdp off', setupCmd]);
  const elsewhere = checkItems(good({ decap: { ...GOOD_DECAP, linkIfname: 'eth1', devProgId: 0 } }), 'tun', VIP4);
  assert.match(item(elsewhere, 'decap').message, /attached to eth1, not eth0/);
  const noVip = checkItems(good({ decap: { ...GOOD_DECAP, vips: new Map() } }), 'tun', VIP4);
  assert.deepEqual(wrong(noVip).map((i) => i.id), ['decap-vip:10.0.0.1']);
});

test('MSS for the tunnel: MTU minus the outer header (20 or 40) minus the inner IP and TCP headers', () => {
  assert.equal(tunnelMss(1500, 4, 4), 1440);
  assert.equal(tunnelMss(1500, 4, 6), 1420);
  assert.equal(tunnelMss(1500, 6, 4), 1420);
  assert.equal(tunnelMss(1500, 6, 6), 1400);
  assert.equal(tunnelMss(9000, 4, 4), 8940);
  // IPv4-only realserver: tunnels come over IPv4; a default route advertising 1400 is fine.
  assert.equal(item(checkItems(good(), 'tun', VIP4), 'mss:4').status, 'ok');
  // Advertising 1460 is advice (not wrong: the director's ICMP too-big keeps PMTUD working).
  const o = good({ defaultRoutes: [{ family: 4, dev: 'eth0', gateway: '192.168.1.1', advmss: 1460 }] });
  const mss = item(checkItems(o, 'tun', VIP4), 'mss:4');
  assert.equal(mss.status, 'advice');
  assert.match(mss.message, /outer IPv4 header costs 20 bytes.*MSS <= 1500 - 20 - 20 - 20 = 1440/);
  assert.deepEqual(mss.fix, ['ip route change default via 192.168.1.1 dev eth0 advmss 1440']);
  assert.match(mss.alternatives![0]!, /TCPMSS --set-mss 1440/);
  // An IPv6 address of its own: the director may tunnel over IPv6 (40 bytes).
  o.addrs = [...o.addrs, { ifname: 'eth0', family: 6, local: '2001:db8:1::10', prefixlen: 64, scope: 'global' }];
  assert.match(item(checkItems(o, 'tun', VIPS), 'mss:6').message, /= 1400/);
  assert.match(item(checkItems(o, 'tun', VIPS), 'mss:6').fix[0]!, /^ip -6 route change ROUTE-TO-CLIENTS advmss 1400$/);
});

test('formatCheck: one line per requirement, fixes indented below', () => {
  const o = good({ sysctl: sysctls({ ai: 0, aa: 2 }) });
  const text = formatCheck(checkItems(o, 'dr', VIP4));
  assert.equal(text, [
    'ok     lo is up',
    'ok     VIP 10.0.0.1 on lo as /32',
    'wrong  arp_ignore effective 0 (all 0, eth0 0): the realserver answers ARP for the VIP',
    '       fix: sysctl -w net.ipv4.conf.all.arp_ignore=1',
    'ok     arp_announce effective 2 (all 2, eth0 0): the VIP is never an ARP source',
    'ok     rp_filter effective 0 (all 0, eth0 0): DR packets from any client are accepted on eth0',
  ].join('\n'));
});

const ETH1 = { ifname: 'eth1', ifindex: 3, up: true, mtu: 1500 };

test('check looks at every interface: a second NIC that answers ARP for the VIP is named with its fix', () => {
  // The HOWTO mistake: arp_ignore set on the first NIC only; all and eth1 stay 0.
  const o = good({ links: [...LINKS, ETH1], sysctl: { ...sysctls({ aa: 2, dai: 1 }), ...sysctls({ aa: 2 }, 'eth1') } });
  const items = checkItems(o, 'dr', VIP4);
  assert.equal(item(items, 'arp_ignore').status, 'ok', 'eth0 alone is right');
  assert.deepEqual(wrong(items).map((i) => [i.id, i.fix]), [['arp_ignore:eth1', ['sysctl -w net.ipv4.conf.all.arp_ignore=1']]]);
  assert.match(item(items, 'arp_ignore:eth1').message, /eth1 answers ARP for the VIP/);
  // An own value of 3..7 wins over all=1: the interface itself is set too (setup does the same).
  const own = good({ links: [...LINKS, ETH1], sysctl: { ...sysctls({ ai: 1, aa: 2 }), ...sysctls({ ai: 1, aa: 2, dai: 5 }, 'eth1') } });
  assert.deepEqual(wrong(checkItems(own, 'dr', VIP4)).map((i) => [i.id, i.fix]), [['arp_ignore:eth1', ['sysctl -w net.ipv4.conf.eth1.arp_ignore=1']]]);
  assert.deepEqual(plannedSysctls(own, 'dr', VIP4), [{ key: 'net/ipv4/conf/eth1/arp_ignore', value: 1, reason: 'arp' }]);
  // NOARP interfaces (tunnels) never answer: not checked.
  const noarp = good({ links: [...LINKS, { ...ETH1, noarp: true }], sysctl: { ...sysctls({ aa: 2, dai: 1 }) } });
  assert.deepEqual(wrong(checkItems(noarp, 'dr', VIP4)), []);
  // arp_announce below 2 on a second NIC.
  const ann = good({ links: [...LINKS, ETH1], sysctl: { ...sysctls({ ai: 1, daa: 2 }), ...sysctls({ ai: 1 }, 'eth1') } });
  assert.deepEqual(wrong(checkItems(ann, 'dr', VIP4)).map((i) => [i.id, i.fix]), [['arp_announce:eth1', ['sysctl -w net.ipv4.conf.all.arp_announce=2']]]);
});

test('check (DR): strict rp_filter where clients arrive and the route back leaves elsewhere', () => {
  const twoNic = (rp: number, drp: number) => good({
    links: [...LINKS, ETH1], sysctl: { ...sysctls({ ai: 1, aa: 2, rp, drp }), ...sysctls({ ai: 1, aa: 2, rp }, 'eth1') },
    defaultRoutes: [{ family: 4, dev: 'eth1', gateway: '192.168.2.1' }],
  });
  const w = wrong(checkItems(twoNic(1, 0), 'dr', VIP4));
  assert.deepEqual(w.map((i) => [i.id, i.fix]), [['rp_filter', ['sysctl -w net.ipv4.conf.eth0.rp_filter=2']]]);
  assert.match(w[0]!.message, /arrive on eth0 but the route back to clients \(the default route\) leaves by eth1/);
  assert.deepEqual(wrong(checkItems(twoNic(0, 1), 'dr', VIP4)).map((i) => i.id), ['rp_filter'], 'the device alone strict');
  assert.deepEqual(wrong(checkItems(twoNic(1, 2), 'dr', VIP4)), [], 'loose on the device wins over all=1');
  // The default route leaves by the device: strict is fine for the clients it covers.
  assert.equal(item(checkItems(good({ sysctl: sysctls({ ai: 1, aa: 2, rp: 1 }) }), 'dr', VIP4), 'rp_filter').status, 'ok');
});

test('check (IPv6): proxy NDP for the VIP and a dadfailed VIP are wrong; disabled IPv6 on lo is named', () => {
  const V6 = parseVips(['2001:db8::1']);
  const proxy = good({ proxyNd: [{ ifname: 'eth0', dst: '2001:db8::1' }] });
  assert.deepEqual(wrong(checkItems(proxy, 'dr', V6)).map((i) => [i.id, i.fix]), [['nd:2001:db8::1', ['ip -6 neigh del proxy 2001:db8::1 dev eth0']]]);
  const failed = good();
  failed.addrs = failed.addrs.map((a) => (a.local === '2001:db8::1' ? { ...a, dadfailed: true } : a));
  assert.match(item(checkItems(failed, 'dr', V6), 'nd:2001:db8::1').message, /dadfailed/);
  const off = good({ sysctl: { ...sysctls({ ai: 1, aa: 2 }), 'net/ipv6/conf/lo/disable_ipv6': 1 } });
  off.addrs = off.addrs.filter((a) => a.local !== '2001:db8::1');
  assert.deepEqual(item(checkItems(off, 'dr', V6), 'vip:2001:db8::1').fix, ['sysctl -w net.ipv6.conf.lo.disable_ipv6=0', 'ip addr add 2001:db8::1/128 dev lo']);
});
