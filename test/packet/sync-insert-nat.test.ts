// Connection sync into an LVS-NAT backup (test/packet/sync-insert-nat-cases.ts): a reply's next
// hop comes from the kernel's FIB, so the cases run in a child process inside a namespace of
// their own with known interfaces, routes and permanent neighbours, as test/packet/nat.test.ts:
//   c0 (02:00:00:00:00:01) 203.0.113.1/24, 2001:db8:c::1/64: clients .7 / ::7 (02:00:00:00:00:07)
//      and the one-armed realservers 203.0.113.10 / .11
//   r0 (02:00:00:00:0b:01) 192.0.2.1/24, 2001:db8:b::1/64: two-armed realservers 2001:db8:b::10 / ::11
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { withNetns } from '../lib/netns.js';

test('synced LVS-NAT entries: client side and replies translated, IPv4 and IPv6 (exact bytes)', async () => {
  await withNetns(['lvssyncnat'], async ([ns]) => {
    ns.ip('link', 'set', 'lo', 'up');
    for (const [a, b, m] of [['c0', 'c1', '02:00:00:00:00:01'], ['r0', 'r1', '02:00:00:00:0b:01']] as const) {
      ns.ip('link', 'add', a, 'address', m, 'type', 'veth', 'peer', 'name', b);
      ns.ip('link', 'set', a, 'up');
      ns.ip('link', 'set', b, 'up');
    }
    ns.ip('addr', 'add', '203.0.113.1/24', 'dev', 'c0');
    ns.ip('addr', 'add', '2001:db8:c::1/64', 'dev', 'c0', 'nodad');
    ns.ip('addr', 'add', '192.0.2.1/24', 'dev', 'r0');
    ns.ip('addr', 'add', '2001:db8:b::1/64', 'dev', 'r0', 'nodad');
    for (const a of ['203.0.113.7', '2001:db8:c::7']) ns.ip('neigh', 'replace', a, 'lladdr', '02:00:00:00:00:07', 'dev', 'c0', 'nud', 'permanent');
    ns.setSysctl('net/ipv4/ip_forward', 1);
    ns.setSysctl('net/ipv6/conf/all/forwarding', 1);
    const cases = fileURLToPath(new URL('./sync-insert-nat-cases.js', import.meta.url));
    const env: NodeJS.ProcessEnv = { ...process.env, LVS_SYNC_NAT_CASES: '1' };
    delete env.NODE_TEST_CONTEXT;
    const r = spawnSync('nsenter', [`--net=${ns.path}`, process.execPath, '--test-reporter=spec', cases], { encoding: 'utf8', timeout: 120_000, env });
    const out = `${r.stdout}\n${r.stderr}`;
    assert.equal(r.status, 0, `sync-insert-nat-cases failed:\n${out}`);
    // The child must have run every case (a file that loads nothing would exit 0 too).
    const passed = /ℹ pass (\d+)/.exec(out);
    assert.equal(Number(passed?.[1]), 3, `not every case ran:\n${out}`);
  });
});
