// Differential fuzzing, CI size: generated configurations and frames through the XDP program
// (BPF_PROG_TEST_RUN) and through the reference model (test/model), compared frame by frame
// (action, bytes, counters, stats, connection / persistence / fragment maps, rr cursors); then
// every saved regression case in test/fixtures/fuzz/. `npm run fuzz` runs longer campaigns.
// LVS_FUZZ_SEED / LVS_FUZZ_CASES change the seed and size of the short run.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Differential, type CaseResult, type Mismatch } from '../fuzz/differential.js';
import { campaign, describeMismatch, loadFixtures } from '../fuzz/campaign.js';
import { COUNTERS } from '../../src/abi/generated.js';
import { CASE_SYNRECV_KEYS } from '../fuzz/case.js';

const SEED = Number(process.env.LVS_FUZZ_SEED ?? 20261123) >>> 0;
const CASES = Number(process.env.LVS_FUZZ_CASES ?? 25_000);
// BPF_PROG_TEST_RUN gives the program 256 bytes of headroom: these cannot fail there.
const UNREACHABLE = new Set(['DROP_ENCAP_FAILED', 'DROP_ICMP_FAILED',
  // the parser leaves every header NAT rewrites in the frame
  'DROP_NAT_FAILED',
  // LVS-NAT replies depend on the FIB: fuzzed in a namespace of known routes (fuzz-nat.test.ts)
  'FWD_NAT_REPLY', 'ICMP_NAT_REPLY', 'PASS_NAT_NO_ROUTE', 'PASS_NAT_TTL',
  // the differential reads lvs_sync_events after every frame: the ring is never full there
  // (test/packet/sync-events.test.ts fills it)
  'SYNC_LOST']);

const diff = new Differential();
after(() => diff.close());

test('saved fuzz cases (test/fixtures/fuzz) behave as the model says', async () => {
  const fixtures = loadFixtures();
  assert.ok(fixtures.length > 0, 'regression fixtures present');
  for (const { name, c } of fixtures) {
    const r = await diff.runCase(c);
    assert.equal(r.mismatch, undefined, `${name}\n${r.mismatch ? describeMismatch(c, r as CaseResult & { mismatch: Mismatch }) : ''}`);
    assert.equal(r.compared, c.frames.length, name);
  }
});

test(`differential fuzzing: ${CASES} cases, seed ${SEED}`, async () => {
  const lines: string[] = [];
  const s = await campaign({ seed: SEED, cases: CASES, framesPerConfig: 200, log: (l) => lines.push(l) }, diff);
  console.log(`# fuzz: seed ${SEED}, ${s.cases} cases in ${s.configs} configurations, ${(s.ms / 1000).toFixed(1)} s, ` +
    `${Math.round(s.cases / (s.ms / 1000))} cases/s, ${s.mismatches} mismatches, ${s.ambiguous} ambiguous`);
  assert.equal(s.mismatches, 0, `${lines.join('\n')}\n(reproduce: npm run fuzz -- --seed ${SEED} --config N; fixtures: ${s.fixtures.join(' ')})`);
  assert.equal(s.cases, CASES);
  assert.equal(s.compared, s.cases);
  assert.ok(s.ambiguous <= s.cases / 100, `${s.ambiguous} frames had a timeout boundary inside their run`);
  // The generator reaches every outcome the program can produce under BPF_PROG_TEST_RUN.
  const missed = COUNTERS.filter((c) => !UNREACHABLE.has(c.name) && !s.hits.get(c.name)).map((c) => c.name);
  assert.deepEqual(missed, [], 'counters never exercised');
  for (const a of ['PASS', 'DROP', 'TX', 'REDIRECT']) assert.ok(s.hits.get(`action ${a}`), `no ${a}`);
});

test('the comparison notices a model that differs from the program', async () => {
  // A model with another hash seed schedules differently: the campaign must say so.
  const wrong = new Differential();
  wrong.tweakModel = (cfg) => { cfg.settings = { ...cfg.settings, seed: (cfg.settings.seed + 1) >>> 0 }; };
  try {
    const s = await campaign({ seed: SEED, cases: 4000, save: false, maxMismatches: 1, log: () => {} }, wrong);
    assert.equal(s.mismatches, 1);
  } finally {
    wrong.close();
  }
  const ttl = new Differential();
  ttl.tweakModel = (cfg) => { cfg.settings = { ...cfg.settings, tunTtl: ((cfg.settings.tunTtl || 64) % 255) + 1 }; };
  try {
    const s = await campaign({ seed: SEED, cases: 4000, save: false, maxMismatches: 1, log: () => {} }, ttl);
    assert.equal(s.mismatches, 1);
  } finally {
    ttl.close();
  }
  // Another lvs_synrecv key (the program's is set at load): the model looks for SYN_RECV
  // connections in other buckets than the program.
  const key = new Differential();
  key.tweakModel = (cfg) => { cfg.synrecvKey = cfg.synrecvKey === CASE_SYNRECV_KEYS[0] ? CASE_SYNRECV_KEYS[1] : CASE_SYNRECV_KEYS[0]; };
  try {
    const s = await campaign({ seed: SEED, cases: 4000, save: false, maxMismatches: 1, log: () => {} }, key);
    assert.equal(s.mismatches, 1);
  } finally {
    key.close();
  }
  // Thresholds and weights the program does not have (lvs_dests): overload flags and
  // least-connection choices differ.
  const dests = new Differential();
  dests.tweakModel = (cfg) => { for (const d of cfg.dests.values()) { d.uThresh = d.uThresh ? d.uThresh + 1 : 1; d.weight += 1; } };
  try {
    const s = await campaign({ seed: SEED, cases: 4000, save: false, maxMismatches: 1, log: () => {} }, dests);
    assert.equal(s.mismatches, 1);
  } finally {
    dests.close();
  }
});
