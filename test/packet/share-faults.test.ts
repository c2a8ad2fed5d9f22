// Crash safety of an interface shared by tail calls (attach --multiprog, src/director/chain.ts):
// the CLI is SIGKILLed at each step of the attach and of the detach (LVS_XDP_KILL_AT); the next
// call completes it, status tells the truth in between, and the last detach leaves no pin, no
// root and no XDP program behind. Frames run through the pinned root, as the interface runs them.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { clientPacket, TCP } from '../lib/frames.js';
import { XDP } from '../lib/director.js';
import { CliNamespace } from '../lib/cli-ns.js';
import { acceptTestRunFrames } from '../lib/accept.js';
import { BpfMap, BpfObject, openPinned, closeFd, testRun } from '../../src/native/index.js';
import { CHAIN as CHAIN_SLOTS, chainsPassed } from '../../src/director/chain.js';
import { PROG_PIN } from '../../src/director/lifecycle.js';
import { repoRoot } from '../lib/paths.js';

const L = new CliNamespace('lvss');
const { pin: PIN } = L;
const CHAIN = `${PIN}-chain`;
const ATTACH = ['attach', 'lvss0', '--multiprog', '--mode', 'generic'];
const RULES = '-A -t 10.79.1.1:80 -s mh\n-a -t 10.79.1.1:80 -r 10.79.0.11 -g --mac 02:00:00:00:03:11\n';

interface Iface { name: string; linked: boolean; sharing?: string }
function ifaces(): Iface[] {
  const r = L.run(['status', '--json']);
  if (r.code === 4) return []; // loaded, no interface in the snapshot or linked
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { interfaces: Iface[] }).interfaces;
}
const xdpProg = (): number | undefined => (JSON.parse(L.ip('-j', 'link', 'show', 'lvss0')) as { xdp?: { prog?: { id: number } } }[])[0]!.xdp?.prog?.id;

/** A SYN to the VIP through the root program, as the interface runs it: forwarded by the director. */
function throughRoot(): number {
  acceptTestRunFrames(PIN);
  const root = openPinned(`${CHAIN}/prog_lvs_root`);
  try {
    // BPF_PROG_TEST_RUN receives on loopback (ifindex 1): the director's slot of lo is set for it.
    return testRun(root, clientPacket('203.0.113.9', '10.79.1.1', { proto: 'tcp', sport: 40000, dport: 80, flags: TCP.SYN }), { dataSizeOut: 2048 }).retval;
  } finally {
    closeFd(root);
  }
}

before(() => {
  L.create();
  L.veth('lvss0', 'lvss1');
  L.ip('link', 'set', 'lo', 'up');
});

test('SIGKILL at each step of attach --multiprog: status tells, the next attach completes it, detach removes everything', () => {
  for (const step of ['before-link', 'chain-slot-set', 'root-pinned', 'link-attached', 'link-pinned']) {
    const r = L.run(ATTACH, { killAt: step });
    assert.equal(r.signal, 'SIGKILL', `${step}: ${r.stderr}`);
    const mid = ifaces().find((i) => i.name === 'lvss0');
    // Only a pinned root link outlives the killed process; the snapshot does not know it yet.
    if (step === 'link-pinned') {
      assert.ok(xdpProg(), step);
      assert.deepEqual({ linked: mid?.linked, sharing: mid?.sharing }, { linked: true, sharing: 'chain' }, 'status reports the interrupted attach');
    } else {
      assert.equal(xdpProg(), undefined, `${step}: the root went with the process`);
      assert.equal(mid, undefined, step);
    }
    L.ok(ATTACH);
    const st = ifaces().find((i) => i.name === 'lvss0');
    assert.deepEqual({ linked: st?.linked, sharing: st?.sharing }, { linked: true, sharing: 'chain' }, step);
    L.ok(['detach']);
    assert.equal(xdpProg(), undefined, `${step}: detached`);
    assert.equal(existsSync(PIN), false, `${step}: no pins`);
    assert.equal(existsSync(CHAIN), false, `${step}: no chain pins`);
  }
});

test('SIGKILL at each step of detach: the next detach completes it; forwarding through the root until the slot is cleared', () => {
  for (const step of ['chain-slot-cleared']) {
    L.ok(ATTACH);
    L.ok(['attach', 'lo', '--multiprog', '--mode', 'generic']);
    L.ok(['apply', '-f', '-'], { input: RULES });
    assert.equal(throughRoot(), XDP.TX, 'the root runs the director in lo\'s slot');
    const r = L.run(['detach', 'lo'], { killAt: step });
    assert.equal(r.signal, 'SIGKILL', `${step}: ${r.stderr}`);
    assert.equal(throughRoot(), XDP.PASS, 'the slot is cleared: the root passes');
    L.ok(['detach']);
    assert.equal(existsSync(PIN), false);
    assert.equal(existsSync(CHAIN), false);
    assert.equal(xdpProg(), undefined);
  }
});

/** A frame to no virtual service through the root: the director passes it on. */
function nonVipThroughRoot(): number {
  const root = openPinned(`${CHAIN}/prog_lvs_root`);
  try {
    return testRun(root, clientPacket('203.0.113.9', '10.79.9.9', { proto: 'tcp', sport: 40000, dport: 80, flags: TCP.ACK }), { dataSizeOut: 2048 }).retval;
  } finally {
    closeFd(root);
  }
}

test('what the director passes goes to a program put after it once it is chained, also one put there after the attach; attached alone it does not try the slot', async () => {
  L.ok(['attach', 'lvss0', '--mode', 'generic']);
  const director = openPinned(`${PIN}/${PROG_PIN}`);
  const after = await BpfObject.open(`${repoRoot()}/bpf/floors.o`);
  try {
    assert.equal(chainsPassed(director), false, 'attached alone: passes to the kernel, no tail call');
    L.ok(['attach', 'lo', '--multiprog', '--mode', 'generic']);
    assert.equal(chainsPassed(director), true, 'chained: told before its slot was written');
    L.ok(['apply', '-f', '-'], { input: RULES });
    assert.equal(nonVipThroughRoot(), XDP.PASS, 'nothing after the director: the kernel gets it');
    // The program after the director, put in lo's slot by hand as another project would (bpftool).
    const chain = BpfMap.fromPin(`${CHAIN}/lvs_chain`);
    try {
      const k = Buffer.alloc(4);
      k.writeUInt32LE(1 * CHAIN_SLOTS.positions + CHAIN_SLOTS.after);
      const v = Buffer.alloc(4);
      v.writeUInt32LE(after.progFd('floor_drop'));
      chain.update(k, v);
      assert.equal(nonVipThroughRoot(), XDP.DROP, 'the program after the director got the passed frame');
      assert.equal(throughRoot(), XDP.TX, 'a virtual service\'s frame is still forwarded, never handed on');
      chain.delete(k);
    } finally {
      chain.close();
    }
    L.ok(['detach']);
  } finally {
    after.close();
    closeFd(director);
  }
});
