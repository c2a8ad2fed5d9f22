// The cases of test/packet/sync-insert-nat.test.ts, run by it in a child process inside a
// namespace whose interfaces, routes and neighbours it made (a NAT reply takes its next hop from
// the FIB). A master's LVS-NAT (IPVS MASQ) sync entries inserted on the backup
// (src/sync/insert.ts) make both directions work with nothing scheduled locally: the client's
// packets go to the synced realserver rewritten to its port, and the realserver's replies are
// translated back to VIP:port (the reply entry). Exact bytes, built from scratch. Not a test
// file of its own: it refuses to run outside that namespace.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { DirectorHarness, XDP } from '../lib/director.js';
import { clientPacket, DIRECTOR_MAC, CLIENT_ROUTER_MAC, TCP, type L4Spec } from '../lib/frames.js';
import { ifIndex } from '../../src/native/index.js';
// natTwoLinks' hosts: the client, one-armed realservers (on c0), two-armed ones (behind r0).
import {
  ownNatLinks, natNextHop, natFrame as pkt, expectFrame, R0_MAC,
  NAT_CLIENT_MAC as CLIENT_MAC, NAT_RS1_MAC as RS1_MAC, NAT_RS2_MAC as RS2_MAC, NAT_C4 as C4, NAT_C6 as C6,
} from '../lib/nat-netns.js';
import { parseConfigText } from '../../src/config/parse.js';
import { insertSynced } from '../../src/sync/insert.js';
import { IP_VS_CONN_F, IP_VS_TCP_S, IP_VS_UDP_S_NORMAL, type SyncConn } from '../../src/sync/proto.js';

if (process.env.LVS_SYNC_NAT_CASES !== '1') throw new Error('run by test/packet/sync-insert-nat.test.ts inside its namespace');

const VIP4 = '10.0.0.1';
const VIP6 = '2001:db8:a::1';

// Two realservers per service, so the synced one is not the only possible choice.
const CONFIG = `
services:
  - { vip: ${VIP4}, port: 80, protocol: tcp, scheduler: rr, realservers: [{ address: 203.0.113.11, port: 8080, method: nat }, { address: 203.0.113.10, port: 8080, method: nat }] }
  - { vip: "${VIP6}", port: 53, protocol: udp, scheduler: rr, realservers: [{ address: "2001:db8:b::11", port: 5353, method: nat }, { address: "2001:db8:b::10", port: 5353, method: nat }] }
`;

let h: DirectorHarness;
let c0 = 0;
let r0 = 0;

before(async () => {
  c0 = ifIndex('c0');
  r0 = ifIndex('r0');
  h = await DirectorHarness.load();
});
after(() => h.close());

function setup(): void {
  h.reset();
  ownNatLinks(h, c0, r0);
  h.apply(parseConfigText(CONFIG, 'sync-nat.yaml'), (_s, r) => natNextHop(r.address, r0));
}


const insert = (c: SyncConn) => insertSynced({ applied: h.appliedState, writer: h.writer }, [c]);

