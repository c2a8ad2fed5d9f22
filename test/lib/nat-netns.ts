/**
 * The namespaces of the LVS-NAT packet tests: a reply's next hop comes from the kernel's FIB, so
 * their cases run in a child process inside a namespace of their own with known interfaces,
 * routes and permanent neighbours, never the host's.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Netns } from './netns.js';
import type { DirectorHarness } from './director.js';
import { clientPacket, DIRECTOR_MAC, type L4Spec } from './frames.js';

/**
 * Two links as test/packet/nat-cases.ts and sync-insert-nat-cases.ts expect them:
 *   c0 (02:00:00:00:00:01) 203.0.113.1/24, 2001:db8:c::1/64: clients .7 / ::7 (02:00:00:00:00:07)
 *      and the one-armed realservers
 *   r0 (02:00:00:00:0b:01) 192.0.2.1/24, 2001:db8:b::1/64: the two-armed realservers
 */
export function natTwoLinks(ns: Netns): void {
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
}

/**
 * Runs a cases file inside `ns` as a plain node:test run (its cases report themselves, not as
 * subtests of the caller's), with `envVar`=1 (the file refuses to run without it); asserts that it
 * passed and that `count` cases ran (a file that loads nothing would exit 0 too). Its output.
 */
export function runCasesIn(ns: Netns, cases: URL, envVar: string, count: number, timeoutMs = 120_000): string {
  const env: NodeJS.ProcessEnv = { ...process.env, [envVar]: '1' };
  delete env.NODE_TEST_CONTEXT;
  const file = fileURLToPath(cases);
  const r = spawnSync('nsenter', [`--net=${ns.path}`, process.execPath, '--test-reporter=spec', file], { encoding: 'utf8', timeout: timeoutMs, env });
  const out = `${r.stdout}\n${r.stderr}`;
  assert.equal(r.status, 0, `${file} failed:\n${out}`);
  assert.equal(Number(/ℹ pass (\d+)/.exec(out)?.[1]), count, `not every case ran:\n${out}`);
  return out;
}

/** r0's MAC (natTwoLinks): the director's own on the realservers' link. */
export const R0_MAC = '02:00:00:00:0b:01';

/** The harness's director owns c0 and r0 of natTwoLinks (accepted MACs, XDP_REDIRECT ports). */
export function ownNatLinks(h: DirectorHarness, c0: number, r0: number): void {
  h.setAccepted([
    { ifindex: c0, mac: DIRECTOR_MAC, egress: DIRECTOR_MAC, kind: 'own' },
    { ifindex: r0, mac: R0_MAC, egress: R0_MAC, kind: 'own' },
  ]);
  h.setTxPort(c0);
  h.setTxPort(r0);
}

/** The hosts of natTwoLinks: the client (c0, a permanent neighbour) and the realservers' MACs,
 *  one-armed on c0 and two-armed behind r0. */
export const NAT_CLIENT_MAC = '02:00:00:00:00:07';
export const NAT_RS1_MAC = '02:00:00:00:00:10';
export const NAT_RS2_MAC = '02:00:00:00:00:20';
export const NAT_C4 = '203.0.113.7';
export const NAT_C6 = '2001:db8:c::7';

/** A realserver's next hop in natTwoLinks: behind r0 (192.0.2.0/24, 2001:db8:b::/64) or on c0. */
export function natNextHop(address: string, r0: number): { mac: string; ifindex?: number; smac?: string } {
  return address.startsWith('192.0.2.') || address.startsWith('2001:db8:b:') ? { mac: NAT_RS2_MAC, ifindex: r0, smac: R0_MAC } : { mac: NAT_RS1_MAC };
}

/** A frame src -> dst with the given MACs (and TTL / hop limit). */
export function natFrame(src: string, dst: string, spec: L4Spec, macs: { dst: string; src: string }, o: { ttl?: number; hop?: number } = {}): Buffer {
  return clientPacket(src, dst, spec, { dst: macs.dst, src: macs.src, ...(o.ttl ? { ttl: o.ttl } : {}), ...(o.hop ? { hop: o.hop } : {}) });
}

/** The program's action and its output frame, byte for byte. */
export function expectFrame(r: { action: number; out: Buffer }, action: number, want: Buffer, what: string): void {
  assert.equal(r.action, action, `${what}: action`);
  assert.equal(r.out.toString('hex'), want.toString('hex'), `${what}: bytes`);
}
