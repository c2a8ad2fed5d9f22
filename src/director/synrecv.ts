/**
 * lvs_synrecv as the control plane reads it (bpf/lvs_synrecv.h): SYN_RECV connections of DR / Tun
 * flows, in buckets of ABI.LVS_SYNRECV_WAYS slots (ways) by a keyed hash of the flow, outside the
 * connection table (lvs_conns) until the flow's next packet. Which bucket or way a connection sits
 * in does not matter here: every slot is read, so the control plane never computes a bucket and
 * needs no bucket key (the director's own, in its program's .rodata: src/dataplane/loader.ts). A
 * slot holds a connection while its check word matches its other fields (a slot torn by two CPUs
 * writing at once, or cleared to zero, does not); it is live while younger than the SYN_RECV
 * timeout. The reader lists live slots as SYN_RECV
 * connections (`-Lc`) and counts them as InActConn in the recount.
 */
import { ABI } from '../abi/generated.js';
import { decode, FLOW_KEY, SYN_RECV, type StructDef } from '../abi/layout.js';
import type { BpfMap } from '../native/index.js';

export interface SynRecvSlot {
  /** The flow's lvs_flow_key bytes (client side). */
  key: Buffer;
  lastSeenNs: bigint;
  real: number;
  gen: number;
  svcId: number;
}

const offsetOf = (def: StructDef, name: string): number => def.fields.find((f) => f.name === name)!.offset;
/** Where the check word sits (the last word: it covers every word before it). */
const CHECK_OFF = offsetOf(SYN_RECV, 'check');
/** The key's family byte: 0 in a cleared slot. */
const FAMILY_OFF = offsetOf(SYN_RECV, 'key') + offsetOf(FLOW_KEY, 'family');

/** The check word of a slot's 64 bytes (bpf/lvs_abi.h, struct lvs_synrecv). */
export function synRecvCheck(slot: Buffer): number {
  let h = ABI.LVS_SYNRECV_CHECK_SEED >>> 0;
  for (let i = 0; i < CHECK_OFF / 4; i++) {
    h = (h ^ slot.readUInt32LE(i * 4)) >>> 0;
    h = Math.imul(((h << 13) | (h >>> 19)) >>> 0, 0x9e3779b1) >>> 0;
  }
  return (h ^ (h >>> 16)) >>> 0;
}

/** A slot that holds a connection (its check word holds), else undefined. */
export function decodeSynRecv(slot: Buffer): SynRecvSlot | undefined {
  if (slot.length !== SYN_RECV.size || slot.readUInt32LE(CHECK_OFF) !== synRecvCheck(slot)) return undefined;
  const v = decode(SYN_RECV, slot);
  return { key: Buffer.from(v.key as Uint8Array), lastSeenNs: v.last_seen_ns as bigint, real: v.real as number, gen: v.gen as number, svcId: v.svc_id as number };
}

/** Every slot of the map that holds a connection (live or not: the caller applies the timeout). */
export function readSynRecv(map: BpfMap | undefined): SynRecvSlot[] {
  if (!map) return []; // a director of an older ABI has no lvs_synrecv
  const out: SynRecvSlot[] = [];
  for (const v of map.entries().values) {
    if (v[FAMILY_OFF] === 0) continue; // an empty (cleared) slot, skipped cheaply
    const s = decodeSynRecv(v);
    if (s) out.push(s);
  }
  return out;
}
