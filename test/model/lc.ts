/**
 * The reference model's live connection counts and least-connection scheduling, written from the
 * README's "Least-connection family and thresholds" section (not from bpf/lvs_lc.h):
 *  - counts: a connection entered binds to its realserver (ActiveConn for ESTABLISHED, InActConn
 *    otherwise); a state change across ESTABLISHED moves it; an entry that expires or whose port
 *    is reused unbinds. Binding sets the overload flag at the upper threshold; unbinding clears it
 *    below the lower one (3/4 of the upper without one). Counts are signed; a negative one counts
 *    as 0 where it is read.
 *  - scheduling: the k-th draw of a flow is fmix32(h + k * 0x9e3779b9) with h the 5-tuple's
 *    scheduling hash; up to 4 draws; the first two usable realservers drawn (distinct except for
 *    twos) are compared by the kind's cost, the first wins a tie; when none was usable, the
 *    entries after the drawn part (from the service's table size on, up to 8, until an empty
 *    one) are all compared; fo / ovf look at the first 8 table entries in order and take the
 *    first usable.
 */
import { ABI } from '../../src/abi/generated.js';
import type { Counts, Dest, DynamicState, StaticConfig, Write } from './types.js';

const ZERO_COUNTS: Counts = { active: 0, inactive: 0, overloaded: 0 };
const ZERO_DEST: Dest = { weight: 0, uThresh: 0, lThresh: 0 };
const ESTABLISHED = 2;

export function fmix32(h: number): number {
  h >>>= 0;
  h = (h ^ (h >>> 16)) >>> 0;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h = (h ^ (h >>> 13)) >>> 0;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

export function draw(h: number, k: number): number {
  return fmix32((h + k * 0x9e3779b9) % 2 ** 32);
}

const pos = (n: number) => (n > 0 ? n : 0);
const s32 = (n: number) => n | 0;

/** The counts a packet sees and changes: the state's, with this packet's own writes over them. */
export class LiveCounts {
  private readonly mine = new Map<number, Counts>();

  constructor(private readonly cfg: StaticConfig, private readonly state: DynamicState, private readonly write: (w: Write) => void) {}

  get(i: number): Counts | undefined {
    if (i >= this.cfg.limits.reals) return undefined;
    return this.mine.get(i) ?? this.state.counts.get(i) ?? ZERO_COUNTS;
  }

  dest(i: number): Dest | undefined {
    if (i >= this.cfg.limits.reals) return undefined;
    return this.cfg.dests.get(i) ?? ZERO_DEST;
  }

  private set(i: number, c: Counts): void {
    this.mine.set(i, c);
    this.write({ map: 'counts', index: i, value: { ...c } });
  }

  bind(i: number, state: number): void {
    const c = this.get(i);
    if (!c) return;
    const n = { ...c };
    if (state === ESTABLISHED) n.active = s32(n.active + 1);
    else n.inactive = s32(n.inactive + 1);
    const d = this.dest(i)!;
    if (d.uThresh && pos(n.active) + pos(n.inactive) >= d.uThresh) n.overloaded = 1;
    this.set(i, n);
  }

  unbind(i: number, state: number): void {
    const c = this.get(i);
    if (!c) return;
    const n = { ...c };
    if (state === ESTABLISHED) n.active = s32(n.active - 1);
    else n.inactive = s32(n.inactive - 1);
    if (n.overloaded) {
      const d = this.dest(i)!;
      const total = pos(n.active) + pos(n.inactive);
      const clear = d.lThresh ? total < d.lThresh : !d.uThresh || total * 4 < d.uThresh * 3;
      if (clear) n.overloaded = 0;
    }
    this.set(i, n);
  }

  move(i: number, from: number, to: number): void {
    if ((from === ESTABLISHED) === (to === ESTABLISHED)) return;
    const c = this.get(i);
    if (!c) return;
    const up = to === ESTABLISHED ? 1 : -1;
    this.set(i, { ...c, active: s32(c.active + up), inactive: s32(c.inactive - up) });
  }

  overloaded(i: number): boolean {
    return (this.get(i)?.overloaded ?? 0) !== 0;
  }
}

/** Is candidate a cheaper than b for this kind (b kept on a tie)? */
function cheaper(kind: number, a: { act: number; inact: number; w: number }, b: { act: number; inact: number; w: number }): boolean {
  const oa = BigInt(a.act) * 256n + BigInt(a.inact), ob = BigInt(b.act) * 256n + BigInt(b.inact);
  const sed = () => BigInt.asUintN(64, BigInt(a.act + 1) * BigInt(b.w)) < BigInt.asUintN(64, BigInt(b.act + 1) * BigInt(a.w));
  if (kind === ABI.LVS_LC_LC) return oa < ob;
  if (kind === ABI.LVS_LC_SED) return sed();
  if (kind === ABI.LVS_LC_NQ) return b.act === 0 ? false : a.act === 0 ? true : sed();
  // u64 products, as the program computes them
  return BigInt.asUintN(64, oa * BigInt(b.w)) < BigInt.asUintN(64, ob * BigInt(a.w));
}

/** A new flow's realserver for a service of the family, or the drop reason. */
export function lcPick(kind: number, table: Uint32Array, size: number, h: number, counts: LiveCounts, note: (s: string) => void): number | 'DROP_NO_REAL' | 'DROP_OVERLOADED' {
  const walk = kind === ABI.LVS_LC_FO || kind === ABI.LVS_LC_OVF;
  let best = -1;
  let bv = { act: 0, inact: 0, w: 0 };
  let seen = 0;
  for (let k = 0; k < (walk ? ABI.LVS_LC_WALK : ABI.LVS_LC_DRAWS); k++) {
    let slot: number;
    if (walk) {
      if (k >= size) break;
      slot = k;
    } else {
      slot = draw(h, k) % size;
    }
    if (slot >= table.length || table[slot] === ABI.LVS_REAL_NONE) return 'DROP_NO_REAL';
    const ri = table[slot]!;
    note(`lc draw ${k}: slot ${slot} -> real ${ri}`);
    if (ri === best && kind !== ABI.LVS_LC_TWOS) continue;
    const c = counts.get(ri);
    const d = counts.dest(ri);
    if (!c || !d || c.overloaded) continue;
    const v = { act: pos(c.active), inact: pos(c.inactive), w: d.weight };
    if (walk) {
      if (kind === ABI.LVS_LC_OVF && v.act > d.weight) continue;
      return ri;
    }
    if (best < 0 || cheaper(kind, v, bv)) {
      best = ri;
      bv = v;
    }
    if (++seen === 2) break;
  }
  if (best < 0 && !walk) {
    // every draw overloaded: the list after the drawn part (entries size.., up to 8), all compared
    for (let k = 0; k < ABI.LVS_LC_WALK; k++) {
      const slot = (size + k) >>> 0;
      if (slot >= table.length || table[slot] === ABI.LVS_REAL_NONE) break;
      const ri = table[slot]!;
      note(`lc fallback ${k}: slot ${slot} -> real ${ri}`);
      const c = counts.get(ri);
      const d = counts.dest(ri);
      if (!c || !d || c.overloaded) continue;
      const v = { act: pos(c.active), inact: pos(c.inactive), w: d.weight };
      if (best < 0 || cheaper(kind, v, bv)) {
        best = ri;
        bv = v;
      }
    }
  }
  return best < 0 ? 'DROP_OVERLOADED' : best;
}
