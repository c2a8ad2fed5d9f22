/** The health state machine (pure): rise/fall counting, on-down finish/cut, all-down policies, reloads. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfigText } from '../../src/config/index.js';
import { healthPlan } from '../../src/ops/spec.js';
import { HealthModel } from '../../src/ops/health.js';
import { tableSizeOf, type DirectorConfig } from '../../src/model/types.js';

const SVC = 'tcp 10.0.0.1:80';
const key = (a: string, svc = SVC) => `${svc}/${a}`;

function cfg(check: string, reals = ['192.168.1.10', '192.168.1.11', '192.168.1.12'], weights: number[] = []): DirectorConfig {
  return parseConfigText(`services:
  - vip: 10.0.0.1
    port: 80
    health-check: ${check}
    realservers:
${reals.map((r, i) => `      - { address: ${r}, weight: ${weights[i] ?? 1} }`).join('\n')}
`, 't.yaml');
}

function model(c: DirectorConfig): HealthModel {
  return new HealthModel(c, healthPlan(c), 0);
}

function weights(m: HealthModel): Record<string, number> {
  return Object.fromEntries(m.effective().config.services[0]!.realservers.map((r) => [r.address, r.weight]));
}

test('fall: down after exactly `fall` consecutive failures; a success in between starts over', () => {
  const m = model(cfg('{ type: tcp, rise: 2, fall: 3 }'));
  const k = key('192.168.1.10');
  assert.equal(m.report(k, false, 'refused', 1), undefined);
  assert.equal(m.report(k, false, 'refused', 2), undefined);
  assert.equal(m.report(k, true, 'ok', 3), undefined);
  assert.equal(m.report(k, false, 'refused', 4), undefined);
  assert.equal(m.report(k, false, 'refused', 5), undefined);
  const tr = m.report(k, false, 'refused', 6);
  assert.deepEqual(tr, { key: k, service: SVC, address: '192.168.1.10', from: 'up', to: 'down', detail: 'refused' });
  assert.equal(m.report(k, false, 'refused', 7), undefined, 'no second transition');
  assert.deepEqual(weights(m), { '192.168.1.10': 0, '192.168.1.11': 1, '192.168.1.12': 1 });
  const h = m.all.find((x) => x.key === k)!;
  assert.equal(h.checks, 7);
  assert.equal(h.failures, 6);
  assert.equal(h.since, 6);
});

test('rise: back after exactly `rise` consecutive successes; a failure in between starts over', () => {
  const m = model(cfg('{ type: tcp, rise: 3, fall: 1 }'));
  const k = key('192.168.1.11');
  assert.equal(m.report(k, false, 'x', 1)?.to, 'down');
  assert.equal(m.report(k, true, 'ok', 2), undefined);
  assert.equal(m.report(k, true, 'ok', 3), undefined);
  assert.equal(m.report(k, false, 'x', 4), undefined, 'already down');
  assert.equal(m.report(k, true, 'ok', 5), undefined);
  assert.equal(m.report(k, true, 'ok', 6), undefined);
  assert.equal(m.report(k, true, 'ok', 7)?.to, 'up');
  assert.deepEqual(weights(m), { '192.168.1.10': 1, '192.168.1.11': 1, '192.168.1.12': 1 });
});

test('initial: down starts out of the table until rise successes', () => {
  const m = model(cfg('{ type: tcp, rise: 1, initial: down }', ['192.168.1.10', '192.168.1.11']));
  // Both down from the start and never seen up: keep-last keeps every weighted realserver.
  const e = m.effective();
  assert.equal(e.services.get(SVC)!.allDown, true);
  assert.deepEqual(weights(m), { '192.168.1.10': 1, '192.168.1.11': 1 });
  assert.equal(m.report(key('192.168.1.10'), true, 'ok', 1)?.to, 'up');
  assert.deepEqual(weights(m), { '192.168.1.10': 1, '192.168.1.11': 0 });
});

test('on-down: cut removes the realserver (its flows are rescheduled) instead of weight 0', () => {
  const m = model(cfg('{ type: tcp, fall: 1, on-down: cut }'));
  m.report(key('192.168.1.12'), false, 'x', 1);
  assert.deepEqual(weights(m), { '192.168.1.10': 1, '192.168.1.11': 1 });
});

test('a per-realserver check overrides the service one; type none is unchecked', () => {
  const c = parseConfigText(`services:
  - vip: 10.0.0.1
    port: 80
    health-check: { type: http, path: /h, fall: 1 }
    realservers:
      - { address: 192.168.1.10, health-check: { fall: 2, on-down: cut } }
      - { address: 192.168.1.11, health-check: { type: none } }
`, 't.yaml');
  const plan = healthPlan(c);
  assert.deepEqual(plan.targets.map((t) => [t.address, t.spec.type, t.spec.path, t.spec.fall, t.spec.onDown]), [['192.168.1.10', 'http', '/h', 2, 'cut']]);
  const m = new HealthModel(c, plan, 0);
  assert.equal(m.report(key('192.168.1.11'), false, 'x', 1), undefined, 'unchecked realservers ignore reports');
  assert.equal(m.report(key('192.168.1.10'), false, 'x', 1), undefined);
  assert.equal(m.report(key('192.168.1.10'), false, 'x', 2)?.to, 'down');
  assert.deepEqual(weights(m), { '192.168.1.11': 1 });
});

test('all down, keep-last: the realservers that served last stay; the first one back replaces them', () => {
  const m = model(cfg('{ type: tcp, fall: 1, rise: 1 }'));
  m.report(key('192.168.1.10'), false, 'x', 1);
  m.report(key('192.168.1.11'), false, 'x', 2);
  assert.equal(m.effective().services.get(SVC)!.allDown, false);
  m.report(key('192.168.1.12'), false, 'x', 3);
  const e = m.effective();
  assert.deepEqual(e.services.get(SVC), { id: SVC, policy: 'keep-last', allDown: true, sorryActive: false, keptDown: ['192.168.1.12'] });
  assert.deepEqual(weights(m), { '192.168.1.10': 0, '192.168.1.11': 0, '192.168.1.12': 1 });
  m.report(key('192.168.1.10'), true, 'ok', 4);
  assert.equal(m.effective().services.get(SVC)!.allDown, false);
  assert.deepEqual(weights(m), { '192.168.1.10': 1, '192.168.1.11': 0, '192.168.1.12': 0 });
});

test('all down, sorry-server: every realserver out, the sorry server in with weight 1; gone when one is back', () => {
  const m = model(cfg('{ type: tcp, fall: 1, rise: 1, all-down: sorry-server, sorry-server: { address: 192.168.1.99, mac: "02:00:00:00:00:99" } }', ['192.168.1.10', '192.168.1.11']));
  m.report(key('192.168.1.10'), false, 'x', 1);
  m.report(key('192.168.1.11'), false, 'x', 2);
  const e = m.effective();
  assert.equal(e.services.get(SVC)!.sorryActive, true);
  assert.deepEqual(e.config.services[0]!.realservers.map((r) => [r.address, r.weight, r.mac]), [
    ['192.168.1.10', 0, undefined], ['192.168.1.11', 0, undefined], ['192.168.1.99', 1, '02:00:00:00:00:99'],
  ]);
  m.report(key('192.168.1.11'), true, 'ok', 3);
  assert.deepEqual(weights(m), { '192.168.1.10': 0, '192.168.1.11': 1 });
  assert.equal(m.effective().services.get(SVC)!.sorryActive, false);
});

test('quiesced (weight 0 in the file) realservers do not count for all-down and stay at 0', () => {
  const m = model(cfg('{ type: tcp, fall: 1 }', ['192.168.1.10', '192.168.1.11'], [1, 0]));
  m.report(key('192.168.1.10'), false, 'x', 1);
  const e = m.effective();
  assert.equal(e.services.get(SVC)!.allDown, true);
  assert.deepEqual(weights(m), { '192.168.1.10': 1, '192.168.1.11': 0 });
});

test('reload: kept realservers keep their state, new ones start at initial, removed ones are forgotten', () => {
  const c1 = cfg('{ type: tcp, fall: 1 }', ['192.168.1.10', '192.168.1.11']);
  const m = model(c1);
  m.report(key('192.168.1.10'), false, 'x', 1);
  const c2 = cfg('{ type: tcp, fall: 1 }', ['192.168.1.10', '192.168.1.12']);
  m.setConfig(c2, healthPlan(c2), 2);
  assert.deepEqual(m.all.map((h) => [h.address, h.state]), [['192.168.1.10', 'down'], ['192.168.1.12', 'up']]);
  assert.deepEqual(weights(m), { '192.168.1.10': 0, '192.168.1.12': 1 });
  assert.equal(m.report(key('192.168.1.11'), false, 'x', 3), undefined);
});

test('services without health checks are applied as written', () => {
  const c = parseConfigText('services:\n  - { vip: 10.0.0.1, port: 80, realservers: [{ address: 192.168.1.10, weight: 5 }] }\n', 't.yaml');
  const m = model(c);
  assert.deepEqual(m.effective().config, c);
  assert.equal(m.targetList.length, 0);
});

test('health never resizes a Maglev table: a cut realserver or a sorry server keeps the size of the pool as written', () => {
  // 11 realservers: the default size is 2039 (1021 holds at most 10 at 100 slots each).
  const eleven = Array.from({ length: 11 }, (_, i) => `192.168.1.${10 + i}`);
  const m = model(cfg('{ type: tcp, fall: 1, rise: 1, on-down: cut }', eleven));
  assert.equal(m.effective().config.services[0]!.tableSize, undefined, 'nothing pinned while the count is as written');
  m.report(key('192.168.1.20'), false, 'x', 1);
  const cut = m.effective().config.services[0]!;
  assert.equal(cut.realservers.length, 10);
  assert.equal(tableSizeOf(cut), 2039);
  m.report(key('192.168.1.20'), true, 'ok', 2);
  assert.equal(m.effective().config.services[0]!.tableSize, undefined);
  // 10 realservers all down: the sorry server makes 11 in the table, still sized for 10.
  const ten = eleven.slice(0, 10);
  const s = model(cfg('{ type: tcp, fall: 1, all-down: sorry-server, sorry-server: { address: 192.168.1.99, mac: "02:00:00:00:00:99" } }', ten));
  ten.forEach((a, i) => s.report(key(a), false, 'x', i + 1));
  const sorry = s.effective().config.services[0]!;
  assert.equal(sorry.realservers.length, 11);
  assert.equal(tableSizeOf(sorry), 1021);
});
