// `lvs-xdp bench`'s table: one aligned row per case with its figures, floor, ratio and Mpps, the
// cases explained below, and a running program that differs from the installed object said so.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatBench } from '../../src/bench/format.js';
import type { BenchReport, BenchRow } from '../../src/bench/program.js';

const row = (c: BenchRow['case'], ns: number, floor: string, floorNs: number, action: string): BenchRow => ({
  case: c, packet: `${c} packet`, action, ns, nsMin: ns - 1, nsMax: ns + 2.25, floor, floorNs,
  ratio: ns / floorNs, ratioMin: (ns - 1) / floorNs, ratioMax: (ns + 2.25) / floorNs, mpps: 1000 / (ns - 20),
});

const report = (sameCode: boolean): BenchReport => ({
  interface: 'eth0', service: 'tcp 10.0.0.1:80', method: 'dr',
  program: { id: 7, tag: 'aaaa', copyTag: sameCode ? 'aaaa' : 'bbbb', sameCode },
  rounds: 15, repeat: 20000, loopNs: 20,
  floors: [{ name: 'XDP_DROP (the test-run loop)', ns: 20 }],
  rows: [row('established', 120, 'parse + swap MACs + XDP_TX', 30, 'XDP_TX'), row('new flow', 900, 'parse + swap MACs + XDP_TX', 30, 'XDP_TX'), row('pass', 33, 'XDP_PASS', 26, 'XDP_PASS')],
  tableFilled: 263168,
});

test('formatBench: aligned rows with median [min-max], floor, ratio and Mpps per core', () => {
  const lines = formatBench(report(true)).split('\n');
  assert.match(lines[0]!, /on eth0, measured on a private copy of program id 7 \(same code\)$/);
  assert.match(lines[1]!, /^service tcp 10\.0\.0\.1:80 \(DR\); 15 rounds of 20,000 packets/);
  const head = lines.findIndex((l) => l.startsWith('case '));
  const table = lines.slice(head, head + 4);
  assert.equal(table[1], 'established  120.0 [119.0-122.3]  parse + swap MACs + XDP_TX (30.0)  4.00x [3.97-4.08]     10.00          XDP_TX');
  assert.equal(table[2], 'new flow     900.0 [899.0-902.3]  parse + swap MACs + XDP_TX (30.0)  30.00x [29.97-30.07]  1.14           XDP_TX');
  assert.equal(table[3], 'pass         33.0 [32.0-35.3]     XDP_PASS (26.0)                    1.27x [1.23-1.36]     76.92          XDP_PASS');
  for (const col of ['ns/packet', 'floor', 'ratio to floor', 'Mpps per core', 'action']) {
    const at = table[0]!.indexOf(col);
    assert.ok(at > 0, col);
    // every row's cell starts where its header does
    for (const l of table.slice(1)) assert.ok(l[at - 1] === ' ' && l[at] !== ' ', `${col} aligned in ${JSON.stringify(l)}`);
  }
  assert.ok(lines.includes('new flow: new flow packet'));
  assert.match(lines.join('\n'), /Mpps per core: 1000 \/ \(ns\/packet - 20\.0 ns, the test-run loop's own cost\)/);
});

test('formatBench: a running program other than the installed object is reported with both tags', () => {
  assert.match(formatBench(report(false)).split('\n')[0]!, /DIFFERENT code: the running program \(tag aaaa\) is not the installed object \(tag bbbb\); lvs-xdp upgrade/);
});

test('formatBench: the --live section, its rows aligned, the copy with its ratio to the floor', () => {
  const r = report(true);
  r.live = {
    sender: 'eth1', receiver: 'eth2', mode: 'native', service: 'tcp 10.0.0.1:80', rounds: 5, frames: 500000,
    rows: [
      { name: 'floor: parse + swap MACs + XDP_TX', mpps: 2.5, mppsMin: 2.25, mppsMax: 2.75, lostPct: 0 },
      { name: 'lvs-xdp DR (established flow, private copy)', mpps: 2, mppsMin: 1.5, mppsMax: 2.125, ratio: 0.8, ratioMin: 0.75, ratioMax: 0.85, lostPct: 1.234 },
    ],
  };
  const lines = formatBench(r).trimEnd().split('\n');
  assert.ok(lines.includes("live rate: eth1 sends 500,000 frames per round of tcp 10.0.0.1:80's established flow to eth2 (native mode there), which sends them back; 5 rounds"));
  assert.deepEqual(lines.slice(-3), [
    'program on the receiver                      Mpps back         ratio to floor     frames lost',
    'floor: parse + swap MACs + XDP_TX            2.50 [2.25-2.75]                     0.00%',
    'lvs-xdp DR (established flow, private copy)  2.00 [1.50-2.13]  0.80x [0.75-0.85]  1.23%',
  ]);
  assert.doesNotMatch(formatBench(report(true)), /live rate/);
});
