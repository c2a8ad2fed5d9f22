// Differential fuzzing of LVS-NAT both ways: configurations with NAT realservers and the NAT
// flag, client flows, realservers' replies (whole and fragmented, TTL at the edge), ICMP errors
// from both sides, through the program and the reference model (test/model/nat.ts). A reply's
// fate depends on the FIB, so the campaign runs in a child process inside a namespace whose FIB
// toward the generator's clients is known (test/packet/fuzz-nat-cases.ts):
//   c0 (02:00:00:00:0c:01) 198.51.100.1/24, 203.0.113.1/24, 2001:db8:100::1/64, with resolved
//   neighbours 198.51.100.7, 203.0.113.10, 2001:db8:100::7; 198.51.100.8 and 2001:db8:100::8 have
//   none; the generator's other clients have no route.
// LVS_FUZZ_SEED / LVS_FUZZ_NAT_CASES change the seed and size.
import { test } from 'node:test';
import { withNetns } from '../lib/netns.js';
import { runCasesIn } from '../lib/nat-netns.js';
import { NAT_NEIGHBOURS, NAT_EGRESS_MAC } from '../fuzz/nat-env.js';

test('differential fuzzing of LVS-NAT both ways (in a namespace with a known FIB)', async () => {
  await withNetns(['lvsfnat'], async ([ns]) => {
    ns.ip('link', 'set', 'lo', 'up');
    ns.ip('link', 'add', 'c0', 'address', NAT_EGRESS_MAC, 'type', 'veth', 'peer', 'name', 'c1');
    ns.ip('link', 'set', 'c0', 'up');
    ns.ip('link', 'set', 'c1', 'up');
    ns.ip('addr', 'add', '198.51.100.1/24', 'dev', 'c0');
    ns.ip('addr', 'add', '203.0.113.1/24', 'dev', 'c0');
    ns.ip('addr', 'add', '2001:db8:100::1/64', 'dev', 'c0', 'nodad');
    for (const [a, m] of Object.entries(NAT_NEIGHBOURS)) ns.ip('neigh', 'replace', a, 'lladdr', m, 'dev', 'c0', 'nud', 'permanent');
    ns.setSysctl('net/ipv4/ip_forward', 1);
    ns.setSysctl('net/ipv6/conf/all/forwarding', 1);
    const out = runCasesIn(ns, new URL('./fuzz-nat-cases.js', import.meta.url), 'LVS_NAT_CASES', 2, 480_000);
    console.log(out.split('\n').filter((l) => l.startsWith('# fuzz-nat')).join('\n'));
  });
});
