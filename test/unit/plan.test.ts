// A change as data: buildPlan is pure, writes only what changed, in the order that keeps every
// packet on a whole old or whole new table, and keeps realserver slots across changes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildPlan, emptyApplied, formatSteps, stepsJson, type Plan, type PlanInputs } from '../../src/director/plan.js';
import { realId } from '../../src/dataplane/compile.js';
import type { DirectorConfig, VirtualService } from '../../src/model/types.js';
import type { AppliedState } from '../../src/director/snapshot.js';
import { ABI } from '../../src/abi/generated.js';
import { decode, REAL, SVC } from '../../src/abi/layout.js';

const LIMITS = { maxServices: 16, maxReals: 64, maxTableSize: 131071 };

function svc(vip: string, rips: [string, number][], scheduler: VirtualService['scheduler'] = 'mh'): VirtualService {
  return {
    protocol: 'tcp', vip, port: 80, scheduler, flags: [], ops: false, tableSize: 251,
    realservers: rips.map(([address, weight]) => ({ address, port: 80, weight, method: 'dr' as const, mac: `02:00:00:00:00:${address.split('.').pop()!.padStart(2, '0')}` })),
  };
}

function plan(running: AppliedState, desired: DirectorConfig, now = 0, limits = LIMITS): Plan {
  const l2 = new Map(desired.services.flatMap((s) => s.realservers.map((r) => [realId(s, r), { mac: r.mac! }] as const)));
  const inputs: PlanInputs = { running, desired, l2, tunnel: {}, limits, now };
  return buildPlan(inputs);
}

const A = svc('10.0.0.1', [['10.1.0.1', 1], ['10.1.0.2', 1]]);
const B = svc('10.0.0.2', [['10.1.0.3', 1]], 'rr');

test('first plan: filter, settings, new slots zeroed, realservers, tables, one switch per service', () => {
  const p = plan(emptyApplied(), { services: [A, B] });
  assert.deepEqual(p.steps.map((s) => s.op), ['vip-filter', 'settings', 'zero', 'reals', 'tables', 'switch']);
  const tables = p.steps.find((s) => s.op === 'tables');
  assert.ok(tables?.op === 'tables');
  assert.deepEqual(tables.fills.map((f) => f.slot), [0, 2], 'each service in its first slot');
  assert.deepEqual(p.target.tableSlots, { 'tcp 10.0.0.1:80': 0, 'tcp 10.0.0.2:80': 2 });
});

test('an unchanged configuration writes nothing; a change to one service touches only it (not even lvs_cfg)', () => {
  const first = plan(emptyApplied(), { services: [A, B] });
  assert.deepEqual(plan(first.target, { services: [A, B] }).steps.map((s) => s.op), []);
  const A2 = svc('10.0.0.1', [['10.1.0.1', 1], ['10.1.0.2', 1], ['10.1.0.4', 2]]);
  const p = plan(first.target, { services: [A2, B] });
  assert.deepEqual(p.steps.map((s) => s.op), ['zero', 'reals', 'tables', 'switch']);
  const reals = p.steps.find((s) => s.op === 'reals');
  assert.ok(reals?.op === 'reals');
  assert.deepEqual(reals.writes.map((w) => [w.id, w.fresh]), [['tcp 10.0.0.1:80/10.1.0.4', true]], 'only the new realserver is written');
  const tables = p.steps.find((s) => s.op === 'tables');
  assert.ok(tables?.op === 'tables');
  assert.deepEqual(tables.fills.map((f) => [f.service, f.slot]), [['tcp 10.0.0.1:80', 1]], 'into the spare slot');
  // The same batch points the spare slot of the service left alone at its live table (its previous
  // table, if it has one, is freed): B lives in slot 2.
  assert.deepEqual(tables.retire, [2]);
  // Slots of what stayed are kept: flows keep their realserver.
  for (const id of Object.keys(first.target.allocation.reals)) assert.deepEqual(p.target.allocation.reals[id], first.target.allocation.reals[id]);
  // And the next change of the same service switches back to the first slot.
  const p3 = plan(p.target, { services: [A, B] });
  const t3 = p3.steps.find((s) => s.op === 'tables');
  assert.ok(t3?.op === 'tables');
  assert.deepEqual(t3.fills.map((f) => f.slot), [0]);
});

