/**
 * Kernel memory of the director's maps: memlock as the kernel reports it in /proc/self/fdinfo
 * (what bpftool shows as bytes_memlock), for the default sizes and the small-box preset, plus one
 * lookup table of each common size.
 */
import { readFileSync } from 'node:fs';
import { MapFlag, MapType } from '../src/native/index.js';
import { native as rawNative } from '../src/native/testing.js';
import { loadDirector, DEFAULT_SIZES, SMALL_BOX_SIZES, type DirectorSizes } from '../src/dataplane/loader.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const n: any = rawNative();

export interface MapMemory { name: string; type: number; entries: number; bytes: number }
export interface MemoryResult { preset: string; sizes: DirectorSizes; maps: MapMemory[]; totalBytes: number }
export interface TableMemory { slots: number; bytes: number }

function fdinfo(fd: number): { memlock: number; type: number; entries: number } {
  const t = readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
  const num = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(t)?.[1] ?? NaN);
  return { memlock: num('memlock'), type: num('map_type'), entries: num('max_entries') };
}

export async function runMemoryBench(): Promise<{ presets: MemoryResult[]; tables: TableMemory[] }> {
  const presets: MemoryResult[] = [];
  for (const [preset, sizes] of [['default', DEFAULT_SIZES], ['small box', SMALL_BOX_SIZES]] as const) {
    const d = await loadDirector({ sizes });
    try {
      const maps = d.obj.mapNames().map((name) => {
        const i = fdinfo(d.obj.map(name).fd);
        return { name, type: i.type, entries: i.entries, bytes: i.memlock };
      }).sort((a, b) => b.bytes - a.bytes);
      presets.push({ preset, sizes, maps, totalBytes: maps.reduce((s, m) => s + m.bytes, 0) });
    } finally {
      d.obj.close();
    }
  }
  const tables = [251, 4093, 65537, 131071].map((slots) => {
    const fd = n.mapCreate({ type: MapType.ARRAY, name: 'lvsb_table', keySize: 4, valueSize: 4, maxEntries: slots, flags: MapFlag.INNER_MAP });
    try {
      return { slots, bytes: fdinfo(fd).memlock };
    } finally {
      n.closeFd(fd);
    }
  });
  return { presets, tables };
}
