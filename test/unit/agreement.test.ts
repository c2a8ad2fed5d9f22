// Agreement by construction: directors given the same configuration build the same tables,
// slot -> realserver (address, port), whatever history of changes led each of them there (and
// so whatever realserver slot indexes they hold), and a restarted director (a plan from an empty
// state) builds them too. Table sizes of hashed services stay put while realservers come and go.
// The table digest is a function of exactly what decides a flow's realserver.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { buildPlan, emptyApplied, type Plan } from '../../src/director/plan.js';
import { realId } from '../../src/dataplane/compile.js';
import { decode, SVC } from '../../src/abi/layout.js';
import { MIN_DEFAULT_TABLE_SIZE, type DirectorConfig, type VirtualService } from '../../src/model/types.js';
import type { AppliedState } from '../../src/director/snapshot.js';
import { DirectorMetrics, parseExposition } from '../../src/ops/metrics.js';
import { validateConfig } from '../../src/model/validate.js';
import { planTables, serviceDigest, tablesDigest, type ServiceTable, type TablesView } from '../../src/director/digest.js';

const LIMITS = { maxServices: 8, maxReals: 32, maxTableSize: 131071 };
const SEED = 0x5eed;

/** Services every configuration may hold: hashed ones (one at the default size) and rr / wrr. */
const SERVICES: Pick<VirtualService, 'vip' | 'port' | 'scheduler' | 'flags' | 'tableSize' | 'persistence'>[] = [
  { vip: '10.0.0.1', port: 80, scheduler: 'mh', flags: [], tableSize: 251 },
  { vip: '10.0.0.2', port: 443, scheduler: 'sh', flags: ['sh-port'], tableSize: 509, persistence: { timeout: 300, netmask: '255.255.255.0' } },
  { vip: '2001:db8::1', port: 53, scheduler: 'dh', flags: [] },
  { vip: '10.0.0.3', port: 8080, scheduler: 'wrr', flags: [], tableSize: 251 },
  { vip: '10.0.0.4', port: 25, scheduler: 'rr', flags: [], tableSize: 251 },
];
const POOL4 = Array.from({ length: 6 }, (_, i) => `10.1.0.${i + 1}`);
const POOL6 = Array.from({ length: 6 }, (_, i) => `2001:db8:1::${i + 1}`);

/** A configuration: per service (by position), realserver -> weight; undefined: no service. */
type Shape = (Map<number, number> | undefined)[];

/** `reals` undefined: each service's realservers in the order they were added (ipvsadm -a appends). */
function config(shape: Shape, order: { services: number[]; reals?: number[] }): DirectorConfig {
  const services: VirtualService[] = [];
  for (const si of order.services) {
    const reals = shape[si];
    if (!reals) continue;
    const base = SERVICES[si]!;
    const pool = base.vip.includes(':') ? POOL6 : POOL4;
    const list = (order.reals?.filter((ri) => reals.has(ri)) ?? [...reals.keys()]).map((ri) => ({
      address: pool[ri]!, port: base.port, weight: reals.get(ri)!, method: 'dr' as const,
      mac: `02:00:00:00:${String(si).padStart(2, '0')}:${String(ri).padStart(2, '0')}`,
    }));
    services.push({ protocol: base.vip.includes(':') ? 'udp' : 'tcp', ops: false, ...base, realservers: list });
  }
  return { settings: { hashSeed: SEED }, services };
}

function plan(running: AppliedState, desired: DirectorConfig, now: number): Plan {
  const l2 = new Map(desired.services.flatMap((s) => s.realservers.map((r) => [realId(s, r), { mac: r.mac! }] as const)));
  return buildPlan({ running, desired, l2, tunnel: {}, limits: LIMITS, now });
}

/** Slot -> "address port" of every service, what directors must agree on. */
function slotTables(v: TablesView): Record<string, (string | null)[]> {
  return Object.fromEntries(v.services.map((s) => [s.service, s.slots.map((x) => (x ? `${x.address} ${x.port}` : null))]));
}

const shapeArb: fc.Arbitrary<Shape> = fc.array(
  fc.option(fc.dictionary(fc.integer({ min: 0, max: 5 }).map(String), fc.integer({ min: 0, max: 4 }), { maxKeys: 6 })
    .map((d) => new Map(Object.entries(d).map(([k, w]) => [Number(k), w] as const))), { nil: undefined, freq: 4 }),
  { minLength: SERVICES.length, maxLength: SERVICES.length },
);
const orderArb = fc.record({
  services: fc.shuffledSubarray([0, 1, 2, 3, 4], { minLength: 5, maxLength: 5 }),
  reals: fc.shuffledSubarray([0, 1, 2, 3, 4, 5], { minLength: 6, maxLength: 6 }),
});
/** One director's history: intermediate configurations, each in an order of its own, at times
 *  a few seconds or many minutes apart (ghosts kept or expired), then the final one. */
const historyArb = fc.record({
  steps: fc.array(fc.record({ shape: shapeArb, order: orderArb, gapMs: fc.constantFrom(1000, 60_000, 3_600_000) }), { maxLength: 5 }),
  finalOrder: orderArb,
});