test('removals come after the switches; freed slots are not reused in the same change', () => {
  const first = plan(emptyApplied(), { services: [A, B] });
  const C = svc('10.0.0.3', [['10.1.0.9', 1]]);
  const p = plan(first.target, { services: [A, C] });
  const ops = p.steps.map((s) => s.op);
  // B leaves a tombstone (its VIP filter bits stay) and a gone slot: its connections wait.
  assert.deepEqual(ops, ['vip-filter', 'zero', 'reals', 'tables', 'switch', 'tombstones', 'free-tables', 'gone-reals']);
  const nodest = plan(first.target, { services: [A, C], settings: { expireNodestConn: true } });
  assert.deepEqual(nodest.steps.map((s) => s.op), ['vip-filter', 'zero', 'reals', 'tables', 'switch', 'remove', 'free-tables', 'clear-reals', 'vip-filter']);
  assert.equal(nodest.target.ghosts, undefined, 'expire-nodest-conn keeps no ghosts');
  const oldB = first.target.allocation.services['tcp 10.0.0.2:80']!;
  assert.notEqual(p.target.allocation.services['tcp 10.0.0.3:80'], oldB, 'C does not take B\'s id while B\'s table may still be read');
  const freed = p.steps.find((s) => s.op === 'free-tables');
  assert.ok(freed?.op === 'free-tables');
  assert.deepEqual(freed.slots, [oldB * 2, oldB * 2 + 1]);
});

test('a realserver whose MAC changes gets a fresh slot and generation; weight 0 is rewritten in place', () => {
  const first = plan(emptyApplied(), { services: [A] });
  const moved = svc('10.0.0.1', [['10.1.0.1', 1], ['10.1.0.2', 1]]);
  moved.realservers[1]!.mac = '02:00:00:00:00:99';
  const p = plan(first.target, { services: [moved] });
  const id = 'tcp 10.0.0.1:80/10.1.0.2';
  assert.notDeepEqual(p.target.allocation.reals[id], first.target.allocation.reals[id]);
  const quiesced = svc('10.0.0.1', [['10.1.0.1', 1], ['10.1.0.2', 0]]);
  const q = plan(first.target, { services: [quiesced] });
  assert.deepEqual(q.target.allocation.reals[id], first.target.allocation.reals[id]);
  const reals = q.steps.find((s) => s.op === 'reals');
  assert.ok(reals?.op === 'reals' && reals.writes.length === 1 && reals.writes[0]!.fresh === false);
});

test('a realserver behind another interface adds its egress once', () => {
  const desired = { services: [A] };
  const l2 = new Map(A.realservers.map((r) => [realId(A, r), { mac: r.mac!, ifindex: 9, smac: '02:00:00:00:00:aa' }] as const));
  const first = buildPlan({ running: emptyApplied(), desired, l2, tunnel: {}, limits: LIMITS });
  const tx = first.steps.find((s) => s.op === 'tx-ports');
  assert.ok(tx?.op === 'tx-ports');
  assert.deepEqual(tx.ifindexes, [9]);
  const again = buildPlan({ running: first.target, desired, l2, tunnel: {}, limits: LIMITS });
  assert.equal(again.steps.find((s) => s.op === 'tx-ports'), undefined);
});

test('steps print one line each and serialize with values as hex', () => {
  const p = plan(emptyApplied(), { services: [A] });
  const text = formatSteps(p.steps);
  assert.equal(text.split('\n').length, p.steps.length);
  assert.match(text, /^ {2}1\. vip-filter/);
  assert.match(text, /switch +switch 1 service to its new table: tcp 10\.0\.0\.1:80 -> slot 0/);
  const json = stepsJson(p.steps) as { op: string; value?: string }[];
  const settings = json.find((s) => s.op === 'settings');
  assert.match(settings!.value!, /^[0-9a-f]+$/);
});

