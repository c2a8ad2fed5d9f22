/**
 * Field-by-field migration of map contents between two layouts of the same structs, by name, for
 * an upgrade in place (src/director/upgrade.ts): same-named fields are copied to their new
 * offsets (a wider field keeps its value: little-endian integers and byte arrays), new fields
 * start at zero, padding carries nothing, and a field that is gone or narrower cannot be carried
 * over (the upgrade refuses before anything is written). Layouts come from BTF: the running
 * map's from the kernel by its BTF id, the new object's from the object.
 */
import { BpfMap, BpfObject, possibleCpus, perCpuStride, MapType } from '../native/index.js';
import { BtfJson } from '../abi/btf.js';
import { COUNTERS, DIRECTOR_SKELETON } from '../abi/generated.js';
import { u32, writeEntries } from './writer.js';

export interface StructLayout { size: number; members: { name: string; offset: number; size: number }[] }
/** How the bytes of one layout become the other's: copies of same-named fields, the rest zero. */
export interface FieldMap { size: number; copies: { from: number; to: number; size: number }[] }

/** Padding carries nothing: written as zero by every version. */
const isPadding = (name: string): boolean => /^(pad|reserved)\d*$/.test(name);

export const scalarLayout = (size: number): StructLayout => ({ size, members: [{ name: 'value', offset: 0, size }] });

export function sameLayout(a: StructLayout, b: StructLayout): boolean {
  return a.size === b.size && a.members.length === b.members.length
    && a.members.every((m, i) => m.name === b.members[i]!.name && m.offset === b.members[i]!.offset && m.size === b.members[i]!.size);
}

/**
 * The field map from `from` to `to`, or the fields that cannot be carried over (`where` names
 * the struct in the messages): a field the new layout lacks, or one that shrinks. A field that
 * widens is copied into the low bytes (little-endian integers and byte arrays keep their value).
 */
export function fieldMap(from: StructLayout, to: StructLayout, where: string): { map?: FieldMap; problems: string[] } {
  const problems: string[] = [];
  const copies: FieldMap['copies'] = [];
  for (const m of from.members) {
    if (isPadding(m.name)) continue;
    const n = to.members.find((x) => x.name === m.name);
    if (!n) problems.push(`${where}: field ${m.name} (${m.size} bytes) is not in the new layout`);
    else if (n.size < m.size) problems.push(`${where}: field ${m.name} shrinks from ${m.size} to ${n.size} bytes`);
    else copies.push({ from: m.offset, to: n.offset, size: m.size });
  }
  return problems.length ? { problems } : { map: { size: to.size, copies }, problems };
}

export function convert(map: FieldMap, buf: Buffer): Buffer {
  const out = Buffer.alloc(map.size);
  for (const c of map.copies) buf.copy(out, c.to, c.from, c.from + c.size);
  return out;
}

/** A BTF struct from the native object (sizes resolved) as a layout. */
export function objLayout(obj: BpfObject, name: string): StructLayout | undefined {
  try {
    const s = obj.btfStruct(name);
    return { size: s.size, members: s.members.map((m) => ({ name: m.name, offset: m.offset, size: m.size })) };
  } catch {
    return undefined;
  }
}

export function btfLayout(btf: BtfJson, name: string): StructLayout | undefined {
  return btf.struct(name);
}

/** Key / value types carried as bytes. `none`: a ring buffer's (lvs_sync_events) has neither, so
 *  there is no layout to compare; its records are transient, never carried over. */
export const SCALARS: Record<string, number> = { u8: 1, u16: 2, u32: 4, u64: 8, none: 0 };

/** How one map's entries are carried over: key and value field maps (absent: bytes as they are),
 *  and for arrays an index mapping (counters follow their names). */
export interface MapConversion { key?: FieldMap; value?: FieldMap; index?: (i: number) => number | undefined }

/** counter name -> index in the running program's enum lvs_counter (undefined when unreadable). */
export function counterIndex(btf: BtfJson): (i: number) => number | undefined {
  const old = btf.enumValues('lvs_counter');
  if (!old) return (i) => (i < COUNTERS.length ? i : undefined);
  const byName = new Map(COUNTERS.map((c) => [`LVS_C_${c.name}`, c.index]));
  const map = new Map(old.filter((v) => byName.has(v.name)).map((v) => [v.value, byName.get(v.name)!]));
  return (i) => map.get(i);
}

/** Copies a running map into its new map through the field maps; returns the entries written. */
export function migrateMap(name: string, from: BpfMap, to: BpfMap, c: MapConversion, notes: string[], onlyMissing = false): number {
  const { keys, values } = from.entries();
  const have = onlyMissing ? new Set(to.entries().keys.map((k) => k.toString('hex'))) : undefined;
  const outK: Buffer[] = [];
  const outV: Buffer[] = [];
  const cpus = possibleCpus();
  const array = to.type === MapType.ARRAY || to.type === MapType.PERCPU_ARRAY;
  let dropped = 0;
  for (let i = 0; i < keys.length; i++) {
    let k = c.key ? convert(c.key, keys[i]!) : Buffer.from(keys[i]!);
    if (array) {
      const idx = c.index ? c.index(k.readUInt32LE(0)) : k.readUInt32LE(0);
      if (idx === undefined || idx >= to.maxEntries) {
        if (!values[i]!.every((b) => b === 0)) dropped++;
        continue;
      }
      k = u32(idx);
    }
    if (have?.has(k.toString('hex'))) continue;
    let v: Buffer;
    if (to.perCpu) {
      const stride = perCpuStride(to.valueSize);
      v = Buffer.alloc(stride * cpus);
      from.splitPerCpu(values[i]!).forEach((cpu, n) => (c.value ? convert(c.value, cpu) : cpu).copy(v, n * stride, 0, Math.min(cpu.length, to.valueSize)));
    } else {
      v = c.value ? convert(c.value, values[i]!) : Buffer.from(values[i]!);
    }
    outK.push(k);
    outV.push(v);
  }
  if (dropped) notes.push(`${name}: ${dropped} non-zero entr${dropped === 1 ? 'y has' : 'ies have'} no place in the new map (a counter this build does not have)`);
  writeEntries(to, outK, outV);
  return outK.length;
}

/** The field maps of a dynamic map between a running map and its staged successor (both by BTF id). */
export function dynamicConv(old: BpfMap, neu: BpfMap, name: string): MapConversion | undefined {
  const spec = DIRECTOR_SKELETON.maps.find((m) => m.name === name);
  if (!spec || !old.info.btfId || !neu.info.btfId) return undefined;
  const a = new BtfJson({ id: old.info.btfId });
  const b = new BtfJson({ id: neu.info.btfId });
  const out: MapConversion = {};
  for (const part of ['key', 'value'] as const) {
    const t = spec[part];
    const lo = t in SCALARS ? scalarLayout(part === 'key' ? old.keySize : old.valueSize) : a.struct(t);
    const ln = t in SCALARS ? scalarLayout(SCALARS[t]!) : b.struct(t);
    if (!lo || !ln) return undefined;
    if (sameLayout(lo, ln)) continue;
    const f = fieldMap(lo, ln, name);
    if (!f.map) return undefined;
    out[part] = f.map;
  }
  return out;
}
