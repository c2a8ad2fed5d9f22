// A configuration applied through the director's plan and map writer makes the data plane
// choose exactly as the compiled tables say, and a second plan keeps realserver slots (so flows).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { clientPacket, TCP, mac, addrBytes } from '../lib/frames.js';
import { DirectorHarness, XDP } from '../lib/director.js';
import type { MacResolver } from '../../src/dataplane/compile.js';
import { flowHash } from '../../src/dataplane/flowhash.js';
import type { DirectorConfig } from '../../src/model/types.js';

const macOf = (addr: string) => `02:00:00:00:00:${addr.split('.').pop()!.padStart(2, '0').slice(-2)}`;
const resolve: MacResolver = (_s, r) => ({ mac: macOf(r.address) });

function config(weights: number[]): DirectorConfig {
  return {
    settings: { hashSeed: 77, tunnel: { source4: '192.168.1.1' } },
    services: [{
      protocol: 'tcp', vip: '10.0.0.1', port: 80, scheduler: 'mh', flags: [], ops: false, tableSize: 251,
      realservers: weights.map((w, i) => ({ address: `192.168.1.${11 + i}`, port: 80, weight: w, method: 'dr' as const })),
    }],
  };
}

let h: DirectorHarness;
before(async () => { h = await DirectorHarness.load(); h.reset(); });
after(() => h?.close());

test('compiled mh service: every flow goes where the compiled table says; all realservers used', () => {
  const c = h.apply(config([1, 1, 1]), resolve).compiled!;
  const svc = c.services[0]!;
  const byIndex = new Map(c.reals.map((r) => [r.index, r]));
  const hits = new Map<string, number>();
  for (let i = 0; i < 300; i++) {
    const client = `198.51.100.${1 + (i % 200)}`;
    const sport = 10000 + i;
    const r = h.run(clientPacket(client, '10.0.0.1', { proto: 'tcp', sport, dport: 80, flags: TCP.SYN }));
    assert.equal(r.action, XDP.TX);
    const slot = flowHash({ saddr: addrBytes(client), daddr: addrBytes('10.0.0.1'), sport, dport: 80, proto: 6 }, 0x1f, 77) % svc.table.length;
    const want = byIndex.get(svc.table[slot]!)!;
    const got = r.out.subarray(0, 6).toString('hex');
    assert.equal(got, Buffer.from(want.value.subarray(16, 22)).toString('hex'));
    hits.set(got, (hits.get(got) ?? 0) + 1);
  }
  assert.equal(hits.size, 3);
  for (const n of hits.values()) assert.ok(n > 50 && n < 200, `balanced enough: ${[...hits.values()]}`);
});

test('a second plan keeps slots; quiesced realserver keeps its flow', () => {
  h.reset();
  const c1 = h.apply(config([1, 1, 1]), resolve).compiled!;
  // find a flow that lands on realserver .11
  let sport = 20000;
  for (;; sport++) {
    const r = h.run(clientPacket('203.0.113.5', '10.0.0.1', { proto: 'tcp', sport, dport: 80, flags: TCP.SYN }));
    if (r.out.subarray(0, 6).equals(mac(macOf('192.168.1.11')))) break;
  }
  const p2 = h.apply(config([0, 1, 1]), resolve);
  const c2 = p2.compiled!;
  assert.deepEqual(c2.allocation.reals, c1.allocation.reals, 'same slots and generations');
  assert.ok(!c2.services[0]!.table.includes(c1.reals[0]!.index), 'quiesced realserver has no slots');
  // Only what changed is written: the quiesced flag of one slot, one table, one switch (lvs_cfg
  // is as it was).
  assert.deepEqual(p2.steps.map((s) => s.op), ['reals', 'tables', 'switch']);
  const ack = h.run(clientPacket('203.0.113.5', '10.0.0.1', { proto: 'tcp', sport, dport: 80, flags: TCP.ACK }));
  assert.deepEqual(ack.out.subarray(0, 6), mac(macOf('192.168.1.11')));
  const fresh = h.run(clientPacket('203.0.113.5', '10.0.0.1', { proto: 'tcp', sport: 50001, dport: 80, flags: TCP.SYN }));
  assert.notDeepEqual(fresh.out.subarray(0, 6), mac(macOf('192.168.1.11')));
});
