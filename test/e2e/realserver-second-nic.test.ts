// A realserver answering ARP for the VIP on a second NIC, made on purpose: the VIP on lo,
// arp_ignore set on eth0 only (the interface checked), `all` and the second NIC left at 0. A host
// on the second NIC's network ARPs for the VIP and gets the realserver's MAC. `lvs-xdp realserver
// check` names that interface, the effective value and the command that fixes it (exit 1); after
// the fix as printed, nobody answers and check is ok.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { withNetns, vethPair, uniqueName, type Netns } from '../lib/netns.js';
import { repoRoot } from '../lib/paths.js';

const ROOT = repoRoot();
const VIP = '10.79.100.1';

/** MACs that answer ARP for VIP on `dev` of `ns` (src/ops/neigh-probe.py, the doctor's probe). */
function arpAnswers(ns: Netns, dev: string, src: string): string[] {
  const out = ns.exec('python3', [join(ROOT, 'src', 'ops', 'neigh-probe.py'), dev, '500', src, '::', VIP]);
  return out.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { mac: string }).mac);
}

test('realserver check: a second NIC answering ARP for the VIP is named with its fix; exit 1', { skip: process.getuid?.() !== 0 ? 'needs root' : false, timeout: 60_000 }, async () => {
  await withNetns(['lvs2a', 'lvs2b', 'lvs2r'], async ([a, b, r]) => {
    const [ra, rb, ca, cb] = [uniqueName('lvs2'), uniqueName('lvs2'), uniqueName('lvs2'), uniqueName('lvs2')];
    vethPair(r!, ra, a!, ca);
    vethPair(r!, rb, b!, cb);
    r!.ip('addr', 'add', '10.79.1.2/24', 'dev', ra);
    r!.ip('addr', 'add', '10.79.2.2/24', 'dev', rb);
    a!.ip('addr', 'add', '10.79.1.1/24', 'dev', ca);
    b!.ip('addr', 'add', '10.79.2.1/24', 'dev', cb);
    r!.ip('route', 'add', 'default', 'via', '10.79.1.1');
    r!.ip('addr', 'add', `${VIP}/32`, 'dev', 'lo');
    for (const [k, v] of [['all/arp_ignore', 0], [`${ra}/arp_ignore`, 1], [`${rb}/arp_ignore`, 0], ['all/arp_announce', 2]] as const) {
      r!.setSysctl(`net/ipv4/conf/${k}`, v);
    }
    const rbMac = (JSON.parse(r!.ip('-j', 'link', 'show', rb)) as { address: string }[])[0]!.address;
    assert.deepEqual(arpAnswers(a!, ca, '10.79.1.1'), [], 'the first NIC is silent');
    assert.deepEqual(arpAnswers(b!, cb, '10.79.2.1'), [rbMac], 'the second NIC answers for the VIP on lo');

    const cli = (...args: string[]) => r!.run(process.execPath, [join(ROOT, 'bin', 'lvs-xdp.js'), 'realserver', 'check', '--mode', 'dr', '--vip', VIP, '--dev', ra, ...args]);
    const bad = cli();
    console.log(bad.stdout);
    assert.equal(bad.status, 1);
    assert.match(bad.stdout, new RegExp(`^ok     arp_ignore effective 1 \\(all 0, ${ra} 1\\): ARP for the VIP is not answered on ${ra}$`, 'm'));
    assert.match(bad.stdout, new RegExp(`^wrong  arp_ignore on ${rb} effective 0 \\(all 0, ${rb} 0\\): ${rb} answers ARP for the VIP`, 'm'));
    const items = (JSON.parse(cli('--json').stdout) as { items: { id: string; status: string; fix: string[] }[] }).items;
    const wrong = items.filter((i) => i.status === 'wrong');
    assert.deepEqual(wrong.map((i) => [i.id, i.fix]), [[`arp_ignore:${rb}`, ['sysctl -w net.ipv4.conf.all.arp_ignore=1']]]);

    // The fix as printed (sysctl -w NAME=VALUE, written the way procps would).
    const [, kv] = wrong[0]!.fix[0]!.split(' -w ');
    const [name, value] = kv!.split('=');
    r!.setSysctl(name!.replace(/\./g, '/'), value!);
    assert.deepEqual(arpAnswers(b!, cb, '10.79.2.1'), [], 'silent after the fix');
    const ok = cli();
    assert.equal(ok.status, 0, ok.stdout);
    assert.match(ok.stdout, new RegExp(`not answered on ${ra} \\(nor on ${rb}\\)`));
  });
});
