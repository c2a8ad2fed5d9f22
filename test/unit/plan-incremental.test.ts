// A change takes the compiled entries of the services it leaves alone from the running state
// (compile.ts Reuse): for random sequences of changes to a large configuration, every plan it
// builds is the plan of compiling everything anew, step for step and byte for byte (service
// entries, realserver slots, tables, the target the snapshot records).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { buildPlan, emptyApplied, type PlanInputs } from '../../src/director/plan.js';
import { packOnce, type AppliedState } from '../../src/director/snapshot.js';
import { realId, type L2Next } from '../../src/dataplane/compile.js';
import { serviceId, type DirectorConfig, type Realserver, type Scheduler, type VirtualService } from '../../src/model/types.js';

const LIMITS = { maxServices: 256, maxReals: 1024, maxTableSize: 131071 };
const SERVICES = 120;
const hex = (n: number) => n.toString(16).padStart(2, '0');
const mac = (a: number, b: number) => `02:00:00:${hex(a & 255)}:${hex(b >> 8)}:${hex(b & 255)}`;

function real(i: number, j: number, given: boolean): Realserver {
  return { address: `10.99.${1 + j}.${1 + (i % 250)}`, port: 80, weight: 1 + (j % 3), method: 'dr', ...(given ? { mac: mac(j, i) } : {}) };
}

function service(i: number, scheduler: Scheduler = 'mh'): VirtualService {
  return {
    protocol: 'tcp', vip: `10.${10 + (i >> 8)}.${i & 255}.1`, port: 80, scheduler, flags: [], ops: false, tableSize: 251,
    // Every third service's realservers have no MAC in the configuration: their next hops are resolved.
    realservers: [0, 1, 2, 3].map((j) => real(i, j, i % 3 !== 0)),
  };
}

/** One change, as an operator makes it: a weight, a realserver or service added or deleted, a
 *  scheduler, a MAC, a resolved next hop, a firewall mark, the timeouts; `k` picks what. */
type Change = { kind: number; k: number; v: number };
const changeArb: fc.Arbitrary<Change> = fc.record({ kind: fc.integer({ min: 0, max: 11 }), k: fc.nat(), v: fc.integer({ min: 0, max: 7 }) });

interface World { config: DirectorConfig; hops: Map<string, L2Next>; next: number; deleted: VirtualService[] }

function apply(w: World, c: Change): World {
  const services = w.config.services.slice();
  const at = services.length ? c.k % services.length : 0;
  const s = services[at];
  const hops = new Map(w.hops);
  const edit = (f: (r: Realserver[]) => Realserver[]) => { if (s) services[at] = { ...s, realservers: f(s.realservers) }; };
  switch (c.kind) {
    case 0: case 1: // a weight (0: quiesced)
      edit((rs) => rs.map((r, j) => (j === c.v % rs.length ? { ...r, weight: c.v } : r)));
      break;
    case 2: // a realserver added
      edit((rs) => (rs.length < 6 ? [...rs, real(c.k, 4 + (c.v % 2), c.v % 2 === 0)] : rs));
      break;
    case 3: // a realserver deleted
      edit((rs) => (rs.length > 1 ? rs.filter((_, j) => j !== c.v % rs.length) : rs));
      break;
    case 4: case 10: case 11: // a service deleted (a tombstone), one deleted before added again (its ghost comes back), or a new one
      if (c.v % 2 && services.length > 1) return { ...w, config: { ...w.config, services }, hops, deleted: [...w.deleted, ...services.splice(at, 1)] };
      if (c.v % 2 === 0 && c.v < 6 && w.deleted.length) return { ...w, config: { ...w.config, services: [...services, w.deleted.at(-1)!] }, hops, deleted: w.deleted.slice(0, -1) };
      services.push(service(w.next++ % 250, c.v % 4 === 0 ? 'wrr' : 'mh'));
      break;
    case 5: // the scheduler
      if (s) services[at] = { ...s, scheduler: (['mh', 'sh', 'wrr', 'rr', 'wlc'] as const)[c.v % 5]! };
      break;
    case 6: // a MAC given in the configuration changes: the realserver moves to a fresh slot
      edit((rs) => rs.map((r, j) => (j === c.v % rs.length && r.mac ? { ...r, mac: mac(100 + c.v, c.k) } : r)));
      break;
    case 7: { // a resolved next hop changes, the configuration does not (the same service object)
      const r = s?.realservers.find((x) => !x.mac);
      if (s && r) hops.set(realId(s, r), { mac: mac(200 + c.v, c.k) });
      break;
    }
    case 8: { // a firewall mark (with its service) covering a port service, or none
      if (!services.some((x) => x.fwmark === 7)) services.push({ ...service(w.next++ % 250), fwmark: 7, vip: '0.0.0.0', port: 0 });
      const marks = c.v % 2 && s && !s.fwmark ? [{ mark: 7, match: [{ protocol: 'tcp' as const, address: s.vip, ports: [] }] }] : [];
      return { ...w, config: { ...w.config, services, marks }, hops };
    }
    default: // settings: timeouts (lvs_cfg only)
      return { ...w, config: { ...w.config, services, settings: { ...w.config.settings, timeouts: { tcp: 100 + c.v } } }, hops };
  }
  return { ...w, config: { ...w.config, services }, hops };
}

