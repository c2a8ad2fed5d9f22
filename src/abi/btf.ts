/**
 * Reads struct layouts, enums and data sections from BTF through `bpftool btf dump -j`: a
 * compiled object's (tests check layouts without loading anything; the native binding reads the
 * same through libbpf at load time), or a loaded object's by BTF id (runningAbiVersion, which
 * needs the offsets the kernel holds for a running program's .rodata).
 */
import { execFileSync } from 'node:child_process';
import type { BtfStructInfo } from './layout.js';

interface BtfType {
  id: number;
  kind: string;
  name?: string;
  size?: number;
  type_id?: number;
  nr_elems?: number;
  members?: { name: string; type_id: number; bits_offset: number }[];
  values?: { name: string; val: number }[];
  vars?: { type_id: number; offset: number; size: number }[];
}

export class BtfJson {
  private readonly types = new Map<number, BtfType>();

  /** A compiled object's BTF, or with `{ id }` a loaded BTF object's (a map's btfId). */
  constructor(source: string | { id: number }) {
    const args = typeof source === 'string' ? ['file', source] : ['id', String(source.id)];
    const out = execFileSync('bpftool', ['btf', 'dump', ...args, '-j'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    for (const t of (JSON.parse(out) as { types: BtfType[] }).types) this.types.set(t.id, t);
  }

  /** The maps of the .maps section as compiled: BPF_MAP_TYPE number, max_entries, key and value
   *  sizes (an inner map's value is its fd: 4 bytes). */
  maps(): { name: string; type: number; maxEntries: number; keySize: number; valueSize: number }[] {
    const strip = (id: number): BtfType => {
      let t = this.types.get(id);
      while (t && ['TYPEDEF', 'VOLATILE', 'CONST', 'RESTRICT', 'TYPE_TAG'].includes(t.kind)) t = this.types.get(t.type_id ?? 0);
      if (!t) throw new Error(`BTF type ${id} missing`);
      return t;
    };
    // __uint(name, N) is `int (*name)[N]`; __type(name, T) is `T *name`.
    const uintOf = (id: number) => strip(strip(id).type_id ?? 0).nr_elems ?? 0;
    const out = [];
    for (const sec of this.types.values()) {
      if (sec.kind !== 'DATASEC' || sec.name !== '.maps') continue;
      for (const v of sec.vars ?? []) {
        const variable = this.types.get(v.type_id);
        const def = strip(variable?.type_id ?? 0);
        const member = (n: string) => def.members?.find((m) => m.name === n);
        const key = member('key');
        const value = member('value');
        out.push({
          name: variable?.name ?? '',
          type: uintOf(member('type')?.type_id ?? 0),
          maxEntries: uintOf(member('max_entries')?.type_id ?? 0),
          keySize: key ? this.sizeOf(strip(key.type_id).type_id ?? 0) : 0,
          valueSize: value ? this.sizeOf(strip(value.type_id).type_id ?? 0) : member('values') ? 4 : 0,
        });
      }
    }
    return out;
  }

  /** A variable of a data section (".rodata"): its offset and size. Offsets are 0 in a compiled
   *  object (libbpf fixes them at open); a loaded object's BTF has the real ones. */
  datasecVar(section: string, name: string): { offset: number; size: number } | undefined {
    for (const t of this.types.values()) {
      if (t.kind !== 'DATASEC' || t.name !== section) continue;
      for (const v of t.vars ?? []) {
        if (this.types.get(v.type_id)?.name === name) return { offset: v.offset, size: v.size };
      }
    }
    return undefined;
  }

  private sizeOf(id: number): number {
    const t = this.types.get(id);
    if (!t) throw new Error(`BTF type ${id} missing`);
    switch (t.kind) {
      case 'INT': case 'STRUCT': case 'UNION': case 'ENUM': case 'ENUM64': case 'FLOAT':
        return t.size ?? 0;
      case 'ARRAY': return (t.nr_elems ?? 0) * this.sizeOf(t.type_id ?? 0);
      case 'PTR': return 8;
      case 'TYPEDEF': case 'VOLATILE': case 'CONST': case 'RESTRICT': case 'TYPE_TAG':
        return this.sizeOf(t.type_id ?? 0);
      default: throw new Error(`BTF type ${id}: cannot size kind ${t.kind}`);
    }
  }

  struct(name: string): BtfStructInfo | undefined {
    for (const t of this.types.values()) {
      if (t.kind === 'STRUCT' && t.name === name) {
        return {
          size: t.size ?? 0,
          members: (t.members ?? []).map((m) => ({ name: m.name, offset: m.bits_offset / 8, size: this.sizeOf(m.type_id) })),
        };
      }
    }
    return undefined;
  }

  enumValues(name: string): { name: string; value: number }[] | undefined {
    for (const t of this.types.values()) {
      if ((t.kind === 'ENUM' || t.kind === 'ENUM64') && t.name === name) {
        return (t.values ?? []).map((v) => ({ name: v.name, value: v.val }));
      }
    }
    return undefined;
  }
}
