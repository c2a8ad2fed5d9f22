/**
 * `npm run bench`: runs the benchmarks and writes bench/results/latest.json and latest.md.
 * `--short` runs a few seconds' worth (CI checks that it works, not how fast).
 */
import { writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import { runDataplaneBench } from './dataplane.js';

const short = process.argv.includes('--short');
const started = new Date();
const dataplane = await runDataplaneBench(short ? { rounds: 3, perRound: 200 } : { rounds: 15, perRound: 5000 });

const machine = `${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}, Linux ${os.release()}`;
const fmt = (x: number) => x.toFixed(1);
const rows = dataplane.map((r) => `| ${r.name} | ${fmt(r.medianNs)} | ${fmt(r.minNs)}-${fmt(r.maxNs)} | ${r.ratio ? `${r.ratio.toFixed(2)}x ${r.floor!.replace('floor: ', '')}` : ''} | ${r.target ? `<= ${r.target}x ${r.ratio! <= r.target ? 'met' : 'NOT met'}` : ''} |`);
const md = [
  `Data plane cost per packet (BPF_PROG_TEST_RUN; see bench/dataplane.ts for the method), ${started.toISOString().slice(0, 10)}, ${machine}${short ? ' (short run)' : ''}:`,
  '',
  '| case | median ns | min-max of round medians | ratio to floor | target |',
  '| --- | --- | --- | --- | --- |',
  ...rows,
].join('\n');
if (!short) {
  mkdirSync(new URL('../../bench/results/', import.meta.url), { recursive: true });
  writeFileSync(new URL('../../bench/results/latest.json', import.meta.url), JSON.stringify({ date: started.toISOString(), machine, dataplane }, null, 2));
  writeFileSync(new URL('../../bench/results/latest.md', import.meta.url), md + '\n');
}
console.log(md);
