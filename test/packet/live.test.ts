// Live changes through the public CLI, each a separate process as an operator runs them, with
// packets run through the attached program (BPF_PROG_TEST_RUN on the pinned program) after
// every change: the data plane chooses as the new tables say, established flows keep their
// realserver, weight 0 drains, and a failed change leaves everything exactly as it was.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { rmSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { clientPacket, TCP, addrBytes } from '../lib/frames.js';
import { XDP } from '../lib/director.js';
import { repoRoot } from '../lib/paths.js';
import { CliNamespace } from '../lib/cli-ns.js';
import { acceptTestRunFrames } from '../lib/accept.js';
import { openPinned, closeFd, testRun, BpfMap } from '../../src/native/index.js';
import { CFG, decode } from '../../src/abi/layout.js';
import { ABI } from '../../src/abi/generated.js';
import { Director } from '../../src/director/director.js';
import { flowHash, HASH_ALL } from '../../src/dataplane/flowhash.js';
import { serviceId } from '../../src/model/types.js';

const L = new CliNamespace('lvsc');
const { ns: NS, pin: PIN, state: STATE, env } = L;
const ROOT = repoRoot();
const VIP = '10.77.0.100';
const SVC = `${VIP}:80`;

function cli(args: string[], input?: string): { code: number; stdout: string; stderr: string } {
  const r = L.run(args, { input });
  return { code: r.code ?? -1, stdout: r.stdout, stderr: r.stderr };
}
const ok = (args: string[], input?: string): string => L.ok(args, { input });

const macOf = (rip: string) => `02:00:00:00:01:${rip.split('.').pop()!.padStart(2, '0').slice(-2)}`;
const ripOfMac = (m: Buffer) => `10.77.0.${parseInt(m.subarray(0, 6).toString('hex').slice(-2), 10)}`;

let prog = -1;
function send(client: string, sport: number, flags: number): { action: number; rip: string } {
  acceptTestRunFrames(PIN);
  const r = testRun(prog, clientPacket(client, VIP, { proto: 'tcp', sport, dport: 80, flags }), { dataSizeOut: 2048 });
  return { action: r.retval, rip: r.retval === XDP.TX ? ripOfMac(r.data) : '' };
}

let port = 20000;
function flows(n: number): { client: string; sport: number }[] {
  return Array.from({ length: n }, (_, i) => ({ client: `198.51.100.${1 + (i % 250)}`, sport: port++ }));
}

/** New flows go exactly where the kernel's table says (checked slot by slot for n flows). */
function checkNewFlows(n: number): Map<string, number> {
  const d = Director.open({ pinDir: PIN, stateDir: STATE });
  let table: (string | null)[];
  try {
    table = d.readTables().get(`tcp ${SVC}`)!;
  } finally {
    d.close();
  }
  const spread = new Map<string, number>();
  for (const f of flows(n)) {
    const h = flowHash({ saddr: addrBytes(f.client), daddr: addrBytes(VIP), sport: f.sport, dport: 80, proto: 6 }, HASH_ALL, 0);
    const want = table[h % table.length];
    const got = send(f.client, f.sport, TCP.SYN);
    assert.equal(got.action, XDP.TX);
    assert.equal(got.rip, want, `flow ${f.client}:${f.sport}`);
    spread.set(got.rip, (spread.get(got.rip) ?? 0) + 1);
  }
  return spread;
}

function addReal(last: number, weight = 1): void {
  ok(['-a', '-t', SVC, '-r', `10.77.0.${last}`, '-g', '-w', String(weight), '--mac', macOf(`10.77.0.${last}`)]);
}

