// LVS-NAT packet tests. A reply's next hop comes from the kernel's FIB (bpf_fib_lookup), so the
// cases (test/packet/nat-cases.ts) run in a child process inside a namespace of their own with
// known interfaces, routes and permanent neighbours, never the host's:
//   c0 (02:00:00:00:00:01) 203.0.113.1/24, 2001:db8:c::1/64: clients .7 / ::7 (02:00:00:00:00:07)
//      and the one-armed realservers 203.0.113.10 / 2001:db8:c::10
//   r0 (02:00:00:00:0b:01) 192.0.2.1/24, 2001:db8:b::1/64: two-armed realservers .10 / ::10
import { test } from 'node:test';
import { withNetns } from '../lib/netns.js';
import { natTwoLinks, runCasesIn } from '../lib/nat-netns.js';

test('LVS-NAT both ways, IPv4 and IPv6, TCP and UDP, ICMP errors and reply fragments (exact bytes)', async () => {
  await withNetns(['lvsnat'], async ([ns]) => {
    natTwoLinks(ns);
    runCasesIn(ns, new URL('./nat-cases.js', import.meta.url), 'LVS_NAT_CASES', 8);
  });
});
