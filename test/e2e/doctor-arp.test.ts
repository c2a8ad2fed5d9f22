// The classic LVS-DR mistake made on purpose: a realserver holds the VIP on lo without the ARP
// sysctls, so it answers ARP for the VIP as well as the director, and clients' routers may send
// every packet for the VIP to it. `lvs-xdp doctor` ARPs for each VIP from the director's
// interface, names the other host's MAC (and its address from the neighbour table) and exits 1;
// once the realserver is set up (arp_ignore / arp_announce) the same check is ok.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkIn, runIn } from '../../src/lab/index.js';
import { useLab, NEEDS_ROOT } from './helpers.js';

interface Finding { verdict: string; check: string; detail: string; fix?: string }

const lab = useLab('darp', { realservers: 1 }, async (l) => {
  await l.attachDirector({ mode: 'native' });
  await l.lvsOk(['-A', '-t', `${l.vips.dr4}:80`, '-s', 'mh']);
  await l.lvsOk(['-a', '-t', `${l.vips.dr4}:80`, '-r', l.realservers[0]!.v4, '-g', '-w', '1']);
  await l.lvsOk(['-A', '-t', `[${l.vips.dr6}]:80`, '-s', 'mh']);
  await l.lvsOk(['-a', '-t', `[${l.vips.dr6}]:80`, '-r', `[${l.realservers[0]!.v6}]`, '-g', '-w', '1']);
});

test('doctor: another host answering ARP for the VIP is named by its MAC and address; exit 1', { skip: NEEDS_ROOT, timeout: 60_000 }, async () => {
  const L = lab();
  const rs = L.realservers[0]!;
  const vip = L.vips.dr4;
  const check = `VIP ${vip} on eth0`;
  const doctor = async (c = check) => {
    const r = await L.lvs(['doctor', '--json']);
    return { code: r.code, f: (JSON.parse(r.stdout) as Finding[]).find((x) => x.check === c)! };
  };
  const clean = await doctor();
  console.log(`clean lab: ${clean.f.verdict} ${clean.f.detail}`);
  assert.equal(clean.f.verdict, 'ok');
  assert.equal(clean.code, 0);

  // The mistake: the VIP on the realserver's lo, arp_ignore still 0.
  await checkIn(rs.ns, 'ip', ['addr', 'add', `${vip}/32`, 'dev', 'lo']);
  const mac = JSON.parse(await checkIn(rs.ns, 'ip', ['-j', 'link', 'show', 'eth0']))[0].address as string;
  const bad = await doctor();
  console.log(`realserver answering: ${bad.f.verdict} ${bad.f.detail}\n  fix: ${bad.f.fix}`);
  assert.equal(bad.code, 1);
  assert.equal(bad.f.verdict, 'fail');
  assert.match(bad.f.detail, new RegExp(`another host answers ARP for the VIP: MAC ${mac} \\(${rs.v4.replace(/\./g, '\\.')}[^)]* in the neighbour table\\)`));
  assert.match(bad.f.fix!, new RegExp(`lvs-xdp realserver setup --mode dr --vip ${vip.replace(/\./g, '\\.')}`));

  // The fix named: the realserver set up for DR stops answering.
  await L.lvsOk(['realserver', 'setup', '--mode', 'dr', '--dev', 'eth0', '--vip', vip], rs.ns);
  const fixed = await doctor();
  console.log(`after realserver setup: ${fixed.f.verdict} ${fixed.f.detail}`);
  assert.equal(fixed.f.verdict, 'ok');
  assert.equal(fixed.code, 0);
  await runIn(rs.ns, 'ip', ['addr', 'del', `${vip}/32`, 'dev', 'lo']);

  // IPv6: Linux answers ND only for the interface's own addresses; the mistake is the VIP on eth0.
  const v6check = `VIP ${L.vips.dr6} on eth0`;
  assert.equal((await doctor(v6check)).f.verdict, 'ok');
  await checkIn(rs.ns, 'ip', ['-6', 'addr', 'add', `${L.vips.dr6}/128`, 'dev', 'eth0', 'nodad']);
  const nd = await doctor(v6check);
  console.log(`realserver answering ND: ${nd.f.verdict} ${nd.f.detail}`);
  assert.equal(nd.code, 1);
  assert.match(nd.f.detail, new RegExp(`another host answers ND for the VIP: MAC ${mac}`));
  await checkIn(rs.ns, 'ip', ['-6', 'addr', 'del', `${L.vips.dr6}/128`, 'dev', 'eth0']);
});