before(() => {
  L.create();
  const rs = L.addNamespace('r');
  L.ip('link', 'add', 'lvsc0', 'type', 'veth', 'peer', 'name', 'lvsc1', 'netns', rs);
  L.ip('addr', 'add', '10.77.0.1/24', 'dev', 'lvsc0');
  L.ip('link', 'set', 'lvsc0', 'up');
  L.sh('ip', '-n', rs, 'addr', 'add', '10.77.0.60/24', 'dev', 'lvsc1');
  L.sh('ip', '-n', rs, 'link', 'set', 'lvsc1', 'up');
  L.ip('route', 'add', '10.88.0.0/24', 'via', '10.77.0.60');
  ok(['attach', 'lvsc0', '--preset', 'small', '--max-services', '8']);
  prog = openPinned(`${PIN}/prog_lvs_director`);
  L.onCleanup(() => closeFd(prog));
});

after(() => L.cleanup());

test('each CLI change: new flows go where the new table says', () => {
  ok(['-A', '-t', SVC, '-s', 'mh']);
  for (const r of [11, 12, 13]) addReal(r);
  let spread = checkNewFlows(300);
  assert.deepEqual([...spread.keys()].sort(), ['10.77.0.11', '10.77.0.12', '10.77.0.13']);
  addReal(14, 2);
  spread = checkNewFlows(300);
  assert.ok((spread.get('10.77.0.14') ?? 0) > (spread.get('10.77.0.11') ?? 0), 'weight 2 gets more than weight 1');
  ok(['-e', '-t', SVC, '-r', '10.77.0.14', '-g', '-w', '1', '--mac', macOf('10.77.0.14')]);
  checkNewFlows(200);
  ok(['-d', '-t', SVC, '-r', '10.77.0.14']);
  spread = checkNewFlows(200);
  assert.equal(spread.get('10.77.0.14'), undefined);
  assert.match(ok(['-L', '-n']), /TCP {2}10\.77\.0\.100:80 mh\n {2}-> 10\.77\.0\.11:80 {16}Route {3}1 /);
});

test('flows established before a change keep their realserver; weight 0 drains without cutting', () => {
  const est = flows(120).map((f) => {
    const syn = send(f.client, f.sport, TCP.SYN);
    assert.equal(send(f.client, f.sport, TCP.ACK).rip, syn.rip);
    return { ...f, rip: syn.rip };
  });
  // Changes to other realservers: add one, reweight one, quiesce one.
  addReal(15, 3);
  ok(['-e', '-t', SVC, '-r', '10.77.0.12', '-g', '-w', '2', '--mac', macOf('10.77.0.12')]);
  ok(['-e', '-t', SVC, '-r', '10.77.0.13', '-g', '-w', '0', '--mac', macOf('10.77.0.13')]);
  for (const f of est) assert.equal(send(f.client, f.sport, TCP.ACK | TCP.PSH).rip, f.rip, `established ${f.client}:${f.sport} moved`);
  assert.ok(est.some((f) => f.rip === '10.77.0.13'), 'some flows were on the quiesced realserver');
  const spread = checkNewFlows(300);
  assert.equal(spread.get('10.77.0.13'), undefined, 'a quiesced realserver gets no new flows');
  // -L shows its connections still counted.
  const listing = ok(['-L', '-n']);
  const line = listing.split('\n').find((l) => l.includes('10.77.0.13:80'))!;
  assert.match(line, /Route {3}0 {6}[1-9]/);
  // Deleting it stops its flows from reaching it: they are dropped (not rescheduled to another
  // realserver, which would reset them) until it is back, then they resume on it.
  ok(['-d', '-t', SVC, '-r', '10.77.0.13']);
  const on13 = est.filter((x) => x.rip === '10.77.0.13');
  for (const f of on13) assert.equal(send(f.client, f.sport, TCP.ACK).action, XDP.DROP);
  ok(['-a', '-t', SVC, '-r', '10.77.0.13', '-g', '-w', '1', '--mac', macOf('10.77.0.13')]);
  for (const f of on13) assert.equal(send(f.client, f.sport, TCP.ACK).rip, '10.77.0.13');
});

