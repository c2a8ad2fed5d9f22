// Crash safety: the CLI is SIGKILLed at every step boundary of a change's plan (LVS_XDP_KILL_AT
// fault points, src/director/faults.ts; the steps as `apply --dry-run --steps` lists them) and
// of an attach. After each kill the data plane forwards every
// service with its old or its new table, never a mix of the two, and the next CLI call completes
// the interrupted change with a message. Packets run through the pinned program.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, existsSync, readdirSync } from 'node:fs';
import { clientPacket, TCP } from '../lib/frames.js';
import { XDP } from '../lib/director.js';
import { CliNamespace, type CliRun } from '../lib/cli-ns.js';
import { openPinned, closeFd, testRun, BpfMap } from '../../src/native/index.js';
import { acceptTestRunFrames } from '../lib/accept.js';

const L = new CliNamespace('lvsf');
const { pin: PIN, state: STATE } = L;

const cli = (args: string[], input?: string, killAt?: string): CliRun => L.run(args, { input, ...(killAt ? { killAt } : {}) });
const ok = (args: string[], input?: string): CliRun => L.check(args, { input });

const mac = (last: number) => `02:00:00:00:02:${String(last).padStart(2, '0')}`;
const real = (svc: string, last: number, w = 1) => `-a -t ${svc} -r 10.78.0.${last} -g -w ${w} --mac ${mac(last)}`;
const A = '10.78.1.1:80';
const B = '10.78.1.2:80';
const C = '10.78.1.3:80';
const D = '10.78.1.4:80';
const OLD = [
  `-A -t ${A} -s mh`, real(A, 11), real(A, 12), real(A, 13),
  `-A -t ${B} -s mh`, real(B, 21), real(B, 22),
  `-A -t ${C} -s sh`, real(C, 31), real(C, 32),
].join('\n');
// One change touching everything: add to A, reweight in B, remove C, add D.
const CHANGE = [
  real(A, 14, 2), `-e -t ${B} -r 10.78.0.21 -g -w 3 --mac ${mac(21)}`, `-D -t ${C}`,
  `-A -t ${D} -s mh`, real(D, 41), real(D, 42),
].join('\n');

let prog = -1;
/** Per service: which realserver (last octet) each of a fixed set of new flows goes to. */
function choices(): Record<string, string> {
  // The same flows every time: forget them first so the tables, not the connection table, decide
  // (and not their SYN_RECV connections in lvs_synrecv either: every slot zeroed).
  const conns = BpfMap.fromPin(`${PIN}/lvs_conns`);
  const synrecv = BpfMap.fromPin(`${PIN}/lvs_synrecv`);
  try {
    conns.deleteMany(conns.entries().keys);
    const n = synrecv.maxEntries;
    const keys = Buffer.alloc(4 * n);
    for (let i = 0; i < n; i++) keys.writeUInt32LE(i, 4 * i);
    synrecv.updateFlat(keys, Buffer.alloc(synrecv.valueSize * n));
  } finally {
    conns.close();
    synrecv.close();
  }
  acceptTestRunFrames(PIN);
  const out: Record<string, string> = {};
  for (const vip of [A, B, C, D]) {
    const [addr] = vip.split(':') as [string];
    let row = '';
    for (let i = 0; i < 64; i++) {
      const r = testRun(prog, clientPacket(`203.0.113.${1 + i}`, addr, { proto: 'tcp', sport: 40000 + i, dport: 80, flags: TCP.SYN }), { dataSizeOut: 2048 });
      row += r.retval === XDP.TX ? `${r.data[5]!.toString(16).padStart(2, '0')},` : r.retval === XDP.PASS ? 'pass,' : 'drop,';
    }
    out[vip] = row;
  }
  return out;
}

let oldChoices: Record<string, string>;
let newChoices: Record<string, string>;
let newSave: string;

/** Back to OLD in one call (apply reads ipvsadm rules from standard input). */
function reset(): void {
  ok(['apply', '-f', '-'], OLD);
}

before(() => {
  L.create();
  L.veth('lvsf0', 'lvsf1');
  ok(['attach', 'lvsf0', '--preset', 'small']);
  prog = openPinned(`${PIN}/prog_lvs_director`);
  L.onCleanup(() => closeFd(prog));
  reset();
  oldChoices = choices();
  ok(['-R'], CHANGE);
  newChoices = choices();
  newSave = ok(['-S', '-n']).stdout;
  assert.notEqual(oldChoices[A], newChoices[A]);
  assert.notEqual(oldChoices[B], newChoices[B]);
});

after(() => L.cleanup());

