// Connection sync into an LVS-NAT backup (test/packet/sync-insert-nat-cases.ts): a reply's next
// hop comes from the kernel's FIB, so the cases run in a child process inside a namespace of
// their own with known interfaces, routes and permanent neighbours, as test/packet/nat.test.ts:
//   c0 (02:00:00:00:00:01) 203.0.113.1/24, 2001:db8:c::1/64: clients .7 / ::7 (02:00:00:00:00:07)
//      and the one-armed realservers 203.0.113.10 / .11
//   r0 (02:00:00:00:0b:01) 192.0.2.1/24, 2001:db8:b::1/64: two-armed realservers 2001:db8:b::10 / ::11
import { test } from 'node:test';
import { withNetns } from '../lib/netns.js';
import { natTwoLinks, runCasesIn } from '../lib/nat-netns.js';

test('synced LVS-NAT entries: client side and replies translated, IPv4 and IPv6 (exact bytes)', async () => {
  await withNetns(['lvssyncnat'], async ([ns]) => {
    natTwoLinks(ns);
    runCasesIn(ns, new URL('./sync-insert-nat-cases.js', import.meta.url), 'LVS_SYNC_NAT_CASES', 3);
  });
});