/** Digests of the kernel's tables and of the running configuration (short, for assertions). */
function dataPlaneState(): string {
  const d = Director.open({ pinDir: PIN, stateDir: STATE });
  const sha = (x: unknown) => createHash('sha256').update(JSON.stringify(x)).digest('hex').slice(0, 16);
  try {
    return `tables ${sha([...d.readTables()])} config ${sha(d.config)}`;
  } finally {
    d.close();
  }
}

test('a failed change (bad rule in the middle of a restore or file) changes nothing', () => {
  const before = dataPlaneState();
  const saved = ok(['-S', '-n']);
  let r = cli(['-R'], `-a -t ${SVC} -r 10.77.0.20 -g -w 1 --mac 02:00:00:00:01:20\n-a -t ${SVC} -r 10.77.0.21 -g -w 70000\n`);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /<stdin>:2: -w: weight 70000 out of range 0\.\.65535/);
  r = cli(['-R'], `-a -t ${SVC} -r 10.77.0.20 -g -w 1 --mac 02:00:00:00:01:20\n-a -t 10.77.0.99:80 -r 10.77.0.21 -g\n`);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /<stdin>:2: -a: service tcp 10\.77\.0\.99:80 does not exist/);
  const file = `${STATE}-bad.yaml`;
  writeFileSync(file, `services:\n  - protocol: tcp\n    vip: ${VIP}\n    port: 80\n    scheduler: mh\n    realservers:\n      - address: 10.77.0.11\n        mac: "${macOf('10.77.0.11')}"\n      - address: 10.77.0.12\n        weight: -1\n`);
  r = cli(['apply', '-f', file]);
  rmSync(file);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /bad\.yaml:10/);
  assert.equal(ok(['-S', '-n']), saved);
  assert.equal(dataPlaneState(), before);
});

test('save and restore give the same tables', () => {
  const saved = ok(['-S', '-n']);
  const tables = dataPlaneState();
  ok(['-C']);
  assert.equal(ok(['-S', '-n']), '');
  ok(['-R'], saved);
  assert.equal(ok(['-S', '-n']), saved);
  assert.equal(dataPlaneState().split(' config')[0], tables.split(' config')[0]);
  checkNewFlows(100);
});

test('diff -f is a dry run that reports moved slots; apply -f then applies it', () => {
  const yaml = ok(['config']);
  const edited = yaml.replace(/(address: 10\.77\.0\.15,[^}]*weight: )3/, '$11');
  assert.notEqual(edited, yaml);
  const file = `${STATE}-edit.yaml`;
  writeFileSync(file, edited);
  try {
    const before = dataPlaneState();
    const diff = ok(['diff', '-f', file]);
    assert.match(diff, /10\.77\.0\.15/);
    assert.match(diff, /table: \d+(\.\d+)?% of slots move to another realserver/);
    assert.equal(dataPlaneState(), before);
    const report = JSON.parse(ok(['diff', '-f', file, '--json'])) as unknown;
    assert.ok(report && typeof report === 'object');
    ok(['apply', '-f', file]);
    assert.notEqual(dataPlaneState(), before);
    assert.equal(ok(['diff', '-f', file]).trim(), 'no changes');
    checkNewFlows(100);
  } finally {
    rmSync(file, { force: true });
  }
});

test('two CLI processes at once are serialized: concurrent adds all land', async () => {
  const adds = [30, 31, 32, 33, 34, 35].map((last) => new Promise<number>((resolve) => {
    const p = spawn('nsenter', [`--net=/run/netns/${NS}`, process.execPath, `${ROOT}/bin/lvs-xdp.js`,
      '-a', '-t', SVC, '-r', `10.77.0.${last}`, '-g', '--mac', macOf(`10.77.0.${last}`)], { env, stdio: 'ignore' });
    p.on('exit', (code) => resolve(code ?? -1));
  }));
  assert.deepEqual(await Promise.all(adds), [0, 0, 0, 0, 0, 0]);
  const saved = ok(['-S', '-n']);
  for (const last of [30, 31, 32, 33, 34, 35]) assert.match(saved, new RegExp(`-r 10\\.77\\.0\\.${last}:80 `));
  checkNewFlows(200);
  for (const last of [30, 31, 32, 33, 34, 35]) ok(['-d', '-t', SVC, '-r', `10.77.0.${last}`]);
});