test('directors with different histories (and a restarted one) build the same slot -> realserver tables and digest', () => {
  let indexesDiffered = 0;
  fc.assert(fc.property(shapeArb, fc.array(historyArb, { minLength: 2, maxLength: 3 }), (final, histories) => {
    const fresh = plan(emptyApplied(), config(final, { services: [0, 1, 2, 3, 4], reals: [0, 1, 2, 3, 4, 5] }), 0);
    const want = planTables(fresh.target, fresh.compiled!);
    const wantDigest = tablesDigest(want).digest;
    for (const h of histories) {
      let running = emptyApplied();
      let now = 0;
      for (const st of h.steps) {
        now += st.gapMs;
        running = plan(running, config(st.shape, st.order), now).target;
      }
      const p = plan(running, config(final, h.finalOrder), now + 1000);
      const got = planTables(p.target, p.compiled!);
      assert.deepEqual(slotTables(got), slotTables(want));
      assert.equal(tablesDigest(got).digest, wantDigest);
      if (JSON.stringify(p.target.allocation.reals) !== JSON.stringify(fresh.target.allocation.reals)) indexesDiffered++;
    }
  }), { numRuns: 60 });
  assert.ok(indexesDiffered > 10, `histories left other realserver indexes in ${indexesDiffered} runs: the property compares more than one allocation`);
});

test('the same additions in every order give the same tables; the hashed table sizes never move', () => {
  const adds = fc.array(fc.tuple(fc.integer({ min: 0, max: 4 }), fc.integer({ min: 0, max: 5 }), fc.integer({ min: 1, max: 3 })), { minLength: 1, maxLength: 12 })
    .map((xs) => [...new Map(xs.map(([s, r, w]) => [`${s}/${r}`, [s, r, w] as const])).values()]);
  fc.assert(fc.property(adds.chain((xs) => fc.tuple(fc.constant(xs), fc.shuffledSubarray(xs, { minLength: xs.length, maxLength: xs.length }))), ([xs, ys]) => {
    const apply = (changes: readonly (readonly [number, number, number])[]): { view: TablesView; sizes: Record<string, number>[] } => {
      const shape: Shape = SERVICES.map(() => new Map());
      const services: number[] = [];
      let running = emptyApplied();
      const sizes: Record<string, number>[] = [];
      let now = 0;
      for (const [s, r, w] of changes) {
        shape[s]!.set(r, w);
        if (!services.includes(s)) services.push(s);
        const p = plan(running, config(shape, { services: [...services, ...[0, 1, 2, 3, 4].filter((x) => !services.includes(x))] }), (now += 1000));
        running = p.target;
        // What the service entries say (hashed services: without building their tables).
        sizes.push(Object.fromEntries(p.compiled!.services.filter((t) => !/^tcp 10\.0\.0\.[34]:/.test(t.id)).map((t) => [t.id, decode(SVC, t.value(0)).table_size as number])));
      }
      const last = plan(running, config(shape, { services: [...services, ...[0, 1, 2, 3, 4].filter((x) => !services.includes(x))] }), now + 1000);
      return { view: planTables(last.target, last.compiled!), sizes };
    };
    const a = apply(xs);
    const b = apply(ys);
    assert.deepEqual(slotTables(a.view), slotTables(b.view));
    assert.equal(tablesDigest(a.view).digest, tablesDigest(b.view).digest);
    // mh 251, sh 509, dh at the default (1021 for 1 to 10 realservers): whatever number of
    // realservers each change left.
    for (const s of [...a.sizes, ...b.sizes]) assert.deepEqual(s, { 'tcp 10.0.0.1:80': 251, 'tcp 10.0.0.2:443': 509, 'udp [2001:db8::1]:53': MIN_DEFAULT_TABLE_SIZE });
  }), { numRuns: 40 });
});

const T: ServiceTable = {
  service: 'tcp 10.0.0.1:80', scheduler: 'mh', tableSize: 7, hashFields: 31, flags: 0, persistMask: 'ff'.repeat(16), persistTimeout: 0,
  slots: [
    { address: '10.1.0.1', port: 80, active: true }, { address: '10.1.0.2', port: 80, active: true }, null,
    { address: '10.1.0.1', port: 80, active: true }, { address: '10.1.0.2', port: 80, active: true },
    { address: '10.1.0.2', port: 80, active: true }, { address: '10.1.0.1', port: 80, active: true },
  ],
};

