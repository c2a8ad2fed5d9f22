// Upgrade in place across a layout change, with live connections. The "older lvs-xdp" is the
// director built with -DLVS_TEST_OLD_ABI=0 (bpf/lvs_abi.h: ABI version 0, other lvs_conn and
// lvs_real layouts; `make -C bpf test-objects`): the CLI attaches and configures, then
// test/lib/old-director.ts swaps in the old program with its two maps of other layouts, pinned
// the way lifecycle.ts pins them, and writes its snapshot. Connections are made
// by BPF_PROG_TEST_RUN frames through the pinned program; then `lvs-xdp upgrade` runs through
// the CLI and the same flows must reach the same realservers through the connection table.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { clientPacket, TCP } from '../lib/frames.js';
import { XDP } from '../lib/director.js';
import { CliNamespace, type CliRun } from '../lib/cli-ns.js';
import { buildOldObjects, swapInOldDirector, pinnedCounter, OLD_OBJECT as OLD, OLD_OBJECT_EXTRA as OLD_EXTRA, OLD_OBJECT_NO_L2 as OLD_NO_L2 } from '../lib/old-director.js';
import { acceptTestRunFrames } from '../lib/accept.js';
import { decodeL2If, encodeL2Key } from '../../src/dataplane/l2addrs.js';
import { BpfMap, XdpLink, closeFd, openPinned, progFdById, progInfo, testRun } from '../../src/native/index.js';
import { ABI_VERSION } from '../../src/abi/generated.js';
import { readSnapshot } from '../../src/director/snapshot.js';
const L = new CliNamespace('lvsu');
const { pin: PIN, state: STATE } = L;
const IF = 'lvsu0';

const cli = (args: string[], input?: string, killAt?: string): CliRun => L.run(args, { input, ...(killAt ? { killAt } : {}) });
const ok = (args: string[], input?: string): CliRun => L.check(args, { input });

const mac = (last: number) => `02:00:00:00:03:${String(last).padStart(2, '0')}`;
const A = '10.79.1.1:80';
const B = '10.79.1.2:80';
const RULES = [
  `-A -t ${A} -s mh`, ...[11, 12, 13].map((l) => `-a -t ${A} -r 10.79.0.${l} -g --mac ${mac(l)}`),
  `-A -t ${B} -s sh`, ...[21, 22].map((l) => `-a -t ${B} -r 10.79.0.${l} -g --mac ${mac(l)}`),
].join('\n');
const FLOWS = 24;

let rules = '';

/** The pinned program's fd (the caller closes it). */
const pinnedProg = (): number => openPinned(`${PIN}/prog_lvs_director`);
/** The program the pinned link runs (what packets on the interface see). */
function linkProgId(): number {
  const link = XdpLink.fromPin(`${PIN}/link_${IF}`);
  try {
    return link.info().progId;
  } finally {
    link.close();
  }
}

/** Sends each flow's packet through the program the link runs; returns each flow's destination MAC.
 *  Test-run frames arrive on the test process's loopback: accepted there in whichever accepted-MAC
 *  maps exist (live, or staged by an upgrade half-way), as the attached interface's MAC is on it. */
function send(flags: number, base = 1): string[] {
  acceptTestRunFrames(PIN);
  acceptTestRunFrames(PIN, 'upgrade_');
  const fd = progFdById(linkProgId());
  try {
    const out: string[] = [];
    for (let i = 0; i < FLOWS; i++) {
      const vip = (i % 2 ? B : A).split(':')[0]!;
      const r = testRun(fd, clientPacket(`198.51.100.${base + i}`, vip, { proto: 'tcp', sport: 41000 + i, dport: 80, flags }), { dataSizeOut: 2048 });
      assert.equal(r.retval, XDP.TX, `flow ${i}: verdict ${r.retval}`);
      out.push(r.data.subarray(0, 6).toString('hex'));
    }
    return out;
  } finally {
    closeFd(fd);
  }
}

const counter = (name: string): bigint => pinnedCounter(PIN, name);

/** A director of the older version (object `objPath`) configured with RULES, attached to IF. */
async function oldDirector(objPath: string): Promise<number> {
  if (existsSync(PIN)) cli(['detach']); // what a failed test before left
  ok(['attach', IF, '--preset', 'small']);
  ok(['-R'], RULES);
  return swapInOldDirector(objPath, PIN, `${STATE}/state.msgpack`);
}

