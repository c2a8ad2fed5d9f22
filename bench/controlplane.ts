/**
 * Control-plane micro-benchmarks with benchmark.js: table generation (Maglev, sh/dh, rr/wrr,
 * table sizes), compiling 1,000 services, reading and summing every per-CPU counter of 1,000
 * services x 10 realservers (real per-CPU maps of those sizes). Each figure: benchmark.js's
 * samples (each the mean of many calls), median with min and max.
 */
import Benchmark from 'benchmark';
import { MapType } from '../src/native/index.js';
import { native as rawNative } from '../src/native/testing.js';
import { maglev, rotation, buildTable } from '../src/sched/index.js';
import { compileDirector } from '../src/dataplane/compile.js';
import type { DirectorConfig, VirtualService, Realserver } from '../src/model/types.js';
import { STATS } from '../src/abi/layout.js';
import { COUNTERS } from '../src/abi/generated.js';
import { median } from './lib/stats.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const n: any = rawNative();
export const MAGLEV_PAPER_MS = 1.8; // Maglev (NSDI'16): 65537 slots, 1,000 backends

export interface CpResult { name: string; group: string; medianMs: number; minMs: number; maxMs: number; samples: number; note?: string; paperRatio?: number }

const keys = (count: number) => Array.from({ length: count }, (_, i) => ({ key: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, weight: 1 + (i % 3) }));

export function benchService(i: number, reals: number, tableSize: number): VirtualService {
  const realservers: Realserver[] = Array.from({ length: reals }, (_, j) => ({
    address: `10.${100 + (i >> 8)}.${i & 255}.${j & 255}`, port: 80, weight: 1, method: 'dr' as const,
    mac: `02:00:00:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}:${j.toString(16).padStart(2, '0')}`,
  }));
  return { protocol: 'tcp', vip: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, port: 80, scheduler: 'mh', flags: [], ops: false, tableSize, realservers };
}

export function benchConfig(services: number, reals: number, tableSize: number): DirectorConfig {
  return { services: Array.from({ length: services }, (_, i) => benchService(i + 1, reals, tableSize)) } as DirectorConfig;
}

type BenchOpts = { minSamples: number; maxTime: number };

/** Runs the cases one after the other (benchmark.js), each with `opts`; throws on an error. */
function run(group: string, cases: [string, () => unknown][], opts: BenchOpts): CpResult[] {
  const out: CpResult[] = [];
  const suite = new Benchmark.Suite();
  for (const [name, fn] of cases) suite.add(name, fn, { minSamples: opts.minSamples, maxTime: opts.maxTime, initCount: 1 });
  suite.on('cycle', (e: Benchmark.Event) => {
    const b = e.target as unknown as Benchmark & { name: string; error?: Error };
    if (b.error) throw b.error;
    const s = b.stats.sample.map((x) => x * 1000);
    out.push({ name: b.name, group, medianMs: median(s), minMs: Math.min(...s), maxMs: Math.max(...s), samples: s.length });
  });
  suite.run({ async: false });
  return out;
}

export function runControlPlaneBench(opts: { short?: boolean } = {}): CpResult[] {
  const o: BenchOpts = opts.short ? { minSamples: 2, maxTime: 0.02 } : { minSamples: 10, maxTime: 1 };
  const results: CpResult[] = [];

  // Table generation.
  const rs = { 10: keys(10), 100: keys(100), 1000: keys(1000) } as const;
  const svc = (scheduler: 'sh' | 'dh' | 'wrr' | 'rr') => ({ ...benchService(1, 100, 65537), scheduler });
  const tables: [string, () => unknown][] = [
    ...([10, 100, 1000] as const).map((c): [string, () => unknown] => [`Maglev 65537 slots, ${c} realservers`, () => maglev(rs[c], 65537)]),
    ...[251, 4093, 16381].map((size): [string, () => unknown] => [`Maglev ${size} slots, 100 realservers`, () => maglev(rs[100], size)]),
    ['sh 65537 slots, 100 realservers (buildTable)', () => buildTable(svc('sh'))],
    ['dh 65537 slots, 100 realservers (buildTable)', () => buildTable(svc('dh'))],
    ['wrr 65537-step sequence, 100 realservers, weights 1-3', () => rotation(rs[100], 65537, false)],
  ];
  for (const r of run('tables', tables, o)) {
    if (r.name === 'Maglev 65537 slots, 1000 realservers') r.paperRatio = r.medianMs / MAGLEV_PAPER_MS;
    results.push(r);
  }

  // Compiling 1,000 services (10 realservers each, MACs given: the resolver is never asked).
  const cfg = benchConfig(1000, 10, 4093);
  const limits = { maxServices: 1024, maxReals: 16384, maxTableSize: 131071 };
  results.push(...run('compile', [['compile 1,000 services x 10 realservers (mh, 4093 slots)', () => compileDirector(cfg, () => ({ mac: '02:00:00:00:00:01' }), limits)]],
    opts.short ? o : { minSamples: 5, maxTime: 4 }));

  // Reading and summing every per-CPU counter: 1,000 services x 10 realservers.
  const cpus = n.possibleCpus();
  const stride = Math.ceil(STATS.size / 8) * 8;
  const mk = (name: string, entries: number, valueSize: number) => n.mapCreate({ type: MapType.PERCPU_ARRAY, name, keySize: 4, valueSize, maxEntries: entries });
  const svcFd = mk('lvsb_svc_stats', 1000, STATS.size);
  const realFd = mk('lvsb_real_stats', 10000, STATS.size);
  const cntFd = mk('lvsb_counters', COUNTERS.length, 8);
  const sumStats = (fd: number, entries: number) => {
    const d = n.mapLookupBatch(fd, { batchSize: 4096 });
    const v: Buffer = d.values;
    const per = v.length / entries;
    const tot = new Array<bigint>(entries * 3);
    for (let e = 0; e < entries; e++) {
      let p = 0n, b = 0n, c = 0n;
      for (let k = 0; k < cpus; k++) {
        const at = e * per + k * stride;
        p += v.readBigUInt64LE(at); b += v.readBigUInt64LE(at + 8); c += v.readBigUInt64LE(at + 16);
      }
      tot[e * 3] = p; tot[e * 3 + 1] = b; tot[e * 3 + 2] = c;
    }
    return tot;
  };
  results.push(...run('counters', [[`read + sum all per-CPU counters, 1,000 services x 10 realservers, ${cpus} CPUs`, () => {
    sumStats(svcFd, 1000);
    sumStats(realFd, 10000);
    const d = n.mapLookupBatch(cntFd, { batchSize: 4096 });
    let s = 0n;
    for (let i = 0; i < d.values.length; i += 8) s += d.values.readBigUInt64LE(i);
    return s;
  }]], o));
  for (const fd of [svcFd, realFd, cntFd]) n.closeFd(fd);
  return results;
}
