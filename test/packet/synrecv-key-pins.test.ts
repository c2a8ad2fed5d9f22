// lvs_synrecv's bucket key lives with the pinned data plane (bpf/lvs_maps.h: cfg_key_synrecv0..2,
// .rodata of the pinned program): SYN_RECV connections made before a later command are found by
// their ACK after it. Through the CLI in a namespace of its own: later commands (another process
// opening the pins, detach and attach of one interface of two) keep the key; `lvs-xdp upgrade`
// carries it from the running program (an older build, test/lib/old-director.ts, loaded with a
// key of its own) to the new one; the last detach ends the director, and the next attach draws
// a new key. Frames go through the program the link runs (BPF_PROG_TEST_RUN), as in
// test/packet/upgrade.test.ts.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { clientPacket, TCP } from '../lib/frames.js';
import { XDP } from '../lib/director.js';
import { CliNamespace } from '../lib/cli-ns.js';
import { buildOldObjects, swapInOldDirector, pinnedCounter, OLD_OBJECT_NO_L2 as OLD } from '../lib/old-director.js';
import { acceptTestRunFrames } from '../lib/accept.js';
import { BpfMap, XdpLink, closeFd, openPinned, progFdById, testRun } from '../../src/native/index.js';
import { newSynRecvKey, runningSynRecvKey, synRecvKeyGlobals } from '../../src/dataplane/loader.js';
import { readSynRecv } from '../../src/director/synrecv.js';

const L = new CliNamespace('lvsk');
const { pin: PIN, state: STATE } = L;
const IF = 'lvsk0';
const IF2 = 'lvsk2';
const ok = (args: string[], input?: string) => L.check(args, { input });
const VIP = '10.79.2.1';
const RULES = [`-A -t ${VIP}:80 -s rr`, ...[11, 12, 13].map((l) => `-a -t ${VIP}:80 -r 10.79.0.${l} -g --mac 02:00:00:00:04:${l}`)].join('\n');
const FLOWS = 24;

/** The pinned program's lvs_synrecv key (hex). */
function pinnedKey(): string {
  const fd = openPinned(`${PIN}/prog_lvs_director`);
  try {
    return runningSynRecvKey(fd)!.toString('hex');
  } finally {
    closeFd(fd);
  }
}

/** Each flow's packet through the program IF's link runs; returns each flow's destination MAC. */
function send(flags: number): string[] {
  acceptTestRunFrames(PIN);
  const link = XdpLink.fromPin(`${PIN}/link_${IF}`);
  let id: number;
  try {
    id = link.info().progId;
  } finally {
    link.close();
  }
  const fd = progFdById(id);
  try {
    return Array.from({ length: FLOWS }, (_, i) => {
      const r = testRun(fd, clientPacket(`198.51.100.${1 + i}`, VIP, { proto: 'tcp', sport: 42000 + i, dport: 80, flags }), { dataSizeOut: 2048 });
      assert.equal(r.retval, XDP.TX, `flow ${i}: verdict ${r.retval}`);
      return r.data.subarray(0, 6).toString('hex');
    });
  } finally {
    closeFd(fd);
  }
}

const counter = (name: string): bigint => pinnedCounter(PIN, name);

function waiting(): number {
  const m = BpfMap.fromPin(`${PIN}/lvs_synrecv`);
  try {
    return readSynRecv(m).length;
  } finally {
    m.close();
  }
}

/** The ACKs of the flows whose SYNs went to `to`: every one enters its SYN_RECV connection. */
function assertEntered(to: string[]): void {
  const entered = counter('CONN_SYNRECV_ENTERED');
  const strays = counter('CONN_STRAY');
  // rr: a flow scheduled anew would go to another realserver than its SYN did
  assert.deepEqual(send(TCP.ACK), to, 'each ACK reaches its SYN\'s realserver');
  assert.equal(counter('CONN_SYNRECV_ENTERED') - entered, BigInt(FLOWS), 'each ACK found its SYN_RECV way');
  assert.equal(counter('CONN_STRAY') - strays, 0n);
  assert.equal(waiting(), 0);
}

before(() => {
  buildOldObjects();
  L.create();
  L.ip('link', 'add', IF, 'type', 'veth', 'peer', 'name', 'lvsk1');
  L.ip('link', 'add', IF2, 'type', 'veth', 'peer', 'name', 'lvsk3');
  for (const i of [IF, 'lvsk1', IF2, 'lvsk3']) L.ip('link', 'set', i, 'up');
});
after(() => L.cleanup());

test('later commands and detach / attach of one interface keep the key: SYN_RECV ways are found; a new director draws a new key', () => {
  ok(['attach', IF, '--preset', 'small']);
  ok(['attach', IF2, '--preset', 'small']);
  ok(['-R'], RULES);
  const key = pinnedKey();
  assert.match(key, /^[0-9a-f]{24}$/);
  assert.notEqual(key, '0'.repeat(24), 'drawn, not the object\'s default');
  const to = send(TCP.SYN);
  assert.equal(new Set(to).size, 3, 'rr spread the flows');
  assert.equal(waiting(), FLOWS);
  // Other processes open the pinned data plane: a listing, a change, one interface out and back.
  assert.equal(ok(['-L', '-n', '-c']).stdout.split('\n').filter((l) => l.includes('SYN_RECV')).length, FLOWS);
  ok(['-E', '-t', `${VIP}:80`, '-s', 'wrr']);
  ok(['detach', IF2]);
  ok(['attach', IF2, '--preset', 'small']);
  assert.equal(pinnedKey(), key, 'the pinned program keeps its key');
  assertEntered(to);
  // No key in what the operator reads.
  for (const args of [['status'], ['status', '--json'], ['config'], ['-S', '-n']]) {
    const out = ok(args).stdout;
    assert.ok(!out.includes(key), `${args.join(' ')} shows the key`);
  }
  ok(['detach']);
  assert.equal(existsSync(PIN), false, 'the last detach ended the director');
  ok(['attach', IF, '--preset', 'small']);
  assert.notEqual(pinnedKey(), key, 'a new director, a new key');
  ok(['detach']);
});

test('`lvs-xdp upgrade` carries the running program\'s key: its SYN_RECV ways are found by the new program', async () => {
  ok(['attach', IF, '--preset', 'small']);
  ok(['-R'], RULES);
  const key = newSynRecvKey();
  await swapInOldDirector(OLD, PIN, `${STATE}/state.msgpack`, synRecvKeyGlobals(key));
  assert.equal(pinnedKey(), key.toString('hex'));
  const to = send(TCP.SYN);
  assert.equal(waiting(), FLOWS);
  const r = ok(['upgrade', '--json']);
  assert.equal(JSON.parse(r.stdout).status, 'upgraded', r.stdout);
  assert.equal(pinnedKey(), key.toString('hex'), 'the new program has the old one\'s key');
  assertEntered(to);
  ok(['detach']);
});
