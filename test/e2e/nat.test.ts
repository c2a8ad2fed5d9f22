// LVS-NAT end to end in the scenario of the kernel's IPVS selftest (net/netfilter/ipvs.sh,
// test_nat): a client on a bridge in 10.0.0.0/24 reaching VIP 207.175.44.110 via the director
// (10.0.0.1), the director between 10.0.0.0/24 (veth10) and 172.16.0.0/24 (veth12), the
// realserver 172.16.0.2 with its default route via the director, and the selftest's ipvsadm
// lines given to lvs-xdp. Real TCP: curl against a Python HTTP server, every byte compared.
// Plus IPv6 (2001:db8:10::/64 and 2001:db8:172::/64) to another realserver port (80 -> 8080).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CliNamespace } from '../lib/cli-ns.js';
import { repoRoot } from '../lib/paths.js';
import { NEEDS_ROOT } from './helpers.js';

const VIP4 = '207.175.44.110';
const VIP6 = '2001:db8:207::110';
const cli = new CliNamespace('lvnat');
let ns0 = '';
let ns2 = '';
let dir = '';
let digest = '';
let server: ChildProcess | undefined;

function inNs(ns: string, cmd: string, ...args: string[]): string {
  const r = spawnSync('nsenter', [`--net=/run/netns/${ns}`, cmd, ...args], { encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} in ${ns}: ${r.stderr}`);
  return r.stdout;
}

before(async () => {
  if (NEEDS_ROOT) return;
  cli.create();
  ns0 = cli.addNamespace('c'); // client, on a bridge
  ns2 = cli.addNamespace('r'); // realserver
  const ns1 = cli.ns; // director
  const sh = (...a: string[]) => cli.sh('ip', ...a);
  sh('link', 'add', 'veth01', 'netns', ns0, 'type', 'veth', 'peer', 'name', 'veth10', 'netns', ns1);
  sh('link', 'add', 'veth02', 'netns', ns0, 'type', 'veth', 'peer', 'name', 'veth20', 'netns', ns2);
  sh('link', 'add', 'veth12', 'netns', ns1, 'type', 'veth', 'peer', 'name', 'veth21', 'netns', ns2);
  const ip = (ns: string, ...a: string[]) => sh('-n', ns, ...a);
  for (const [ns, dev] of [[ns0, 'lo'], [ns1, 'lo'], [ns2, 'lo'], [ns0, 'veth01'], [ns0, 'veth02'], [ns1, 'veth10'], [ns1, 'veth12'], [ns2, 'veth21'], [ns2, 'veth20']] as const) {
    ip(ns, 'link', 'set', dev, 'up');
  }
  ip(ns0, 'link', 'add', 'br0', 'type', 'bridge');
  ip(ns0, 'link', 'set', 'veth01', 'master', 'br0');
  ip(ns0, 'link', 'set', 'veth02', 'master', 'br0');
  ip(ns0, 'link', 'set', 'br0', 'up');
  ip(ns0, 'addr', 'add', '10.0.0.2/24', 'dev', 'br0');
  ip(ns0, 'addr', 'add', '2001:db8:10::2/64', 'dev', 'br0', 'nodad');
  ip(ns1, 'addr', 'add', '10.0.0.1/24', 'dev', 'veth10');
  ip(ns1, 'addr', 'add', '2001:db8:10::1/64', 'dev', 'veth10', 'nodad');
  ip(ns1, 'addr', 'add', '172.16.0.1/24', 'dev', 'veth12');
  ip(ns1, 'addr', 'add', '2001:db8:172::1/64', 'dev', 'veth12', 'nodad');
  ip(ns2, 'addr', 'add', '172.16.0.2/24', 'dev', 'veth21');
  ip(ns2, 'addr', 'add', '2001:db8:172::2/64', 'dev', 'veth21', 'nodad');
  ip(ns2, 'addr', 'add', '10.0.0.3/24', 'dev', 'veth20');
  // test_nat: the client routes the VIP via the director, which owns it and forwards
  ip(ns0, 'route', 'add', VIP4, 'via', '10.0.0.1', 'dev', 'br0');
  ip(ns0, 'route', 'add', VIP6, 'via', '2001:db8:10::1', 'dev', 'br0');
  ip(ns1, 'addr', 'add', `${VIP4}/32`, 'dev', 'lo');
  ip(ns1, 'addr', 'add', `${VIP6}/128`, 'dev', 'lo');
  inNs(ns1, 'sysctl', '-qw', 'net.ipv4.ip_forward=1');
  inNs(ns1, 'sysctl', '-qw', 'net.ipv6.conf.all.forwarding=1');
  // the realserver: only the director's side, default route via the director
  ip(ns2, 'link', 'del', 'veth20');
  ip(ns2, 'route', 'add', 'default', 'via', '172.16.0.1', 'dev', 'veth21');
  ip(ns2, 'route', 'add', 'default', 'via', '2001:db8:172::1', 'dev', 'veth21');
  // Packets a local socket sends over veth carry a partial checksum (offload) that XDP would
  // forward as it is (as the lab does: TX checksum offload off on the hosts' side)
  for (const [ns, dev] of [[ns0, 'br0'], [ns0, 'veth01'], [ns2, 'veth21']] as const) inNs(ns, 'ethtool', '-K', dev, 'tx', 'off');
  // veth delivers what XDP sends only to a peer that has an XDP program of its own
  const floors = join(repoRoot(), 'bpf', 'floors.o');
  ip(ns0, 'link', 'set', 'veth01', 'xdpdrv', 'obj', floors, 'sec', 'xdp', 'program', 'floor_pass');
  ip(ns2, 'link', 'set', 'veth21', 'xdpdrv', 'obj', floors, 'sec', 'xdp', 'program', 'floor_pass');

  dir = mkdtempSync(join(tmpdir(), 'lvsnat-'));
  const body = randomBytes(300_000); // hundreds of segments each way of ACKs and data
  writeFileSync(join(dir, 'blob'), body);
  digest = createHash('sha256').update(body).digest('hex');
  server = spawn('nsenter', [`--net=/run/netns/${ns2}`, 'python3', '-m', 'http.server', '8080', '--bind', '::', '--directory', dir], { stdio: 'ignore' });
  cli.onCleanup(() => server?.kill('SIGKILL'));
  for (let i = 0; i < 50; i++) {
    if (spawnSync('nsenter', [`--net=/run/netns/${ns2}`, 'curl', '-s', '-o', '/dev/null', 'http://172.16.0.2:8080/blob']).status === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
});

after(() => {
  cli.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function fetch(url: string): string {
  const out = spawnSync('nsenter', [`--net=/run/netns/${ns0}`, 'curl', '-sS', '-g', '--max-time', '10', url], { timeout: 20_000 });
  assert.equal(out.status, 0, `curl ${url}: ${out.stderr.toString()}\n${cli.run(['stats', '-i', '0']).stdout}\n${cli.run(['-L', '-n', '-c']).stdout}\n${spawnSync('bpftool', ['map', 'dump', 'pinned', `${cli.pin}/lvs_conns`], { encoding: 'utf8' }).stdout}\n${spawnSync('bpftool', ['map', 'dump', 'pinned', `${cli.pin}/lvs_cfg`], { encoding: 'utf8' }).stdout}\n${spawnSync('bpftool', ['map', 'dump', 'pinned', `${cli.pin}/lvs_reals`], { encoding: 'utf8' }).stdout.slice(0, 3000)}`);
  return createHash('sha256').update(out.stdout).digest('hex');
}

test('LVS-NAT in the IPVS selftest scenario: the selftest\'s ipvsadm lines, real TCP both ways, IPv4 and IPv6', { skip: NEEDS_ROOT, timeout: 180_000 }, () => {
  cli.ok(['attach', 'veth10', '--mode', 'native']);
  cli.ok(['-A', '-t', `${VIP4}:8080`, '-s', 'rr']);
  // ipvs.sh: ipvsadm -a -m -t VIP:8080 -r RIP:8080; the realserver is behind veth12, where no
  // program runs yet: the change says so
  const add = cli.check(['-a', '-m', '-t', `${VIP4}:8080`, '-r', '172.16.0.2:8080']);
  assert.match(add.stderr, /LVS-NAT realservers are reached through veth12, which has no lvs-xdp program.*lvs-xdp attach veth12/);
  const attach = cli.check(['attach', 'veth12', '--mode', 'native']);
  assert.doesNotMatch(attach.stderr, /LVS-NAT/, 'attached where the replies arrive: nothing to say');
  // IPv6, to another realserver port
  cli.ok(['-A', '-t', `[${VIP6}]:80`, '-s', 'rr']);
  const add6 = cli.check(['-a', '-t', `[${VIP6}]:80`, '-r', '[2001:db8:172::2]:8080', '-m']);
  assert.doesNotMatch(add6.stderr, /LVS-NAT/);
  assert.match(cli.ok(['-S', '-n']), /^-a -t 207\.175\.44\.110:8080 -r 172\.16\.0\.2:8080 -m -w 1$/m);

  for (let i = 0; i < 10; i++) assert.equal(fetch(`http://${VIP4}:8080/blob`), digest, `IPv4 request ${i}`);
  for (let i = 0; i < 10; i++) assert.equal(fetch(`http://[${VIP6}]:80/blob`), digest, `IPv6 request ${i}`);

  const stats = cli.ok(['-L', '-n', '--stats', '--exact']);
  const row = (re: RegExp) => re.exec(stats)?.slice(1).map(Number) ?? [];
  const [conns4, inPkts4, outPkts4, , outBytes4] = row(/^TCP {2}207\.175\.44\.110:8080\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)/m);
  assert.equal(conns4, 10, stats);
  assert.ok(inPkts4! > 0 && outPkts4! > 100 && outBytes4! > 10 * 300_000, `OutPkts / OutBytes count the replies:\n${stats}`);
  const [conns6, , outPkts6] = row(/^TCP {2}\[2001:db8:207::110\]:80\s+(\d+)\s+(\d+)\s+(\d+)/m);
  assert.equal(conns6, 10, stats);
  assert.ok(outPkts6! > 100, stats);
  const counters = cli.ok(['stats', '-i', '0']);
  const n = (name: string) => Number(new RegExp(`^${name}\\s+\\w+\\s+(\\d+)`, 'm').exec(counters)?.[1] ?? 0);
  assert.ok(n('fwd_nat') > 0 && n('fwd_nat_reply') > 0, counters);
  // replies leave by the other interface (XDP_REDIRECT), the client's packets too
  assert.ok(n('fwd_redirect') >= n('fwd_nat_reply'), counters);
  assert.doesNotMatch(counters, /^drop_/m, counters);
});
