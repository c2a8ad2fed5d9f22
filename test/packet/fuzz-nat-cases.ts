// The campaign of test/packet/fuzz-nat.test.ts, run by it inside its namespace (the FIB the cases
// name is that namespace's). Not a test file of its own: it refuses to run anywhere else.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Differential } from '../fuzz/differential.js';
import { campaign } from '../fuzz/campaign.js';
import type { NatEnv } from '../fuzz/gen.js';
import { ifIndex } from '../../src/native/index.js';
import { NAT_NEIGHBOURS, NAT_EGRESS_MAC } from '../fuzz/nat-env.js';

if (process.env.LVS_NAT_CASES !== '1') throw new Error('run by test/packet/fuzz-nat.test.ts inside its namespace');

const SEED = Number(process.env.LVS_FUZZ_SEED ?? 20261205) >>> 0;
const CASES = Number(process.env.LVS_FUZZ_NAT_CASES ?? 12_000);
const hex16 = (a: string): string => {
  const b = Buffer.alloc(16);
  if (a.includes(':')) {
    const [h, t = ''] = a.split('::');
    const words = (s: string) => (s ? s.split(':').map((w) => parseInt(w, 16)) : []);
    const head = words(h!), tail = words(t);
    [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail].forEach((w, i) => b.writeUInt16BE(w, i * 2));
  } else a.split('.').forEach((x, i) => { b[i] = Number(x); });
  return b.toString('hex');
};
const c0 = ifIndex('c0');
const NAT: NatEnv = {
  egress: c0,
  fib: Object.entries(NAT_NEIGHBOURS).map(([a, m]) => ({ dst: hex16(a), ifindex: c0, smac: NAT_EGRESS_MAC.replaceAll(':', ''), dmac: m.replaceAll(':', ''), mtu: 1500 })),
};

const diff = new Differential();
after(() => diff.close());

test(`LVS-NAT differential fuzzing: ${CASES} cases, seed ${SEED}`, async () => {
  const lines: string[] = [];
  const s = await campaign({ seed: SEED, cases: CASES, framesPerConfig: 200, nat: NAT, save: false, log: (l) => lines.push(l) }, diff);
  console.log(`# fuzz-nat: seed ${SEED}, ${s.cases} cases in ${s.configs} configurations, ${(s.ms / 1000).toFixed(1)} s, ` +
    `${s.mismatches} mismatches, ${s.ambiguous} ambiguous; FWD_NAT ${s.hits.get('FWD_NAT') ?? 0}, FWD_NAT_REPLY ${s.hits.get('FWD_NAT_REPLY') ?? 0}, ` +
    `ICMP_NAT_REPLY ${s.hits.get('ICMP_NAT_REPLY') ?? 0}, PASS_NAT_NO_ROUTE ${s.hits.get('PASS_NAT_NO_ROUTE') ?? 0}, PASS_NAT_TTL ${s.hits.get('PASS_NAT_TTL') ?? 0}`);
  assert.equal(s.mismatches, 0, `${lines.join('\n')}\n(reproduce: LVS_FUZZ_SEED=${SEED} inside the namespace; config numbers above)`);
  assert.equal(s.cases, CASES);
  assert.ok(s.ambiguous <= s.cases / 100, `${s.ambiguous} frames had a timeout boundary inside their run`);
  // Every NAT outcome is reached: both directions, ICMP from the realserver's side, replies the
  // kernel must route, replies whose TTL expires here, and the fragments of replies.
  for (const c of ['FWD_NAT', 'FWD_NAT_REPLY', 'ICMP_NAT_REPLY', 'PASS_NAT_NO_ROUTE', 'PASS_NAT_TTL', 'FRAG_FOLLOW', 'FWD_REDIRECT', 'DROP_REAL_GONE']) {
    assert.ok(s.hits.get(c), `${c} never exercised`);
  }
});

test('the NAT comparison notices a model with another VIP port translation', async () => {
  const wrong = new Differential();
  wrong.tweakModel = (cfg) => { for (const r of cfg.reals.values()) if (r.vport) r.vport = (r.vport + 1) & 0xffff; };
  try {
    const s = await campaign({ seed: SEED, cases: 3000, nat: NAT, save: false, maxMismatches: 1, log: () => {} }, wrong);
    assert.equal(s.mismatches, 1);
  } finally {
    wrong.close();
  }
});
