/**
 * The ABI version of a program already in the kernel: what a newer lvs-xdp asks of a running
 * director (or decapsulator) before it takes it over. Read from the program itself, not from a
 * snapshot: prog info -> its map ids -> its .rodata map -> the version global's offset in that
 * map's BTF -> the value. The map ids come from the binding; the BTF is read through bpftool
 * (src/abi/btf.ts).
 */
import { withProgramMap } from '../native/index.js';
import { BtfJson } from './btf.js';
import { DIRECTOR_SKELETON } from './generated.js';

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
  const b = runningGlobalBytes(progFd, [global]).get(global);
  if (!b) return undefined;
  if (b.length === 4) return b.readUInt32LE(0);
  if (b.length === 1) return b.readUInt8(0);
  if (b.length === 2) return b.readUInt16LE(0);
  if (b.length === 8) return Number(b.readBigUInt64LE(0));
  return undefined;
}

/** The bytes of .rodata globals `names` of the loaded program `progFd`, as the kernel holds them
 *  (one map lookup and one BTF read for all); a name the program does not have is left out. */
export function runningGlobalBytes(progFd: number, names: readonly string[]): Map<string, Buffer> {
  // libbpf names the map "<object name prefix>.rodata"; the kernel keeps 15 characters.
  return withProgramMap(progFd, (name) => name.endsWith('.rodata'), (map) => {
    if (!map.info.btfId) return undefined;
    const data = map.lookup(Buffer.alloc(4));
    if (!data) return undefined;
    const btf = new BtfJson({ id: map.info.btfId });
    const out = new Map<string, Buffer>();
    for (const n of names) {
      const v = btf.datasecVar('.rodata', n);
      if (v && v.offset + v.size <= data.length) out.set(n, Buffer.from(data.subarray(v.offset, v.offset + v.size)));
    }
    return out.size ? out : undefined;
  }) ?? new Map();
}