function inputs(running: AppliedState, w: World, now: number): PlanInputs {
  const l2 = new Map<string, L2Next>();
  for (const s of w.config.services) {
    for (const r of s.realservers) {
      const id = realId(s, r);
      l2.set(id, r.mac ? { mac: r.mac } : w.hops.get(id) ?? { mac: mac(50, s.realservers.indexOf(r)) });
    }
  }
  return { running, desired: w.config, l2, tunnel: {}, limits: LIMITS, now };
}

/**
 * The inputs as a change resolves them (src/director/transaction.ts): the running services (the
 * same objects) whose next hops are the running ones are kept whole, their realservers left out
 * of `l2`. (A next hop that changed under the same object, case 7, is what a refresh finds.)
 */
function keptInputs(running: AppliedState, w: World, now: number): PlanInputs & { kept: Set<VirtualService> } {
  const all = inputs(running, w, now);
  const live = new Set(running.config.services);
  const same = (a?: L2Next, b?: L2Next) => !!a && !!b && a.mac === b.mac && a.smac === b.smac && a.ifindex === b.ifindex;
  const kept = new Set(w.config.services.filter((s) => live.has(s) && s.realservers.every((r) => same(all.l2.get(realId(s, r)), running.l2[realId(s, r)]))));
  const keptIds = new Set([...kept].map((s) => serviceId(s)));
  const l2 = new Map([...all.l2].filter(([id]) => !keptIds.has(id.slice(0, id.lastIndexOf('/')))));
  return { ...all, l2, kept };
}

test('the plan of a change that reuses the running entries is the plan compiled from scratch, for random changes at 120 services', () => {
  const start: World = { config: { services: Array.from({ length: SERVICES }, (_, i) => service(i)) }, hops: new Map(), next: SERVICES, deleted: [] };
  const first = buildPlan(inputs(emptyApplied(), start, 0));
  let reusedSome = 0;
  let keptWhole = 0;
  let ghostsBack = 0;
  fc.assert(fc.property(fc.array(changeArb, { minLength: 1, maxLength: 10 }), (changes) => {
    let w = start;
    let running = first.target;
    for (const [n, c] of changes.entries()) {
      w = apply(w, c);
      const inc = buildPlan(inputs(running, w, 1000 * (n + 1)));
      const full = buildPlan({ ...inputs(running, w, 1000 * (n + 1)), fromScratch: true });
      assert.deepEqual(inc.steps, full.steps, `steps after ${JSON.stringify(changes.slice(0, n + 1))}`);
      assert.deepEqual(inc.target, full.target);
      assert.ok(packOnce(inc.target).equals(packOnce(full.target)), 'the snapshot records the same bytes');
      // The services kept whole (their realservers not looked at): the same plan again.
      const k = keptInputs(running, w, 1000 * (n + 1));
      const whole = buildPlan(k);
      keptWhole += k.kept.size;
      assert.deepEqual(whole.steps, full.steps, `steps (kept whole) after ${JSON.stringify(changes.slice(0, n + 1))}`);
      assert.deepEqual(whole.target, full.target);
      const slots = (p: typeof full) => p.compiled!.reals.map((r) => [r.id, r.index, r.gen, r.value.toString('hex'), r.dest.toString('hex')]);
      assert.deepEqual(slots(whole), slots(full), 'the realserver slots, in order');
      assert.ok(packOnce(whole.target).equals(packOnce(full.target)), 'the snapshot records the same bytes (kept whole)');
      for (const s of inc.steps) {
        if (s.op !== 'tables') continue;
        for (const f of s.fills) {
          const a = inc.compiled!.services.find((x) => x.id === f.service)!;
          const b = full.compiled!.services.find((x) => x.id === f.service)!;
          assert.deepEqual(a.table, b.table, `table of ${f.service}`);
          assert.ok(a.value(f.slot).equals(b.value(f.slot)), `entry of ${f.service}`);
        }
      }
      reusedSome += inc.compiled!.services.filter((x) => x.digest !== undefined).length;
      ghostsBack += Object.keys(running.ghosts?.services ?? {}).filter((id) => inc.target.digests[id] !== undefined).length;
      running = inc.target;
    }
  }), { numRuns: 80, seed: 16 });
  // The property is about the incremental path: it must have been taken.
  assert.ok(reusedSome > 0, 'no service was reused');
  assert.ok(keptWhole > 0, 'no service was kept whole');
  assert.ok(ghostsBack > 0, 'no deleted service came back');
});

test('a running state recorded by another compiler, or without a record of one, is compiled anew', () => {
  const w: World = { config: { services: Array.from({ length: 10 }, (_, i) => service(i)) }, hops: new Map(), next: 10, deleted: [] };
  const first = buildPlan(inputs(emptyApplied(), w, 0)).target;
  const again = buildPlan(inputs(first, w, 1));
  assert.equal(again.compiled!.services.filter((x) => x.digest !== undefined).length, 10);
  for (const running of [{ ...first, compiler: 'another' }, (({ compiler: _, ...rest }) => rest)(first)]) {
    const p = buildPlan(inputs(running, w, 1));
    assert.equal(p.compiled!.services.filter((x) => x.digest !== undefined).length, 0);
    assert.deepEqual(p.steps.map((s) => s.op), again.steps.map((s) => s.op));
  }
});