/** Fault points of the change: one after each step of its plan, as the dry run lists them. */
function faultPoints(): string[] {
  reset();
  const dry = JSON.parse(ok(['apply', '-f', '-', '--dry-run', '--steps', '--json'], newSave).stdout) as { steps: { op: string }[] };
  const seen = new Map<string, number>();
  const points = dry.steps.map((s) => {
    const n = (seen.get(s.op) ?? 0) + 1;
    seen.set(s.op, n);
    return `step:${s.op}#${n}`;
  });
  return ['pending-written', ...points, 'before-commit', 'committed'];
}

test('the dry run lists the change as ordered steps, and writes nothing', () => {
  reset();
  const before = ok(['-S', '-n']).stdout;
  const dry = JSON.parse(ok(['apply', '-f', '-', '--dry-run', '--steps', '--json'], newSave).stdout) as { steps: { op: string }[] };
  // New slots' statistics, realservers, tables, switch, C's tombstone (its entry kept
  // for its connections, flagged gone), its table slots, its realserver slots flagged gone. The
  // VIP filter is not touched: D comes back from the tombstone the reset left (same VIP, bits
  // kept), and C's tombstone keeps its bits. lvs_cfg is as the reset left it: not written.
  assert.deepEqual(dry.steps.map((s) => s.op), [
    'zero', 'reals', 'tables', 'switch', 'tombstones', 'free-tables', 'gone-reals',
  ]);
  const text = ok(['diff', '-f', '-', '--steps'], newSave).stdout;
  assert.match(text, /steps:\n +1\. zero/);
  assert.match(text, /switch +switch 3 services to their new table/);
  assert.equal(ok(['-S', '-n']).stdout, before);
  assert.deepEqual(choices(), oldChoices);
});

test('SIGKILL at every step of a change: each service old or new, never a mix; the next call completes it', () => {
  const points = faultPoints();
  assert.ok(points.length >= 10, points.join(' '));
  for (const step of points) {
    reset();
    const r = cli(['-R'], CHANGE, step);
    assert.equal(r.signal, 'SIGKILL', `${step}: the fault point was not reached (exit ${r.code}: ${r.stderr})`);
    const now = choices();
    for (const vip of [A, B, C, D]) {
      assert.ok(now[vip] === oldChoices[vip] || now[vip] === newChoices[vip], `${step}: service ${vip} forwards with a mix of old and new`);
    }
    const next = ok(['-S', '-n']);
    if (step !== 'committed') assert.match(next.stderr, /completing an apply that was interrupted/, step);
    else assert.equal(next.stderr, '');
    assert.equal(next.stdout, newSave, `${step}: state after repair`);
    assert.deepEqual(choices(), newChoices, `${step}: data plane after repair`);
  }
});

test('SIGKILL during attach: status tells, the next attach works, detach removes everything', () => {
  L.veth('lvsf2', 'lvsf3');
  for (const step of ['before-link', 'link-attached', 'link-pinned']) {
    const r = cli(['attach', 'lvsf2'], undefined, step);
    assert.equal(r.signal, 'SIGKILL', `${step}: ${r.stderr}`);
    const st = JSON.parse(ok(['status', '--json']).stdout) as { interfaces: { name: string; linked: boolean }[] };
    const l2 = st.interfaces.find((i) => i.name === 'lvsf2');
    // A link held only by the killed process is gone; a pinned one is reported.
    if (step === 'link-pinned') assert.equal(l2?.linked, true, step);
    else assert.equal(l2, undefined, step);
    ok(['attach', 'lvsf2']);
    assert.deepEqual(choices(), newChoices, `${step}: forwarding unchanged`);
    ok(['detach', 'lvsf2']);
  }
  // A first attach killed half-way (maps pinned, no snapshot) is cleaned up by the next attach.
  const pin2 = `${PIN}-2`;
  const env2 = { LVS_XDP_PIN_DIR: pin2, LVS_XDP_STATE_DIR: `${STATE}-2` };
  const run2 = (args: string[], killAt?: string) => L.run(args, { env: env2, ...(killAt ? { killAt } : {}) });
  try {
    for (const step of ['map-pinned#3', 'prog-pinned']) {
      assert.equal(run2(['attach', 'lvsf2', '--preset', 'small'], step).signal, 'SIGKILL');
      assert.ok(existsSync(pin2));
      assert.equal(run2(['status']).code, 4, 'not attached');
      const r = run2(['attach', 'lvsf2', '--preset', 'small']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(run2(['detach']).code, 0);
      assert.equal(existsSync(pin2), false, 'detach removed the pin directory');
    }
  } finally {
    run2(['detach']);
    rmSync(pin2, { recursive: true, force: true });
    rmSync(`${STATE}-2`, { recursive: true, force: true });
  }
  assert.deepEqual(readdirSync(PIN).filter((f) => f.startsWith('link_')), ['link_lvsf0']);
});
