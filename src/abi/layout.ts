/**
 * Byte layouts of the structs shared with the kernel (bpf/lvs_abi.h). Each struct is described
 * once here as fields with offsets; encoders and decoders are derived from the description, and
 * the description is checked against the compiled object's BTF (test/unit/abi-btf.test.ts, and
 * src/abi/skeleton.ts at every load), so a layout drift is an error, never silent corruption.
 */

export type FieldType = 'u8' | 'u16' | 'u32' | 'u64' | 'be16' | 'bytes';

export interface FieldDef {
  name: string;
  offset: number;
  size: number;
  type: FieldType;
}

export interface StructDef {
  /** C struct name without the `struct` keyword. */
  name: string;
  size: number;
  fields: readonly FieldDef[];
}

function struct(name: string, size: number, spec: [string, FieldType, number?][]): StructDef {
  const widths: Record<FieldType, number> = { u8: 1, u16: 2, be16: 2, u32: 4, u64: 8, bytes: 0 };
  const fields: FieldDef[] = [];
  let off = 0;
  for (const [fname, type, len] of spec) {
    const fsize = type === 'bytes' ? (len ?? 0) : widths[type];
    const align = type === 'bytes' ? 1 : fsize;
    off = Math.ceil(off / align) * align;
    fields.push({ name: fname, offset: off, size: fsize, type });
    off += fsize;
  }
  return { name, size, fields };
}

// Field names follow the C names; `pad`/`reserved` fields are part of the layout but not of the
// codec's values (they are always written as zero).
export const SVC_KEY = struct('lvs_svc_key', 20, [
  ['addr', 'bytes', 16], ['port', 'be16'], ['proto', 'u8'], ['family', 'u8'],
]);
export const SVC = struct('lvs_svc', 40, [
  ['id', 'u32'], ['table_slot', 'u32'], ['table_size', 'u32'], ['persist_timeout', 'u32'],
  ['persist_mask', 'bytes', 16], ['flags', 'u16'], ['hash_fields', 'u8'], ['pad', 'u8'],
  ['fwmark', 'u32'],
]);
export const REAL = struct('lvs_real', 64, [
  ['addr', 'bytes', 16], ['mac', 'bytes', 6], ['smac', 'bytes', 6], ['family', 'u8'],
  ['method', 'u8'], ['flags', 'u16'], ['gen', 'u32'], ['ifindex', 'u32'], ['svc_id', 'u32'],
  ['port', 'be16'], ['vport', 'be16'], ['vip', 'bytes', 16],
]);
export const FLOW_KEY = struct('lvs_flow_key', 40, [
  ['saddr', 'bytes', 16], ['daddr', 'bytes', 16], ['sport', 'be16'], ['dport', 'be16'],
  ['proto', 'u8'], ['family', 'u8'], ['dir', 'u16'],
]);
export const CONN = struct('lvs_conn', 24, [
  ['last_seen_ns', 'u64'], ['real', 'u32'], ['gen', 'u32'], ['state', 'u8'], ['pad', 'bytes', 7],
]);
export const PERSIST_KEY = struct('lvs_persist_key', 24, [
  ['caddr', 'bytes', 16], ['svc_id', 'u32'], ['family', 'u8'], ['pad', 'bytes', 3],
]);
export const PIN = struct('lvs_pin', 16, [['last_seen_ns', 'u64'], ['real', 'u32'], ['gen', 'u32']]);
export const FRAG_KEY = struct('lvs_frag_key', 40, [
  ['saddr', 'bytes', 16], ['daddr', 'bytes', 16], ['id', 'u32'], ['proto', 'u8'],
  ['family', 'u8'], ['pad', 'u16'],
]);
export const CFG = struct('lvs_cfg', 56, [
  ['tun_src4', 'bytes', 4], ['tun_src6', 'bytes', 16], ['hash_seed', 'u32'],
  ['timeout_s', 'bytes', 24], ['tun_mtu', 'u16'], ['tun_ttl', 'u8'], ['flags', 'u8'],
  ['sync_refresh_s', 'u32'],
]);
export const STATS = struct('lvs_stats', 40, [
  ['packets', 'u64'], ['bytes', 'u64'], ['conns', 'u64'], ['out_packets', 'u64'], ['out_bytes', 'u64'],
]);

export const L2_KEY = struct('lvs_l2_key', 12, [['ifindex', 'u32'], ['mac', 'bytes', 6], ['pad', 'u16']]);
export const L2_ADDR = struct('lvs_l2_addr', 8, [['egress', 'bytes', 6], ['kind', 'u8'], ['pad', 'u8']]);
/** `macs`: LVS_L2_IF_MACS struct lvs_l2_mac of 8 bytes each (the MAC's 6 bytes, 2 of padding). */
export const L2_IF = struct('lvs_l2_if', 40, [['macs', 'bytes', 32], ['egress', 'bytes', 6], ['count', 'u8'], ['more', 'u8']]);

/** Firewall-mark classification (lvs_fwmarks, an LPM trie): key and its port ranges. */
export const FWMARK_KEY = struct('lvs_fwmark_key', 24, [['prefixlen', 'u32'], ['family', 'u8'], ['proto', 'u8'], ['addr', 'bytes', 16], ['pad', 'bytes', 2]]);
/** `lo` / `hi`: LVS_FWMARK_RANGES u16 each (host order), `mark`: as many u32. */
export const FWMARK_VAL = struct('lvs_fwmark_val', 68, [['lo', 'bytes', 16], ['hi', 'bytes', 16], ['mark', 'bytes', 32], ['count', 'u32']]);

