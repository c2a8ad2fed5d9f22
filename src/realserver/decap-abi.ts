/**
 * Byte layouts of the structs in bpf/lvs_decap.h (the realserver's decapsulation program), in
 * the form of src/abi/layout.ts, and their check against the compiled object's BTF. Counter
 * names and constants are generated (src/abi/decap-generated.ts); these layouts are described
 * here and checked, in tests and every time the program is loaded.
 */
import type { BtfStructInfo, StructDef } from '../abi/layout.js';
import { encode, decode } from '../abi/layout.js';
import { DECAP_ABI, DECAP_COUNTERS } from '../abi/decap-generated.js';
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

export const DECAP_PROGRAM = 'lvs_decap';
export const DECAP_MAPS = { vips: 'lvs_decap_vips', counters: 'lvs_decap_counters' } as const;

/** Differences between these layouts / the generated counter list and an object's BTF. */
export function decapAbiDrift(
  struct: (name: string) => BtfStructInfo | undefined,
  enumValues: (name: string) => { name: string; value: number }[] | undefined,
): string[] {
  const problems: string[] = [];
  for (const def of DECAP_STRUCTS) {
    const btf = struct(def.name);
    if (!btf) {
      problems.push(`struct ${def.name}: not in the object's BTF`);
      continue;
    }
    if (btf.size !== def.size) problems.push(`struct ${def.name}: size ${btf.size} in BTF, ${def.size} here`);
    for (const m of btf.members) {
      if (!def.fields.some((f) => f.name === m.name)) problems.push(`struct ${def.name}: member ${m.name} not described here`);
    }
    for (const f of def.fields) {
      const m = btf.members.find((x) => x.name === f.name);
      if (!m) problems.push(`struct ${def.name}: field ${f.name} not in BTF`);
      else if (m.offset !== f.offset || m.size !== f.size) {
        problems.push(`struct ${def.name}.${f.name}: offset ${m.offset} size ${m.size} in BTF, offset ${f.offset} size ${f.size} here`);
      }
    }
  }
  const values = enumValues('lvs_decap_counter');
  if (!values) problems.push('enum lvs_decap_counter: not in the object\'s BTF');
  else {
    for (const c of DECAP_COUNTERS) {
      const v = values.find((x) => x.name === `LVS_DC_${c.name}`);
      if (v?.value !== c.index) problems.push(`decap counter ${c.name}: index ${v?.value ?? 'missing'} in BTF, ${c.index} here`);
    }
    const max = values.find((x) => x.name === 'LVS_DC_MAX');
    if (max?.value !== DECAP_COUNTERS.length) problems.push(`LVS_DC_MAX: ${max?.value ?? 'missing'} in BTF, ${DECAP_COUNTERS.length} here`);
  }
  return problems;
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