test('bad input: each class gets a clear error naming what is wrong', () => {
  const cases: [string[], RegExp][] = [
    [['-A', '-t', '10.77.0.101:80', '-s', 'lblc'], /-s: scheduler lblc is not supported by the XDP data plane: it keeps a cache of destination address .* \(supported: mh, sh, dh, rr, wrr, lc, wlc, sed, nq, twos, fo, ovf\)/],
    [['-A', '-t', '10.77.0.101:80', '-s', 'foo'], /unknown scheduler "foo"/],
    [['-A', '-t', '10.77.0.101:80', '-s', 'mh', '-b', 'sh-port'], /scheduler flag sh-port applies only to scheduler sh/],
    [['-a', '-t', SVC, '-r', '[2001:db8::40]', '-m'], /LVS-NAT cannot forward an IPv4 VIP to an IPv6 realserver/],
    [['-a', '-t', SVC, '-r', '10.77.0.40', '-g', '-w', '65536'], /weight 65536 out of range/],
    [['-a', '-t', SVC, '-r', '2001:db8::1', '-g'], /LVS-DR cannot forward an IPv4 VIP to an IPv6 realserver/],
    [['-A', '-t', SVC, '-s', 'mh'], /service tcp 10\.77\.0\.100:80 already exists/],
    [['-a', '-t', SVC, '-r', '10.77.0.11', '-g'], /realserver 10\.77\.0\.11 of service tcp 10\.77\.0\.100:80 already exists/],
    [['-A', '-t', '10.77.0.300:80', '-s', 'mh'], /"10\.77\.0\.300" is not an IPv4 or IPv6 address/],
    [['-A', '-t', '10.77.0.101:70000', '-s', 'mh'], /port 70000 out of range/],
    [['-d', '-t', SVC, '-r', '10.77.0.99'], /realserver 10\.77\.0\.99 of service tcp 10\.77\.0\.100:80 does not exist/],
  ];
  const before = dataPlaneState();
  for (const [args, msg] of cases) {
    const r = cli(args);
    assert.equal(r.code, 2, `${args.join(' ')}: exit ${r.code} ${r.stderr}`);
    assert.match(r.stderr, msg, args.join(' '));
  }
  // More services than the maps hold (attached with --max-services 8), refused before writing.
  const rules = Array.from({ length: 9 }, (_, i) => `-A -t 10.77.1.${i}:80 -s mh`).join('\n');
  const r = cli(['-R'], rules);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /10 services exceed the limit of 8/);
  assert.equal(dataPlaneState(), before);
});

test('a corrupt or foreign snapshot is a clear error and the data plane keeps forwarding', () => {
  const snap = `${STATE}/state.msgpack`;
  const good = readFileSync(snap);
  const f = flows(1)[0]!;
  const rip = send(f.client, f.sport, TCP.SYN).rip;
  try {
    writeFileSync(snap, Buffer.from('this is not msgpack \x00\xc1\xc1'));
    let r = cli(['-L', '-n']);
    assert.equal(r.code, 4);
    assert.match(r.stderr, /state snapshot .*state\.msgpack is corrupt/);
    writeFileSync(snap, Buffer.from([0x81, 0xa1, 0x61, 0x01])); // msgpack {a: 1}
    r = cli(['-a', '-t', SVC, '-r', '10.77.0.50', '-g']);
    assert.equal(r.code, 4);
    assert.match(r.stderr, /is not an lvs-xdp state snapshot/);
    assert.equal(send(f.client, f.sport, TCP.ACK).rip, rip);
  } finally {
    writeFileSync(snap, good, { mode: 0o600 });
  }
  assert.equal(cli(['-L', '-n']).code, 0);
});

