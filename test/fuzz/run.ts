/**
 * `npm run fuzz -- --cases N [--seed S] [--frames-per-config F] [--config C] [--no-save]
 *  [--max-mismatches M]`
 *
 * Differential fuzzing of the XDP program against the reference model (test/model): prints
 * cases/s, mismatches and the seed; mismatching cases are printed (seed, config, frame hex) and
 * saved under test/fixtures/fuzz/. `--config C` replays one configuration of a seed.
 * Exit status 1 when anything mismatched.
 */
import { campaign, describeMismatch } from './campaign.js';
import { Differential, type CaseResult, type Mismatch } from './differential.js';
import { genCase } from './gen.js';
import { COUNTERS } from '../../src/abi/generated.js';

function parseArgs(argv: string[]): Record<string, string | true> {
  const out: Record<string, string | true> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`);
    const next = argv[i + 1];
    if (next !== undefined && !next.startsWith('--')) { out[a.slice(2)] = next; i++; } else out[a.slice(2)] = true;
  }
  return out;
}

function num(v: string | true | undefined, dflt: number): number {
  if (v === undefined || v === true) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`not a number: ${v}`);
  return n;
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  if (args.help) {
    console.log('usage: npm run fuzz -- --cases N [--seed S] [--frames-per-config F] [--config C] [--no-save] [--max-mismatches M] [--coverage]');
    return 0;
  }
  const seed = num(args.seed, Math.floor(Math.random() * 0x100000000)) >>> 0;
  const per = num(args['frames-per-config'], 200);
  // LVS_FUZZ_OBJECT: fuzz another build of the program (e.g. to reproduce a fixed bug).
  const diff = new Differential(process.env.LVS_FUZZ_OBJECT || undefined);
  try {
    if (args.config !== undefined) {
      const c = genCase(seed, num(args.config, 0), per);
      const r = await diff.runCase(c);
      if (r.mismatch) {
        console.log(describeMismatch(c, r as CaseResult & { mismatch: Mismatch }));
        return 1;
      }
      console.log(`seed ${seed} config ${args.config}: ${r.frames} frames, ${r.compared} compared, ${r.ambiguous} ambiguous, no mismatch`);
      return 0;
    }
    const cases = num(args.cases, 10_000);
    console.log(`differential fuzzing: seed ${seed}, ${cases} cases, ${per} frames per configuration`);
    const s = await campaign({
      seed, cases, framesPerConfig: per, save: !args['no-save'],
      ...(args['max-mismatches'] !== undefined ? { maxMismatches: num(args['max-mismatches'], 1) } : {}),
      onProgress: (p) => console.log(`  ${p.cases} cases (${p.configs} configs), ${Math.round(p.cases / (p.ms / 1000))} cases/s, ${p.mismatches} mismatches, ${p.ambiguous} ambiguous`),
    }, diff);
    const secs = s.ms / 1000;
    console.log(`done: seed ${seed}, ${s.cases} cases in ${s.configs} configurations, ${secs.toFixed(1)} s, ${Math.round(s.cases / secs)} cases/s, ` +
      `${s.mismatches} mismatches, ${s.ambiguous} ambiguous (a timeout boundary inside the run's clock window: matched against either end)`);
    if (s.fixtures.length) console.log(`fixtures: ${s.fixtures.join(' ')}`);
    if (args.coverage) {
      for (const c of COUNTERS) console.log(`  ${String(s.hits.get(c.name) ?? 0).padStart(9)} ${c.name}`);
      for (const [k, v] of s.hits) if (k.startsWith('action')) console.log(`  ${String(v).padStart(9)} ${k}`);
    }
    return s.mismatches ? 1 : 0;
  } finally {
    diff.close();
  }
}

main().then((code) => { process.exitCode = code; }, (e) => { console.error(e); process.exitCode = 2; });
