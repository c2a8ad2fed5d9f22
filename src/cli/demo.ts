/** `lvs-xdp demo [--keep]` and `lvs-xdp demo --teardown`: the namespace lab demo (src/lab/demo.ts). */
import { Command, Option } from 'commander';
import { ConfigError } from '../errors.js';
import { runDemo, demoTeardown, DEMO_PREFIX } from '../lab/demo.js';
import { runHaDemo, haDemoTeardown, HA_DEMO_PREFIX } from '../lab/ha-demo.js';

function prefixArg(v: string): string {
  if (!/^lvs[a-z0-9-]{1,30}$/.test(v)) throw new ConfigError(`--prefix ${JSON.stringify(v)}: lowercase letters, digits and '-', starting with 'lvs'`, { field: '--prefix' });
  return v;
}

export function demoCommand(): Command {
  return new Command('demo')
    .description('build a namespace lab (clients, director, 3 realservers), balance real HTTP/UDP traffic with DR and Tun, show the results, clean up')
    .option('--ha', 'the active/active lab instead: 3 directors behind an ECMP router (BIRD, BGP, BFD); one dies, one is drained, connections survive')
    .option('--keep', 'leave the lab up and print how to explore it')
    .option('--teardown', 'remove a lab left by --keep (or by a killed demo)')
    .addOption(new Option('--prefix <name>', 'namespace prefix').default(DEMO_PREFIX).argParser(prefixArg).hideHelp())
    .addOption(new Option('--requests <n>', 'HTTP requests per client address and service').default(15).argParser((v) => {
      if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 1000) throw new ConfigError(`--requests ${JSON.stringify(v)}: 1..1000`, { field: '--requests' });
      return Number(v);
    }))
    .action(async (o: { keep?: boolean; teardown?: boolean; prefix: string; requests: number; ha?: boolean }) => {
      if (o.ha) {
        const prefix = o.prefix === DEMO_PREFIX ? HA_DEMO_PREFIX : o.prefix;
        if (o.teardown) {
          const removed = haDemoTeardown(prefix);
          console.log(removed.length ? `removed ${removed.join(' ')} and their lvs-xdp state` : `no ${prefix} lab to remove`);
          return;
        }
        process.exitCode = await runHaDemo({ keep: o.keep ?? false, prefix });
        return;
      }
      if (o.teardown) {
        demoTeardown({ prefix: o.prefix });
        return;
      }
      process.exitCode = await runDemo({ keep: o.keep ?? false, prefix: o.prefix, requests: o.requests });
    });
}
