/**
 * Connection sync, backup side (src/sync/insert.ts): IPVS sync entries inserted into a loaded
 * director's maps per second. A director with one rr service of 10 DR realservers; `entries`
 * established connections (distinct clients and ports) inserted in batches the size of one sync
 * message (40 IPv4 entries fill IPVS's default 1472-byte message) and of 1,000, then the same
 * entries again (a master's periodic re-sync: every one an update). Floor: the same number of
 * lvs_conns entries written by one batch update each (the maps' own cost, no lookups, no
 * decisions), in the same batch size. Each round starts from an empty connection table.
 */
import { loadDirector } from '../src/dataplane/loader.js';
import { MapWriter } from '../src/director/writer.js';
import { buildPlan, emptyApplied } from '../src/director/plan.js';
import { realId } from '../src/dataplane/compile.js';
import type { DirectorConfig } from '../src/model/types.js';
import { SyncInserter, flowKeyOf } from '../src/sync/insert.js';
import { IP_VS_CONN_F, IP_VS_TCP_S, type SyncConn } from '../src/sync/proto.js';
import { encode, CONN } from '../src/abi/layout.js';
import { ABI } from '../src/abi/generated.js';
import { summarize, type Summary } from './lib/stats.js';

export interface SyncInsertRow { name: string; entriesPerSecond: Summary; ratio?: Summary }
export interface SyncInsertBench { entries: number; rounds: number; rows: SyncInsertRow[] }

const REALS = Array.from({ length: 10 }, (_, i) => `192.168.1.${11 + i}`);

export async function runSyncInsertBench(opts: { entries: number; rounds: number }): Promise<SyncInsertBench> {
  const d = await loadDirector({ sizes: { maxConns: Math.max(262144, 2 * opts.entries) } });
  try {
    const writer = MapWriter.fromLoaded(d);
    const desired: DirectorConfig = {
      services: [{
        protocol: 'tcp', vip: '10.0.0.1', port: 80, scheduler: 'rr', flags: [], ops: false,
        realservers: REALS.map((address) => ({ address, port: 80, weight: 1, method: 'dr' as const, mac: '02:00:00:00:00:0b' })),
      }],
    };
    const l2 = new Map(desired.services[0]!.realservers.map((r) => [realId(desired.services[0]!, r), { mac: '02:00:00:00:00:0b' }] as const));
    const plan = buildPlan({ running: emptyApplied(), desired, l2, tunnel: {}, limits: { maxServices: 16, maxReals: 64, maxTableSize: 131071 } });
    writer.execute(plan.steps, { tableOf: (id) => plan.compiled!.services.find((x) => x.id === id)!.table });
    const conns: SyncConn[] = Array.from({ length: opts.entries }, (_, i) => ({
      family: 4, protocol: 6, flags: IP_VS_CONN_F.DROUTE, state: IP_VS_TCP_S.ESTABLISHED, cport: 1024 + (i % 60000), vport: 80, dport: 80,
      fwmark: 0, timeout: 900, caddr: `10.${1 + ((i / 60000) | 0)}.${(i >> 8) & 255}.${i & 255}`, vaddr: '10.0.0.1', daddr: REALS[i % REALS.length]!,
    }));
    const inserter = new SyncInserter({ applied: plan.target, writer });
    const clear = () => writer.clear('lvs_conns');
    const perSecond = (ms: number) => opts.entries / (ms / 1000);
    const batches = <T>(xs: T[], n: number): T[][] => Array.from({ length: Math.ceil(xs.length / n) }, (_, i) => xs.slice(i * n, (i + 1) * n));
    const time = (fn: () => void): number => {
      const t = process.hrtime.bigint();
      fn();
      return Number(process.hrtime.bigint() - t) / 1e6;
    };
    // floor input: the same entries' keys and values, encoded beforehand
    const vip = new Uint8Array(16);
    vip.set([10, 0, 0, 1]);
    const raw = conns.map((c) => {
      const caddr = new Uint8Array(16);
      caddr.set(c.caddr.split('.').map(Number));
      return { key: flowKeyOf(caddr, vip, c.cport, 80, 6, 4), value: encode(CONN, { last_seen_ns: process.hrtime.bigint(), real: 1, gen: 1, state: ABI.LVS_CS_ESTABLISHED }) };
    });
    const r: Record<string, number[]> = { new40: [], new1000: [], resync40: [], floor40: [] };
    for (let round = 0; round < opts.rounds; round++) {
      clear();
      r.new40!.push(perSecond(time(() => { for (const b of batches(conns, 40)) inserter.insert(b); })));
      r.resync40!.push(perSecond(time(() => { for (const b of batches(conns, 40)) inserter.insert(b); })));
      clear();
      r.new1000!.push(perSecond(time(() => { for (const b of batches(conns, 1000)) inserter.insert(b); })));
      clear();
      r.floor40!.push(perSecond(time(() => { for (const b of batches(raw, 40)) writer.putEntries('lvs_conns', b.map((x) => x.key), b.map((x) => x.value)); })));
    }
    const ratio = (xs: number[]) => summarize(xs.map((x, i) => x / r.floor40![i]!));
    return {
      entries: opts.entries, rounds: opts.rounds,
      rows: [
        { name: 'insert new entries, 40 per batch (one IPVS sync message)', entriesPerSecond: summarize(r.new40!), ratio: ratio(r.new40!) },
        { name: 'insert new entries, 1,000 per batch', entriesPerSecond: summarize(r.new1000!), ratio: ratio(r.new1000!) },
        { name: 're-sync of the same entries (updates), 40 per batch', entriesPerSecond: summarize(r.resync40!), ratio: ratio(r.resync40!) },
        { name: 'floor: lvs_conns batch update of encoded entries, 40 per batch', entriesPerSecond: summarize(r.floor40!) },
      ],
    };
  } finally {
    d.obj.close();
  }
}

// `node dist/bench/sync-insert.js`: this benchmark alone.
if (import.meta.url === `file://${process.argv[1]}`) {
  const out = await runSyncInsertBench({ entries: Number(process.argv[2] ?? 50000), rounds: Number(process.argv[3] ?? 5) });
  for (const row of out.rows) {
    const e = row.entriesPerSecond;
    console.log(`${row.name}: ${Math.round(e.median)} entries/s [${Math.round(e.min)}-${Math.round(e.max)}]${row.ratio ? `, ${row.ratio.median.toFixed(2)}x floor` : ''}`);
  }
}