test('state is root-only: pins 0700 dir, snapshot 0600', () => {
  assert.ok(existsSync(PIN));
  const mode = (p: string) => spawnSync('stat', ['-c', '%a', p], { encoding: 'utf8' }).stdout.trim();
  assert.equal(mode(PIN), '700');
  assert.equal(mode(STATE), '700');
  assert.equal(mode(`${STATE}/state.msgpack`), '600');
  const st = JSON.parse(ok(['status', '--json'])) as { attached: boolean; interfaces: { name: string; mode: string }[]; services: number };
  assert.equal(st.attached, true);
  assert.deepEqual(st.interfaces.map((i) => i.name), ['lvsc0']);
  void serviceId;
});

test('MAC resolution: from the neighbour table (probed), clear errors naming each unresolvable realserver', () => {
  const peerMac = spawnSync('ip', ['-n', `${NS}r`, '-j', 'link', 'show', 'lvsc1'], { encoding: 'utf8' }).stdout;
  const want = (JSON.parse(peerMac) as { address: string }[])[0]!.address;
  ok(['-A', '-t', '10.77.0.101:80', '-s', 'mh']);
  ok(['-a', '-t', '10.77.0.101:80', '-r', '10.77.0.60', '-g']);
  acceptTestRunFrames(PIN);
  const r = testRun(prog, clientPacket('198.51.100.9', '10.77.0.101', { proto: 'tcp', sport: 999, dport: 80, flags: TCP.SYN }), { dataSizeOut: 2048 });
  assert.equal(r.retval, XDP.TX);
  assert.equal([...r.data.subarray(0, 6)].map((b) => b.toString(16).padStart(2, '0')).join(':'), want);
  // A configuration error (DR via a gateway) refuses the whole restore, naming the realserver.
  const bad = cli(['-R'], '-a -t 10.77.0.101:80 -r 10.77.0.61 -g\n-a -t 10.77.0.101:80 -r 10.88.0.5 -g\n');
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /cannot resolve the next hop of 1 realserver:/);
  assert.match(bad.stderr, /realserver 10\.88\.0\.5 \(DR\): LVS-DR needs the realserver on a directly connected network, but 10\.88\.0\.5 is routed via 10\.77\.0\.60/);
  assert.doesNotMatch(ok(['-S', '-n']), /10\.77\.0\.61/, 'nothing of the refused restore was applied');
  // A realserver that does not answer is down, not an error: installed unresolved, without
  // table slots (every new flow goes to the one that answers), listed as such.
  const down = cli(['-a', '-t', '10.77.0.101:80', '-r', '10.77.0.61', '-g']);
  assert.equal(down.code, 0, down.stderr);
  assert.match(down.stderr, /tcp 10\.77\.0\.101:80: realserver 10\.77\.0\.61 is installed unresolved \(10\.77\.0\.61 does not answer ARP\/ND on lvsc0\)/);
  assert.match(ok(['-S', '-n']), /^-a -t 10\.77\.0\.101:80 -r 10\.77\.0\.61:80 -g -w 1$/m);
  const listed = cli(['-L', '-n']);
  assert.match(listed.stdout, /^ {2}-> 10\.77\.0\.61:80 +Route +1 +0 +0 *$/m);
  assert.match(listed.stderr, /tcp 10\.77\.0\.101:80 -> 10\.77\.0\.61: UNRESOLVED since \S+ \(10\.77\.0\.61 does not answer ARP\/ND on lvsc0\)/);
  const st = JSON.parse(ok(['status', '--json'])) as { unresolved?: { service: string; address: string }[] };
  assert.deepEqual(st.unresolved?.map((u) => `${u.service}/${u.address}`), ['tcp 10.77.0.101:80/10.77.0.61']);
  acceptTestRunFrames(PIN);
  for (let sport = 2000; sport < 2040; sport++) {
    const r2 = testRun(prog, clientPacket('198.51.100.9', '10.77.0.101', { proto: 'tcp', sport, dport: 80, flags: TCP.SYN }), { dataSizeOut: 2048 });
    assert.equal([...r2.data.subarray(0, 6)].map((b) => b.toString(16).padStart(2, '0')).join(':'), want, `sport ${sport}: only the realserver that answers takes new flows`);
  }
  ok(['-d', '-t', '10.77.0.101:80', '-r', '10.77.0.61']);
  assert.equal(JSON.parse(ok(['status', '--json'])).unresolved, undefined);
  // Tun goes through the next hop: the router's MAC.
  ok(['-a', '-t', '10.77.0.101:80', '-r', '10.88.0.5', '-i']);
  // No tunnel source configured: the route's preferred source toward the realserver is used.
  const cfg = BpfMap.fromPin(`${PIN}/lvs_cfg`);
  try {
    const src = cfg.lookup(Buffer.alloc(4))!.subarray(CFG.fields.find((f) => f.name === 'tun_src4')!.offset, 4);
    assert.deepEqual([...src], [10, 77, 0, 1]);
  } finally {
    cfg.close();
  }
  ok(['-D', '-t', '10.77.0.101:80']);
});

