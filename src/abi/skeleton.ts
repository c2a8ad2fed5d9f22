/**
 * The typed skeleton of a BPF object, as scripts/gen-abi.mjs generates it from the C headers
 * (src/abi/generated.ts for the director, src/abi/decap-generated.ts for the decapsulator), and
 * the one check of an object against it: maps (type, key and value sizes), program, .rodata
 * globals, struct layouts, enums and the ABI version. Both loaders call checkSkeleton before
 * anything is set or loaded, so an object built from other headers is a LayoutError naming what
 * differs, never a silently misread map.
 */
import { LayoutError } from '../errors.js';
import { MapType } from '../native/index.js';
import { layoutDrift, type BtfStructInfo, type StructDef } from './layout.js';

export type ScalarType = 'u8' | 'u16' | 'u32' | 'u64';
const SCALAR_SIZE: Record<ScalarType, number> = { u8: 1, u16: 2, u32: 4, u64: 8 };

export interface MapSpec {
  name: string;
  /** BPF_MAP_TYPE_<type>. */
  type: keyof typeof MapType;
  /** Key and value: a scalar, or a struct described in src/abi/layout.ts (or the object's own). */
  key: string;
  value: string;
  /** max_entries as compiled. */
  maxEntries: number;
  /** Resized at load to factor x the size parameter (DirectorSizes[param]). */
  size?: { param: string; factor: number };
  /** The program's own map: not pinned, not read by the control plane. */
  private: boolean;
}

export interface GlobalSpec {
  name: string;
  type: ScalarType;
  size: number;
  default: number;
  description: string;
  /** knob: set before load from the typed knobs; version: the object's ABI version; size: set
   *  before load to the size parameter `param` (what the program must know of a map's size);
   *  key: word `word` of the load-time key `key` (cfg_key_synrecv0..2: lvs_synrecv's bucket key). */
  role: 'knob' | 'version' | 'size' | 'key';
  /** The knob's name in TypeScript (cfg_enable_ipv6 -> ipv6). */
  knob?: string;
  /** A size global's DirectorSizes parameter (cfg_size_max_flowcache -> maxFlowcache). */
  param?: string;
  /** A key global's key and word (cfg_key_synrecv1 -> synrecv, 1). */
  key?: string;
  word?: number;
}

export interface EnumSpec {
  name: string;
  /** C prefix of the values: LVS_C_ + name. */
  prefix: string;
  /** What one value is called in messages ("counter"). */
  label: string;
  values: readonly string[];
  /** The terminating value, equal to the number of values. */
  max: string;
}

export interface Skeleton {
  object: string;
  program: string;
  version: { global: string; value: number };
  maps: readonly MapSpec[];
  globals: readonly GlobalSpec[];
  structs: readonly string[];
  enums: readonly EnumSpec[];
}

/** What the check reads of an opened object: the facade BpfObject and the raw binding both fit. */
export interface AbiObject {
  mapNames(): string[];
  mapDef(name: string): { type: number; keySize: number; valueSize: number };
  progNames(): string[];
  getGlobal(name: string): Buffer;
  btfStruct(name: string): BtfStructInfo;
  btfEnum(name: string): { name: string; value: number }[];
}

function tryGet<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch {
    return undefined;
  }
}

/** Differences between the skeleton's enums and the object's, one line each. */
export function enumDrift(enums: readonly EnumSpec[], lookup: (name: string) => { name: string; value: number }[] | undefined): string[] {
  const problems: string[] = [];
  for (const e of enums) {
    const values = lookup(e.name);
    if (!values) {
      problems.push(`enum ${e.name}: not in the object's BTF`);
      continue;
    }
    e.values.forEach((name, index) => {
      const v = values.find((x) => x.name === `${e.prefix}${name}`);
      if (v?.value !== index) problems.push(`${e.label} ${name}: index ${v?.value ?? 'missing'} in BTF, ${index} here`);
    });
    const max = values.find((x) => x.name === e.max);
    if (max?.value !== e.values.length) problems.push(`${e.max}: ${max?.value ?? 'missing'} in BTF, ${e.values.length} here`);
  }
  return problems;
}

function readScalar(buf: Buffer, type: ScalarType): number {
  switch (type) {
    case 'u8': return buf.readUInt8(0);
    case 'u16': return buf.readUInt16LE(0);
    case 'u32': return buf.readUInt32LE(0);
    case 'u64': return Number(buf.readBigUInt64LE(0));
  }
}

