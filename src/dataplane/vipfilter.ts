/**
 * The VIP filter (bpf/lvs_abi.h, map lvs_vip_filter): two bits per address slot that let the data
 * plane pass traffic to non-VIP addresses without a hash lookup, and look up an address with only
 * port services (or only all-ports services) once instead of twice. TypeScript twin of
 * lvs_vip_bits() in bpf/lvs_sched.h; the packet tests run with it on.
 *
 * Order of writes for a change (the filter may say "maybe" wrongly, never "no" wrongly):
 * union of old and new words before the service entries change, the new words after; set
 * LVS_CFG_F_VIP_FILTER in lvs_cfg.flags only once the filter covers every service present.
 */
import { ABI } from '../abi/generated.js';

/** Slot of an address as the maps hold it: 16 bytes, IPv4 in the first 4 (shorter input is
 *  zero-padded, so 4-byte IPv4 addresses work too). */
export function vipSlot(addr: Uint8Array): number {
  if (addr.length > 16) throw new RangeError(`address of ${addr.length} bytes`);
  const b = Buffer.alloc(16);
  b.set(addr);
  const fold = (b.readUInt32LE(0) ^ b.readUInt32LE(4) ^ b.readUInt32LE(8) ^ b.readUInt32LE(12)) >>> 0;
  return Math.imul(fold, ABI.LVS_VIP_FILTER_MULT) >>> (32 - ABI.LVS_VIP_FILTER_SLOT_BITS);
}

/** The filter's words for a set of services (address bytes and port): word index -> value. */
export function vipFilterWords(services: Iterable<{ addr: Uint8Array; port: number }>): Map<number, bigint> {
  const words = new Map<number, bigint>();
  for (const s of services) {
    const slot = vipSlot(s.addr);
    const shift = (slot % 32) * 2 + (s.port === 0 ? ABI.LVS_VF_ALLPORTS_SHIFT : ABI.LVS_VF_PORT_SHIFT);
    const w = Math.floor(slot / 32);
    words.set(w, (words.get(w) ?? 0n) | (1n << BigInt(shift)));
  }
  return words;
}

/** 8-byte little-endian map value of a word. */
export function vipWordValue(v: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(v);
  return b;
}
