/**
 * The least-connection family (lc wlc sed nq twos fo ovf): the candidate tables the control plane
 * writes (bpf/lvs_lc.h draws from them per new flow), the draw the data plane makes, and IPVS's
 * exact choice over every realserver (what the data plane approximates; tests compare the two).
 *
 * Candidates: lc one slot per realserver (IPVS's lc ignores weights except 0); wlc, sed, nq, twos
 * one slot per weight unit (weights divided by their gcd, scaled down to the table size), so a
 * uniformly drawn slot is a weighted random realserver; fo, ovf every realserver by weight, highest
 * first, list order on ties (IPVS keeps the first of equal weights). Weight 0 never appears.
 * Draw tables end with up to LVS_LC_WALK realservers by weight (compared when every draw is
 * overloaded); the service's table size covers only the drawn part (drawnSize).
 */
import type { LcScheduler } from '../model/types.js';
import { ABI } from '../abi/generated.js';
import { REAL_NONE, sortByKey, type WeightedKey } from './maglev.js';
import { reduceWeights, scaleWeights } from './rotate.js';

export const LC_KIND: Readonly<Record<LcScheduler, number>> = {
  lc: ABI.LVS_LC_LC, wlc: ABI.LVS_LC_WLC, sed: ABI.LVS_LC_SED, nq: ABI.LVS_LC_NQ,
  twos: ABI.LVS_LC_TWOS, fo: ABI.LVS_LC_FO, ovf: ABI.LVS_LC_OVF,
};

/** fo / ovf walk the table in order; the others draw from it. */
export function lcWalks(kind: number): boolean {
  return kind === ABI.LVS_LC_FO || kind === ABI.LVS_LC_OVF;
}

/** The candidate table: indexes into `realservers` (caller's order); [REAL_NONE] when none has weight > 0. */
export function candidates(scheduler: LcScheduler, realservers: readonly WeightedKey[], maxSize: number): Uint32Array {
  if (scheduler === 'fo' || scheduler === 'ovf') {
    const order = byWeight(realservers);
    if (!order.length) return Uint32Array.of(REAL_NONE);
    return Uint32Array.from(order.slice(0, maxSize));
  }
  const sorted = sortByKey(realservers);
  if (sorted.index.length === 0) return Uint32Array.of(REAL_NONE);
  const raw = Array.from(sorted.weight, (w) => (scheduler === 'lc' ? 1 : w));
  const counts = reduceWeights(scaleWeights(reduceWeights(raw), maxSize));
  const out: number[] = [];
  counts.forEach((c, k) => { for (let j = 0; j < c; j++) out.push(sorted.index[k]!); });
  // After the drawn part: the realservers compared when every draw is overloaded, heaviest first.
  out.push(...byWeight(realservers).slice(0, LC_FALLBACK));
  return Uint32Array.from(out);
}

/** Entries after the drawn part of a draw table (LVS_LC_WALK): the service's table size counts only the drawn part. */
export const LC_FALLBACK = ABI.LVS_LC_WALK;

function byWeight(realservers: readonly WeightedKey[]): number[] {
  const order = realservers.map((r, i) => ({ i, w: r.weight })).filter((x) => x.w > 0);
  order.sort((a, b) => b.w - a.w || a.i - b.i);
  return order.map((x) => x.i);
}

/** How many leading entries of a candidate table are drawn from (the service's table size). */
export function drawnSize(scheduler: LcScheduler, table: Uint32Array, realservers: readonly WeightedKey[]): number {
  if (scheduler === 'fo' || scheduler === 'ovf' || table[0] === REAL_NONE) return table.length;
  return table.length - Math.min(LC_FALLBACK, realservers.filter((r) => r.weight > 0).length);
}

/** lvs_lc_draw(): the k-th draw from a flow's scheduling hash (murmur3's finalizer of h + k * golden). */
export function lcDraw(h: number, k: number): number {
  let x = (h + Math.imul(k, 0x9e3779b9)) >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b) >>> 0;
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35) >>> 0;
  x ^= x >>> 16;
  return x >>> 0;
}

/** A realserver as a scheduler of the family sees it. */
export interface LcDest {
  weight: number;
  active: number;
  inactive: number;
  overloaded: boolean;
}

/** IPVS's ip_vs_dest_conn_overhead. */
export function overhead(d: Pick<LcDest, 'active' | 'inactive'>): number {
  return d.active * 256 + d.inactive;
}

/** a is cheaper than b by the kind's cost (ties keep b, the first seen), as lvs_lc_better(). */
export function lcBetter(kind: number, a: LcDest, b: LcDest): boolean {
  switch (kind) {
    case ABI.LVS_LC_LC: return overhead(a) < overhead(b);
    case ABI.LVS_LC_NQ:
      if (b.active === 0) return false;
      if (a.active === 0) return true;
      return (a.active + 1) * b.weight < (b.active + 1) * a.weight;
    case ABI.LVS_LC_SED: return (a.active + 1) * b.weight < (b.active + 1) * a.weight;
    default: return overhead(a) * b.weight < overhead(b) * a.weight;
  }
}

/**
 * IPVS's own choice over every realserver in list order (ip_vs_lc / wlc / sed / nq / fo / ovf
 * _schedule): index into `dests`, or -1 for none. twos is random in IPVS; its expectation is
 * wlc's over two weighted draws, so here it is not defined (returns wlc's).
 */
export function exactPick(kind: number, dests: readonly LcDest[]): number {
  let best = -1;
  for (let i = 0; i < dests.length; i++) {
    const d = dests[i]!;
    if (d.weight <= 0 || d.overloaded) continue;
    if (kind === ABI.LVS_LC_OVF && d.active > d.weight) continue;
    if (kind === ABI.LVS_LC_FO || kind === ABI.LVS_LC_OVF) {
      if (best < 0 || d.weight > dests[best]!.weight) best = i;
      continue;
    }
    if (kind === ABI.LVS_LC_NQ && d.active === 0) return i;
    if (best < 0 || lcBetter(kind === ABI.LVS_LC_TWOS ? ABI.LVS_LC_WLC : kind, d, dests[best]!)) best = i;
  }
  return best;
}

/** IPVS's overload flag after a connection was bound (added) to a realserver with `total` now. */
export function overloadAfterBind(was: boolean, total: number, upper: number): boolean {
  return was || (upper > 0 && total >= upper);
}

/** IPVS's overload flag after a connection was unbound (ended), `total` left (ip_vs_unbind_dest). */
export function overloadAfterUnbind(was: boolean, total: number, upper: number, lower: number): boolean {
  if (!was) return false;
  if (lower > 0) return total >= lower;
  if (upper > 0) return total * 4 >= upper * 3;
  return false;
}