export function encodeScalar(type: ScalarType, value: number): Buffer {
  const buf = Buffer.alloc(SCALAR_SIZE[type]);
  switch (type) {
    case 'u8': buf.writeUInt8(value); break;
    case 'u16': buf.writeUInt16LE(value); break;
    case 'u32': buf.writeUInt32LE(value >>> 0); break;
    case 'u64': buf.writeBigUInt64LE(BigInt(value)); break;
  }
  return buf;
}

/** Everything in which an opened object differs from the skeleton, one line each ([] = agrees). */
export function skeletonDrift(obj: AbiObject, skel: Skeleton, layouts: readonly StructDef[]): string[] {
  const problems: string[] = [];
  const typeNames = new Map<number, string>(Object.entries(MapType).map(([k, v]) => [v, k]));
  const sizeOf = (t: string) => SCALAR_SIZE[t as ScalarType] ?? layouts.find((d) => d.name === t)?.size;
  const maps = new Set(obj.mapNames());
  for (const m of skel.maps) {
    if (!maps.has(m.name)) {
      problems.push(`map ${m.name}: not in the object`);
      continue;
    }
    const def = obj.mapDef(m.name);
    if (def.type !== MapType[m.type]) problems.push(`map ${m.name}: type ${typeNames.get(def.type) ?? def.type} in the object, ${m.type} here`);
    for (const [what, t, got] of [['key', m.key, def.keySize], ['value', m.value, def.valueSize]] as const) {
      const want = sizeOf(t);
      // Private maps' structs are the program's own business: only their presence is checked.
      if (want !== undefined && got !== want) problems.push(`map ${m.name}: ${what} ${got} bytes in the object, ${want} here (${t})`);
    }
  }
  if (!obj.progNames().includes(skel.program)) problems.push(`program ${skel.program}: not in the object`);
  for (const g of skel.globals) {
    const buf = tryGet(() => obj.getGlobal(g.name));
    if (!buf) {
      problems.push(`global ${g.name}: not in the object's .rodata`);
      continue;
    }
    if (buf.length !== g.size) {
      problems.push(`global ${g.name}: ${buf.length} bytes in the object, ${g.size} here`);
      continue;
    }
    if (g.name === skel.version.global && readScalar(buf, g.type) !== skel.version.value) {
      problems.push(`${g.name}: ABI version ${readScalar(buf, g.type)} in the object, ${skel.version.value} here`);
    }
  }
  const described = layouts.filter((d) => skel.structs.includes(d.name));
  for (const s of skel.structs) if (!described.some((d) => d.name === s)) problems.push(`struct ${s}: no layout described here`);
  problems.push(...layoutDrift((n) => tryGet(() => obj.btfStruct(n)), described));
  problems.push(...enumDrift(skel.enums, (n) => tryGet(() => obj.btfEnum(n))));
  return problems;
}

/** Throws one LayoutError listing every difference between the object and the skeleton. */
export function checkSkeleton(obj: AbiObject, skel: Skeleton, layouts: readonly StructDef[], what: string = skel.object): void {
  const problems = skeletonDrift(obj, skel, layouts);
  if (problems.length) throw new LayoutError(`${what} does not match the control plane:\n  ${problems.join('\n  ')}`);
}

/** Initial .rodata values of the skeleton's knobs: booleans as 1/0, by global name. */
export function knobGlobals(skel: Skeleton, knobs: Record<string, boolean | number>): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  for (const g of skel.globals) {
    if (g.role !== 'knob' || !g.knob) continue;
    const v = knobs[g.knob];
    if (v === undefined) continue;
    out[g.name] = encodeScalar(g.type, typeof v === 'boolean' ? (v ? 1 : 0) : v);
  }
  return out;
}

/** Initial .rodata values of the skeleton's knobs and of its size globals (the program's view of
 *  its maps' load-time sizes): what a load with these knobs and sizes sets. */
export function loadGlobals(skel: Skeleton, knobs: Record<string, boolean | number>, sizes: Record<string, number>): Record<string, Buffer> {
  const out = knobGlobals(skel, knobs);
  for (const g of skel.globals) {
    const v = g.role === 'size' && g.param ? sizes[g.param] : undefined;
    if (v !== undefined) out[g.name] = encodeScalar(g.type, v);
  }
  return out;
}

/** max_entries of every resizable map for the given size parameters, by map name. */
export function mapSizes(skel: Skeleton, sizes: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of skel.maps) {
    const v = m.size ? sizes[m.size.param] : undefined;
    if (m.size && v !== undefined) out[m.name] = m.size.factor * v;
  }
  return out;
}