test('the digest covers each thing that decides a flow\'s realserver, and nothing else', () => {
  const d = serviceDigest(T);
  assert.match(d, /^[0-9a-f]{64}$/);
  assert.equal(serviceDigest(structuredClone(T)), d, 'a function of the contents');
  const changed: [string, ServiceTable][] = [
    ['two slots swapped', { ...T, slots: [T.slots[1]!, T.slots[0]!, ...T.slots.slice(2)] }],
    ['a slot emptied', { ...T, slots: [null, ...T.slots.slice(1)] }],
    ['a port', { ...T, slots: T.slots.map((s) => (s && s.address === '10.1.0.2' ? { ...s, port: 8080 } : s)) }],
    ['an address', { ...T, slots: T.slots.map((s) => (s && s.address === '10.1.0.2' ? { ...s, address: '10.1.0.3' } : s)) }],
    ['a realserver no longer active', { ...T, slots: T.slots.map((s) => (s && s.address === '10.1.0.2' ? { ...s, active: false } : s)) }],
    ['the hash fields', { ...T, hashFields: 1 }],
    ['the flags', { ...T, flags: 2 }],
    ['the persistence mask', { ...T, persistMask: 'ff'.repeat(15) + '00' }],
    ['the persistence timeout', { ...T, persistTimeout: 300 }],
    ['the scheduler', { ...T, scheduler: 'sh' }],
    ['the table size', { ...T, tableSize: 11 }],
    ['the service', { ...T, service: 'tcp 10.0.0.9:80' }],
  ];
  for (const [what, t] of changed) assert.notEqual(serviceDigest(t), d, what);
  // The overall digest: the hash seed and every service, in any order.
  const U = { ...T, service: 'udp 10.0.0.1:53' };
  const all = tablesDigest({ hashSeed: 7, services: [T, U] });
  assert.equal(tablesDigest({ hashSeed: 7, services: [U, T] }).digest, all.digest, 'services in any order');
  assert.deepEqual(all.services.map((s) => s.service), ['tcp 10.0.0.1:80', 'udp 10.0.0.1:53']);
  assert.notEqual(tablesDigest({ hashSeed: 8, services: [T, U] }).digest, all.digest, 'the hash seed');
  assert.notEqual(tablesDigest({ hashSeed: 7, services: [T] }).digest, all.digest, 'a service missing');
  assert.notEqual(tablesDigest({ hashSeed: 7, services: [T, { ...U, slots: U.slots.slice().reverse() }] }).digest, all.digest, 'one service\'s table');
});

test('the digest does not see realserver slot indexes: two allocations of the same configuration agree', () => {
  const cfg = config([new Map([[0, 1], [1, 2], [2, 1]]), undefined, undefined, undefined, undefined], { services: [0], reals: [0, 1, 2, 3, 4, 5] });
  const a = plan(emptyApplied(), cfg, 0);
  // Another director saw a realserver come and go first: the same realservers, other indexes.
  const other = plan(plan(emptyApplied(), config([new Map([[5, 1]]), undefined, undefined, undefined, undefined], { services: [0], reals: [5] }), 0).target, cfg, 1000);
  assert.notDeepEqual(other.target.allocation.reals, a.target.allocation.reals, 'indexes differ');
  assert.notDeepEqual([...other.compiled!.services[0]!.table], [...a.compiled!.services[0]!.table], 'so do the raw tables');
  assert.equal(tablesDigest(planTables(other.target, other.compiled!)).digest, tablesDigest(planTables(a.target, a.compiled!)).digest);
});

test('lvs_xdp_table_digest_info: one series overall (protocol, vip, port "") and one per service; none without a digest', async () => {
  const m = new DirectorMetrics({ processMetrics: false });
  const base = {
    sample: { at: 0n, services: [], counters: {}, connections: { entries: 0, max: 1, evicted: 0 } },
    interfaces: [], health: [], services: [],
  };
  const d = tablesDigest({ hashSeed: 1, services: [T] });
  m.update({ ...base, tables: d });
  const series = [...parseExposition(await m.text())].filter(([k]) => k.startsWith('lvs_xdp_table_digest_info'));
  assert.deepEqual(series.sort(), [
    [`lvs_xdp_table_digest_info{protocol="",vip="",port="",digest="${d.digest}"}`, 1],
    [`lvs_xdp_table_digest_info{protocol="tcp",vip="10.0.0.1",port="80",digest="${d.services[0]!.digest}"}`, 1],
  ].sort());
  m.update(base);
  assert.ok(![...parseExposition(await m.text()).keys()].some((k) => k.startsWith('lvs_xdp_table_digest_info')), 'a stale digest is not kept');
});

test('addresses spelt differently on two directors give the same tables (validation makes them canonical first)', () => {
  const spelt = (rips: string[]): DirectorConfig => validateConfig({
    services: [{ protocol: 'udp', vip: '2001:db8::1', port: 53, scheduler: 'mh', flags: [], ops: false, tableSize: 251,
      realservers: rips.map((address, i) => ({ address, port: 53, weight: 1, method: 'dr' as const, mac: `02:00:00:00:00:0${i}` })) }],
  });
  const a = plan(emptyApplied(), spelt(['2001:db8:1::1', '2001:db8:1::2', '2001:db8:1::a']), 0);
  const b = plan(emptyApplied(), spelt(['2001:DB8:1:0:0:0:0:A', '2001:0db8:1::2', '2001:db8:1:0::1']), 0);
  assert.deepEqual(slotTables(planTables(b.target, b.compiled!)), slotTables(planTables(a.target, a.compiled!)));
});
