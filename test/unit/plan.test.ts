// A change as data: buildPlan is pure, writes only what changed, in the order that keeps every
// packet on a whole old or whole new table, and keeps realserver slots across changes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildPlan, emptyApplied, formatSteps, stepsJson, type Plan, type PlanInputs } from '../../src/director/plan.js';
import { realId } from '../../src/dataplane/compile.js';
import type { DirectorConfig, VirtualService } from '../../src/model/types.js';
import type { AppliedState } from '../../src/director/snapshot.js';

const LIMITS = { maxServices: 16, maxReals: 64, maxTableSize: 131071 };

function svc(vip: string, rips: [string, number][], scheduler: VirtualService['scheduler'] = 'mh'): VirtualService {
  return {
    protocol: 'tcp', vip, port: 80, scheduler, flags: [], ops: false, tableSize: 251,
    realservers: rips.map(([address, weight]) => ({ address, port: 80, weight, method: 'dr' as const, mac: `02:00:00:00:00:${address.split('.').pop()!.padStart(2, '0')}` })),
  };
}

function plan(running: AppliedState, desired: DirectorConfig): Plan {
  const l2 = new Map(desired.services.flatMap((s) => s.realservers.map((r) => [realId(s, r), { mac: r.mac! }] as const)));
  const inputs: PlanInputs = { running, desired, l2, tunnel: {}, limits: LIMITS };
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

test('an unchanged configuration writes only the settings; a change to one service touches only it', () => {
  const first = plan(emptyApplied(), { services: [A, B] });
  assert.deepEqual(plan(first.target, { services: [A, B] }).steps.map((s) => s.op), ['settings']);
  const A2 = svc('10.0.0.1', [['10.1.0.1', 1], ['10.1.0.2', 1], ['10.1.0.4', 2]]);
  const p = plan(first.target, { services: [A2, B] });
  assert.deepEqual(p.steps.map((s) => s.op), ['settings', 'zero', 'reals', 'tables', 'switch']);
  const reals = p.steps.find((s) => s.op === 'reals');
  assert.ok(reals?.op === 'reals');
  assert.deepEqual(reals.writes.map((w) => [w.id, w.fresh]), [['tcp 10.0.0.1:80/10.1.0.4', true]], 'only the new realserver is written');
  const tables = p.steps.find((s) => s.op === 'tables');
  assert.ok(tables?.op === 'tables');
  assert.deepEqual(tables.fills.map((f) => [f.service, f.slot]), [['tcp 10.0.0.1:80', 1]], 'into the spare slot');
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
  assert.deepEqual(ops, ['vip-filter', 'settings', 'zero', 'reals', 'tables', 'switch', 'remove', 'free-tables', 'clear-reals', 'vip-filter']);
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