test('IPv4 TCP: a synced MASQ entry; the client\'s ACK goes to RIP:8080 and the realserver\'s reply comes back as VIP:80', () => {
  setup();
  const ack = pkt(C4, VIP4, { proto: 'tcp', sport: 40000, dport: 80, flags: TCP.ACK }, { dst: DIRECTOR_MAC, src: CLIENT_ROUTER_MAC });
  const reply = pkt('203.0.113.10', C4, { proto: 'tcp', sport: 8080, dport: 40000, flags: TCP.ACK }, { dst: DIRECTOR_MAC, src: RS1_MAC });
  // without the entry the reply is not the backup's flow: passed to the kernel untranslated
  assert.equal(h.run(reply, c0).action, XDP.PASS);
  const r = insert({
    family: 4, protocol: 6, flags: IP_VS_CONN_F.MASQ, state: IP_VS_TCP_S.ESTABLISHED, cport: 40000, vport: 80, dport: 8080,
    fwmark: 0, timeout: 900, caddr: C4, vaddr: VIP4, daddr: '203.0.113.10',
  });
  assert.deepEqual([r.conns, r.replies, r.skipped], [1, 1, {}]);
  expectFrame(h.run(reply, c0), XDP.TX,
    pkt(VIP4, C4, { proto: 'tcp', sport: 80, dport: 40000, flags: TCP.ACK }, { dst: CLIENT_MAC, src: DIRECTOR_MAC }, { ttl: 63 }), 'reply');
  expectFrame(h.run(ack, c0), XDP.TX,
    pkt(C4, '203.0.113.10', { proto: 'tcp', sport: 40000, dport: 8080, flags: TCP.ACK }, { dst: RS1_MAC, src: DIRECTOR_MAC }), 'ACK');
  const c = h.counters();
  assert.deepEqual([c.FWD_NAT_REPLY, c.FWD_NAT, c.CONN_HIT, c.CONN_NEW, c.CONN_STRAY], [1n, 1n, 1n, 0n, 0n]);
  // a synced entry whose dport is not the realserver's port is not this realserver's flow
  assert.deepEqual(insert({
    family: 4, protocol: 6, flags: IP_VS_CONN_F.MASQ, state: IP_VS_TCP_S.ESTABLISHED, cport: 40001, vport: 80, dport: 8081,
    fwmark: 0, timeout: 900, caddr: C4, vaddr: VIP4, daddr: '203.0.113.10',
  }).skipped, { 'realserver-port': 1 });
});

test('IPv6 UDP two-armed: a synced entry\'s replies are translated and redirected to the client\'s side', () => {
  setup();
  insert({
    family: 6, protocol: 17, flags: IP_VS_CONN_F.MASQ | IP_VS_CONN_F.INACTIVE, state: IP_VS_UDP_S_NORMAL, cport: 5001, vport: 53, dport: 5353,
    fwmark: 0, timeout: 300, caddr: C6, vaddr: VIP6, daddr: '2001:db8:b::10',
  });
  const a = pkt('2001:db8:b::10', C6, { proto: 'udp', sport: 5353, dport: 5001, payload: Buffer.from('a6') }, { dst: R0_MAC, src: RS2_MAC });
  expectFrame(h.run(a, r0), XDP.REDIRECT,
    pkt(VIP6, C6, { proto: 'udp', sport: 53, dport: 5001, payload: Buffer.from('a6') }, { dst: CLIENT_MAC, src: DIRECTOR_MAC }, { hop: 63 }), 'v6 answer');
  const q = pkt(C6, VIP6, { proto: 'udp', sport: 5001, dport: 53, payload: Buffer.from('q6') }, { dst: DIRECTOR_MAC, src: CLIENT_ROUTER_MAC });
  expectFrame(h.run(q, c0), XDP.REDIRECT,
    pkt(C6, '2001:db8:b::10', { proto: 'udp', sport: 5001, dport: 5353, payload: Buffer.from('q6') }, { dst: RS2_MAC, src: R0_MAC }), 'v6 query');
  assert.equal(h.counters().CONN_HIT, 1n);
});

test('a flow replaced on another NAT realserver loses its old reply entry', () => {
  setup();
  const base = { family: 4 as const, protocol: 6, flags: IP_VS_CONN_F.MASQ, state: IP_VS_TCP_S.ESTABLISHED, cport: 40002, vport: 80, dport: 8080, fwmark: 0, timeout: 900, caddr: C4, vaddr: VIP4 };
  insert({ ...base, daddr: '203.0.113.11' });
  assert.equal(h.connCount(), 2);
  const r = insert({ ...base, daddr: '203.0.113.10' });
  assert.equal(r.replaced, 1);
  assert.equal(h.connCount(), 2, 'the client entry and the new reply entry; .11\'s reply entry gone');
  const old = pkt('203.0.113.11', C4, { proto: 'tcp', sport: 8080, dport: 40002, flags: TCP.ACK }, { dst: DIRECTOR_MAC, src: RS1_MAC });
  assert.equal(h.run(old, c0).action, XDP.PASS, 'the old realserver\'s packets are no longer this flow\'s replies');
});
