// The live-rate benchmark's generic-mode part works (how fast is not asserted): the generic
// floor, lvs-xdp DR in generic mode and nftables DNAT each get the frames back to the sender,
// the director's forwards are its (FWD_DR counts them), and the generic director's row carries
// its ratios to the generic floor and to nftables.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runLiveBench } from '../../bench/live.js';

test('live bench, generic mode: floor, lvs-xdp DR and nftables DNAT forward the frames back; ratios to the floor and to nftables', { timeout: 120_000 }, async () => {
  const frames = 20000;
  const { results, director } = await runLiveBench({ rounds: 2, frames, only: 'lvs-xdp DR (established flow), generic' });
  assert.deepEqual(results.map((r) => [r.name, r.mode]), [
    ['floor: parse + swap MACs + XDP_TX, generic', 'generic'],
    ['lvs-xdp DR (established flow), generic', 'generic'],
    ['nftables DNAT (kernel forwarding, conntrack; no XDP)', 'stack'],
  ]);
  for (const r of results) {
    assert.ok(r.mpps > 0 && Number.isFinite(r.mpps), JSON.stringify(r));
    assert.ok(r.lossPct < 5, `frames come back: ${JSON.stringify(r)}`);
  }
  const dr = results[1]!;
  assert.ok(Number.isFinite(dr.ratio) && Number.isFinite(dr.ratioAgainst), JSON.stringify(dr));
  assert.equal(dr.against, 'nftables DNAT (kernel forwarding, conntrack; no XDP)');
  assert.ok(Number(director.FWD_DR) >= 2 * frames * 0.95, `the director forwarded them: ${JSON.stringify(director)}`);
});
