/**
 * `lvs-xdp bench [--json] [--rounds N] [--repeat N] [--service VIP:PORT] [--live IFACE_A IFACE_B
 * [--frames N]]`: the per-packet cost
 * of the running configuration's program (an established flow, a new flow, a non-VIP packet)
 * against the floor programs measured in the same run, and the Mpps one core sustains. Runs a
 * private copy of the program (src/bench/program.ts says why): the running director's
 * connections, counters and statistics are not touched. --live: src/bench/live.ts.
 */
import { Command, Option } from 'commander';
import { statePaths } from '../director/paths.js';
import { assertBpffs } from '../director/lifecycle.js';
import { ConfigError } from '../errors.js';
import { benchRunningProgram } from '../bench/program.js';
import { formatBench } from '../bench/format.js';
import { withStateOptions, stateOptions, toJson, type StateOpts } from './common.js';

interface BenchOpts extends StateOpts { json?: boolean; rounds: number; repeat: number; service?: string; live?: string[]; frames: number }

function between(name: string, min: number, max: number) {
  return (v: string): number => {
    if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) throw new ConfigError(`${JSON.stringify(v)} is not an integer in ${min}..${max}`, { field: `--${name}` });
    return Number(v);
  };
}

export function benchCommand(): Command {
  return withStateOptions(new Command('bench'))
    .description('measure the running configuration\'s per-packet cost against the floor programs (a private copy: live state untouched)')
    .option('--json', 'machine-readable output')
    .addOption(new Option('--rounds <n>', 'rounds (figures are medians over rounds)').argParser(between('rounds', 1, 1000)).default(15))
    .addOption(new Option('--repeat <n>', 'packets per case per round').argParser(between('repeat', 100, 10_000_000)).default(20_000))
    .option('--service <vip:port>', 'the virtual service to measure (default: the first TCP service with a realserver)')
    .option('--live <ifaces...>', 'also a live rate: IFACE_A sends the flow to IFACE_B, which runs the floor and a private copy in turns (two free interfaces linked only to each other)')
    .addOption(new Option('--frames <n>', 'frames per program per round of --live').argParser(between('frames', 1000, 100_000_000)).default(500_000))
    .action(async (o: BenchOpts) => {
      const paths = statePaths(stateOptions(o));
      assertBpffs(paths);
      if (o.live && o.live.length !== 2) throw new ConfigError(`give two interfaces, not ${o.live.length}`, { field: '--live', hint: 'lvs-xdp bench --live IFACE_A IFACE_B' });
      const svc = o.service !== undefined ? { service: o.service } : {};
      const live = o.live ? await import('../bench/live.js') : undefined;
      if (live && o.live) live.checkLiveInterfaces(paths, o.live[0]!, o.live[1]!);
      const r = await benchRunningProgram(paths, { rounds: o.rounds, repeat: o.repeat, ...svc });
      // Live rounds are long (a round sends --frames frames per program): at most 7.
      if (live && o.live) r.live = await live.liveRate(paths, { a: o.live[0]!, b: o.live[1]!, rounds: Math.min(o.rounds, 7), frames: o.frames, ...svc });
      process.stdout.write(o.json ? `${toJson(r)}\n` : formatBench(r));
    });
}
