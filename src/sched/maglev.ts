/**
 * Maglev consistent hashing (Eisenbud et al., NSDI 2016) with proportional weights.
 *
 * Each realserver gets a permutation of the M table slots from two hashes of its key:
 * offset = h1 % M, skip = h2 % (M - 1) + 1 (M prime, so every skip walks all slots). Realservers
 * then take turns claiming the next free slot of their permutation until the table is full.
 *
 * Weights: in every round each realserver earns credit equal to its weight; whenever its credit
 * reaches the largest weight it claims one slot and pays that much. So the heaviest realserver
 * claims once per round and one of weight w claims w/max times per round, interleaved with the
 * others: shares are proportional to weight within a slot or so. Integer arithmetic only, so
 * every director computes the same table. Weight 0 (quiesced) realservers claim nothing.
 *
 * Turn order is by key (byte order), never input order: the same rules build the same table on
 * every director whatever order the realservers were added in.
 */
import { jhash } from '../hash/jhash.js';

/** Slot value for "no realserver" (every weight is 0): LVS_REAL_NONE in bpf/lvs_abi.h. */
export const REAL_NONE = 0xffffffff;

/** Fixed seeds for the two permutation hashes ("Magl", "ev#2"); changing them reshuffles tables. */
export const MAGLEV_SEED_OFFSET = 0x4d61676c;
export const MAGLEV_SEED_SKIP = 0x65762332;

export interface WeightedKey {
  key: string;
  weight: number;
}

const utf8 = new TextEncoder();

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

export interface SortedRealservers {
  /** Caller's indexes of the realservers with weight > 0, in key byte order. */
  index: Uint32Array;
  keyBytes: Uint8Array[];
  weight: Uint32Array;
}

/** Realservers that can take new flows, sorted by key; refuses duplicate keys and bad weights. */
export function sortByKey(realservers: readonly WeightedKey[]): SortedRealservers {
  const entries = realservers.map((r, i) => {
    if (!Number.isInteger(r.weight) || r.weight < 0 || r.weight > 0xffffffff) {
      throw new RangeError(`realserver ${r.key}: weight ${r.weight} is not a non-negative integer`);
    }
    return { i, bytes: utf8.encode(r.key), weight: r.weight };
  });
  entries.sort((a, b) => compareBytes(a.bytes, b.bytes));
  for (let i = 1; i < entries.length; i++) {
    if (compareBytes(entries[i - 1]!.bytes, entries[i]!.bytes) === 0) {
      throw new RangeError(`duplicate realserver key ${realservers[entries[i]!.i]!.key}`);
    }
  }
  const usable = entries.filter((e) => e.weight > 0);
  return {
    index: Uint32Array.from(usable, (e) => e.i),
    keyBytes: usable.map((e) => e.bytes),
    weight: Uint32Array.from(usable, (e) => e.weight),
  };
}

function isPrime(n: number): boolean {
  if (n < 2 || !Number.isInteger(n)) return false;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
  return true;
}

/** Permutation parameters of one realserver for a table of `size` slots. */
export function maglevPermutation(key: string | Uint8Array, size: number): { offset: number; skip: number } {
  const bytes = typeof key === 'string' ? utf8.encode(key) : key;
  return {
    offset: jhash(bytes, MAGLEV_SEED_OFFSET) % size,
    skip: (jhash(bytes, MAGLEV_SEED_SKIP) % (size - 1)) + 1,
  };
}

export interface MaglevOptions {
  /**
   * How the claim order is produced; both give the same table. 'rounds' loops over realservers
   * round by round (fast when weights are similar), 'heap' jumps to the next claim (fast when a
   * few realservers are much heavier than the rest). Default: chosen from the weights.
   */
  strategy?: 'rounds' | 'heap';
}

/**
 * Build a Maglev lookup table of `size` (prime) slots; each slot holds an index into
 * `realservers` (the caller's order), or REAL_NONE when no realserver has weight > 0.
 */