test('listings and stats follow the traffic', () => {
  ok(['-Z']);
  const before = JSON.parse(ok(['stats', '--json', '-i', '0'])) as { services: { id: string; packets: number }[] };
  assert.equal(before.services.find((s) => s.id === `tcp ${SVC}`)!.packets, 0);
  const fs = flows(40);
  for (const f of fs) {
    send(f.client, f.sport, TCP.SYN);
    send(f.client, f.sport, TCP.ACK);
  }
  const st = JSON.parse(ok(['stats', '--json', '-i', '0'])) as { services: { id: string; packets: number; conns: number; realservers: { packets: number; active: number }[] }[]; counters: Record<string, { value: number }> };
  const svc = st.services.find((s) => s.id === `tcp ${SVC}`)!;
  assert.equal(svc.packets, 80);
  assert.equal(svc.conns, 40);
  assert.equal(svc.realservers.reduce((n, r) => n + r.packets, 0), 80);
  assert.ok(svc.realservers.reduce((n, r) => n + r.active, 0) >= 40);
  assert.ok(st.counters.fwd_dr!.value >= 80);
  const stats = ok(['-L', '-n', '--stats', '--exact']);
  assert.match(stats, /^Prot LocalAddress:Port {15}Conns {3}InPkts  OutPkts  InBytes OutBytes$/m);
  assert.match(stats, new RegExp(`^TCP  10\\.77\\.0\\.100:80 {21}40 {7}80 {8}0 +\\d+ {8}0$`, 'm'));
  const conns = ok(['-L', '-n', '-c']);
  assert.match(conns, /^IPVS connection entries\npro expire state {7}source {13}virtual {12}destination\n/);
  for (const f of fs.slice(0, 5)) assert.match(conns, new RegExp(`TCP \\d\\d:\\d\\d  ESTABLISHED ${f.client.replace(/\./g, '\\.')}:${f.sport} +10\\.77\\.0\\.100:80 +10\\.77\\.0\\.\\d+:80`));
  const rate = ok(['-L', '-n', '--rate']);
  assert.match(rate, /^Prot LocalAddress:Port {17}CPS {4}InPPS {3}OutPPS {4}InBPS {3}OutBPS$/m);
});

