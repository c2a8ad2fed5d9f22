/**
 * What connection sync events cost the packet path (bpf/lvs_sync.h): the data-plane cases with
 * sync events off and on, interleaved in one run, as ratios to the same floor. With sync on the
 * refresh period is 1 s, the shortest: an established flow's entry then reports at every refresh
 * (at most once a second), and the ring is never read, so past its 256 KiB every report is a
 * lost one (sync_lost) -- the most a flow can pay. Per packet the established path pays nothing
 * new: the flag is tested only where the entry is rewritten.
 *   node dist/bench/sync.js [--rounds N]
 */
import { runDataplaneBench, type CaseResult } from './dataplane.js';

export const SYNC_CASES = ['established DR flow', 'established Tun flow (IPv4 in IPv4)', 'new flow (SYN: conn miss, table, insert into a full LRU)'];

export async function runSyncBench(opts: { rounds: number; perRound: number }): Promise<CaseResult[]> {
  const res = await runDataplaneBench({ ...opts, objects: [{ label: 'sync off' }, { label: 'sync on', sync: 1 }] });
  return res.filter((r) => r.floor && SYNC_CASES.some((c) => r.name.startsWith(`${c} [`)));
}

if (process.argv[1]?.endsWith('/bench/sync.js')) {
  const ri = process.argv.indexOf('--rounds');
  const rounds = ri >= 0 ? Number(process.argv[ri + 1]) : 11;
  for (const r of await runSyncBench({ rounds, perRound: 5000 })) {
    console.log(`${r.name.padEnd(72)} ${r.medianNs.toFixed(1).padStart(7)} [${r.minNs.toFixed(1)}-${r.maxNs.toFixed(1)}]  ${r.ratio!.toFixed(2)}x [${r.ratioMin!.toFixed(2)}-${r.ratioMax!.toFixed(2)}]`);
  }
}
