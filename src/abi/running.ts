/**
 * The ABI version of a program already in the kernel: what a newer lvs-xdp asks of a running
 * director (or decapsulator) before it takes it over. Read from the program itself, not from a
 * snapshot: prog info -> its map ids -> its .rodata map -> the version global's offset in that
 * map's BTF -> the value. The kernel's interfaces for the ids and the BTF are read through
 * bpftool (the native binding has no call for them).
 */
import { execFileSync } from 'node:child_process';
import { BpfMap, progInfo, progMapIds as nativeProgMapIds } from '../native/index.js';
import { BtfJson } from './btf.js';
import { DIRECTOR_SKELETON } from './generated.js';

function progMapIds(progId: number): number[] {
  const out = execFileSync('bpftool', ['-j', 'prog', 'show', 'id', String(progId)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return (JSON.parse(out) as { map_ids?: number[] }).map_ids ?? [];
}

/**
 * The ABI version (default: the director's cfg_abi_version; the decapsulator's is
 * DECAP_SKELETON.version.global) of the loaded program `progFd`; undefined when it has no such
 * global (not an lvs-xdp program).
 */
export function runningAbiVersion(progFd: number, global: string = DIRECTOR_SKELETON.version.global): number | undefined {
  return runningGlobal(progFd, global);
}

/** The value of a scalar .rodata global of the loaded program `progFd`, as the kernel holds it
 *  (knobs included); undefined when the program has no .rodata map or no such global. */
export function runningGlobal(progFd: number, global: string): number | undefined {
  for (const id of progMapIds(progInfo(progFd).id)) {
    const map = BpfMap.fromId(id);
    try {
      // libbpf names it "<object name prefix>.rodata"; the kernel keeps 15 characters.
      if (!map.name.endsWith('.rodata') || !map.info.btfId) continue;
      const v = new BtfJson({ id: map.info.btfId }).datasecVar('.rodata', global);
      if (!v) continue;
      const data = map.lookup(Buffer.alloc(4));
      if (!data || v.offset + v.size > data.length) continue;
      if (v.size === 4) return data.readUInt32LE(v.offset);
      if (v.size === 1) return data.readUInt8(v.offset);
      if (v.size === 2) return data.readUInt16LE(v.offset);
      if (v.size === 8) return Number(data.readBigUInt64LE(v.offset));
    } finally {
      map.close();
    }
  }
  return undefined;
}

/** The bytes of .rodata globals `names` of the loaded program `progFd`, as the kernel holds them
 *  (one map lookup and one BTF read for all); a name the program does not have is left out. */
export function runningGlobalBytes(progFd: number, names: readonly string[]): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const id of nativeProgMapIds(progFd)) {
    const map = BpfMap.fromId(id);
    try {
      if (!map.name.endsWith('.rodata') || !map.info.btfId) continue;
      const btf = new BtfJson({ id: map.info.btfId });
      const data = map.lookup(Buffer.alloc(4));
      if (!data) continue;
      for (const n of names) {
        const v = btf.datasecVar('.rodata', n);
        if (v && v.offset + v.size <= data.length) out.set(n, Buffer.from(data.subarray(v.offset, v.offset + v.size)));
      }
      if (out.size) return out;
    } finally {
      map.close();
    }
  }
  return out;
}