// ---- deleted is not forgotten (issue 12) ----------------------------------------------------

const DAY = 86_400_000;
const T0 = 1_800_000_000_000;

test('a deleted service leaves a tombstone and gone slots; added again, it gets its id, slots and generations back', () => {
  const first = plan(emptyApplied(), { services: [A, B] }, T0);
  const del = plan(first.target, { services: [A] }, T0 + 1000);
  const tomb = del.steps.find((s) => s.op === 'tombstones');
  assert.ok(tomb?.op === 'tombstones');
  assert.deepEqual(tomb.writes.map((w) => w.service), ['tcp 10.0.0.2:80']);
  assert.equal(decode(SVC, tomb.writes[0]!.value).flags, ABI.LVS_SVC_F_GONE, 'flagged gone, no table');
  const gone = del.steps.find((s) => s.op === 'gone-reals');
  assert.ok(gone?.op === 'gone-reals');
  const rid = 'tcp 10.0.0.2:80/10.1.0.3';
  const slot = first.target.allocation.reals[rid]!;
  assert.deepEqual(gone.writes.map((w) => w.index), [slot.index]);
  assert.equal(decode(REAL, gone.writes[0]!.value).flags, ABI.LVS_REAL_F_GONE, 'ACTIVE cleared, GONE set');
  assert.equal(decode(REAL, gone.writes[0]!.value).gen, slot.gen, 'generation kept');
  assert.deepEqual(Object.keys(del.target.ghosts!.services), ['tcp 10.0.0.2:80']);
  assert.equal(del.target.ghosts!.reals[rid]!.deletedAt, T0 + 1000);

  // Another service added meanwhile does not take B's id or slot.
  const C = svc('10.0.0.3', [['10.1.0.9', 1]]);
  const withC = plan(del.target, { services: [A, C] }, T0 + 2000);
  assert.notEqual(withC.target.allocation.services['tcp 10.0.0.3:80'], first.target.allocation.services['tcp 10.0.0.2:80']);
  assert.notEqual(withC.target.allocation.reals['tcp 10.0.0.3:80/10.1.0.9']!.index, slot.index);

  const back = plan(withC.target, { services: [A, B, C] }, T0 + 3000);
  assert.equal(back.target.allocation.services['tcp 10.0.0.2:80'], first.target.allocation.services['tcp 10.0.0.2:80']);
  assert.deepEqual(back.target.allocation.reals[rid], slot, 'same slot and generation: its connections resume');
  assert.equal(back.target.ghosts, undefined, 'no ghosts left');
  const ops = back.steps.map((s) => s.op);
  assert.ok(!ops.includes('remove') && !ops.includes('clear-reals'), `the tombstone is overwritten by the switch: ${ops.join(' ')}`);
});

test('a deleted realserver added back (same MAC) resumes in its slot; with another MAC it gets a fresh one', () => {
  const first = plan(emptyApplied(), { services: [A] }, T0);
  const rid = 'tcp 10.0.0.1:80/10.1.0.2';
  const del = plan(first.target, { services: [svc('10.0.0.1', [['10.1.0.1', 1]])] }, T0 + 1000);
  assert.deepEqual(del.steps.map((s) => s.op), ['tables', 'switch', 'gone-reals']);
  const back = plan(del.target, { services: [A] }, T0 + 2000);
  assert.deepEqual(back.target.allocation.reals[rid], first.target.allocation.reals[rid]);
  const moved = svc('10.0.0.1', [['10.1.0.1', 1], ['10.1.0.2', 1]]);
  moved.realservers[1]!.mac = '02:00:00:00:00:99';
  const elsewhere = plan(del.target, { services: [moved] }, T0 + 2000);
  assert.notDeepEqual(elsewhere.target.allocation.reals[rid], first.target.allocation.reals[rid]);
  const cleared = elsewhere.steps.find((s) => s.op === 'clear-reals');
  assert.ok(cleared?.op === 'clear-reals');
  assert.deepEqual(cleared.indexes, [first.target.allocation.reals[rid]!.index], 'the old slot is emptied: its flows reschedule');
});

