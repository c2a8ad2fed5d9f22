/**
 * Kernel memory of the director's maps: memlock as the kernel reports it in /proc/self/fdinfo
 * (what bpftool shows as bytes_memlock), for the default sizes and the small-box preset, plus one
 * lookup table of each common size; and issue 16's two memory targets, each measured through the
 * CLI in a namespace of its own (bench/memory-child.ts):
 *   - 1,000 services x 4 realservers at the default sizes, lookup tables included: <= 64 MiB;
 *   - the small-box profile (attach --preset small, `run --no-listen --log-format json` with health
 *     checks for 16 services x 8 realservers, NODE_OPTIONS=SMALL_BOX_NODE_OPTIONS): kernel maps plus
 *     run's peak resident memory (VmHWM) <= 64 MiB.
 */
import { readFileSync } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { FleetResult, SmallBoxResult, MemoryChildResult } from './memory-child.js';
import { MapFlag, MapType } from '../src/native/index.js';
import { native as rawNative } from '../src/native/testing.js';
import { loadDirector, DEFAULT_SIZES, SMALL_BOX_SIZES, type DirectorSizes } from '../src/dataplane/loader.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const n: any = rawNative();

export interface MapMemory { name: string; type: number; entries: number; bytes: number }
export interface MemoryResult { preset: string; sizes: DirectorSizes; maps: MapMemory[]; totalBytes: number }
export interface TableMemory { slots: number; bytes: number }
export interface MemoryBench {
  presets: MemoryResult[]; tables: TableMemory[];
  fleet?: FleetResult;
  /** The profile as documented; the same run with node's default heap settings; and with the
   *  V8 flags NODE_OPTIONS cannot carry (SMALL_BOX_NODE_ARGS, on node's command line). */
  smallBox?: SmallBoxResult; smallBoxNodeDefaults?: SmallBoxResult; smallBoxNodeArgs?: SmallBoxResult;
}

/** Issue 16's targets, MiB. */
export const MEMORY_TARGETS = { fleetMiB: 64, smallBoxMiB: 64 } as const;
/** The small-box profile's V8 settings (README "Sizes and memory cost"): no JIT (no code space,
 *  no optimizing compiler threads at work), a 1 MiB young generation and a 16 MiB old one (run
 *  holds about 10 MiB after loading; the cap keeps V8 from growing the heap before it collects). */
export const SMALL_BOX_NODE_OPTIONS = '--jitless --max-semi-space-size=1 --max-old-space-size=16';
/** V8 flags node accepts only on its command line (`node FLAGS $(command -v lvs-xdp) run ...`). */
export const SMALL_BOX_NODE_ARGS = ['--lite-mode', '--optimize-for-size', '--single-threaded-gc'];

function fdinfo(fd: number): { memlock: number; type: number; entries: number } {
  const t = readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
  const num = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(t)?.[1] ?? NaN);
  return { memlock: num('memlock'), type: num('map_type'), entries: num('max_entries') };
}

/** bench/memory-child.js with `opts` in a network namespace of its own (removed afterwards). */
function inNamespace(opts: object): MemoryChildResult {
  const ns = `lvsb-mem-${process.pid}`;
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    const child = fileURLToPath(new URL('./memory-child.js', import.meta.url));
    const r = spawnSync('nsenter', [`--net=/run/netns/${ns}`, process.execPath, child, JSON.stringify(opts)], { encoding: 'utf8', timeout: 600_000 });
    if (r.status !== 0) throw new Error(`memory bench failed (${r.status ?? r.signal}): ${r.stderr.slice(-2000)}`);
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as MemoryChildResult;
  } finally {
    spawnSync('ip', ['netns', 'del', ns]);
  }
}

