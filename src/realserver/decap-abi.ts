/**
 * Byte layouts of the structs in bpf/lvs_decap.h (the realserver's decapsulation program), in
 * the form of src/abi/layout.ts. Counter names, constants, map and program names are generated
 * (src/abi/decap-generated.ts: DECAP_SKELETON); the object is checked against the skeleton and
 * these layouts by the same code as the director's (src/abi/skeleton.ts), in tests and every
 * time the program is loaded.
 */
import type { BtfStructInfo, StructDef } from '../abi/layout.js';
import { encode, decode, layoutDrift } from '../abi/layout.js';
import { enumDrift } from '../abi/skeleton.js';
import { DECAP_ABI, DECAP_MAP_NAMES, DECAP_SKELETON } from '../abi/decap-generated.js';
import { formatAddress, type ParsedAddress } from '../model/address.js';

export const DECAP_VIP_KEY: StructDef = {
  name: 'lvs_decap_vip_key',
  size: 20,
  fields: [
    { name: 'addr', offset: 0, size: 16, type: 'bytes' },
    { name: 'family', offset: 16, size: 1, type: 'u8' },
    { name: 'pad', offset: 17, size: 3, type: 'bytes' },
  ],
};

export const DECAP_VIP_STATS: StructDef = {
  name: 'lvs_decap_vip_stats',
  size: 16,
  fields: [
    { name: 'packets', offset: 0, size: 8, type: 'u64' },
    { name: 'bytes', offset: 8, size: 8, type: 'u64' },
  ],
};

export const DECAP_STRUCTS: readonly StructDef[] = [DECAP_VIP_KEY, DECAP_VIP_STATS];

export const DECAP_PROGRAM = DECAP_SKELETON.program;
export const DECAP_MAPS = { vips: 'lvs_decap_vips', counters: 'lvs_decap_counters' } as const satisfies Record<string, (typeof DECAP_MAP_NAMES)[number]>;

/** Differences between these layouts / the generated counter list and BTF (no object needed). */
export function decapAbiDrift(
  struct: (name: string) => BtfStructInfo | undefined,
  enumValues: (name: string) => { name: string; value: number }[] | undefined,
): string[] {
  return [...layoutDrift(struct, DECAP_STRUCTS), ...enumDrift(DECAP_SKELETON.enums, enumValues)];
}

/** The lvs_decap_vips key of a VIP. */
export function vipKey(vip: ParsedAddress): Buffer {
  const addr = Buffer.alloc(16);
  addr.set(vip.bytes);
  return encode(DECAP_VIP_KEY, {
    addr,
    family: vip.family === 4 ? DECAP_ABI.LVS_DECAP_FAMILY_IPV4 : DECAP_ABI.LVS_DECAP_FAMILY_IPV6,
  });
}

/** The VIP a lvs_decap_vips key holds, as text. */
export function vipFromKey(key: Uint8Array): string {
  const k = decode(DECAP_VIP_KEY, key);
  const bytes = k.addr as Uint8Array;
  return k.family === DECAP_ABI.LVS_DECAP_FAMILY_IPV4
    ? formatAddress({ family: 4, bytes: bytes.subarray(0, 4) })
    : formatAddress({ family: 6, bytes });
}

export function decodeVipStats(value: Uint8Array): { packets: bigint; bytes: bigint } {
  const v = decode(DECAP_VIP_STATS, value);
  return { packets: v.packets as bigint, bytes: v.bytes as bigint };
}
