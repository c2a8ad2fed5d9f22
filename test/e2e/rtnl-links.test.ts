// The links lvs-xdp reads over rtnetlink (src/director/rtnl.ts) are the ones `ip -j -d link show`
// describes, field for field, in a namespace with the devices the accepted-MAC set follows: a veth
// pair, a bridge and its port, a macvlan with a VRRP virtual MAC, a vxlan (no lower), and a veth
// whose peer is in another namespace (no lower by name, as ip prints it).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import type { LinkDesc } from '../../src/dataplane/l2addrs.js';
import { NEEDS_ROOT } from './helpers.js';

const NS = `lvst-rtnl-${process.pid}`;
const PEER = `${NS}-p`;
const sh = (cmd: string) => execFileSync('bash', ['-c', cmd], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

after(() => {
  spawnSync('ip', ['netns', 'del', NS]);
  spawnSync('ip', ['netns', 'del', PEER]);
});

/** What lvs-xdp uses of `ip -j -d link show`'s answer. */
function fromIp(json: string): LinkDesc[] {
  return (JSON.parse(json) as (LinkDesc & { linkinfo?: { info_kind?: string } })[]).map((l) => ({
    ifindex: l.ifindex, ifname: l.ifname,
    ...(l.address !== undefined ? { address: l.address } : {}),
    ...(l.link ? { link: l.link } : {}),
    ...(l.master ? { master: l.master } : {}),
    ...(l.linkinfo ? { linkinfo: l.linkinfo.info_kind ? { info_kind: l.linkinfo.info_kind } : {} } : {}),
  }));
}

test('dumpLinks() describes every link as ip -j -d link show does', { skip: NEEDS_ROOT, timeout: 60_000 }, () => {
  sh(`ip netns add ${NS} && ip netns add ${PEER}`);
  sh(`ip -n ${NS} link add v0 type veth peer name v1
      ip -n ${NS} link add br0 type bridge
      ip -n ${NS} link set v1 master br0
      ip -n ${NS} link add vrrp.7 link v0 address 00:00:5e:00:01:07 type macvlan mode bridge
      ip -n ${NS} link add vx0 type vxlan id 5 dstport 4789
      ip -n ${NS} link add w0 type veth peer name w1 netns ${PEER}
      ip -n ${NS} link set v0 up && ip -n ${NS} link set br0 up`);
  const rtnl = new URL('../../src/director/rtnl.js', import.meta.url).href;
  const ours = JSON.parse(sh(`ip netns exec ${NS} ${process.execPath} --input-type=module -e "const m = await import('${rtnl}'); process.stdout.write(JSON.stringify(m.dumpLinks()))"`)) as LinkDesc[];
  const ip = fromIp(sh(`ip -n ${NS} -j -d link show`));
  assert.deepEqual(ours, ip);
  // The cases that matter to the accepted set, explicitly (a parse that drops them would still
  // agree with an ip that printed nothing).
  const by = new Map(ours.map((l) => [l.ifname, l]));
  assert.equal(by.get('v1')?.master, 'br0');
  assert.equal(by.get('vrrp.7')?.link, 'v0');
  assert.equal(by.get('vrrp.7')?.address, '00:00:5e:00:01:07');
  assert.equal(by.get('vrrp.7')?.linkinfo?.info_kind, 'macvlan');
  assert.equal(by.get('w0')?.link, undefined, 'a peer in another namespace is not a lower by name');
  assert.equal(by.get('br0')?.linkinfo?.info_kind, 'bridge');
});
