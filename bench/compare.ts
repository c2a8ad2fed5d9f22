/**
 * Compares director objects in one run (interleaved rounds): `node dist/bench/compare.js
 * before=/path/a.o after=bpf/lvs_director.o [--rounds N]`; `path:nofilter` leaves the VIP filter off;
 * `path:capture` / `path:capture-other` switch lvs-xdp capture on (every packet / another service's);
 * `path:sync` switches connection sync events on (refresh period 1 s); `path:synrecv=N` loads it
 * with N SYN_RECV slots (lvs_synrecv).
 * Used to measure each optimization.
 */
import { runDataplaneBench } from './dataplane.js';

const args = process.argv.slice(2);
const ri = args.indexOf('--rounds');
const rounds = ri >= 0 ? Number(args[ri + 1]) : 11;
const objects = args.filter((a, i) => a.includes('=') && (ri < 0 || i !== ri + 1)).map((a) => {
  const [label, spec] = a.split('=');
  const [path, opt] = spec!.split(':');
  const capture = opt === 'capture' ? 'all' as const : opt === 'capture-other' ? 'other' as const : undefined;
  const slots = opt?.startsWith('synrecv=') ? Number(opt.slice(8)) : undefined;
  return { label: label!, path: path!, vipFilter: opt !== 'nofilter', ...(capture ? { capture } : {}), ...(opt === 'sync' ? { sync: 1 } : {}), ...(slots ? { synRecv: slots } : {}) };
});
const res = await runDataplaneBench({ rounds, perRound: 5000, objects });
const f = (x: number) => x.toFixed(1);
for (const r of res) {
  console.log(`${r.name.padEnd(72)} ${f(r.medianNs).padStart(7)} [${f(r.minNs)}-${f(r.maxNs)}]${r.ratio ? `  ${r.ratio.toFixed(2)}x [${r.ratioMin!.toFixed(2)}-${r.ratioMax!.toFixed(2)}]` : ''}`);
}
