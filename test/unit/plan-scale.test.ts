// A change as small as its text: one realserver's weight at 1,000 services plans that service's
// realserver, table and switch, and nothing of the other 999 (not lvs_cfg either).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BULK_RETIRE, buildPlan, emptyApplied } from '../../src/director/plan.js';
import { realId } from '../../src/dataplane/compile.js';
import { serviceId, type DirectorConfig, type VirtualService } from '../../src/model/types.js';

const LIMITS = { maxServices: 1024, maxReals: 4096, maxTableSize: 131071 };
const hex = (n: number) => n.toString(16).padStart(2, '0');

function service(i: number): VirtualService {
  return {
    protocol: 'tcp', vip: `10.${10 + (i >> 8)}.${i & 255}.1`, port: 80, scheduler: 'mh', flags: [], ops: false, tableSize: 251,
    realservers: [0, 1, 2, 3].map((j) => ({ address: `10.99.${1 + j}.${1 + (i % 250)}`, port: 80, weight: 1, method: 'dr' as const, mac: `02:00:00:${hex(j)}:${hex(i >> 8)}:${hex(i & 255)}` })),
  };
}

function plan(running: ReturnType<typeof emptyApplied>, desired: DirectorConfig) {
  const l2 = new Map(desired.services.flatMap((s) => s.realservers.map((r) => [realId(s, r), { mac: r.mac! }] as const)));
  return buildPlan({ running, desired, l2, tunnel: {}, limits: LIMITS, now: 0 });
}

test('one realserver\'s weight at 1,000 services: only that service\'s realserver, table and entry are written', () => {
  const config: DirectorConfig = { services: Array.from({ length: 1000 }, (_, i) => service(i)) };
  const first = plan(emptyApplied(), config);
  const touched = config.services[500]!;
  const sid = serviceId(touched);
  const edited = { ...touched, realservers: touched.realservers.map((r, j) => (j === 2 ? { ...r, weight: 3 } : r)) };
  const p = plan(first.target, { services: config.services.map((s) => (s === touched ? edited : s)) });

  assert.deepEqual(p.steps.map((s) => s.op), ['reals', 'tables', 'switch']);
  for (const s of p.steps) {
    if (s.op === 'reals') assert.deepEqual(s.writes.map((w) => w.id), [realId(touched, touched.realservers[2]!)], 'its lvs_dests weight');
    if (s.op === 'tables') assert.deepEqual(s.fills.map((f) => f.service), [sid]);
    if (s.op === 'switch') assert.deepEqual(s.writes.map((w) => w.service), [sid]);
  }
  // Everything else of the target is the running state: slots, next hops, values, tables.
  assert.deepEqual(p.target.allocation, first.target.allocation);
  assert.deepEqual(p.target.reals, first.target.reals);
  const differs = Object.keys(first.target.digests).filter((id) => first.target.digests[id] !== p.target.digests[id]);
  assert.deepEqual(differs, [sid]);
  const moved = Object.keys(first.target.tableSlots!).filter((id) => first.target.tableSlots![id] !== p.target.tableSlots![id]);
  assert.deepEqual(moved, [sid], 'only its table moves to its spare slot');
});

test('a bulk change frees its switched services\' previous tables at once; a small one leaves that to the next change', () => {
  const config: DirectorConfig = { services: Array.from({ length: BULK_RETIRE + 4 }, (_, i) => service(i)) };
  const first = plan(emptyApplied(), config);
  const reweigh = (s: VirtualService) => ({ ...s, realservers: s.realservers.map((r, j) => (j === 0 ? { ...r, weight: r.weight + 1 } : r)) });
  // Every service changes: each switches to its spare slot, and the other slot (its previous
  // table) is pointed at the live one after the switch.
  const bulk = plan(first.target, { services: config.services.map(reweigh) });
  const ops = bulk.steps.map((s) => s.op);
  assert.ok(ops.indexOf('retire') > ops.indexOf('switch'), `retire after switch: ${ops.join(', ')}`);
  const retire = bulk.steps.find((s) => s.op === 'retire');
  const fills = bulk.steps.find((s) => s.op === 'tables');
  assert.ok(retire?.op === 'retire' && fills?.op === 'tables');
  assert.deepEqual(retire.slots, fills.fills.map((f) => f.slot));
  // One service changes: no retire step of its own (its previous table waits for the next change's fill batch).
  const one = plan(bulk.target, { services: bulk.target.config.services.map((s, i) => (i === 0 ? reweigh(s) : s)) });
  assert.ok(!one.steps.some((s) => s.op === 'retire'));
});
