// Strict rp_filter with LVS-DR, made on purpose: the realserver receives clients' packets on eth0
// (from the director) while its default route, the way back to the clients, leaves by eth1. With
// rp_filter 1 the kernel drops every such packet (TcpExt IPReversePathFilter counts them). `lvs-xdp
// realserver check --mode dr --dev eth0` names the interface, the effective value and the command
// that fixes it (exit 1); after the fix as printed the packets are delivered and check is ok.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { withNetns, vethPair, uniqueName, type Netns } from '../lib/netns.js';
import { repoRoot } from '../lib/paths.js';

const ROOT = repoRoot();
const VIP = '10.80.100.1';
const CLIENT = '192.0.2.10';

/** A counter of /proc/net/netstat or /proc/net/snmp ('TcpExt', 'IPReversePathFilter'). */
function counter(ns: Netns, file: 'netstat' | 'snmp', group: string, name: string): number {
  const lines = ns.exec('cat', [`/proc/net/${file}`]).split('\n').filter((l) => l.startsWith(`${group}:`));
  const names = lines[0]!.split(/\s+/);
  return Number(lines[1]!.split(/\s+/)[names.indexOf(name)]);
}

test('realserver check (DR): strict rp_filter where clients arrive, route back elsewhere, is named with its fix; exit 1', { skip: process.getuid?.() !== 0 ? 'needs root' : false, timeout: 60_000 }, async () => {
  await withNetns(['lvs3d', 'lvs3g', 'lvs3r'], async ([d, g, r]) => {
    const [ra, rb, da, gb] = [uniqueName('lvs3'), uniqueName('lvs3'), uniqueName('lvs3'), uniqueName('lvs3')];
    vethPair(r!, ra, d!, da); // toward the director: DR traffic arrives here
    vethPair(r!, rb, g!, gb); // toward the router: the default route
    r!.ip('addr', 'add', '10.80.1.2/24', 'dev', ra);
    r!.ip('addr', 'add', '10.80.2.2/24', 'dev', rb);
    d!.ip('addr', 'add', '10.80.1.1/24', 'dev', da);
    g!.ip('addr', 'add', '10.80.2.1/24', 'dev', gb);
    r!.ip('route', 'add', 'default', 'via', '10.80.2.1');
    r!.ip('addr', 'add', `${VIP}/32`, 'dev', 'lo');
    for (const [k, v] of [['all/arp_ignore', 1], ['all/arp_announce', 2], ['all/rp_filter', 1], [`${ra}/rp_filter`, 0], [`${rb}/rp_filter`, 0]] as const) {
      r!.setSysctl(`net/ipv4/conf/${k}`, v);
    }
    // The director's side: a client address, and the VIP routed to the realserver (as DR sends it).
    d!.ip('addr', 'add', `${CLIENT}/32`, 'dev', 'lo');
    d!.setSysctl('net/ipv4/conf/all/arp_announce', 2); // its ARP from its own address, as a director's
    d!.ip('route', 'add', `${VIP}/32`, 'via', '10.80.1.2');
    const ping = () => d!.run('ping', ['-c', '3', '-i', '0.2', '-W', '1', '-I', CLIENT, VIP]);
    const drops = () => counter(r!, 'netstat', 'TcpExt', 'IPReversePathFilter');
    const echos = () => counter(r!, 'snmp', 'Icmp', 'InEchos');

    const [drop0, echo0] = [drops(), echos()];
    ping();
    assert.ok(drops() - drop0 >= 3, `dropped by rp_filter: ${drops() - drop0}`);
    assert.equal(echos() - echo0, 0, 'nothing delivered');

    const cli = (...args: string[]) => r!.run(process.execPath, [join(ROOT, 'bin', 'lvs-xdp.js'), 'realserver', 'check', '--mode', 'dr', '--vip', VIP, '--dev', ra, ...args]);
    const bad = cli();
    console.log(bad.stdout);
    assert.equal(bad.status, 1);
    const items = (JSON.parse(cli('--json').stdout) as { items: { id: string; status: string; message: string; fix: string[] }[] }).items;
    const wrong = items.filter((i) => i.status === 'wrong');
    assert.deepEqual(wrong.map((i) => [i.id, i.fix]), [['rp_filter', [`sysctl -w net.ipv4.conf.${ra}.rp_filter=2`]]]);
    assert.match(wrong[0]!.message, new RegExp(`effective 1 \\(all 1, ${ra} 0\\) \\(strict\\): DR packets arrive on ${ra} but the route back to clients \\(the default route\\) leaves by ${rb}`));

    const [, kv] = wrong[0]!.fix[0]!.split(' -w ');
    const [name, value] = kv!.split('=');
    r!.setSysctl(name!.replace(/\./g, '/'), value!);
    const [drop1, echo1] = [drops(), echos()];
    ping();
    assert.equal(drops() - drop1, 0, 'no more rp_filter drops');
    assert.ok(echos() - echo1 >= 3, `delivered: ${echos() - echo1}`);
    const ok = cli();
    assert.equal(ok.status, 0, ok.stdout);
  });
});
