// The data-plane benchmark works (CI runs it short; how fast is not asserted here).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runDataplaneBench } from '../../bench/dataplane.js';

test('data-plane benchmark runs every case and reports ratios to floors', async () => {
  const r = await runDataplaneBench({ rounds: 2, perRound: 50 });
  assert.ok(r.length >= 10);
  for (const c of r) {
    assert.ok(Number.isFinite(c.medianNs), c.name);
    if (c.floor) assert.ok(Number.isFinite(c.ratio), c.name);
  }
});
