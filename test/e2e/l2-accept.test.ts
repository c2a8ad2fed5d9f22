// Only frames for the director, end to end. The switch floods every unicast frame (bridge
// ageing 0: it learns nothing), so the director's port sees frames addressed to other hosts, as
// behind a switch flooding unknown unicast. A second host (c2, standing in for the other
// director of a pair) sends DR frames to the realserver's MAC with the VIP as destination: the
// realserver must get each of them once, not a second copy forwarded by this director. A
// macvlan upper with a VRRP virtual MAC (keepalived's use_vmac) created after the attach is
// accepted from the next command on, and frames to it are forwarded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { shIn } from '../../src/lab/index.js';
import { NEEDS_ROOT, useLab, standardSetup, serviceRules, url } from './helpers.js';

const VMAC = '00:00:5e:00:01:07';
const PORT = 9999; // no listener on the realserver: every datagram it receives is a Udp NoPorts

const lab = useLab('l2', { clients: 2, clientAddresses: 1, realservers: 1 }, async (l) => {
  await standardSetup(l, { dr: true });
  const reals = [{ addr: l.realservers[0]!.v4, method: 'g' as const, weight: 1 }];
  await l.lvsOk(['-R'], l.director.ns, [serviceRules('tcp', l.vips.dr4, 80, 'mh', reals), serviceRules('udp', l.vips.dr4, PORT, 'mh', reals), ''].join('\n'));
  await shIn(l.net, 'ip link set br0 type bridge ageing_time 0');
});

// ip, not /sys/class/net: nsenter --net does not remount sysfs, which shows the host's interfaces.
const macOf = async (ns: string, dev = 'eth0') => (JSON.parse(await shIn(ns, `ip -j link show dev ${dev}`)) as { address: string }[])[0]!.address;
const noPorts = async (ns: string) => {
  const lines = (await shIn(ns, 'cat /proc/net/snmp')).split('\n').filter((x) => x.startsWith('Udp:'));
  const names = lines[0]!.split(/\s+/);
  return Number(lines[1]!.split(/\s+/)[names.indexOf('NoPorts')]);
};
const counters = async (l: ReturnType<typeof lab>): Promise<Record<string, number>> => {
  const v = JSON.parse(await l.lvsOk(['stats', '--json'])) as { counters: Record<string, { value: string | number }> };
  return Object.fromEntries(Object.entries(v.counters).map(([k, c]) => [k, Number(c.value)]));
};

test('frames flooded to another host\'s MAC are not forwarded: the realserver gets each datagram once', { skip: NEEDS_ROOT, timeout: 120_000 }, async () => {
  const l = lab();
  const rs = l.realservers[0]!;
  const other = l.clients[1]!;
  const rsMac = await macOf(rs.ns);
  const before = await noPorts(rs.ns);
  const passed0 = (await counters(l)).pass_not_our_mac!;
  // c2 plays a director that already forwarded by DR: IP destination the VIP, MAC the realserver's.
  await shIn(other.ns, `ip neigh replace ${l.vips.dr4} lladdr ${rsMac} dev eth0 nud permanent`);
  const N = 200;
  await shIn(other.ns, `python3 -c "
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(${N}):
    s.sendto(b'x' * 32, ('${l.vips.dr4}', ${PORT}))
    time.sleep(0.001)
"`);
  await new Promise((r) => setTimeout(r, 300));
  const got = (await noPorts(rs.ns)) - before;
  assert.equal(got, N, `the realserver received ${got} datagrams for ${N} sent (a second copy means the director forwarded frames addressed to it)`);
  const passed = (await counters(l)).pass_not_our_mac! - passed0;
  assert.ok(passed >= N, `pass_not_our_mac rose by ${passed}, expected at least ${N}`);
  // Clients that address the director still reach the service through the flooding switch.
  const names = await l.curl(url(l.vips.dr4), { count: 5 });
  assert.deepEqual(names, ['rs1', 'rs1', 'rs1', 'rs1', 'rs1']);
});

test('a VRRP vmac macvlan created after attach is accepted from the next command on, and frames to it are forwarded', { skip: NEEDS_ROOT, timeout: 120_000 }, async () => {
  const l = lab();
  const c = l.clients[0]!;
  await shIn(l.director.ns, `ip link add vrrp.7 link eth0 address ${VMAC} type macvlan mode bridge && ip link set vrrp.7 up`);
  const eth0Mac = await macOf(l.director.ns);
  const stale = await l.lvsOk(['status']);
  assert.ok(!stale.includes(VMAC), stale);
  // Any change command reads the interfaces again.
  await l.lvsOk(['-E', '-t', `${l.vips.dr4}:80`, '-s', 'mh']);
  const st = await l.lvsOk(['status']);
  assert.match(st, new RegExp(`accepts +eth0: .*${VMAC} \\(vrrp\\).*; sends from ${eth0Mac}`), st);
  assert.match(st, new RegExp(`${eth0Mac} \\(own\\)`), st);
  await shIn(c.ns, `ip neigh replace ${l.vips.dr4} lladdr ${VMAC} dev eth0 nud permanent`);
  const fwd0 = (await counters(l)).fwd_dr!;
  try {
    const names = await l.curl(url(l.vips.dr4), { count: 5 });
    assert.deepEqual(names, ['rs1', 'rs1', 'rs1', 'rs1', 'rs1']);
  } finally {
    await shIn(c.ns, `ip neigh del ${l.vips.dr4} dev eth0 || true`);
  }
  assert.ok((await counters(l)).fwd_dr! - fwd0 >= 10, 'the requests went through the director');
  // The macvlan goes: so does its MAC, at the next command.
  await shIn(l.director.ns, 'ip link del vrrp.7');
  await l.lvsOk(['-E', '-t', `${l.vips.dr4}:80`, '-s', 'mh']);
  assert.ok(!(await l.lvsOk(['status'])).includes(VMAC));
});