/** lvs_dests / lvs_real_conns (least-connection family, thresholds). active / inactive are s32 in C:
 *  read them with `| 0` (the data plane's atomic adds may leave them below zero for a moment). */
export const DEST = struct('lvs_dest', 16, [['weight', 'u32'], ['u_thresh', 'u32'], ['l_thresh', 'u32'], ['pad', 'u32']]);
export const REAL_CONNS = struct('lvs_real_conns', 16, [['active', 'u32'], ['inactive', 'u32'], ['overloaded', 'u32'], ['pad', 'u32']]);
/** A record of lvs_sync_events (connection sync, bpf/lvs_sync.h); decoded by src/sync/events.ts. */
export const SYNC_EVENT = struct('lvs_sync_event', 84, [
  ['caddr', 'bytes', 16], ['vaddr', 'bytes', 16], ['daddr', 'bytes', 16], ['pcaddr', 'bytes', 16],
  ['cport', 'be16'], ['vport', 'be16'], ['rport', 'be16'], ['proto', 'u8'], ['family', 'u8'],
  ['dfamily', 'u8'], ['method', 'u8'], ['state', 'u8'], ['flags', 'u8'], ['fwmark', 'u32'],
  ['persist_timeout', 'u32'],
]);
/** A slot of lvs_synrecv (SYN_RECV connections of DR / Tun flows, bpf/lvs_synrecv.h; src/director/synrecv.ts). */
export const SYN_RECV = struct('lvs_synrecv', 64, [
  ['key', 'bytes', 40], ['last_seen_ns', 'u64'], ['real', 'u32'], ['gen', 'u32'], ['svc_id', 'u32'], ['check', 'u32'],
]);
export const STRUCTS: readonly StructDef[] = [
  SVC_KEY, SVC, REAL, FLOW_KEY, CONN, PERSIST_KEY, PIN, FRAG_KEY, CFG, STATS,
  L2_KEY, L2_ADDR, L2_IF, FWMARK_KEY, FWMARK_VAL, DEST, REAL_CONNS, SYNC_EVENT, SYN_RECV,
];

export type StructValue = Record<string, number | bigint | Uint8Array>;

/** Encodes values into a zeroed buffer of the struct's size; missing fields stay zero. */
export function encode(def: StructDef, values: StructValue): Buffer {
  const buf = Buffer.alloc(def.size);
  for (const f of def.fields) {
    const v = values[f.name];
    if (v === undefined) continue;
    switch (f.type) {
      case 'u8': buf.writeUInt8(Number(v), f.offset); break;
      case 'u16': buf.writeUInt16LE(Number(v), f.offset); break;
      case 'be16': buf.writeUInt16BE(Number(v), f.offset); break;
      case 'u32': buf.writeUInt32LE(Number(v) >>> 0, f.offset); break;
      case 'u64': buf.writeBigUInt64LE(BigInt(v as number | bigint), f.offset); break;
      case 'bytes': {
        const bytes = v as Uint8Array;
        if (bytes.length > f.size) throw new RangeError(`${def.name}.${f.name}: ${bytes.length} bytes, field holds ${f.size}`);
        buf.set(bytes, f.offset);
        break;
      }
    }
  }
  return buf;
}

export function decode(def: StructDef, buf: Uint8Array, at = 0): StructValue {
  const b = Buffer.from(buf.buffer, buf.byteOffset + at, def.size);
  const out: StructValue = {};
  for (const f of def.fields) {
    switch (f.type) {
      case 'u8': out[f.name] = b.readUInt8(f.offset); break;
      case 'u16': out[f.name] = b.readUInt16LE(f.offset); break;
      case 'be16': out[f.name] = b.readUInt16BE(f.offset); break;
      case 'u32': out[f.name] = b.readUInt32LE(f.offset); break;
      case 'u64': out[f.name] = b.readBigUInt64LE(f.offset); break;
      case 'bytes': out[f.name] = Uint8Array.from(b.subarray(f.offset, f.offset + f.size)); break;
    }
  }
  return out;
}

export interface BtfMember { name: string; offset: number; size: number }
export interface BtfStructInfo { size: number; members: BtfMember[] }

/** Differences between struct descriptions (default: the director's) and an object's BTF, one
 *  line each ([] = agree). The decapsulator's layouts are checked by the same function. */
export function layoutDrift(lookup: (name: string) => BtfStructInfo | undefined, defs: readonly StructDef[] = STRUCTS): string[] {
  const problems: string[] = [];
  for (const def of defs) {
    const btf = lookup(def.name);
    if (!btf) { problems.push(`struct ${def.name}: not in the object's BTF`); continue; }
    if (btf.size !== def.size) problems.push(`struct ${def.name}: size ${btf.size} in BTF, ${def.size} here`);
    const names = new Set(def.fields.map((f) => f.name));
    for (const m of btf.members) {
      if (!names.has(m.name)) problems.push(`struct ${def.name}: member ${m.name} not described here`);
    }
    for (const f of def.fields) {
      const m = btf.members.find((x) => x.name === f.name);
      if (!m) { problems.push(`struct ${def.name}: field ${f.name} not in BTF`); continue; }
      if (m.offset !== f.offset || m.size !== f.size) {
        problems.push(`struct ${def.name}.${f.name}: offset ${m.offset} size ${m.size} in BTF, offset ${f.offset} size ${f.size} here`);
      }
    }
  }
  return problems;
}