test('ghosts go once the longest timeout has passed, or at once with expire-nodest-conn', () => {
  const first = plan(emptyApplied(), { services: [A, B] }, T0);
  const del = plan(first.target, { services: [A] }, T0);
  // The longest default timeout is 900 s (tcp): still there after 899 s ...
  const early = plan(del.target, { services: [A] }, T0 + 899_000);
  assert.ok(early.target.ghosts?.services['tcp 10.0.0.2:80']);
  assert.ok(!early.steps.some((s) => s.op === 'remove' || s.op === 'clear-reals'));
  // ... gone after 900 s plus the clock's slack: tombstone removed, slot emptied, bits narrowed.
  const late = plan(del.target, { services: [A] }, T0 + 902_001);
  assert.equal(late.target.ghosts, undefined);
  assert.deepEqual(late.steps.map((s) => s.op), ['remove', 'clear-reals', 'vip-filter']);
  // A longer timeout keeps them longer.
  const longer = plan(del.target, { services: [A], settings: { timeouts: { tcp: 3600 } } }, T0 + DAY / 48);
  assert.ok(longer.target.ghosts?.services['tcp 10.0.0.2:80']);
  const nodest = plan(del.target, { services: [A], settings: { expireNodestConn: true } }, T0 + 1);
  assert.equal(nodest.target.ghosts, undefined);
  assert.deepEqual(nodest.steps.map((s) => s.op), ['remove', 'clear-reals', 'vip-filter']);
});

test('maps full: a ghost\'s id and slot go to a new service, the longest-deleted first', () => {
  const small = { maxServices: 3, maxReals: 3, maxTableSize: 131071 };
  const C = svc('10.0.0.3', [['10.1.0.9', 1]]);
  const D = svc('10.0.0.4', [['10.1.0.8', 1]]);
  const first = plan(emptyApplied(), { services: [A, B] }, T0, small); // ids 0, 1; slots 0, 1, 2
  const delB = plan(first.target, { services: [A] }, T0 + 1000, small); // B: tombstone id 1, slot 2
  const withC = plan(delB.target, { services: [A, C] }, T0 + 2000, small); // C takes id 2 (free); no real slot free: B's
  assert.equal(withC.target.allocation.services['tcp 10.0.0.3:80'], 2);
  assert.equal(withC.target.allocation.reals['tcp 10.0.0.3:80/10.1.0.9']!.index, first.target.allocation.reals['tcp 10.0.0.2:80/10.1.0.3']!.index);
  assert.equal(withC.target.ghosts?.reals['tcp 10.0.0.2:80/10.1.0.3'], undefined, 'that ghost is evicted');
  assert.ok(withC.target.ghosts?.services['tcp 10.0.0.2:80'], 'the tombstone stays while its id is not needed');
  const delC = plan(withC.target, { services: [A] }, T0 + 3000, small); // tombstones: B (id 1, older), C (id 2)
  const withD = plan(delC.target, { services: [A, D] }, T0 + 4000, small);
  assert.equal(withD.target.allocation.services['tcp 10.0.0.4:80'], 1, 'the oldest tombstone\'s id');
  assert.ok(withD.target.ghosts?.services['tcp 10.0.0.3:80'] && !withD.target.ghosts?.services['tcp 10.0.0.2:80']);
  const ops = withD.steps.map((s) => s.op);
  assert.ok(ops.indexOf('remove') < ops.indexOf('switch'), `the evicted tombstone leaves lvs_services before D's entry is added: ${ops.join(' ')}`);
});
