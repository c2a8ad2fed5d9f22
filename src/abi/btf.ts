/**
 * Reads struct layouts and enums from a compiled BPF object's BTF through `bpftool btf dump -j`.
 * The native binding reads the same through libbpf at load time; this reader lets tests check
 * the layouts without loading anything.
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
}

export class BtfJson {
  private readonly types = new Map<number, BtfType>();

  constructor(objPath: string) {
    const out = execFileSync('bpftool', ['btf', 'dump', 'file', objPath, '-j'], { encoding: 'utf8' });
    for (const t of (JSON.parse(out) as { types: BtfType[] }).types) this.types.set(t.id, t);
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
