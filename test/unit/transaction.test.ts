// The locked part of a change resolves nothing itself: offline resolution uses what the unlocked
// part found, the running next hops and given MACs, and asks for another round otherwise.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveInputs, NeedsResolution } from '../../src/director/transaction.js';
import { emptyApplied } from '../../src/director/plan.js';
import type { DirectorConfig } from '../../src/model/types.js';

const cfg = (mac?: string, method: 'dr' | 'tun' = 'dr'): DirectorConfig => ({
  services: [{
    protocol: 'tcp', vip: '10.0.0.1', port: 80, scheduler: 'mh', flags: [], ops: false,
    realservers: [{ address: '10.1.0.1', port: 80, weight: 1, method, ...(mac ? { mac } : {}) }],
  }],
});

test('offline: given MACs need nothing; an unknown next hop is NeedsResolution, not a spawn', () => {
  const r = resolveInputs(emptyApplied(), cfg('02:00:00:00:00:01'), ['eth0'], { offline: true });
  assert.deepEqual([...r.l2.values()], [{ mac: '02:00:00:00:00:01' }]);
  assert.throws(() => resolveInputs(emptyApplied(), cfg(), ['eth0'], { offline: true }), NeedsResolution);
});

test('offline: what an earlier round resolved for the same interfaces is used; other interfaces need a new round', () => {
  const earlier = { l2: new Map([['tcp 10.0.0.1:80/10.1.0.1', { mac: '02:00:00:00:00:07' }]]), unresolved: new Map<string, string>(), tunnel: {}, interfaces: ['eth0'] };
  const r = resolveInputs(emptyApplied(), cfg(), ['eth0'], { offline: true, earlier });
  assert.deepEqual([...r.l2.values()], [{ mac: '02:00:00:00:00:07' }]);
  assert.throws(() => resolveInputs(emptyApplied(), cfg(), ['eth0', 'eth1'], { offline: true, earlier }), NeedsResolution);
});

test('offline: a Tun realserver without a known outer source needs a round; with one it does not', () => {
  assert.throws(() => resolveInputs(emptyApplied(), cfg('02:00:00:00:00:01', 'tun'), ['eth0'], { offline: true }), NeedsResolution);
  const withSource = { ...cfg('02:00:00:00:00:01', 'tun'), settings: { tunnel: { source4: '10.9.0.1' } } };
  assert.deepEqual(resolveInputs(emptyApplied(), withSource, ['eth0'], { offline: true }).tunnel, { source4: '10.9.0.1' });
});
