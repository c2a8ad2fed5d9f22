/**
 * A fuzzing campaign: generated configurations, each with a batch of frames, through the
 * differential runner; mismatching cases are shrunk and saved as fixtures (test/fixtures/fuzz/)
 * that test/packet/fuzz.test.ts replays.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../lib/paths.js';
import { Differential, type CaseResult, type Mismatch } from './differential.js';
import { genCase, type NatEnv } from './gen.js';
import type { FuzzCase } from './case.js';

export const FIXTURE_DIR = join(repoRoot(), 'test', 'fixtures', 'fuzz');

export interface CampaignOptions {
  seed: number;
  /** LVS-NAT campaigns: the namespace's FIB (they run inside it, test/packet/fuzz-nat.test.ts). */
  nat?: NatEnv;
  cases: number; // frames to run in total
  framesPerConfig?: number;
  /** Save mismatching cases as fixtures. */
  save?: boolean;
  /** Stop after this many mismatching configurations. */
  maxMismatches?: number;
  onProgress?: (s: CampaignStats) => void;
  progressEveryMs?: number;
  log?: (line: string) => void;
}

export interface CampaignStats {
  seed: number;
  configs: number;
  cases: number; // frames run through both
  compared: number;
  ambiguous: number;
  mismatches: number;
  ms: number;
  fixtures: string[];
  hits: Map<string, number>;
}

export function describeMismatch(c: FuzzCase, r: CaseResult & { mismatch: Mismatch }): string {
  const m = r.mismatch;
  const origin = c.origin ? `seed ${c.origin.seed} config ${c.origin.config}` : 'fixture';
  return [
    m.frameIndex >= 0 ? `MISMATCH (${origin}) at frame ${m.frameIndex} of ${c.frames.length}:` : `MISMATCH (${origin}) over the whole case:`,
    ...(m.frameIndex >= 0 ? [`  frame ${m.frame}`] : []),
    `  model path: ${m.modelPath.join(' | ')}`,
    ...m.problems.map((p) => `  - ${p}`),
  ].join('\n');
}

/** Smaller cases that still mismatch: the failing frame alone, then fewer preceding frames. */
export async function shrink(diff: Differential, c: FuzzCase, r: CaseResult & { mismatch: Mismatch }): Promise<{ c: FuzzCase; r: CaseResult & { mismatch: Mismatch } }> {
  if (r.mismatch.frameIndex < 0) return { c, r }; // not pinpointed to a frame: keep it whole
  let best = { ...c, frames: c.frames.slice(0, r.mismatch.frameIndex + 1) };
  let bestR = r;
  const tryCase = async (frames: string[]) => {
    const cand = { ...c, frames };
    const res = await diff.runCase(cand, { perFrame: true });
    if (res.mismatch) { best = cand; bestR = res as CaseResult & { mismatch: Mismatch }; return true; }
    return false;
  };
  if (await tryCase([r.mismatch.frame])) return { c: best, r: bestR };
  // drop chunks of the prefix while it still fails
  for (let chunk = Math.ceil(best.frames.length / 2); chunk >= 1; chunk = Math.floor(chunk / 2)) {
    for (let at = 0; at + 1 < best.frames.length;) {
      const frames = [...best.frames.slice(0, at), ...best.frames.slice(at + chunk)];
      if (frames.length && frames.length < best.frames.length && (await tryCase(frames))) continue;
      at += chunk;
    }
    if (chunk === 1) break;
  }
  return { c: best, r: bestR };
}

export function saveFixture(c: FuzzCase, r: CaseResult & { mismatch: Mismatch }): string {
  mkdirSync(FIXTURE_DIR, { recursive: true });
  const name = c.origin ? `seed${c.origin.seed}-config${c.origin.config}.json` : `case-${Date.now()}.json`;
  const body: FuzzCase = { ...c, note: r.mismatch.problems.join('\n') };
  writeFileSync(join(FIXTURE_DIR, name), JSON.stringify(body, null, 1) + '\n');
  return name;
}

export function loadFixtures(): { name: string; c: FuzzCase }[] {
  let names: string[] = [];
  try {
    names = readdirSync(FIXTURE_DIR).filter((n) => n.endsWith('.json')).sort();
  } catch {
    return [];
  }
  return names.map((name) => ({ name, c: JSON.parse(readFileSync(join(FIXTURE_DIR, name), 'utf8')) as FuzzCase }));
}

export async function campaign(o: CampaignOptions, diff = new Differential()): Promise<CampaignStats> {
  const per = o.framesPerConfig ?? 200;
  const log = o.log ?? ((l: string) => console.log(l));
  const t0 = performance.now();
  let lastProgress = t0;
  const s: CampaignStats = { seed: o.seed, configs: 0, cases: 0, compared: 0, ambiguous: 0, mismatches: 0, ms: 0, fixtures: [], hits: new Map() };
  for (let n = 0; s.cases < o.cases; n++) {
    const c = genCase(o.seed, n, Math.min(per, o.cases - s.cases), o.nat);
    let r = await diff.runCase(c);
    if (r.mismatch && r.mismatch.frameIndex < 0) {
      // a difference in stats or cursors over the case: find its frame
      log(describeMismatch(c, r as CaseResult & { mismatch: Mismatch }));
      const again = await diff.runCase(c, { perFrame: true });
      if (again.mismatch) r = again;
    }
    s.configs++;
    s.cases += r.frames;
    s.compared += r.compared;
    s.ambiguous += r.ambiguous;
    for (const [k, v] of r.hits) s.hits.set(k, (s.hits.get(k) ?? 0) + v);
    if (r.mismatch) {
      s.mismatches++;
      const failed = r as CaseResult & { mismatch: Mismatch };
      log(describeMismatch(c, failed));
      if (o.save !== false) {
        const small = await shrink(diff, c, failed);
        const name = saveFixture(small.c, small.r);
        s.fixtures.push(name);
        log(`  saved test/fixtures/fuzz/${name} (${small.c.frames.length} frame${small.c.frames.length === 1 ? '' : 's'})`);
      }
      if (o.maxMismatches !== undefined && s.mismatches >= o.maxMismatches) break;
    }
    const now = performance.now();
    if (o.onProgress && now - lastProgress >= (o.progressEveryMs ?? 10_000)) {
      lastProgress = now;
      s.ms = now - t0;
      o.onProgress({ ...s });
    }
  }
  s.ms = performance.now() - t0;
  return s;
}