export async function runMemoryBench(opts: { targets?: boolean } = {}): Promise<MemoryBench> {
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
  const out: MemoryBench = { presets, tables };
  if (opts.targets ?? true) {
    out.fleet = inNamespace({ fleet: { services: 1000, reals: 4 } }).fleet!;
    out.smallBox = inNamespace({ smallBox: { services: 16, reals: 8, settleS: 40, nodeOptions: SMALL_BOX_NODE_OPTIONS } }).smallBox!;
    out.smallBoxNodeDefaults = inNamespace({ smallBox: { services: 16, reals: 8, settleS: 20, nodeOptions: '' } }).smallBox!;
    out.smallBoxNodeArgs = inNamespace({ smallBox: { services: 16, reals: 8, settleS: 40, nodeOptions: SMALL_BOX_NODE_OPTIONS, nodeArgs: SMALL_BOX_NODE_ARGS } }).smallBox!;
  }
  return out;
}

const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;

/** The targets beside their measurements, for bench/results and the README. */
export function memoryTargetsMarkdown(m: MemoryBench): string[] {
  const md: string[] = [];
  const f = m.fleet;
  const s = m.smallBox;
  if (!f || !s) return md;
  const mapsOnly = (x: FleetResult['restored']) => x.memoryBytes - x.tables.memlock;
  const big = m.tables.find((t) => t.slots === 65537);
  const before = big ? mapsOnly(f.restored) + f.services * big.bytes : undefined;
  const total = (x: SmallBoxResult) => x.maps.memoryBytes + x.vmHwmKiB * 1024;
  const verdict = (bytes: number, target: number) => (bytes <= target * 2 ** 20 ? 'met' : `**not met** by ${mib(bytes - target * 2 ** 20)}`);
  md.push('', '#### Memory targets (issue 16)', '',
    '| target | measured | verdict |', '| --- | --- | --- |',
    `| kernel memory, ${f.services.toLocaleString('en')} services x ${f.reals} realservers, default sizes, lookup tables included: <= ${MEMORY_TARGETS.fleetMiB} MiB | ${mib(f.restored.memoryBytes)} after \`-R\` (${f.restored.tables.count.toLocaleString('en')} tables of ${f.tableSize.toLocaleString('en')} slots: ${mib(f.restored.tables.memlock)}); ${mib(f.afterChange.memoryBytes)} right after one change to every service (a bulk change frees the previous tables after its switch: the plan's retire step), ${mib(f.afterNext.memoryBytes)} after the next change (to one service) | ${verdict(f.afterChange.memoryBytes, MEMORY_TARGETS.fleetMiB)} |`,
    `| small-box profile: \`attach --preset small\`, \`run --no-listen --log-format json\` with tcp health checks for ${s.services} services x ${s.reals} realservers (${s.healthy} up), NODE_OPTIONS="${s.nodeOptions}": kernel maps + run's peak resident memory <= ${MEMORY_TARGETS.smallBoxMiB} MiB | ${mib(s.maps.memoryBytes)} maps + ${mib(s.vmHwmKiB * 1024)} VmHWM = ${mib(total(s))} (VmRSS ${mib(s.vmRssKiB * 1024)} after ${s.settleS} s and a reload; every 5 s: ${s.rssKiB.map((k) => (k / 1024).toFixed(0)).join(', ')} MiB) | ${verdict(total(s), MEMORY_TARGETS.smallBoxMiB)} |`);
  const d = m.smallBoxNodeDefaults;
  md.push('', `Before (the previous default of 65,537 slots for every service, from the same run's maps and its measured 65,537-slot table): ${before === undefined ? 'n/a' : mib(before)} for the ${f.services.toLocaleString('en')} services. `
    + `Restoring them with \`-R\` took ${(f.restoreMs / 1000).toFixed(1)} s. The small box's run with node's default heap settings: ${d ? `${mib(d.vmHwmKiB * 1024)} VmHWM (${mib(total(d))} with the maps)` : 'n/a'}; `
    + `with \`node ${SMALL_BOX_NODE_ARGS.join(' ')}\` as well: ${m.smallBoxNodeArgs ? `${mib(m.smallBoxNodeArgs.vmHwmKiB * 1024)} VmHWM (${mib(total(m.smallBoxNodeArgs))} with the maps)` : 'n/a'}; `
    + `a bare \`node\` of the same build is ${mib(s.nodeBaselineKiB * 1024)} resident (the node binary's own pages are most of it).`);
  return md;
}
