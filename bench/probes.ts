/**
 * Cost of single steps of the director's work on this machine (bench/bpf/probes.bpf.c): each
 * probe parses the frame like the director and does one more step; its cost is the probe's
 * ns/packet minus the parse-only probe's, measured interleaved in the same run. These are the
 * measured causes behind the data-plane ratios.
 */
import { UpdateFlag } from '../src/native/index.js';
import { native as rawNative } from '../src/native/testing.js';
import { clientPacket, TCP } from '../test/lib/frames.js';
import { median } from './lib/stats.js';
import { benchObject } from './lib/objects.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const n: any = rawNative();

export interface ProbeResult { name: string; step: string; medianNs: number; minNs: number; maxNs: number }

const LOOKUPS: [string, string][] = [
  ['pr_parse_cnt', 'parse + one per-CPU counter (reference)'],
  ['pr_bitmap', 'VIP filter: array word test'],
  ['pr_svc1', 'one lvs_services-style HASH lookup (20-byte key, miss)'],
  ['pr_svc2', 'two HASH lookups (port, then all-ports; both miss)'],
  ['pr_hash', 'HASH lookup, 40-byte flow key, hit'],
  ['pr_lru', 'LRU_HASH lookup, 40-byte flow key, hit'],
  ['pr_lru_nc', 'LRU_HASH (BPF_F_NO_COMMON_LRU) lookup, hit'],
  ['pr_lru_pc', 'LRU_PERCPU_HASH lookup, hit'],
  ['pr_lru_miss', 'LRU_HASH lookup, miss'],
  ['pr_ktime', 'bpf_ktime_get_ns()'],
  ['pr_coarse', 'bpf_ktime_get_coarse_ns()'],
  ['pr_jiffies', 'bpf_jiffies64() (inlined by the JIT)'],
  ['pr_acct', 'one more counter + two per-CPU stats structs'],
];
const INSERTS: [string, string][] = [
  ['pr_ins_lru', 'LRU_HASH insert, 262,144 entries, full (evicting)'],
  ['pr_ins_lru_nc', 'LRU_HASH + BPF_F_NO_COMMON_LRU insert, full'],
  ['pr_ins_lru_pc', 'LRU_PERCPU_HASH insert, full'],
  ['pr_ins_lru_small', 'LRU_HASH insert, 16,384 entries, full'],
  ['pr_ins_hash_room', 'HASH insert, 524,288 entries kept below full (control-plane expiry)'],
  ['pr_ins_pcpu_slot', 'per-CPU direct-mapped slot written (65,536 per CPU, overwrite)'],
];

export async function runProbeBench(opts: { rounds: number; repeat: number }): Promise<ProbeResult[]> {
  const o = new n.BpfObject();
  o.open(benchObject('probes.o'));
  await o.load();
  try {
    const fr = clientPacket('198.51.100.7', '10.0.0.1', { proto: 'tcp', sport: 1000, dport: 80, flags: TCP.ACK, payload: Buffer.alloc(22) });
    // The frame's flow in the conn maps (so lookups hit), a few services (so the hash has entries).
    const key = Buffer.alloc(40);
    fr.copy(key, 0, 26, 30); fr.copy(key, 16, 30, 34); fr.copy(key, 32, 34, 38); key[36] = 6; key[37] = 4;
    for (const m of ['p_lru', 'p_lru_nc', 'p_hash']) n.mapUpdate(o.mapFd(m), key, Buffer.alloc(24), UpdateFlag.ANY);
    n.mapUpdate(o.mapFd('p_lru_pc'), key, Buffer.alloc(24 * n.possibleCpus()), UpdateFlag.ANY);
    for (let i = 0; i < 8; i++) {
      const k = Buffer.alloc(20); k[0] = 10; k[3] = 100 + i; k.writeUInt16BE(80, 16); k[18] = 6; k[19] = 4;
      n.mapUpdate(o.mapFd('p_svc'), k, Buffer.alloc(40), 0);
    }
    const run = (p: string, repeat: number) => n.progTestRun(o.progFd(p), fr, { repeat, dataSizeOut: 2048 }).duration as number;
    // Fill the LRU maps first: every measured insert evicts.
    for (const [p] of INSERTS) run(p, p === 'pr_ins_lru_small' ? 20000 : 270000);
    const all = [...LOOKUPS, ...INSERTS];
    const raw = new Map<string, number[]>(all.map(([p]) => [p, []]));
    for (let r = 0; r < opts.rounds; r++) {
      for (const [p] of all) raw.get(p)!.push(run(p, INSERTS.some(([q]) => q === p) ? Math.ceil(opts.repeat / 5) : opts.repeat));
    }
    const base = raw.get('pr_parse_cnt')!;
    return all.map(([p, step]) => {
      const d = p === 'pr_parse_cnt' ? base : raw.get(p)!.map((x, i) => x - base[i]!);
      return { name: p, step, medianNs: median(d), minNs: Math.min(...d), maxNs: Math.max(...d) };
    });
  } finally {
    o.close();
  }
}