test('doctor: attached interface, pinned state and realserver reachability, each with a verdict', () => {
  const r = cli(['doctor', '--json']);
  const fs = JSON.parse(r.stdout) as { verdict: string; check: string; detail: string; fix?: string }[];
  const find = (c: string) => fs.find((f) => f.check === c);
  assert.equal(find('pinned state')?.verdict, 'ok');
  assert.equal(find('attached lvsc0')?.verdict, 'ok');
  assert.match(find('interface lvsc0 driver')!.detail, /veth: native XDP/);
  // The peer lvsc1 is in the realserver's (named) namespace, reached by its netns id: it runs no
  // XDP program, so frames sent back out with XDP_TX vanish there.
  assert.equal(find('interface lvsc0 veth peer')?.verdict, 'fail');
  assert.match(find('interface lvsc0 veth peer')!.detail, /^lvsc1 in namespace \S+ runs no native XDP program/);
  // The VIP is in lvsc0's subnet but not local on the director: nothing answers ARP for it.
  assert.equal(find(`VIP ${VIP} local`)?.verdict, 'fail');
  // Realservers given with --mac but not on the link: the configured MAC is used, with a warning.
  const rs = fs.find((f) => f.check === `tcp ${SVC} -> 10.77.0.11`)!;
  assert.equal(rs.verdict, 'warn');
  assert.match(rs.detail, /does not answer ARP\/ND on lvsc0/);
  assert.equal(r.code, 1);
  // An interface that is not there is a failure with its fix.
  const other = cli(['doctor', 'lvsc9']);
  assert.match(other.stdout, /FAIL {2}interface lvsc9 +does not exist in this network namespace/);
  assert.equal(other.code, 1);
  // A veth whose peer (here, in the same namespace) runs no XDP program drops every forwarded
  // frame: a failure naming the peer; with a program on the peer it is fine.
  L.ip('link', 'add', 'lvsc6', 'type', 'veth', 'peer', 'name', 'lvsc7');
  const peerCheck = () => (JSON.parse(cli(['doctor', 'lvsc6', '--json']).stdout) as { verdict: string; check: string; detail: string; fix?: string }[])
    .find((f) => f.check === 'interface lvsc6 veth peer')!;
  let v = peerCheck();
  assert.equal(v.verdict, 'fail');
  assert.match(v.detail, /lvsc7 runs no native XDP program/);
  assert.match(v.fix!, /lvsc7/);
  const pin = `${PIN}-peer-link`;
  L.onCleanup(() => rmSync(pin, { force: true }));
  const r0 = spawnSync('nsenter', [`--net=/run/netns/${NS}`, process.execPath, `${ROOT}/dist/test/lib/foreign-xdp.js`, 'lvsc7', pin], { encoding: 'utf8' });
  assert.equal(r0.status, 0, r0.stderr);
  v = peerCheck();
  assert.equal(v.verdict, 'ok', v.detail);
  rmSync(pin);
  L.ip('link', 'del', 'lvsc6');
});

test('VIP filter: on after a change, and it follows services being removed and added', () => {
  const cfg = BpfMap.fromPin(`${PIN}/lvs_cfg`);
  try {
    const flags = cfg.lookup(Buffer.alloc(4))![CFG.fields.find((f) => f.name === 'flags')!.offset]!;
    assert.equal(flags & ABI.LVS_CFG_F_VIP_FILTER, ABI.LVS_CFG_F_VIP_FILTER);
  } finally {
    cfg.close();
  }
  const syn = (vip: string) => (acceptTestRunFrames(PIN), testRun(prog, clientPacket('198.51.100.77', vip, { proto: 'tcp', sport: 4444, dport: 80, flags: TCP.SYN }), { dataSizeOut: 2048 })).retval;
  assert.equal(syn('10.77.0.102'), XDP.PASS);
  ok(['-A', '-t', '10.77.0.102:80', '-s', 'sh']);
  ok(['-a', '-t', '10.77.0.102:80', '-r', '10.77.0.11', '-g', '--mac', macOf('10.77.0.11')]);
  assert.equal(syn('10.77.0.102'), XDP.TX);
  ok(['-D', '-t', '10.77.0.102:80']);
  // The deleted service's tombstone: its flow's entry waits (dropped), a new flow is the kernel's.
  assert.equal(syn('10.77.0.102'), XDP.DROP);
  const other = testRun(prog, clientPacket('198.51.100.77', '10.77.0.102', { proto: 'tcp', sport: 4445, dport: 80, flags: TCP.SYN }), { dataSizeOut: 2048 }).retval;
  assert.equal(other, XDP.PASS);
  assert.equal(syn(VIP), XDP.TX);
});

