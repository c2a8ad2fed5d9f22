// A restart of `run` seeds health from the last known state (pure parts): the last run's health
// file, else the snapshot's applied configuration; too old, nothing is seeded. A reload that
// cannot be applied gives back the state of every realserver it dropped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfigText } from '../../src/config/index.js';
import { healthPlan } from '../../src/ops/spec.js';
import { HealthModel } from '../../src/ops/health.js';
import { seedFromHealthFile, seedFromSnapshot } from '../../src/ops/seed.js';
import type { DirectorConfig } from '../../src/model/types.js';

const SVC = 'tcp 10.0.0.1:80';
const file = (reals: string[], check = '{ type: tcp, fall: 1, initial: up }'): DirectorConfig => parseConfigText(`services:
  - vip: 10.0.0.1
    port: 80
    health-check: ${check}
    realservers:
${reals.map((r) => `      - { address: ${r} }`).join('\n')}
`, 't.yaml');

test('health file: states of realservers still checked, with their age; too old is stale', () => {
  const c = file(['192.168.1.10', '192.168.1.11']);
  const targets = healthPlan(c).targets;
  const doc = {
    pid: 1, file: 'x', updatedAt: '2026-01-01T00:00:00.000Z', stoppedAt: '2026-01-01T00:00:10.000Z',
    realservers: [
      { service: SVC, address: '192.168.1.10', state: 'down', since: '2026-01-01T00:00:05.000Z' },
      { service: SVC, address: '192.168.1.99', state: 'down' },
      { service: SVC, address: '192.168.1.11', state: 'unchecked' },
    ],
  };
  const now = Date.parse('2026-01-01T00:01:10.000Z');
  const s = seedFromHealthFile(doc, targets, now, 600_000)!;
  assert.equal(s.ageMs, 60_000);
  assert.equal(s.stale, false);
  assert.deepEqual(s.states, [{ key: `${SVC}/192.168.1.10`, state: 'down', since: Date.parse('2026-01-01T00:00:05.000Z') }]);
  assert.equal(seedFromHealthFile(doc, targets, now, 30_000)!.stale, true);
  const m = new HealthModel(c, healthPlan(c), now);
  assert.equal(m.seed(s.states), 1);
  const w = Object.fromEntries(m.effective().config.services[0]!.realservers.map((r) => [r.address, r.weight]));
  assert.deepEqual(w, { '192.168.1.10': 0, '192.168.1.11': 1 }, 'the down realserver stays out of new flows');
});

test('snapshot: removed or weight 0 without a drain was down; a drained one says nothing', () => {
  const c = file(['192.168.1.10', '192.168.1.11', '192.168.1.12']);
  const targets = healthPlan(c).targets;
  const applied: DirectorConfig = { ...c, services: [{ ...c.services[0]!, realservers: [
    { ...c.services[0]!.realservers[0]!, weight: 0 }, { ...c.services[0]!.realservers[2]!, weight: 0 },
  ] }] };
  const drains = { [`${SVC}/192.168.1.12`]: { service: SVC, realserver: '192.168.1.12', since: 'T', weights: { '192.168.1.12': 1 } } };
  const s = seedFromSnapshot(c, applied, drains, targets, '2026-01-01T00:00:00.000Z', Date.parse('2026-01-01T00:00:30.000Z'), 600_000)!;
  assert.deepEqual(s.states.map((x) => [x.key.split('/')[1], x.state]), [['192.168.1.10', 'down'], ['192.168.1.11', 'down']]);
  assert.equal(s.ageMs, 30_000);
});

test('a failed reload gives back the state of the realservers the new file dropped (not `initial`)', () => {
  const c1 = file(['192.168.1.10', '192.168.1.11']);
  const m = new HealthModel(c1, healthPlan(c1), 0);
  m.report(`${SVC}/192.168.1.10`, false, 'refused', 1);
  assert.equal(m.stateOf(c1.services[0]!, { address: '192.168.1.10' })?.state, 'down');
  const saved = m.save();
  const c2 = file(['192.168.1.11']);
  m.setConfig(c2, healthPlan(c2), 2);
  m.setConfig(c1, healthPlan(c1), 3, saved);
  assert.equal(m.stateOf(c1.services[0]!, { address: '192.168.1.10' })?.state, 'down');
  // Without the saved state (what a failed reload did before): back at `initial`, i.e. up.
  const m2 = new HealthModel(c1, healthPlan(c1), 0);
  m2.report(`${SVC}/192.168.1.10`, false, 'refused', 1);
  m2.setConfig(c2, healthPlan(c2), 2);
  m2.setConfig(c1, healthPlan(c1), 3);
  assert.equal(m2.stateOf(c1.services[0]!, { address: '192.168.1.10' })?.state, 'up');
});
