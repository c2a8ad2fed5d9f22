/**
 * `npm run bench`: every benchmark of issue 5 in one run (about 6-10 minutes on 2 cores), writing
 * bench/results/latest.json, latest.md and SVG charts, and the README's benchmark section
 * (between <!-- bench:begin --> and <!-- bench:end -->).
 *
 *   --short        a few seconds: the data-plane cases with tiny counts, nothing written (CI
 *                  checks that it works, not how fast)
 *   --render       no measurement: markdown, charts and README again from latest.json
 *   --only=a,b     run only these parts: probes, dataplane, nat, syncevents, scaling, live, controlplane,
 *                  apply, cli, sync, memory, e2e (results written, README not touched)
 *
 * The end-to-end comparison (e2e) needs wrk, haproxy, nft and nginx: `bash scripts/bench-setup.sh`
 * installs them; without them it is reported as skipped.
 */
import { writeFileSync, mkdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { runDataplaneBench, type CaseResult } from './dataplane.js';
import { runNatBench } from './nat.js';
import { runSyncBench } from './sync.js';
import { runProbeBench, type ProbeResult } from './probes.js';
import { runScalingBench, type ScaleCurve } from './scaling.js';
import { runLiveBench, type LiveResult } from './live.js';
import { runControlPlaneBench, MAGLEV_PAPER_MS, type CpResult } from './controlplane.js';
import { runApplyBench, type ApplyBench } from './apply.js';
import { runSyncInsertBench, type SyncInsertBench } from './sync-insert.js';
import { runCliBench, cliMarkdown, type CliBench } from './cli.js';
import { runMemoryBench, memoryTargetsMarkdown, type MemoryResult, type MemoryBench } from './memory.js';
import { runE2eBench, type E2eResult } from './e2e.js';
import { chartGrid, barChart, type LineChart } from './lib/svg.js';

const argv = process.argv.slice(2);
const short = argv.includes('--short');
const render = argv.includes('--render');
const only = argv.find((a) => a.startsWith('--only='))?.slice(7).split(',');
const want = (p: string) => !short && (!only || only.includes(p));
const started = new Date();
const t0 = Date.now();
const log = (s: string) => process.stderr.write(`[bench ${((Date.now() - t0) / 1000).toFixed(0)}s] ${s}\n`);

const cpuModel = os.cpus()[0]?.model.trim() ?? 'cpu';
const machine = `${os.cpus().length} x ${cpuModel}, Linux ${os.release()}`;

interface Results {
  date: string; machine: string; seconds?: number;
  probes?: ProbeResult[]; dataplane?: CaseResult[]; nat?: CaseResult[]; syncEvents?: CaseResult[]; scaling?: ScaleCurve[];
  live?: { results: LiveResult[]; director: Record<string, string> };
  controlplane?: CpResult[]; apply?: ApplyBench; cli?: CliBench; sync?: SyncInsertBench; memory?: MemoryBench;
  e2e?: E2eResult;
}
let R: Results = { date: started.toISOString(), machine };
if (render) R = JSON.parse(readFileSync(new URL('../../bench/results/latest.json', import.meta.url), 'utf8')) as Results;

const DP_ROUNDS = 15;
if (render) {
  log('rendering bench/results/latest.json');
} else if (short) {
  R.dataplane = await runDataplaneBench({ rounds: 3, perRound: 200 });
} else {
  if (want('probes')) { log('cost probes'); R.probes = await runProbeBench({ rounds: 11, repeat: 100000 }); }
  if (want('dataplane')) { log('data plane'); R.dataplane = await runDataplaneBench({ rounds: DP_ROUNDS, perRound: 5000 }); }
  if (want('nat')) { log('data plane, LVS-NAT (own namespace)'); R.nat = await runNatBench({ rounds: DP_ROUNDS, perRound: 5000 }); }
  if (want('syncevents')) { log('data plane, connection sync events off / on'); R.syncEvents = await runSyncBench({ rounds: DP_ROUNDS, perRound: 5000 }); }
  if (want('scaling')) { log('scaling'); R.scaling = await runScalingBench({ rounds: 7, perRound: 5000 }); }
  if (want('live')) { log('live frames'); R.live = await runLiveBench({ rounds: 7, frames: 500000 }); }
  if (want('controlplane')) { log('control plane'); R.controlplane = runControlPlaneBench(); }
  if (want('apply')) { log('apply on a running director'); R.apply = runApplyBench({ services: 1000, reals: 10, tableSize: 4093 }); }
  if (want('sync')) { log('connection sync, backup side'); R.sync = await runSyncInsertBench({ entries: 50000, rounds: 7 }); }
  if (want('cli')) { log('control plane: the CLI and the library at 10 and 1,000 services (own namespace)'); R.cli = runCliBench(); }
  if (want('memory')) { log('memory'); R.memory = await runMemoryBench(); }
  if (want('e2e')) { log('end to end (namespace lab, wrk)'); R.e2e = await runE2eBench({ seconds: 4, rounds: 3, log }); }
}
if (!render) R.seconds = Math.round((Date.now() - t0) / 1000);

// ---- Markdown ----------------------------------------------------------------------------
const f1 = (x: number) => x.toFixed(1);
const f2 = (x: number) => x.toFixed(2);
const kib = (b: number) => (b >= 1 << 20 ? `${(b / 2 ** 20).toFixed(1)} MiB` : `${(b / 1024).toFixed(1)} KiB`);
const md: string[] = [];
/** A case's target beside its measurement: met or by how much not (issue 16), and its stretch. */
const targetCell = (r: CaseResult): string => {
  if (r.target === undefined || r.ratio === undefined) return '';
  const met = r.ratio <= r.target ? '**met**' : `not met (${f2(r.ratio / r.target)}x over)`;
  const stretch = r.stretch === undefined ? '' : `; stretch <= ${r.stretch}x: ${r.ratio <= r.stretch ? '**met**' : 'not met'}`;
  return `<= ${r.target}x: ${met}${stretch}`;
};
md.push(`Measured ${R.date.slice(0, 10)} on ${R.machine}${short ? ' (short run)' : ''}, in ${R.seconds} s. Figures: median [min-max] over rounds; ratios: median [min-max] of per-round ratios, measured in the same run.`);

if (R.dataplane) {
  md.push('', '#### Data plane cost per packet (BPF_PROG_TEST_RUN, repeat loop; see bench/dataplane.ts)', '',
    '| case | ns/packet | ratio to floor | target |', '| --- | --- | --- | --- |');
  for (const r of R.dataplane) {
    const ratio = r.ratio === undefined ? '' : `${f2(r.ratio)}x [${f2(r.ratioMin!)}-${f2(r.ratioMax!)}] of ${r.floor!.replace('floor: ', '')}`;
    md.push(`| ${r.name} | ${f1(r.medianNs)} [${f1(r.minNs)}-${f1(r.maxNs)}] | ${ratio} | ${targetCell(r)} |`);
  }
  if (!short) md.push('', '![data plane ratios](bench/results/dataplane.svg)');
}
if (R.nat) {
  md.push('', '#### LVS-NAT cost per packet (BPF_PROG_TEST_RUN in a namespace of its own whose FIB resolves the client; see bench/nat.ts)', '',
    '| case | ns/packet | ratio to floor | target |', '| --- | --- | --- | --- |');
  for (const r of R.nat.filter((x) => x.floor)) {
    const ratio = `${f2(r.ratio!)}x [${f2(r.ratioMin!)}-${f2(r.ratioMax!)}] of ${r.floor!.replace('floor: ', '')}`;
    md.push(`| ${r.name} | ${f1(r.medianNs)} [${f1(r.minNs)}-${f1(r.maxNs)}] | ${ratio} | ${targetCell(r)} |`);
  }
  const ns = (prefix: string) => R.nat!.find((x) => x.name.startsWith(prefix))?.medianNs;
  const dr = ns('established DR flow'), client = ns('established NAT flow, client'), reply = ns('established NAT flow, reply');
  if (dr !== undefined && client !== undefined && reply !== undefined) {
    md.push('', `The client side costs what DR costs plus the rewrite (${f1(client - dr)} ns here: addresses, port, two checksums). `
      + `The reply pays a service lookup that misses, the reply entry's lookup and the realserver slot, and \`bpf_fib_lookup\` (route and neighbour): ${f1(reply - client)} ns more than the client side. No target was set for NAT.`);
  }
}
if (R.syncEvents) {
  md.push('', '#### Connection sync events off and on (BPF_PROG_TEST_RUN, one run, interleaved; see bench/sync.ts)', '',
    '| case | ns/packet | ratio to floor |', '| --- | --- | --- |');
  for (const r of R.syncEvents) md.push(`| ${r.name} | ${f1(r.medianNs)} [${f1(r.minNs)}-${f1(r.maxNs)}] | ${f2(r.ratio!)}x [${f2(r.ratioMin!)}-${f2(r.ratioMax!)}] of ${r.floor!.replace('floor: ', '')} |`);
}
if (R.probes) {
  md.push('', '#### Cost of single steps (probes: each minus "parse + one counter"; bench/bpf/probes.bpf.c)', '',
    '| step | ns/packet |', '| --- | --- |');
  for (const p of R.probes) md.push(`| ${p.step} | ${f1(p.medianNs)} [${f1(p.minNs)}-${f1(p.maxNs)}] |`);
}
if (R.scaling) {
  md.push('', '#### Scaling: established-flow cost relative to the smallest configuration (target <= 1.2x)', '',
    '| range | ns/packet at each point | ratio to the first point | target |', '| --- | --- | --- | --- |');
  for (const c of R.scaling) {
    const ns = c.points.map((p) => `${p.x.toLocaleString('en')}: ${f1(p.medianNs)}`).join(', ');
    const ratios = c.points.map((p) => `${f2(p.ratio)}x`).join(', ');
    const worst = Math.max(...c.points.map((p) => p.ratio));
    md.push(`| ${c.label} (${c.note}) | ${ns} | ${ratios} | ${worst <= c.target ? '**met**' : `not met (${f2(worst)}x)`} |`);
  }
  md.push('', '![scaling curves](bench/results/scaling.svg)');
}
let perCore = '';
if (R.live) {
  md.push('', '#### Live packet rate (live frames into a veth pair; the program under test on the receiving end in native or generic (skb) mode, or the kernel forwarding with nftables DNAT)', '',
    '| case | mode | Mpps forwarded | ratio to floor (same mode) | target | vs nftables DNAT | frames lost |', '| --- | --- | --- | --- | --- | --- | --- |');
  for (const r of R.live.results) {
    const mode = r.mode ?? 'native';
    const vs = r.ratioAgainst === undefined ? '' : `${f2(r.ratioAgainst)}x [${f2(r.ratioAgainstMin!)}-${f2(r.ratioAgainstMax!)}]`;
    md.push(`| ${r.name} | ${mode === 'stack' ? 'no XDP' : mode} | ${f2(r.mpps)} [${f2(r.mppsMin)}-${f2(r.mppsMax)}] | ${r.ratio === undefined ? '' : `${f2(r.ratio)}x [${f2(r.ratioMin!)}-${f2(r.ratioMax!)}]`} | ${r.target === undefined ? '' : `>= ${r.target * 100}%: ${r.ratio! >= r.target ? '**met**' : 'not met'}`} | ${vs} | ${r.name.startsWith('receiver') ? '' : `${Math.max(0, r.lossPct).toFixed(2)}%`} |`);
  }
  const dr = R.dataplane?.find((x) => x.name === 'established DR flow');
  const drop = R.dataplane?.find((x) => x.name === 'floor: XDP_DROP');
  const tun = R.dataplane?.find((x) => x.name.startsWith('established Tun flow (IPv4'));
  if (dr && drop && tun) {
    const progDr = dr.medianNs - drop.medianNs, progTun = tun.medianNs - drop.medianNs;
    perCore = `Per core on a real NIC: at 10GbE line rate (14.88 Mpps, 64 B) a core has 67 ns per packet. The program alone (director minus the test-run loop's own cost, XDP_DROP) takes ${f1(progDr)} ns for an established DR flow and ${f1(progTun)} ns for Tun here, so one core forwards at most ${f2(1000 / progDr)} / ${f2(1000 / progTun)} Mpps before any driver cost (RX descriptor, XDP_TX ring, not measurable on this machine): line rate needs at least ${Math.ceil(14.88 / (1000 / progDr))} (DR) / ${Math.ceil(14.88 / (1000 / progTun))} (Tun) cores with RSS, more with the driver's share.`;
  }
  const bound = R.live.results.find((x) => x.name.startsWith('receiver'));
  const ns = (name: string) => 1000 / (R.live!.results.find((x) => x.name === name)?.mpps ?? NaN);
  const swapNs = ns('floor: parse + swap MACs + XDP_TX'), drNs = ns('lvs-xdp DR (established flow)');
  md.push('', `What bounds these figures: everything runs on the one CPU that makes the BPF_PROG_TEST_RUN call (the other core is shared with the rest of the machine): the generator, the veth transmit to the peer, the receiving veth's NAPI poll with the program under test, its XDP_TX back through veth and the counting program. In native mode, with the receiver simply dropping, this setup moves ${bound ? f2(bound.mpps) : '?'} Mpps. A forwarded packet costs ${f1(swapNs)} ns of that CPU with the floor program and ${f1(drNs)} ns with lvs-xdp DR: the director's extra ${f1(drNs - swapNs)} ns is its own cost (as in the data-plane table), the rest is generator and veth, which is why the ratio sits at ${f2(R.live.results.find((x) => x.name.startsWith('lvs-xdp DR'))?.ratio ?? NaN)}x and not lower.`);
  const gen = R.live.results.find((x) => x.name.startsWith('lvs-xdp DR') && x.mode === 'generic');
  const genDrop = R.live.results.find((x) => x.name.startsWith('receiver') && x.mode === 'generic');
  if (gen) {
    const nat = R.live.results.find((x) => x.name === gen.against);
    md.push('', `Generic (skb) mode is what NICs without native XDP (e1000e, r8169, ...) run: the kernel builds an skb first and runs the program in the receive path, and XDP_TX goes out through the transmit queue one skb at a time. Here the receiving veth delivers ${genDrop ? f2(genDrop.mpps) : '?'} Mpps to a generic program that drops; lvs-xdp DR forwards ${f2(gen.mpps)} Mpps in generic mode, ${f2(gen.ratio!)}x the generic floor's rate and ${f2(gen.ratioAgainst!)}x ${nat ? `nftables DNAT's ${f2(nat.mpps)} Mpps` : 'nftables DNAT'} (the kernel's forwarding with conntrack, same veth, same frames). What a profile of this path shows is in the README's \"Generic mode\" paragraph.`);
  }
  if (perCore) md.push('', perCore);
}
if (R.controlplane || R.apply) {
  md.push('', '#### Control plane (benchmark.js; ms per operation)', '', '| benchmark | ms | note |', '| --- | --- | --- |');
  for (const r of R.controlplane ?? []) {
    md.push(`| ${r.name} | ${r.medianMs < 1 ? r.medianMs.toFixed(3) : f1(r.medianMs)} [${r.minMs < 1 ? r.minMs.toFixed(3) : f1(r.minMs)}-${r.maxMs < 1 ? r.maxMs.toFixed(3) : f1(r.maxMs)}] | ${r.paperRatio ? `${f2(r.paperRatio)}x the Maglev paper's ${MAGLEV_PAPER_MS} ms` : ''} |`);
  }
  if (R.apply) {
    const a = R.apply;
    md.push(`| apply a one-realserver change to a running director (${a.config.services} services x ${a.config.reals} realservers, ${a.config.tableSize}-slot tables; library API) | ${f1(a.apply.medianMs)} [${f1(a.apply.minMs)}-${f1(a.apply.maxMs)}] | first apply of that configuration: ${f1(a.initialMs)} ms |`);
    md.push(`| the same change through the CLI (\`lvs-xdp apply -f\`, a new process) | ${a.cli.map((c) => f1(c.ms)).join(', ')} | peak resident memory ${a.cli.map((c) => `${(c.peakRssKiB / 1024).toFixed(0)} MiB`).join(', ')} |`);
  }
}
if (R.cli) md.push('', ...cliMarkdown(R.cli));
if (R.sync) {
  md.push('', '#### Connection sync, backup side: IPVS sync entries inserted per second (bench/sync-insert.ts)', '',
    `${R.sync.entries.toLocaleString('en')} established DR connections into an empty table (then again: a master's re-sync), median [min-max] of ${R.sync.rounds} rounds; ratio: to the floor of the same round.`, '',
    '| case | entries/s | ratio to floor |', '| --- | --- | --- |');
  for (const r of R.sync.rows) {
    const e = r.entriesPerSecond;
    md.push(`| ${r.name} | ${Math.round(e.median).toLocaleString('en')} [${Math.round(e.min).toLocaleString('en')}-${Math.round(e.max).toLocaleString('en')}] | ${r.ratio ? `${f2(r.ratio.median)}x [${f2(r.ratio.min)}-${f2(r.ratio.max)}]` : ''} |`);
  }
}
if (R.memory) {
  const [d, s] = R.memory.presets as [MemoryResult, MemoryResult];
  md.push('', '#### Kernel memory of the maps (memlock from /proc/self/fdinfo, as bpftool reports it)', '',
    `| map | default sizes | small box (SMALL_BOX_SIZES) |`, '| --- | --- | --- |');
  for (const m of d.maps) {
    const sm = s.maps.find((x) => x.name === m.name);
    md.push(`| ${m.name} | ${m.entries.toLocaleString('en')} entries: ${kib(m.bytes)} | ${sm ? `${sm.entries.toLocaleString('en')} entries: ${kib(sm.bytes)}` : ''} |`);
  }
  md.push(`| **total before lookup tables** | **${kib(d.totalBytes)}** | **${kib(s.totalBytes)}** |`);
  md.push('', `One lookup table (inner ARRAY map; values are stored 8 bytes apart): ${R.memory.tables.map((t) => `${t.slots.toLocaleString('en')} slots ${kib(t.bytes)}`).join(', ')}.`);
  if (R.apply) md.push(`The CLI process peaked at ${(Math.max(...R.apply.cli.map((c) => c.peakRssKiB)) / 1024).toFixed(0)} MiB resident while applying a change to ${R.apply.config.services} services.`);
  md.push(...memoryTargetsMarkdown(R.memory));
}
if (R.e2e) {
  md.push('', '#### End to end: lvs-xdp against nftables DNAT and HAProxy (namespace lab, nginx realservers, wrk)', '');
  if ('skipped' in R.e2e) md.push(`Skipped: ${R.e2e.skipped}.`);
  else {
    md.push(`wrk, one thread, ${R.e2e.connections} connections, ${R.e2e.seconds} s per run, median [min-max] of 3 runs after a warm-up. CPU: the machine's busy time per request (/proc/stat); the director's share is that minus the baseline without a director.`, '',
      "| director | connections | req/s | p50 / p99 ms | CPU µs per request | director's µs per request | req/s vs HAProxy | vs nftables |", '| --- | --- | --- | --- | --- | --- | --- | --- |');
    for (const r of R.e2e.rows) {
      md.push(`| ${r.director} | ${r.mode} | ${r.rps.toFixed(0)} [${r.rpsMin.toFixed(0)}-${r.rpsMax.toFixed(0)}] | ${r.p50Ms.toFixed(2)} / ${r.p99Ms.toFixed(1)} | ${r.cpuUsPerReq.toFixed(1)} | ${r.directorUsPerReq === undefined ? '' : r.directorUsPerReq.toFixed(1)} | ${r.vsHaproxy === undefined ? '' : `${f2(r.vsHaproxy)}x`} | ${r.vsNft === undefined ? '' : `${f2(r.vsNft)}x`} |`);
    }
    md.push('', 'Everything (wrk, two nginx, the veths and bridge, the director) shares the same 2 cores, and the machine is shared with other work: req/s is bound by the client and servers, not by an XDP director; the CPU figures include whatever else ran meanwhile. With DR and Tun the answers bypass the director; nftables and HAProxy carry both directions, and HAProxy terminates and opens a TCP connection per client connection.');
  }
}
const text = md.join('\n');

// ---- Charts --------------------------------------------------------------------------------
const charts: Record<string, string> = {};
if (R.dataplane) {
  charts['dataplane.svg'] = barChart('Data plane: cost per packet as a multiple of its floor (bar: target)', 'ratio to floor (same run)',
    R.dataplane.filter((r) => r.ratio !== undefined).map((r) => ({ label: r.name, value: r.ratio!, lo: r.ratioMin, hi: r.ratioMax, target: r.target, note: `${f2(r.ratio!)}x (${f1(r.medianNs)} ns)` })));
}
if (R.scaling) {
  const lc: LineChart[] = R.scaling.map((c) => ({
    title: c.label, xLabel: c.unit, yLabel: 'ratio to smallest', logX: true, yMin: 0,
    hline: { y: c.target, label: `target ${c.target}x` },
    series: [{ name: 'established flow', points: c.points.map((p) => ({ x: p.x, y: p.ratio, lo: p.ratioMin, hi: p.ratioMax })) }],
  }));
  charts['scaling.svg'] = chartGrid(lc, 3);
}
if (R.live) {
  charts['live.svg'] = barChart('Live frames through veth (native and generic XDP, nftables DNAT): forwarded Mpps', 'Mpps (one CPU)',
    R.live.results.map((r) => ({ label: r.name, value: r.mpps, lo: r.mppsMin, hi: r.mppsMax, note: `${f2(r.mpps)} Mpps${r.ratio ? ` (${(r.ratio * 100).toFixed(0)}% of floor)` : ''}` })));
}

if (!short) {
  const dir = new URL('../../bench/results/', import.meta.url);
  mkdirSync(dir, { recursive: true });
  const prev = (() => { try { return JSON.parse(readFileSync(new URL('latest.json', dir), 'utf8')) as Results; } catch { return undefined; } })();
  // A partial run (--only) keeps the other parts of the previous results.
  const merged: Results = only && prev ? { ...prev, ...Object.fromEntries(Object.entries(R).filter(([, v]) => v !== undefined)) } as Results : R;
  if (!render) writeFileSync(new URL('latest.json', dir), JSON.stringify(merged, null, 2) + '\n');
  writeFileSync(new URL('latest.md', dir), text + '\n');
  for (const [name, svg] of Object.entries(charts)) writeFileSync(new URL(name, dir), svg);
  if (!only) {
    const readme = new URL('../../README.md', import.meta.url);
    const cur = readFileSync(readme, 'utf8');
    const next = cur.replace(/(<!-- bench:begin -->\n)[\s\S]*?(<!-- bench:end -->)/, `$1${text}\n$2`);
    if (next !== cur) writeFileSync(readme, next);
  }
}
console.log(text);
log('done');
