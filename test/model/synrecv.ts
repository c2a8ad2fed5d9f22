/**
 * The reference model's own lvs_synrecv (README "Data plane": SYN_RECV connections of DR / Tun
 * flows, one slot per flow hash): the slot hash and the check word, written from lvs_abi.h's
 * description, not shared with the control plane's reader.
 */
import { ABI } from '../../src/abi/generated.js';

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

/** The slot of a flow key (hex) in a table of n slots: the flow cache's fold, then
 *  (h * 0x9e3779b1 mod 2^32) * n >> 32. */
export function synRecvSlot(keyHex: string, n: number): number {
  const b = Buffer.from(keyHex, 'hex');
  const w = (i: number) => b.readUInt32LE(i * 4);
  const s = (w(0) ^ w(1) ^ w(2) ^ w(3)) >>> 0;
  const d = (w(4) ^ w(5) ^ w(6) ^ w(7)) >>> 0;
  const h0 = (Math.imul(s, 0x9e3779b1) ^ d ^ Math.imul(w(8), 0x85ebca6b) ^ w(9)) >>> 0;
  const h = Math.imul(h0, 0x9e3779b1) >>> 0;
  return Number((BigInt(h) * BigInt(n)) >> 32n);
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
