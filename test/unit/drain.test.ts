// Manual drains (pure): laid over every configuration, kept with the weights from before,
// undone by undrain; ipvsadm's `-e -w 0` drains and `-e -w N` ends the drain.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { overlayDrains, addDrain, removeDrain, drainsFromCommands, drainOf } from '../../src/director/drain.js';
import { keptDrains } from '../../src/director/transaction.js';
import { parseRule } from '../../src/ipvsadm/index.js';
import type { DirectorConfig } from '../../src/model/types.js';

const svc = { protocol: 'tcp' as const, vip: '10.0.0.1', port: 80 };
const cfg = (w: [number, number] = [3, 1]): DirectorConfig => ({
  services: [{
    ...svc, scheduler: 'mh', flags: [], ops: false,
    realservers: [
      { address: '10.1.0.1', port: 80, weight: w[0], method: 'dr' },
      { address: '10.1.0.2', port: 80, weight: w[1], method: 'dr' },
    ],
  }],
});
const weights = (c: DirectorConfig) => c.services[0]!.realservers.map((r) => r.weight);

test('a realserver drain: weight 0 over any configuration, undrain gives the weight back', () => {
  const drains = addDrain(cfg(), {}, { service: svc, realserver: '10.1.0.1' }, 'T1');
  assert.deepEqual(Object.keys(drains), ['tcp 10.0.0.1:80/10.1.0.1']);
  assert.deepEqual(drains['tcp 10.0.0.1:80/10.1.0.1']!.weights, { '10.1.0.1': 3 });
  const applied = overlayDrains(cfg(), drains);
  assert.deepEqual(weights(applied), [0, 1]);
  // A file applied later with other weights: still drained (nothing reverts it as drift).
  assert.deepEqual(weights(overlayDrains(cfg([5, 2]), drains)), [0, 2]);
  assert.equal(drainOf(drains, svc, '10.1.0.1')?.since, 'T1');
  assert.equal(drainOf(drains, svc, '10.1.0.2'), undefined);
  const undone = removeDrain(applied, drains, { service: svc, realserver: '10.1.0.1' });
  assert.deepEqual(undone.drains, {});
  assert.deepEqual(weights(undone.config), [3, 1]);
  assert.throws(() => removeDrain(applied, undone.drains, { service: svc, realserver: '10.1.0.1' }), /is not drained/);
  assert.throws(() => addDrain(cfg(), {}, { service: svc, realserver: '10.9.9.9' }, 'T'), /has no realserver 10\.9\.9\.9/);
  assert.throws(() => addDrain(cfg(), {}, { service: { ...svc, port: 81 } }, 'T'), /does not exist/);
});

test('a service drain covers every realserver; the weights from before an earlier realserver drain are kept', () => {
  let drains = addDrain(cfg(), {}, { service: svc, realserver: '10.1.0.1' }, 'T1');
  const applied = overlayDrains(cfg(), drains);
  drains = addDrain(applied, drains, { service: svc }, 'T2');
  assert.deepEqual(drains['tcp 10.0.0.1:80']!.weights, { '10.1.0.1': 3, '10.1.0.2': 1 });
  const all = overlayDrains(applied, drains);
  assert.deepEqual(weights(all), [0, 0]);
  // Undraining the service leaves the realserver drained by its own record.
  const u = removeDrain(all, drains, { service: svc });
  assert.deepEqual(weights(overlayDrains(u.config, u.drains)), [0, 1]);
  assert.deepEqual(weights(u.config), [3, 1], 'the overlay, not the configuration, keeps it at 0');
});

test('ipvsadm -e -w 0 is a drain, -e -w N ends it; drains of what is deleted go', () => {
  const running = cfg();
  const e0 = parseRule(['-e', '-t', '10.0.0.1:80', '-r', '10.1.0.2', '-g', '-w', '0'], 'cmd');
  let drains = drainsFromCommands(running, {}, [e0], 'T1');
  assert.deepEqual(drains['tcp 10.0.0.1:80/10.1.0.2']?.weights, { '10.1.0.2': 1 });
  const e5 = parseRule(['-e', '-t', '10.0.0.1:80', '-r', '10.1.0.2', '-g', '-w', '5'], 'cmd');
  assert.deepEqual(drainsFromCommands(overlayDrains(running, drains), drains, [e5], 'T2'), {});
  // A realserver already at weight 0 is not drained by -w 0 (nothing to give back).
  assert.deepEqual(drainsFromCommands(cfg([0, 1]), {}, [parseRule(['-e', '-t', '10.0.0.1:80', '-r', '10.1.0.1', '-g', '-w', '0'], 'cmd')], 'T'), {});
  drains = addDrain(running, drains, { service: svc }, 'T3');
  const gone: DirectorConfig = { services: [{ ...cfg().services[0]!, realservers: [cfg().services[0]!.realservers[0]!] }] };
  assert.deepEqual(Object.keys(keptDrains(drains, gone) ?? {}), ['tcp 10.0.0.1:80']);
  assert.deepEqual(keptDrains(drains, { services: [] }), {});
});
