/**
 * The reference model's own lvs_synrecv (README "Data plane": SYN_RECV connections of DR / Tun
 * flows in 4-way buckets): the bucket hash, the way a new SYN takes and the check word, written
 * from lvs_abi.h's and lvs_synrecv.h's descriptions, not shared with the control plane's reader.
 */
import { ABI } from '../../src/abi/generated.js';
import { jhash2 } from '../../src/hash/jhash.js';

/** One slot's content (absent from the model's map: all zero). */
export interface SynRecv {
  key: string; // lvs_flow_key hex (40 bytes)
  lastSeen: bigint;
  real: number;
  gen: number;
  svcId: number;
  check: number;
}

const rotl13 = (h: number) => ((h << 13) | (h >>> 19)) >>> 0;

export const WAYS = ABI.LVS_SYNRECV_WAYS;

/** The first slot of a flow key's (hex) bucket in a table of n slots (n / WAYS buckets), the
 *  director's own lvs_synrecv key `secret` (hex, 3 little-endian words k0 k1 k2: the program's
 *  cfg_key_synrecv0..2): jhash2 of (k0, k1, the flow key's 10 words) with initval k2, then
 *  (h * buckets) >> 32. Not lvs_cfg's hash_seed. */
export function synRecvBucket(keyHex: string, n: number, secret: string): number {
  const b = Buffer.from(keyHex, 'hex');
  const k = Buffer.from(secret, 'hex');
  if (k.length !== 12) throw new RangeError(`lvs_synrecv key: ${k.length} bytes, 12 expected`);
  const words = [k.readUInt32LE(0), k.readUInt32LE(4), ...Array.from({ length: 10 }, (_, i) => b.readUInt32LE(i * 4))];
  const h = jhash2(words, k.readUInt32LE(8)) >>> 0;
  return Number((BigInt(h) * BigInt(Math.floor(n / WAYS))) >> 32n) * WAYS;
}

/** The way (0..WAYS-1) a new SYN of `key` takes in a bucket whose ways are `ways` (undefined:
 *  empty, all zero), `fresh` telling which are younger than the SYN_RECV timeout and still on
 *  their realserver slot (check word not read: an empty way is fresh only if slot 0 of gen 0 is
 *  and the timeout is 0): the flow's own way, else the first not fresh, else the one seen longest
 *  ago (the lowest on a tie). */
export function synRecvVictim(key: string, ways: readonly (SynRecv | undefined)[], fresh: (e: SynRecv | undefined) => boolean): number {
  const own = ways.findIndex((e) => e?.key === key);
  if (own >= 0) return own;
  const dead = ways.findIndex((e) => !fresh(e));
  if (dead >= 0) return dead;
  const seen = (e: SynRecv | undefined) => e?.lastSeen ?? 0n;
  let old = 0;
  for (let i = 1; i < ways.length; i++) if (seen(ways[i]) < seen(ways[old])) old = i;
  return old;
}

/** The slot's 64 bytes. */
export function encodeSynRecv(e: SynRecv): Buffer {
  const b = Buffer.alloc(64);
  Buffer.from(e.key, 'hex').copy(b, 0);
  b.writeBigUInt64LE(BigInt.asUintN(64, e.lastSeen), 40);
  b.writeUInt32LE(e.real >>> 0, 48);
  b.writeUInt32LE(e.gen >>> 0, 52);
  b.writeUInt32LE(e.svcId >>> 0, 56);
  b.writeUInt32LE(e.check >>> 0, 60);
  return b;
}

export function decodeSynRecvSlot(b: Buffer): SynRecv {
  return {
    key: b.subarray(0, 40).toString('hex'), lastSeen: b.readBigUInt64LE(40), real: b.readUInt32LE(48),
    gen: b.readUInt32LE(52), svcId: b.readUInt32LE(56), check: b.readUInt32LE(60),
  };
}

/** The check word over the slot's first 15 words (seed, then h = rotl(h ^ w, 13) * 0x9e3779b1). */
export function synRecvCheck(e: Omit<SynRecv, 'check'>): number {
  const b = encodeSynRecv({ ...e, check: 0 });
  let h = ABI.LVS_SYNRECV_CHECK_SEED >>> 0;
  for (let i = 0; i < 15; i++) h = Math.imul(rotl13((h ^ b.readUInt32LE(i * 4)) >>> 0), 0x9e3779b1) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/** A slot as the data plane writes it (its check word computed). */
export function synRecvOf(e: Omit<SynRecv, 'check'>): SynRecv {
  return { ...e, check: synRecvCheck(e) };
}

export const synRecvValid = (e: SynRecv): boolean => e.check === synRecvCheck(e);
