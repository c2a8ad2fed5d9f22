/**
 * rr / wrr: the data plane walks a precomputed sequence with a per-CPU cursor, so the scheduler
 * is just the sequence. It is nginx's smooth weighted round robin over one period: every step
 * each realserver gains its weight, the one with the most credit is picked and pays the total.
 * That interleaves realservers (weights 5:1:1 give a a b a c a a, not a a a a a b c) and gives
 * each exactly its weight's share of the period.
 */
import { REAL_NONE, sortByKey, type WeightedKey } from './maglev.js';

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

/** Divide weights by their gcd: the shortest period with the same shares. */
export function reduceWeights(weights: readonly number[]): number[] {
  const g = weights.reduce((acc, w) => gcd(acc, w), 0);
  return g > 1 ? weights.map((w) => w / g) : [...weights];
}

/**
 * Scale weights down so that they sum to at most `maxTotal`, proportionally (largest remainder),
 * keeping every realserver at least 1 so none is dropped from the rotation.
 */
export function scaleWeights(weights: readonly number[], maxTotal: number): number[] {
  const total = weights.reduce((a, b) => a + b, 0);
  if (total <= maxTotal) return [...weights];
  if (weights.length > maxTotal) {
    throw new RangeError(`${weights.length} realservers do not fit a rotation of at most ${maxTotal} slots`);
  }
  const exact = weights.map((w) => (w * maxTotal) / total);
  const out = exact.map((x) => Math.max(1, Math.floor(x)));
  let left = maxTotal - out.reduce((a, b) => a + b, 0);
  // Hand out what is left by largest remainder (ties to the earlier realserver).
  const byRemainder = exact
    .map((x, i) => ({ i, r: x - Math.floor(x) }))
    .filter(({ i }) => out[i]! === Math.floor(exact[i]!))
    .sort((a, b) => b.r - a.r || a.i - b.i);
  for (const { i } of byRemainder) {
    if (left <= 0) break;
    out[i]!++;
    left--;
  }
  return out;
}

/**
 * The rotation for rr (weights ignored except 0) or wrr: indexes into `realservers` (caller's
 * order); [REAL_NONE] when no realserver has weight > 0. Length = sum of gcd-reduced weights,
 * scaled down proportionally when longer than `maxSize`.
 */
export function rotation(realservers: readonly WeightedKey[], maxSize: number, ignoreWeights: boolean): Uint32Array {
  const sorted = sortByKey(realservers);
  const n = sorted.index.length;
  if (n === 0) return Uint32Array.of(REAL_NONE);
  const raw = Array.from(sorted.weight, (w) => (ignoreWeights ? 1 : w));
  const weights = reduceWeights(scaleWeights(reduceWeights(raw), maxSize));
  const total = weights.reduce((a, b) => a + b, 0);
  const w = Float64Array.from(weights);
  const current = new Float64Array(n);
  const seq = new Uint32Array(total);
  for (let step = 0; step < total; step++) {
    let best = 0;
    for (let i = 0; i < n; i++) {
      current[i] = current[i]! + w[i]!;
      if (current[i]! > current[best]!) best = i;
    }
    current[best] = current[best]! - total;
    seq[step] = sorted.index[best]!;
  }
  return seq;
}
