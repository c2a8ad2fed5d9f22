// The VIP missing on the director where the topology needs it: in the one-armed LVS-DR lab the
// VIP lies in eth0's subnet, so the clients' router finds it by ARP on that link; without the VIP
// on eth0 nothing answers and no client packet reaches the director. `lvs-xdp doctor` names the
// VIP, the subnet and the command that fixes it, and exits 1; with the VIP back it is ok.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkIn } from '../../src/lab/index.js';
import { useLab, NEEDS_ROOT } from './helpers.js';

interface Finding { verdict: string; check: string; detail: string; fix?: string }

const lab = useLab('dvip', { realservers: 1 }, async (l) => {
  await l.attachDirector({ mode: 'native' });
  await l.lvsOk(['-A', '-t', `${l.vips.dr4}:80`, '-s', 'mh']);
  await l.lvsOk(['-a', '-t', `${l.vips.dr4}:80`, '-r', l.realservers[0]!.v4, '-g', '-w', '1']);
});

test('doctor: a VIP in the director\'s subnet but not local is a failure naming ip addr add; exit 1', { skip: NEEDS_ROOT, timeout: 60_000 }, async () => {
  const L = lab();
  const vip = L.vips.dr4;
  const local = async () => {
    const r = await L.lvs(['doctor', '--json', '--no-neigh']);
    return { code: r.code, f: (JSON.parse(r.stdout) as Finding[]).find((x) => x.check === `VIP ${vip} local`)! };
  };
  const ok = await local();
  console.log(`VIP on eth0: ${ok.f.verdict} ${ok.f.detail}`);
  assert.equal(ok.f.verdict, 'ok');
  assert.equal(ok.code, 0);

  await checkIn(L.director.ns, 'ip', ['addr', 'del', `${vip}/32`, 'dev', 'eth0']);
  const missing = await local();
  console.log(`VIP removed: ${missing.f.verdict} ${missing.f.detail}\n  fix: ${missing.f.fix}`);
  assert.equal(missing.code, 1);
  assert.equal(missing.f.verdict, 'fail');
  assert.match(missing.f.detail, /in eth0's subnet 198\.51\.100\.0\/24, so clients' routers look for it by ARP on eth0, but it is not local on the director/);
  assert.equal(missing.f.fix, `ip addr add ${vip}/32 dev eth0`);

  // The VIP on lo does not do either: eth0 answers ARP for it only with arp_ignore 0.
  await checkIn(L.director.ns, 'ip', ['addr', 'add', `${vip}/32`, 'dev', 'lo']);
  await checkIn(L.director.ns, 'sh', ['-c', 'echo 1 > /proc/sys/net/ipv4/conf/eth0/arp_ignore']);
  const onLo = await local();
  console.log(`VIP on lo, arp_ignore 1: ${onLo.f.verdict} ${onLo.f.detail}`);
  assert.equal(onLo.f.verdict, 'fail');
  assert.match(onLo.f.detail, /local on lo only, and eth0 does not answer ARP for it there \(arp_ignore 1\)/);
  await checkIn(L.director.ns, 'sh', ['-c', 'echo 0 > /proc/sys/net/ipv4/conf/eth0/arp_ignore']);
  await checkIn(L.director.ns, 'ip', ['addr', 'del', `${vip}/32`, 'dev', 'lo']);

  // The fix as named.
  await checkIn(L.director.ns, 'sh', ['-c', missing.f.fix!]);
  const back = await local();
  assert.equal(back.f.verdict, 'ok');
  assert.equal(back.code, 0);
});