/** Establishes the flows on the old director: SYN then ACK; returns each flow's realserver MAC. */
function establish(): string[] {
  const first = send(TCP.SYN);
  assert.deepEqual(send(TCP.ACK), first, 'the old director keeps its flows');
  // The old program forwards to the configured MACs (its lvs_reals layout was written right).
  const macs = new Set([11, 12, 13, 21, 22].map((l) => mac(l).replaceAll(':', '')));
  for (const m of first) assert.ok(macs.has(m), `unexpected destination ${m}`);
  assert.ok(new Set(first).size >= 3, 'flows spread over realservers');
  return first;
}

function reset(): void {
  const r = cli(['detach']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(existsSync(PIN), false, `detach removed the pins: ${existsSync(PIN) ? readdirSync(PIN).join(' ') : ''}`);
}

/** After a completed upgrade: the flows go where they went, through the connection table. */
function assertCarriedOver(oldProg: number, flows: string[], connNew: bigint, extra?: string[]): void {
  const fd = pinnedProg();
  let id: number;
  try {
    id = progInfo(fd).id;
  } finally {
    closeFd(fd);
  }
  assert.notEqual(id, oldProg, 'a new program is pinned');
  assert.equal(linkProgId(), id, 'the link runs the pinned program');
  const hits = counter('CONN_HIT');
  assert.deepEqual(send(TCP.ACK), flows, 'every flow keeps its realserver');
  assert.equal(counter('CONN_NEW'), connNew, 'no flow was scheduled anew');
  if (extra) assert.deepEqual(send(TCP.ACK, 101), extra, 'flows made during the upgrade keep their realservers');
  assert.equal(counter('CONN_HIT') - hits, BigInt(extra ? 2 * FLOWS : FLOWS), 'every packet found its connection entry');
  assert.equal(ok(['-S', '-n']).stdout, rules, 'the configuration is unchanged');
  const conns = ok(['-L', '-n', '-c']).stdout.split('\n').filter((l) => l.includes('198.51.100.'));
  assert.equal(conns.length, extra ? 2 * FLOWS : FLOWS, 'the connection table lists every flow');
  assert.ok(readdirSync(PIN).every((f) => !f.startsWith('upgrade_')), 'no staged pin is left');
  // The attached interface is still an egress port of the rebuilt lvs_tx_ports.
  const tx = BpfMap.fromPin(`${PIN}/lvs_tx_ports`);
  try {
    const ifindex = readSnapshot(`${STATE}/state.msgpack`)!.interfaces[IF]!.ifindex;
    assert.deepEqual(tx.entries().keys.map((k) => k.readUInt32LE(0)), [ifindex]);
  } finally {
    tx.close();
  }
}

before(() => {
  buildOldObjects();
  L.create();
  L.ip('link', 'add', IF, 'type', 'veth', 'peer', 'name', 'lvsu1');
  L.ip('link', 'set', IF, 'up');
  L.ip('link', 'set', 'lvsu1', 'up');
  ok(['attach', IF, '--preset', 'small']);
  ok(['-R'], RULES);
  rules = ok(['-S', '-n']).stdout;
  reset();
});

after(() => L.cleanup());

test('upgrade across a layout change: program and links switch, connections, configuration and counters carry over', async () => {
  const oldProg = await oldDirector(OLD);
  const flows = establish();
  // Commands of this build refuse to write an older layout, naming the way out.
  const refused = cli(['-S', '-n']);
  assert.equal(refused.code, 4, refused.stderr);
  assert.match(refused.stderr, /ABI 0.*\n.*lvs-xdp upgrade/);
  const connNew = counter('CONN_NEW');
  const fwd = counter('FWD_DR');
  assert.equal(connNew, BigInt(FLOWS));

  const dry = ok(['upgrade', '--dry-run']).stdout;
  assert.match(dry, /would upgrade lvs-xdp 0\.0\.1-old \(ABI 0/);
  assert.match(dry, /lvs_conns +migrated field by field: .*struct lvs_conn layout/);
  assert.match(dry, /lvs_reals +rebuilt from the configuration/);
  assert.match(dry, /lvs_svc_stats +reused as it is/);
  assert.equal(linkProgId(), oldProg, 'a dry run changes nothing');

  const up = ok(['upgrade', '--json']);
  const r = JSON.parse(up.stdout) as { status: string; maps: { name: string; action: string; entries?: number }[]; links: string[] };
  assert.equal(r.status, 'upgraded');
  assert.deepEqual(r.links, [IF]);
  assert.equal(r.maps.find((m) => m.name === 'lvs_conns')?.entries, FLOWS);
  assert.deepEqual(r.maps.filter((m) => m.action === 'rebuild').map((m) => m.name).sort(),
    ['lvs_cfg', 'lvs_dests', 'lvs_fwmarks', 'lvs_reals', 'lvs_services', 'lvs_tables', 'lvs_tx_ports', 'lvs_vip_filter']);
  assert.equal(counter('FWD_DR'), fwd, 'counters carried over');
  assertCarriedOver(oldProg, flows, connNew);
  assert.equal(counter('FWD_DR'), fwd + BigInt(FLOWS));
  const stats = ok(['-L', '-n', '--stats', '--exact', '--json']).stdout;
  assert.match(stats, /"conns": 12\b/, 'per-service connection counts carried over');

  // The snapshot records the new program, the tool and the migration.
  const snap = readSnapshot(`${STATE}/state.msgpack`)!;
  assert.equal(snap.abiVersion, ABI_VERSION);
  assert.equal(snap.upgrades?.length, 1);
  assert.equal(snap.upgrades![0]!.from.progId, oldProg);
  const again = ok(['upgrade']).stdout;
  assert.match(again, /already runs this build.*nothing changed/);
  assert.equal(linkProgId(), snap.progId);
  reset();
});

test('a field that cannot be carried over refuses the upgrade before anything changes, naming it', async () => {
  const oldProg = await oldDirector(OLD_EXTRA);
  const flows = establish();
  const before = readFileSync(`${STATE}/state.msgpack`);
  const pins = readdirSync(PIN).sort();
  const r = cli(['upgrade']);
  assert.equal(r.code, 4, r.stderr);
  assert.match(r.stderr, /map lvs_conns, struct lvs_conn: field test_cookie \(4 bytes\) is not in the new layout/);
  assert.match(r.stderr, /nothing was changed/);
  assert.match(r.stderr, /hint: keep running lvs-xdp 0\.0\.1-old, or detach and attach/);
  assert.deepEqual(readFileSync(`${STATE}/state.msgpack`), before, 'snapshot untouched');
  assert.deepEqual(readdirSync(PIN).sort(), pins, 'pins untouched');
  assert.equal(linkProgId(), oldProg);
  const news = counter('CONN_NEW');
  assert.deepEqual(send(TCP.ACK), flows, 'the old director still runs with its connections');
  assert.equal(counter('CONN_NEW'), news);
  reset();
});

test('SIGKILL at every upgrade boundary: the old program with its state, or a recorded upgrade the next `upgrade` completes', async () => {
  const points = ['upgrade-filled', 'upgrade-staged', 'upgrade-recorded', 'upgrade-link-switched', 'upgrade-caught-up', 'upgrade-pin-replaced#1', 'upgrade-pin-replaced#7', 'upgrade-committed'];
  for (const point of points) {
    const oldProg = await oldDirector(OLD);
    const flows = establish();
    const connNew = counter('CONN_NEW');
    const k = cli(['upgrade'], undefined, point);
    assert.equal(k.signal, 'SIGKILL', `${point}: the fault point was not reached (exit ${k.code}: ${k.stderr})`);
    const recorded = !['upgrade-filled', 'upgrade-staged'].includes(point);
    if (!recorded) assert.equal(linkProgId(), oldProg, `${point}: the old program still runs`);
    // Whichever program the link runs, the flows keep their realservers.
    assert.deepEqual(send(TCP.ACK), flows, `${point}: forwarding after the kill`);
    assert.equal(counter('CONN_NEW'), connNew, `${point}: no flow scheduled anew`);
    // New flows while the upgrade is half-way: made by whichever program runs (the old one's
    // entries after the copy reach the new table by the catch-up after the switch).
    const extra = send(TCP.SYN, 101);
    const connNewAll = connNew + BigInt(FLOWS);
    assert.equal(counter('CONN_NEW'), connNewAll, point);
    const next = cli(['-S', '-n']);
    if (point === 'upgrade-committed') {
      assert.equal(next.code, 0, next.stderr);
    } else {
      assert.equal(next.code, 4, `${point}: ${next.stderr}`);
      assert.match(next.stderr, recorded ? /upgrade .* was interrupted[^]*lvs-xdp upgrade/ : /ABI 0[^]*lvs-xdp upgrade/, point);
    }
    const done = ok(['upgrade']);
    if (point === 'upgrade-committed') assert.match(done.stdout, /already runs this build/, point);
    else if (recorded) assert.match(done.stdout, /completed the interrupted upgrade/, point);
    else assert.match(done.stdout, /upgraded in place/, point);
    assertCarriedOver(oldProg, flows, connNewAll, extra);
    reset();
  }
});

/** The interface's accepted MACs in the accepted-MAC maps pinned under `prefix`. */
function acceptedOf(prefix: string): { slots: string[]; egress: string; inHash: boolean } {
  const ifindex = readSnapshot(`${STATE}/state.msgpack`)!.interfaces[IF]!.ifindex;
  const own = L.ip('-j', 'link', 'show', IF);
  const mac = (JSON.parse(own) as { address: string }[])[0]!.address;
  const ifs = BpfMap.fromPin(`${PIN}/${prefix}lvs_l2_ifs`);
  const addrs = BpfMap.fromPin(`${PIN}/${prefix}lvs_l2_addrs`);
  try {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(ifindex);
    const e = decodeL2If(ifindex, ifs.lookup(b)!);
    assert.equal(e.egress, mac);
    return { slots: e.slots, egress: e.egress, inHash: addrs.lookup(encodeL2Key(ifindex, mac)) !== null };
  } finally {
    ifs.close();
    addrs.close();
  }
}

test('a director without accepted-MAC maps (ABI 1): the maps are created and filled before the link switches, flows carry over', async () => {
  const oldProg = await oldDirector(OLD_NO_L2);
  assert.ok(!existsSync(`${PIN}/lvs_l2_ifs`) && !existsSync(`${PIN}/lvs_l2_addrs`), 'the older director has no accepted-MAC maps');
  const flows = establish();
  const connNew = counter('CONN_NEW');
  const dry = ok(['upgrade', '--dry-run']).stdout;
  assert.match(dry, /would upgrade lvs-xdp 0\.0\.1-old \(ABI 1/);
  assert.match(dry, /lvs_l2_ifs +created: not in the running director/);
  assert.match(dry, /lvs_l2_addrs +created/);
  assert.match(dry, /lvs_conns +reused as it is/);

  // Killed at the last point before the link switch: the staged maps already hold the
  // interface's own MAC (inline, slot 0, and in lvs_l2_addrs); the old program still runs.
  const k = cli(['upgrade'], undefined, 'upgrade-recorded');
  assert.equal(k.signal, 'SIGKILL', k.stderr);
  assert.equal(linkProgId(), oldProg, 'no link switched yet');
  const mac = (JSON.parse(L.ip('-j', 'link', 'show', IF)) as { address: string }[])[0]!.address;
  const staged = acceptedOf('upgrade_');
  assert.equal(staged.slots[0], mac);
  assert.ok(staged.inHash);
  assert.deepEqual(send(TCP.ACK), flows, 'the old program forwards meanwhile');

  const done = ok(['upgrade']);
  assert.match(done.stdout, /completed the interrupted upgrade/);
  assert.equal(acceptedOf('').slots[0], mac, 'the live maps are the filled ones');
  assertCarriedOver(oldProg, flows, connNew);
  // Foreign frames are passed by the new program (it checks), while the old one forwarded them.
  const fd = progFdById(linkProgId());
  try {
    const before = counter('PASS_NOT_OUR_MAC');
    const foreign = clientPacket('198.51.100.1', A.split(':')[0]!, { proto: 'tcp', sport: 41000, dport: 80, flags: TCP.ACK });
    foreign.set([0x02, 0, 0, 0, 0x77, 0x77], 0);
    assert.equal(testRun(fd, foreign, { dataSizeOut: 2048 }).retval, XDP.PASS);
    assert.equal(counter('PASS_NOT_OUR_MAC'), before + 1n);
  } finally {
    closeFd(fd);
  }
  assert.equal(readSnapshot(`${STATE}/state.msgpack`)!.abiVersion, ABI_VERSION);
  reset();
});
