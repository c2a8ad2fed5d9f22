// The benchmarks work (CI runs them short; how fast is not asserted here).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runDataplaneBench } from '../../bench/dataplane.js';
import { runMemoryBench } from '../../bench/memory.js';
import { runProbeBench } from '../../bench/probes.js';
import { barChart, chartGrid } from '../../bench/lib/svg.js';

test('data-plane benchmark runs every case and reports ratios to floors', async () => {
  const r = await runDataplaneBench({ rounds: 2, perRound: 50 });
  assert.ok(r.length >= 10);
  for (const c of r) {
    assert.ok(Number.isFinite(c.medianNs), c.name);
    if (c.floor) assert.ok(Number.isFinite(c.ratio), c.name);
  }
  for (const name of ['non-VIP packet (pass)', 'established DR flow', 'established Tun flow (IPv6 in IPv6)']) {
    assert.ok(r.some((c) => c.name === name), name);
  }
});

test('the cost probes (bench/bpf/probes.o) load and measure every probe', async () => {
  // Its own object: a parse change the director verifies with may not verify here.
  const r = await runProbeBench({ rounds: 1, repeat: 10 });
  assert.ok(r.length >= 5);
  for (const p of r) assert.ok(Number.isFinite(p.medianNs), JSON.stringify(p));
});

test('map memory is read for both presets; charts render', async () => {
  // Not the memory targets (a 1,000-service fleet and 100 s of small-box runs): `npm run bench` measures those.
  const m = await runMemoryBench({ targets: false });
  assert.equal(m.presets.length, 2);
  for (const p of m.presets) {
    assert.ok(p.maps.some((x) => x.name === 'lvs_conns' && x.bytes > 0), p.preset);
    assert.ok(p.totalBytes > 0);
  }
  assert.ok(m.presets[1]!.totalBytes < m.presets[0]!.totalBytes, 'the small box uses less');
  const svg = chartGrid([{ title: 't', xLabel: 'x', yLabel: 'y', logX: true, series: [{ name: 's', points: [{ x: 1, y: 1 }, { x: 100, y: 1.1, lo: 1, hi: 1.2 }] }] }], 1);
  assert.match(svg, /^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"[\s\S]*<\/svg>\n$/);
  assert.match(barChart('t', 'u', [{ label: 'a', value: 2, target: 1.5 }]), /<rect /);
});