test('ipvsadm extras: --set / -L --timeout reach the data plane, UDP counts as InActConn, -L -t has no version line, bundles', () => {
  const timeoutsInMaps = (): number[] => {
    const cfg = BpfMap.fromPin(`${PIN}/lvs_cfg`);
    try {
      const v = decode(CFG, cfg.lookup(Buffer.alloc(4))!).timeout_s as Uint8Array;
      const b = Buffer.from(v);
      // Index = LVS_CS_*: ESTABLISHED (tcp), FIN_WAIT (tcpfin), UDP.
      return [ABI.LVS_CS_ESTABLISHED, ABI.LVS_CS_FIN_WAIT, ABI.LVS_CS_UDP].map((i) => b.readUInt32LE(i * 4));
    } finally {
      cfg.close();
    }
  };
  assert.equal(ok(['-L', '--timeout']), 'Timeout (tcp tcpfin udp): 900 120 300\n');
  ok(['--set', '1000', '0', '40']); // 0 leaves tcpfin as it is
  assert.equal(ok(['-L', '--timeout']), 'Timeout (tcp tcpfin udp): 1000 120 40\n');
  assert.deepEqual(timeoutsInMaps(), [1000, 120, 40]);
  const bad = cli(['--set', '1000', '120']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--set: needs three timeouts/);
  ok(['--set', '900', '120', '300']);
  assert.deepEqual(timeoutsInMaps(), [900, 120, 300]);

  // A UDP flow is InActConn, as in IPVS (only TCP's state machine makes a connection active).
  ok(['-Au', '10.77.0.103:53', '-s', 'sh']);
  ok(['-au', '10.77.0.103:53', '-r10.77.0.12', '-gw', '2', '--mac', macOf('10.77.0.12')]);
  acceptTestRunFrames(PIN);
  const dns = testRun(prog, clientPacket('198.51.100.78', '10.77.0.103', { proto: 'udp', sport: 5353, dport: 53 }), { dataSizeOut: 2048 });
  assert.equal(dns.retval, XDP.TX);
  const one = ok(['-Lnu', '10.77.0.103:53']);
  assert.equal(one, [
    'Prot LocalAddress:Port Scheduler Flags',
    '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn',
    'UDP  10.77.0.103:53 sh',
    '  -> 10.77.0.12:53                Route   2      0          1         ',
    '',
  ].join('\n'));
  assert.match(ok(['-L', '-n']), /^lvs-xdp version /);
  ok(['-Du', '10.77.0.103:53']);
});

test('stats --watch --json: one document per interval until interrupted', async () => {
  const p = spawn('nsenter', L.argv([process.execPath, `${ROOT}/bin/lvs-xdp.js`, 'stats', '--watch', '--json', '-i', '0.2']), { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  p.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  const exited = new Promise<number | null>((res) => p.on('exit', (c) => res(c)));
  const deadline = Date.now() + 30_000;
  while (out.split('\n').filter((l) => l.trim()).length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  p.kill('SIGINT');
  assert.equal(await exited, 0);
  const docs = out.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as { seconds: number; services: { id: string }[] });
  assert.ok(docs.length >= 3, `${docs.length} documents`);
  for (const d of docs) {
    assert.ok(d.seconds > 0, 'rates over a measured interval');
    assert.ok(d.services.some((s) => s.id === `tcp ${SVC}`));
  }
});
