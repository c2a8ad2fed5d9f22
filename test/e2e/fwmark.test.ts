// Firewall-mark services end to end (the LVS-HOWTO's http + https persistent case) in a namespace
// lab configured only through the public CLI: marks from `lvs-xdp fwmark add` (iptables' words),
// `-A -f MARK -s mh -p 300` and `-a -f MARK -r RIP -g` (no port: the packet's is kept), an HTTP
// listener on 80 and on 443 on each of three realservers; every client address's connections to
// both ports land on one realserver, IPv4 and IPv6; the listings show the FWM rows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NEEDS_ROOT, useLab, standardSetup } from './helpers.js';

const lab = useLab('fwm', { clients: 2, clientAddresses: 4, realservers: 3 }, async (l) => {
  await standardSetup(l, { dr: true });
  // A second listener on every realserver: 443 (plain HTTP here; what matters is the port).
  await l.startServers({ httpPort: 443, udpPort: 9443 });
  const v = l.vips;
  await l.lvsOk(['fwmark', 'add', '1', '-p', 'tcp', '-d', v.dr4, '--dport', '80,443']);
  await l.lvsOk(['fwmark', 'add', '2', '-p', 'tcp', '-d', `${v.dr6}/128`, '--dports', '80,443']);
  await l.lvsOk(['-R'], l.director.ns, [
    '-A -f 1 -s mh -p 300',
    ...l.realservers.map((r) => `-a -f 1 -r ${r.v4} -g`),
    '-A -f 2 -6 -s mh -p 300',
    ...l.realservers.map((r) => `-a -f 2 -6 -r [${r.v6}] -g`),
    '',
  ].join('\n'));
});

const at = (vip: string, port: number) => `http://${vip.includes(':') ? `[${vip}]` : vip}:${port}/`;

test('fwmark persistence over ports 80 and 443: each client address gets one realserver for both ports, IPv4 and IPv6', { skip: NEEDS_ROOT, timeout: 180_000 }, async () => {
  const l = lab();
  for (const six of [false, true]) {
    const vip = six ? l.vips.dr6 : l.vips.dr4;
    const chosen = new Map<string, string>();
    for (const [ci, c] of l.clients.entries()) {
      for (const source of six ? c.v6s : c.v4s) {
        // Alternate the ports: each request a new connection (curl sends Connection: close).
        const names = [
          ...await l.curl(at(vip, 80), { client: ci, source, count: 3 }),
          ...await l.curl(at(vip, 443), { client: ci, source, count: 3 }),
          ...await l.curl(at(vip, 80), { client: ci, source, count: 2 }),
        ];
        assert.ok(!names.includes(''), `IPv${six ? 6 : 4} ${source}: a request failed: ${JSON.stringify(names)}`);
        assert.equal(new Set(names).size, 1, `IPv${six ? 6 : 4} ${source}: ports 80 and 443 went to ${JSON.stringify(names)}`);
        chosen.set(source, names[0]!);
      }
    }
    // Eight client addresses do not all share one realserver: the mark's service balances.
    assert.ok(new Set(chosen.values()).size >= 2, `IPv${six ? 6 : 4}: every client on ${[...new Set(chosen.values())].join()}`);
  }
  // A port the mark does not carry is not the service's (the director passes it to its own stack).
  const other = await l.curl(at(l.vips.dr4, 8080), { count: 1, timeoutS: 3 });
  assert.deepEqual(other, ['']);
});

test('fwmark listings: -L prints FWM rows with the realservers\' port 0, -S the -f rules, fwmark list the marks', { skip: NEEDS_ROOT, timeout: 60_000 }, async () => {
  const l = lab();
  const list = await l.lvsOk(['-L', '-n']);
  assert.match(list, /^FWM  1 mh persistent 300\n(  -> 198\.51\.100\.\d+:0 +Route   1      \d+ +\d+ +\n){3}FWM  2 IPv6 mh persistent 300\n/m);
  const saved = await l.lvsOk(['-S', '-n']);
  assert.match(saved, /^-A -f 1 -s mh -p 300\n-a -f 1 -r 198\.51\.100\.\d+:0 -g -w 1\n/m);
  assert.match(saved, /^-A -f 2 -6 -s mh -p 300\n-a -f 2 -6 -r \[2001:db8:100::\w+\]:0 -g -w 1\n/m);
  const one = await l.lvsOk(['-L', '-n', '-f', '2', '-6']);
  assert.match(one, /^Prot LocalAddress:Port Scheduler Flags\n.*\nFWM  2 IPv6 mh persistent 300\n/);
  const marks = await l.lvsOk(['fwmark', 'list']);
  assert.match(marks, new RegExp(`^1 +tcp +${l.vips.dr4.replaceAll('.', '\\.')} +80,443 +fwm 1$`, 'm'));
  assert.match(marks, /^2 +tcp +2001:db8:100::\w+ +80,443 +fwm 2 ipv6$/m);
  // `lvs-xdp` alone lists as `ipvsadm` alone does.
  assert.equal(await l.lvsOk([]), list);
});