export function maglev(realservers: readonly WeightedKey[], size: number, opts: MaglevOptions = {}): Uint32Array {
  if (!isPrime(size)) throw new RangeError(`Maglev table size ${size} must be a prime`);
  const table = new Uint32Array(size).fill(REAL_NONE);
  const sorted = sortByKey(realservers);
  const n = sorted.index.length;
  if (n === 0) return table;

  const perm: Permutations = { pos: new Uint32Array(n), skip: new Uint32Array(n), index: sorted.index };
  for (let i = 0; i < n; i++) {
    const p = maglevPermutation(sorted.keyBytes[i]!, size);
    perm.pos[i] = p.offset;
    perm.skip[i] = p.skip;
  }
  let maxWeight = 0;
  let sumWeight = 0;
  for (const w of sorted.weight) {
    if (w > maxWeight) maxWeight = w;
    sumWeight += w;
  }
  // Share of realservers claiming in an average round: below 1/4 most round iterations are idle.
  const strategy = opts.strategy ?? (sumWeight >= (maxWeight * n) / 4 ? 'rounds' : 'heap');
  if (strategy === 'rounds') fillByRounds(table, perm, sorted.weight, maxWeight);
  else fillByHeap(table, perm, sorted.weight, maxWeight);
  return table;
}

interface Permutations {
  /** Next slot of each realserver's permutation to try. */
  pos: Uint32Array;
  /** Each realserver's stride through the table. */
  skip: Uint32Array;
  /** Caller's index of each realserver (what the table stores). */
  index: Uint32Array;
}

/** Realserver i claims the next free slot of its permutation. */
function claim(table: Uint32Array, perm: Permutations, i: number): void {
  const size = table.length;
  const step = perm.skip[i]!;
  let slot = perm.pos[i]!;
  while (table[slot] !== REAL_NONE) {
    slot += step;
    if (slot >= size) slot -= size;
  }
  table[slot] = perm.index[i]!;
  slot += step;
  perm.pos[i] = slot >= size ? slot - size : slot;
}

/**
 * Round by round: every realserver earns its weight as credit; with credit >= maxWeight it
 * claims one slot and pays maxWeight. Credit stays below 2 * maxWeight: exact in a double.
 */
function fillByRounds(table: Uint32Array, perm: Permutations, weight: Uint32Array, maxWeight: number): void {
  const n = weight.length;
  const credit = new Float64Array(n);
  let filled = 0;
  for (;;) {
    for (let i = 0; i < n; i++) {
      const c = credit[i]! + weight[i]!;
      if (c < maxWeight) {
        credit[i] = c;
        continue;
      }
      credit[i] = c - maxWeight;
      claim(table, perm, i);
      if (++filled === table.length) return;
    }
  }
}

/**
 * The same order without idle iterations: realserver i makes its k-th claim in round
 * ceil(k * maxWeight / weight[i]), and within a round realservers go in key order; a min-heap on
 * round * n + i pops claims in exactly that order.
 */
function fillByHeap(table: Uint32Array, perm: Permutations, weight: Uint32Array, maxWeight: number): void {
  const n = weight.length;
  const claims = new Float64Array(n);
  const heap = new ClaimHeap(n);
  for (let i = 0; i < n; i++) heap.push(claimRound(1, maxWeight, weight[i]!) * n + i);
  for (let filled = 0; filled < table.length; filled++) {
    const i = heap.peek() % n;
    claim(table, perm, i);
    const k = ++claims[i]!;
    heap.replaceTop(claimRound(k + 1, maxWeight, weight[i]!) * n + i);
  }
}

/** Round of a realserver's k-th claim: ceil(k * maxWeight / weight), exact in doubles (< 2^53). */
function claimRound(k: number, maxWeight: number, weight: number): number {
  const a = k * maxWeight;
  let q = Math.floor(a / weight);
  if (q * weight > a) q--;
  else if ((q + 1) * weight <= a) q++;
  return q * weight === a ? q : q + 1;
}

/** Binary min-heap of numbers in a typed array (keys round * n + i are unique). */
class ClaimHeap {
  private readonly keys: Float64Array;
  private length = 0;

  constructor(capacity: number) {
    this.keys = new Float64Array(capacity);
  }

  peek(): number {
    return this.keys[0]!;
  }

  push(key: number): void {
    const h = this.keys;
    let i = this.length++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (h[parent]! <= key) break;
      h[i] = h[parent]!;
      i = parent;
    }
    h[i] = key;
  }

  /** Replace the minimum with `key` and sift it down. */
  replaceTop(key: number): void {
    const h = this.keys;
    const len = this.length;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= len) break;
      if (child + 1 < len && h[child + 1]! < h[child]!) child++;
      if (h[child]! >= key) break;
      h[i] = h[child]!;
      i = child;
    }
    h[i] = key;
  }
}
