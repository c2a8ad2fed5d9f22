/**
 * `lvs-xdp stats [--watch] [--json]`: packets, bytes and connections per service and
 * realserver, rates from the deltas of two readings of the per-CPU counters, and the named
 * outcome and drop counters.
 */
import { Command } from 'commander';
import type { Director } from '../director/director.js';
import { ConfigError } from '../errors.js';
import { statsView, formatStatsView, type StatsView } from '../view/stats.js';
import { withStateOptions, openRepaired, toJson, type StateOpts } from './common.js';

function seconds(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0 || n > 3600) throw new ConfigError(`--interval ${JSON.stringify(v)}: seconds between 0 and 3600`, { field: '--interval' });
  return n;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function sampleRates(d: Director, intervalS: number): Promise<StatsView> {
  const first = d.readStats();
  if (intervalS <= 0) return statsView(first);
  await sleep(intervalS * 1000);
  return statsView(d.readStats(), first);
}

export function statsCommand(): Command {
  return withStateOptions(new Command('stats'))
    .description('packets, bytes, connections and rates per service and realserver, and the outcome/drop counters')
    .option('-w, --watch', 'refresh every interval until interrupted')
    .option('-i, --interval <seconds>', 'rate measurement interval', seconds, 1)
    .option('-a, --all', 'show counters that are zero too')
    .option('--json', 'machine-readable output (one JSON document per interval with --watch)')
    .action(async (o: StateOpts & { watch?: boolean; interval: number; all?: boolean; json?: boolean }) => {
      const d = await openRepaired(o);
      try {
        let prev = d.readStats();
        if (!o.watch) {
          const v = o.interval > 0 ? (await sleep(o.interval * 1000), statsView(d.readStats(), prev)) : statsView(prev);
          process.stdout.write(o.json ? `${toJson(v)}\n` : formatStatsView(v, o.all));
          return;
        }
        let stop = false;
        process.once('SIGINT', () => { stop = true; });
        while (!stop) {
          await sleep(Math.max(o.interval, 0.1) * 1000);
          const cur = d.readStats();
          const v = statsView(cur, prev);
          prev = cur;
          if (o.json) process.stdout.write(`${JSON.stringify(JSON.parse(toJson(v)))}\n`);
          else process.stdout.write(`${process.stdout.isTTY ? '\x1b[H\x1b[2J' : '\n'}${new Date().toISOString()}\n${formatStatsView(v, o.all)}`);
        }
      } finally {
        d.close();
      }
    });
}
